//! The control stream server (core/GAMESTREAM.md §6): ENet on UDP, one native thread. It binds each
//! ENet peer to the running session by the connect data RTSP handed out (or the launching
//! client's address), decrypts its messages, forwards input and key-frame requests to the
//! compositor, and tells the client when the session ends.
//!
//! ENet is `rusty_enet`, a transpilation of ENet 1.3 (wire-compatible with the C library
//! moonlight-common-c embeds).

use crate::gamepad::Gamepads;
use crate::host::Host;
use crate::stream::{Ended, Stream};
use punktfunk_core::gamestream::control::{ControlCipher, Message, ReplayWindow};
use punktfunk_core::gamestream::enet::{Datagram, classify};
use punktfunk_core::gamestream::input::{InputPacket, Translator};
use punktfunk_core::ipc::Command;
use punktfunk_core::throttle::{Throttle, refusals};
use rusty_enet as enet;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A peer whose last packet is older than this when it disconnects has vanished (ENet timed
/// it out) rather than left: its session is torn down instead of kept for /resume.
const VANISHED: Duration = Duration::from_secs(2);
/// ENet timeout for a silent peer: the client pings every 100 ms.
const PEER_TIMEOUT_MS: (u32, u32) = (3000, 5000);

struct Bound {
    stream: u64,
    /// The launch (or resume) it belongs to: a peer of an earlier one must not touch a
    /// session a newer client resumed.
    connect_data: u32,
    /// The session key, which names its [`Keyed`] state.
    key: [u8; 16],
    /// The peer proved it holds the session key (a message decrypted); until then it can
    /// neither stop nor end the session.
    verified: bool,
    /// The paired client whose launch it is: its permissions say whether its input counts.
    fingerprint: String,
    input: Translator,
    pads: Gamepads,
    last_heard: Instant,
}

/// What is sealed and accepted under one session key, shared by every peer bound with it:
/// a second peer (a replayed CONNECT, a reconnect) goes on with the host's sequence numbers,
/// so no IV is used twice, and cannot replay what an earlier peer's client sent.
struct Keyed {
    stream: u64,
    cipher: ControlCipher,
    replay: ReplayWindow,
}

/// The control socket with admission in front of ENet: a CONNECT is let through only with
/// connect data a launch handed out (or, with none, from the launching client's address);
/// anything else to no peer is dropped unanswered. Strangers so take no peer slot and get
/// no reply (a spoofed CONNECT would otherwise be answered with several times its size).
struct AdmittingSocket {
    socket: UdpSocket,
    host: Arc<Host>,
    refusals: Throttle,
}

impl enet::Socket for AdmittingSocket {
    type Address = SocketAddr;
    type Error = std::io::Error;

    fn init(&mut self, options: enet::SocketOptions) -> std::io::Result<()> {
        self.socket.init(options)
    }

    fn send(&mut self, to: SocketAddr, buffer: &[u8]) -> std::io::Result<usize> {
        enet::Socket::send(&mut self.socket, to, buffer)
    }

    fn receive(&mut self, buffer: &mut [u8; enet::MTU_MAX]) -> std::io::Result<Option<(SocketAddr, enet::PacketReceived)>> {
        loop {
            let Some((from, received)) = self.socket.receive(buffer)? else { return Ok(None) };
            let enet::PacketReceived::Complete(n) = received else { return Ok(Some((from, received))) };
            let admitted = match classify(&buffer[..n], false) {
                Datagram::ToPeer => true,
                Datagram::Connect { data } => self.host.streams.find(|s| launched_by(s, data, from), |_| ()).is_some(),
                Datagram::Invalid => false,
            };
            if admitted {
                return Ok(Some((from, received)));
            }
            if let Some(held) = self.refusals.admit(Instant::now()) {
                tracing::warn!(%from, held_back = held, "control: a connection no launch asked for, dropped");
            }
        }
    }
}

/// Whether a peer connecting from `addr` with `data` belongs to `stream`: by the connect data
/// its launch handed out, or (clients that send none) by the launching client's address.
fn launched_by(stream: &Stream, data: u32, addr: SocketAddr) -> bool {
    if data != 0 { data == stream.launch.connect_data } else { addr.ip() == stream.launch.client }
}

pub fn spawn(host: Arc<Host>, socket: UdpSocket) -> anyhow::Result<()> {
    let ended = host.streams.on_end();
    let socket = AdmittingSocket { socket, host: Arc::clone(&host), refusals: refusals() };
    let enet = enet::Host::new(socket, enet::HostSettings { peer_limit: 16, channel_limit: 0x30, ..Default::default() })
        .map_err(|e| anyhow::anyhow!("ENet host: {e:?}"))?;
    std::thread::Builder::new().name("control".into()).spawn(move || run(host, enet, ended))?;
    Ok(())
}

fn run(host: Arc<Host>, mut enet: enet::Host<AdmittingSocket>, ended: std::sync::mpsc::Receiver<Ended>) {
    let mut peers: HashMap<enet::PeerID, Bound> = HashMap::new();
    let mut keyed: HashMap<[u8; 16], Keyed> = HashMap::new();
    let (mut out, mut feedback) = (Vec::new(), Vec::new());
    crate::panics::inject_fault("control");
    loop {
        // Sleep until a datagram arrives, a game asks a pad for something, or ENet's timers
        // or a pad's rumble need a turn.
        let now = Instant::now();
        let rumble_due = peers.values_mut().filter_map(|b| b.pads.next_change(now)).min();
        let wait = rumble_due.map_or(10, |t| t.saturating_duration_since(now).as_millis().clamp(0, 10) as u16);
        let mut fds = vec![nix::poll::PollFd::new(enet.socket().socket.as_fd(), nix::poll::PollFlags::POLLIN)];
        fds.extend(peers.values().flat_map(|b| b.pads.fds()).map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)));
        let _ = nix::poll::poll(&mut fds, wait);
        drop(fds);
        tell_pad_feedback(&mut enet, &mut peers, &mut keyed, &mut feedback);
        loop {
            let event = match enet.service() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("control socket: {e}");
                    break;
                }
            };
            match event {
                enet::Event::Connect { peer, data } => {
                    let addr = peer.address();
                    match bind(&host, data, addr) {
                        Some(bound) => {
                            keyed.entry(bound.key).or_insert_with(|| Keyed {
                                stream: bound.stream,
                                cipher: ControlCipher::new(&bound.key),
                                replay: ReplayWindow::default(),
                            });
                            tracing::info!(?addr, stream = bound.stream, "control stream connected");
                            peer.set_timeout(32, PEER_TIMEOUT_MS.0, PEER_TIMEOUT_MS.1);
                            peers.insert(peer.id(), bound);
                        }
                        None => {
                            tracing::warn!(?addr, "control connection matches no session: refused");
                            peer.disconnect_now(0);
                        }
                    }
                }
                enet::Event::Disconnect { peer, .. } => {
                    let Some(bound) = peers.remove(&peer.id()) else { continue };
                    let current = host.streams.with(bound.stream, |s| s.launch.connect_data == bound.connect_data).unwrap_or(false);
                    if !bound.verified || !current {
                        continue;
                    }
                    if bound.last_heard.elapsed() > VANISHED {
                        tracing::info!(stream = bound.stream, "client vanished: ending its session");
                        host.streams.cancel(bound.stream);
                    } else {
                        tracing::info!(stream = bound.stream, "client disconnected: session kept for /resume");
                        host.streams.with(bound.stream, |s| {
                            s.send(&Command::StopVideo);
                            s.send(&Command::StopAudio);
                        });
                    }
                }
                enet::Event::Receive { peer, packet, .. } => {
                    let id = peer.id();
                    let Some(bound) = peers.get_mut(&id) else { continue };
                    let Some(channel) = keyed.get_mut(&bound.key) else { continue };
                    match channel.cipher.decode_seq(packet.data()) {
                        Ok((seq, message)) if channel.replay.accept(seq) => {
                            bound.verified = true;
                            bound.last_heard = Instant::now();
                            dispatch(&host, bound, message, &mut out);
                        }
                        Ok((seq, _)) => tracing::warn!(stream = bound.stream, seq, "replayed control message dropped"),
                        Err(e) if !bound.verified => {
                            // Not the client that launched: it never gets to touch the session.
                            tracing::warn!(stream = bound.stream, "control peer without the session key: {e}; disconnecting it");
                            peers.remove(&id);
                            peer.disconnect_now(0);
                        }
                        // Sunshine ends the session here; a bad packet only costs itself.
                        Err(e) => tracing::warn!(stream = bound.stream, "control message dropped: {e}"),
                    }
                }
            }
        }
        while let Ok(Ended::Stream(id)) = ended.try_recv() {
            for (peer_id, bound) in peers.iter().filter(|(_, b)| b.stream == id && b.verified) {
                tracing::info!(stream = id, "session over: telling the client");
                let termination = keyed.get_mut(&bound.key).and_then(|k| k.cipher.termination());
                if let Some(peer) = enet.get_peer_mut(*peer_id) {
                    if let Some(message) = termination {
                        let _ = peer.send(0, &enet::Packet::reliable(message.as_slice()));
                    }
                    peer.disconnect_later(0);
                }
            }
            peers.retain(|_, b| b.stream != id);
            keyed.retain(|_, k| k.stream != id);
            enet.flush();
        }
    }
}

/// Reads what games asked of each verified peer's pads and sends the client its
/// controllers' feedback (rumble), sealed under the session key.
fn tell_pad_feedback(
    enet: &mut enet::Host<AdmittingSocket>,
    peers: &mut HashMap<enet::PeerID, Bound>,
    keyed: &mut HashMap<[u8; 16], Keyed>,
    feedback: &mut Vec<punktfunk_core::gamepad::PadFeedback>,
) {
    let now = Instant::now();
    for (id, bound) in peers.iter_mut().filter(|(_, b)| b.verified) {
        bound.pads.service(now, feedback);
        let (Some(channel), Some(peer)) = (keyed.get_mut(&bound.key), enet.get_peer_mut(*id)) else {
            feedback.clear();
            continue;
        };
        for message in feedback.drain(..).filter_map(|f| channel.cipher.feedback(&f)) {
            let _ = peer.send(0, &enet::Packet::reliable(message.as_slice()));
        }
    }
}

/// Finds the session a new peer belongs to: by connect data when the client sent it,
/// else by its address.
fn bind(host: &Host, data: u32, addr: Option<SocketAddr>) -> Option<Bound> {
    let addr = addr?;
    host.streams.find(
        |s| launched_by(s, data, addr),
        |s| Bound {
            stream: s.id,
            connect_data: s.launch.connect_data,
            key: s.launch.key,
            verified: false,
            fingerprint: s.launch.fingerprint.clone(),
            input: Translator::new((s.launch.mode.width, s.launch.mode.height)),
            pads: Gamepads::new(host.config.gamepad).in_view(s.input_view.clone()),
            last_heard: Instant::now(),
        },
    )
}

fn dispatch(host: &Host, bound: &mut Bound, message: Message, out: &mut Vec<punktfunk_core::input::InputEvent>) {
    let (repaired, burst) = match &message {
        Message::FecStatus(status) => (Some(status.repaired()), status.burst()),
        _ => (None, None),
    };
    let command = match message {
        Message::RequestIdr => Some(Command::RequestIdr),
        Message::InvalidateRefs { first, last } => Some(Command::InvalidateFrames { first, last }),
        Message::FecStatus(status) => Some(Command::DatagramsLost(u32::from(status.missing))),
        // A client that may only watch steers nothing.
        Message::Input(_) if host.permissions(&bound.fingerprint).view_only => None,
        Message::Input(InputPacket::Pad(event)) => {
            bound.pads.handle(event);
            None
        }
        Message::Input(packet) => {
            bound.input.translate(packet, out);
            None
        }
        Message::Other(_) => None,
    };
    host.streams.with(bound.stream, |s| {
        s.keyframe_requests += u64::from(matches!(command, Some(Command::RequestIdr)));
        s.frames_invalidated += u64::from(matches!(command, Some(Command::InvalidateFrames { .. })));
        s.blocks_repaired += u64::from(repaired == Some(true));
        s.blocks_lost += u64::from(repaired == Some(false));
        for event in out.drain(..) {
            s.send(&Command::Input(event));
        }
        if let Some(c) = &command {
            s.send(c);
        }
        if let Some(burst) = burst {
            s.send(&Command::LossBurst(u32::from(burst)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The admission parser reads the connect data from a CONNECT as ENet itself writes it.
    #[test]
    fn reads_the_connect_data_enet_sends() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut client = enet::Host::new(socket, enet::HostSettings { peer_limit: 1, ..Default::default() }).unwrap();
        client.connect(listener.local_addr().unwrap(), 2, 0xabcd_1234).unwrap();
        client.flush();
        let mut buf = [0; 2048];
        listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (n, _) = listener.recv_from(&mut buf).unwrap();
        assert_eq!(classify(&buf[..n], false), Datagram::Connect { data: 0xabcd_1234 });
    }
}
