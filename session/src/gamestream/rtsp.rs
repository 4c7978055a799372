//! The RTSP server (core/GAMESTREAM.md §5): one request per TCP connection, answered from the
//! launch state of the session it belongs to; PLAY starts the video in its stream process.

use crate::admission::{Admission, HEAD_TIMEOUT, PER_ADDRESS, Peers, connection_budget};
use crate::host::Host;
use crate::stream::Stream;
use anyhow::Context;
use parking_lot::Mutex;
use punktfunk_core::crypto::Gcm;
use punktfunk_core::gamestream::rtsp::{self, Request, Response, RtspError};
use punktfunk_core::gamestream::sdp::{self, ENCRYPT_CONTROL_V2, Offer};
use punktfunk_core::ipc::Command;
use punktfunk_core::mode::Mode;
use punktfunk_core::stream::AudioParams;
use punktfunk_core::stream::VideoParams;
use punktfunk_core::throttle::{Throttle, refusals};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Failed RTSP connections, reported a few a second.
static REFUSALS: Mutex<Throttle> = Mutex::new(refusals());

pub async fn serve(host: Arc<Host>, listener: TcpListener) {
    let admission = Admission::new("RTSP", Peers::PerAddress(PER_ADDRESS), connection_budget());
    loop {
        let (stream, peer, slot) = admission.accept(&listener).await;
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            let _slot = slot;
            let served = tokio::time::timeout(HEAD_TIMEOUT, connection(&host, stream)).await;
            let error = match served {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no complete request within {} s", HEAD_TIMEOUT.as_secs()),
            };
            if let Some(held_back) = REFUSALS.lock().admit(Instant::now()) {
                tracing::warn!(%peer, held_back, "RTSP: {error}");
            }
        });
    }
}

async fn connection(host: &Host, mut stream: TcpStream) -> anyhow::Result<()> {
    let peer = stream.peer_addr()?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    // The request, its session, and the key it came sealed under.
    let (request, session, key) = loop {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed before a full request");
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] & 0x80 != 0 {
            if let Some(total) = rtsp::sealed_len(&buf)?
                && buf.len() >= total
            {
                let (id, key, plain) = open_sealed(host, &buf[..total]).context("a sealed request no session's key opens")?;
                break (rtsp::parse(&plain)?.ok_or(RtspError::RequestLine)?.0, Some(id), Some(key));
            }
        } else if let Some((req, _)) = rtsp::parse(&buf)? {
            let id = plain_session(host, &req, peer.ip());
            break (req, id, None);
        }
    };
    let response = match session {
        None => Response::new(454, request.cseq()),
        Some(id) if key.is_none() && host.streams.with(id, |s| s.launch.encrypted_rtsp).unwrap_or(true) => {
            Response::new(403, request.cseq())
        }
        Some(id) => respond(host, id, &request),
    };
    tracing::debug!(method = request.method, target = request.target, status = response.status, sealed = key.is_some(), "RTSP");
    let bytes = response.to_bytes();
    let bytes = match (session, key) {
        (Some(id), Some(key)) => {
            let seq = next_seal(host, id, &key).context("the session's key changed or ran out of RTSP sequence numbers")?;
            rtsp::seal(&Gcm::new(&key), seq, &bytes)
        }
        _ => bytes,
    };
    stream.write_all(&bytes).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Opens a sealed request with the key of the session it belongs to: the one key that
/// authenticates it, so sessions are told apart by their keys, whatever address they
/// stream to (two clients behind one NAT, two apps on one machine).
fn open_sealed(host: &Host, sealed: &[u8]) -> Option<(u64, [u8; 16], Vec<u8>)> {
    let keys = host.streams.list(|s| (s.id, s.launch.key));
    keys.into_iter().find_map(|(id, key)| Some((id, key, rtsp::open(&Gcm::new(&key), sealed).ok()?)))
}

/// The session a plain request belongs to, among those launched from the client's address:
/// the one its `Session` token names (clients echo it after their first SETUP), else one
/// that takes plain RTSP, else any (which then refuses it).
fn plain_session(host: &Host, req: &Request, ip: IpAddr) -> Option<u64> {
    let token = req.header("Session").and_then(|v| v.split(';').next()).map(str::trim);
    let from = |s: &Stream| s.launch.client == ip;
    match token {
        Some(token) => host.streams.find(|s| from(s) && s.rtsp_session == token, |s| s.id),
        None => host.streams.find(|s| from(s) && !s.launch.encrypted_rtsp, |s| s.id).or_else(|| host.streams.find(from, |s| s.id)),
    }
}

/// The sequence number, and so the IV, of the next response sealed under `key`: counted by
/// the host per key (the client reads it from the message and does not check it), so a
/// replayed request or a client's repeated `CSeq` never puts one IV on two messages.
fn next_seal(host: &Host, id: u64, key: &[u8; 16]) -> Option<u32> {
    host.streams
        .with(id, |s| {
            let launch = &mut s.launch;
            let seq = (launch.key == *key).then_some(launch.rtsp_sealed)?;
            launch.rtsp_sealed = seq.checked_add(1)?;
            Some(seq)
        })
        .flatten()
}

fn respond(host: &Host, id: u64, req: &Request) -> Response {
    let cseq = req.cseq();
    let ok = || Response::new(200, cseq);
    match req.method.as_str() {
        "OPTIONS" => ok(),
        "DESCRIBE" => ok().body(
            Offer { hevc: host.hevc, av1: host.av1, touch: true, controller_touch: crate::gamepad::touchpads(host.config.gamepad) }
                .describe(),
        ),
        "SETUP" => {
            let Some((payload, connect, ports, token)) =
                host.streams.with(id, |s| (s.launch.ping_payload.clone(), s.launch.connect_data, s.ports, s.rtsp_session.clone()))
            else {
                return Response::new(454, cseq);
            };
            let r = ok().header("Session", format!("{token};timeout = 90"));
            // Video and audio from the session's own ports; the control port is shared
            // (its connections are told apart by their connect data).
            if req.target.contains("audio") {
                r.header("Transport", format!("server_port={}", ports.audio)).header("X-SS-Ping-Payload", payload)
            } else if req.target.contains("video") {
                r.header("Transport", format!("server_port={}", ports.video)).header("X-SS-Ping-Payload", payload)
            } else if req.target.contains("control") {
                r.header("Transport", format!("server_port={}", host.config.control_port()))
                    .header("X-SS-Connect-Data", connect.to_string())
            } else {
                Response::new(404, cseq)
            }
        }
        "ANNOUNCE" => {
            let request = match std::str::from_utf8(&req.body).map_err(|_| sdp::SdpError::Value("body")).and_then(sdp::parse_announce) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("ANNOUNCE: {e}");
                    return Response::new(400, cseq);
                }
            };
            // Only the V2 control scheme (12-byte IVs) is implemented; every current client has it.
            if request.encryption & ENCRYPT_CONTROL_V2 == 0 {
                tracing::warn!("client did not enable control stream encryption V2");
                return Response::new(403, cseq);
            }
            tracing::info!(w = request.width, h = request.height, fps = request.fps, codec = ?request.codec, format = ?request.format(), kbps = request.bitrate_kbps, packet = request.packet_size, video_encrypted = request.video_encrypted(), "stream requested");
            match host.streams.with(id, |s| {
                // A client resuming at another resolution or refresh gets an output to match.
                match Mode::at_fps(request.width, request.height, request.fps) {
                    Ok(mode) if mode != s.launch.mode => {
                        s.launch.mode = mode;
                        s.send(&Command::SetMode(mode));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("keeping the session's mode: {e}"),
                }
                s.request = Some(request);
            }) {
                Some(()) => ok(),
                None => Response::new(454, cseq),
            }
        }
        "PLAY" => {
            let fec = host.config.fec_percent;
            let started = host.streams.with(id, |s| {
                let Some(r) = &s.request else { return false };
                // The client's total budget also carries FEC parity: the encoder gets the rest.
                let kbps = u64::from(r.bitrate_kbps.min(host.config.max_bitrate_kbps));
                let params = VideoParams {
                    codec: r.codec,
                    format: r.format(),
                    bitrate_bps: kbps * 1000 * 100 / (100 + u64::from(fec)),
                    refresh_mhz: r.fps * 1000,
                    packet_size: r.packet_size,
                    fec_percent: fec,
                    fec_max_percent: host.config.fec_max_percent,
                    min_parity: r.min_fec_packets,
                    key: r.video_encrypted().then_some(s.launch.key),
                    ping_payload: Some(s.launch.ping_payload.clone()),
                    client: Some(s.launch.client),
                    encoder: host.config.encoder.clone(),
                    resume: None,
                    pacing: host.config.pacing,
                    invalidation: r.invalidates(),
                };
                let audio = AudioParams {
                    channels: r.audio_channels,
                    high_quality: r.audio_high_quality,
                    packet_ms: r.audio_packet_ms,
                    key: r.audio_encrypted().then_some((s.launch.key, s.launch.key_id as u32)),
                    ping_payload: Some(s.launch.ping_payload.clone()),
                    client: Some(s.launch.client),
                    resume: None,
                };
                // A Moonlight client streams now: no punktfunk/1 connection steers the session.
                s.native_owner = None;
                s.video = Some(format!("{}, {}", params.codec, params.format));
                s.send(&Command::StartVideo(params));
                s.send(&Command::StartAudio(audio));
                true
            });
            if started == Some(true) { ok() } else { Response::new(454, cseq) }
        }
        _ => Response::new(405, cseq),
    }
}
