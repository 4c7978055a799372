//! The punktfunk/1 video sender: encode, then core's punktfunk/1 sender (GF(2^16) FEC,
//! AES-128-GCM, any frame size), then paced GSO batches (punktfunk-net) to the address the
//! client's data-plane hello came from. Runs on the sink's native thread like the
//! GameStream sender; a second thread listens for hellos.

use crate::audio::playout::Playout;
use crate::encode::{Choice, SessionEncoder};
use crate::frame::Frame;
use crate::gamestream::video::{SendError, SentFrame};
use crate::parity::Parity;
use crate::peer::{LISTEN_POLL, Peer};
use crate::repair::Repairs;
use crate::stages::StageClock;
use punktfunk_core::fec_tuner::MAX_BURST_PARITY;
use punktfunk_core::native::audio::{AudioOpener, KIND_HELLO, KIND_MIC, kind};
use punktfunk_core::native::sender::{Frame as NativeFrame, Sender};
use punktfunk_core::pacer::{Pacer, PacerConfig};
pub use punktfunk_core::stream::NativeVideoParams;
use punktfunk_core::stream::{NativeResume, Pacing};
use punktfunk_net::{DataSocket, monotonic_us};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The newest sequence number a listener took: 0 for none, else the number + 1.
#[derive(Default)]
pub struct Newest(AtomicU64);

impl Newest {
    fn note(&self, seq: Option<u64>) {
        self.0.store(seq.map_or(0, |s| s.saturating_add(1)), Ordering::Relaxed);
    }

    fn get(&self) -> Option<u64> {
        self.0.load(Ordering::Relaxed).checked_sub(1)
    }
}

/// The newest hello and microphone datagrams the listener took, for the stream's next
/// process ([`NativeResume`]).
#[derive(Default)]
pub struct Seen {
    hello: Newest,
    mic: Newest,
}

/// [`Seen`], shared by the listener and the sender.
pub type Heard = Arc<Seen>;

/// Listens on the data-plane socket until `stop`: hellos (sealed with the start's microphone
/// key) latch the client's address, the newest one wins (`on_latch` runs when it changes:
/// the client needs a key frame); microphone datagrams from that address go to the session's
/// virtual microphone, when it has one. A later process of the stream takes only datagrams
/// newer than the last one took; what this one takes is noted in `heard`.
pub fn listen_for_hellos(
    socket: UdpSocket,
    params: &NativeVideoParams,
    peer: Peer,
    heard: Heard,
    stop: Arc<AtomicBool>,
    mic: Option<Arc<Playout>>,
    on_latch: impl Fn(),
) {
    let mut socket = match DataSocket::new(socket) {
        Ok(s) => s,
        Err(e) => return tracing::error!("data-plane socket: {e}"),
    };
    let resume = params.resume.unwrap_or_default();
    let mut opener = AudioOpener::new(&params.mic_key, KIND_MIC).after(resume.mic_seen);
    let mut hellos = AudioOpener::new(&params.mic_key, KIND_HELLO).after(resume.hello_seen);
    heard.hello.note(resume.hello_seen);
    heard.mic.note(resume.mic_seen);
    while !stop.load(Ordering::Relaxed) {
        let _ = socket.recv(LISTEN_POLL, |from, d| {
            if kind(d) == Some(KIND_HELLO) {
                let Ok(hello) = hellos.open(d) else { return };
                // A late hello (reordered behind a newer one) must not move the stream back.
                if Some(hello.seq) != hellos.newest() {
                    return;
                }
                heard.hello.note(hellos.newest());
                if peer.set(from) {
                    tracing::info!(%from, "punktfunk/1 client latched");
                    on_latch();
                }
            } else if let Some(mic) = mic.as_ref().filter(|_| peer.get() == Some(from) && kind(d) == Some(KIND_MIC))
                && let Ok(packet) = opener.open(d)
            {
                let _ = mic.push_opus(packet.opus);
                heard.mic.note(opener.newest());
            }
        });
    }
}

pub struct NativeVideoSender {
    socket: DataSocket,
    peer: Peer,
    encoder: SessionEncoder,
    sender: Sender,
    pacer: Pacer,
    frame_id: u32,
    /// The parity, moved by the loss the client reports (when it takes a moving parity).
    parity: Parity,
    pacing: Pacing,
    /// What the listener took (for [`NativeVideoSender::position`]).
    heard: Heard,
    /// The start it sends for.
    token: u64,
    /// The losses the client reported, and their repairs (from older pictures only where the
    /// encoder keeps them: a client that asked, `invalidation`).
    repairs: Repairs,
}

impl NativeVideoSender {
    pub fn new(params: NativeVideoParams, socket: UdpSocket, peer: Peer, heard: Heard, idr: Arc<AtomicBool>) -> Result<Self, SendError> {
        let resume = params.resume.unwrap_or_default();
        let mut sender = Sender::new(params.stream_config()).map_err(|e| SendError::Config(e.to_string()))?.starting_at(resume.seq);
        let percent = |p: u16| p.min(u16::from(u8::MAX)) as u8;
        let min_parity = percent(sender.config().min_parity);
        let parity =
            Parity::new(params.bitrate_bps, percent(params.fec_percent), percent(params.fec_max_percent), min_parity, MAX_BURST_PARITY);
        // The parity a moving stream starts at, and the encoder's share of the budget beside it.
        sender.set_fec_percent(u16::from(parity.percent()));
        let bitrate_bps = parity.encoder_bps();
        let socket = DataSocket::new(socket).map_err(|e| SendError::Config(e.to_string()))?;
        if let Some(w) = socket.buffers().warning() {
            tracing::warn!("{w}");
        }
        let pacer = Pacer::new(PacerConfig::new(bitrate_bps, f64::from(params.refresh_mhz) / 1000.0).with_burst(params.pacing.burst(0.0)));
        let encoder = SessionEncoder::new(
            params.codec,
            params.format,
            params.refresh_mhz,
            bitrate_bps,
            params.encoder.parse().unwrap_or(Choice::Auto),
            idr,
        )
        .invalidating(params.invalidation);
        Ok(Self {
            socket,
            peer,
            encoder,
            sender,
            pacer,
            frame_id: resume.next_frame,
            parity,
            pacing: params.pacing,
            heard,
            token: params.token,
            repairs: Repairs::default(),
        })
    }

    /// Where the stream stands, for its next process: its start's token and position (`seq`
    /// is the next process's to choose, 0 here).
    pub fn position(&self) -> (u64, NativeResume) {
        (self.token, NativeResume { next_frame: self.frame_id, seq: 0, hello_seen: self.heard.hello.get(), mic_seen: self.heard.mic.get() })
    }

    /// A new budget, as the encoder's bitrate at the parity the stream started with.
    pub fn set_bitrate(&mut self, bps: u64) {
        self.parity.set_budget(bps);
        let bps = self.parity.encoder_bps();
        self.encoder.set_bitrate(bps);
        self.pacer.set_bitrate(bps);
    }

    /// The client lost frames `first..=last` (see [`Repairs::invalidate`]); false for a
    /// report the last repair covers already.
    pub fn invalidate(&mut self, first: u32, last: u32) -> bool {
        self.repairs.invalidate(&mut self.encoder, first, last)
    }

    /// What the client reported of the link: it steers the parity.
    pub fn parity(&mut self) -> &mut Parity {
        &mut self.parity
    }

    /// Moves the parity where the client's losses say, and the encoder's share of the
    /// budget with it.
    fn retune(&mut self, now: Instant) {
        if let Some(percent) = self.parity.poll(now) {
            self.sender.set_fec_percent(u16::from(percent));
        }
        if let Some(min_parity) = self.parity.min_parity() {
            self.sender.set_min_parity(u16::from(min_parity));
        }
        if let Some(bps) = self.parity.retarget() {
            self.encoder.set_bitrate(bps);
            self.pacer.set_bitrate(bps);
        }
        self.pacer.set_burst(self.pacing.burst(self.parity.loss()));
    }

    /// Its encoder: what frames it would like, its surfaces, its name.
    pub fn encoder(&self) -> &SessionEncoder {
        &self.encoder
    }

    /// Encodes and sends one frame; without a client address yet it is skipped and the
    /// first frame the client sees is a key frame.
    pub fn send(&mut self, frame: Frame) -> Result<Option<SentFrame>, SendError> {
        let Some(to) = self.peer.get() else {
            self.encoder.request_keyframe();
            return Ok(None);
        };
        let mut clock = StageClock::picked_up(&frame);
        let (committed_at, encoded) = (frame.committed_at, self.encoder.encode(&frame)?);
        // The frame's buffer (or GPU surface) goes back before packetizing and pacing.
        drop(frame);
        let Some(encoded) = encoded else { return Ok(None) };
        clock.encoded(encoded.convert_us);
        let id = self.frame_id;
        self.frame_id = self.frame_id.wrapping_add(1);
        let repair = self.repairs.sent(id, encoded.seq, encoded.keyframe);
        // The frame's time on the machine-wide monotonic clock: when the app committed what
        // it shows, so the client's latency figure covers compositing and encoding too.
        let timestamp_us = monotonic_us().saturating_sub(committed_at.elapsed().as_micros() as u64);
        let data_datagrams = encoded.data.len().div_ceil(self.sender.config().shard_len).max(1);
        let datagrams =
            match self.sender.packetize(&NativeFrame { id, keyframe: encoded.keyframe, repair, timestamp_us, data: &encoded.data }) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(id, "frame dropped: {e}");
                    return Ok(None);
                }
            };
        let (count, drops_before) = (datagrams.count(), self.socket.send_drops);
        clock.packetized();
        let socket = &mut self.socket;
        clock.send_paced(&mut self.pacer, count, datagrams.datagram_len(), |range| {
            // Lost datagrams are counted by the socket; FEC or a key frame request recovers.
            if let Err(e) = socket.send(to, &datagrams.range(range.start, range.end)) {
                tracing::debug!("video datagrams not sent: {e}");
            }
        });
        let stages = clock.stages(Instant::now());
        Ok(Some(SentFrame {
            index: id,
            bytes: encoded.data.len(),
            datagrams: count,
            data_datagrams,
            unsent: (self.socket.send_drops - drops_before) as usize,
            keyframe: encoded.keyframe,
            repair,
            stages,
            fec_percent: self.parity.percent(),
            min_parity: self.sender.config().min_parity.min(u16::from(u8::MAX)) as u8,
            parity_why: self.parity.why(),
            loss_permille: self.parity.loss_permille(),
        }))
        .inspect(|_| {
            self.parity.sent(count, data_datagrams);
            self.retune(Instant::now());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Codec, Format};
    use crate::peer::Listener;
    use punktfunk_core::native::audio::AudioSealer;
    use std::net::SocketAddr;
    use std::time::Duration;

    /// Waits until `peer` is `want` (or a second passed) and returns what it is.
    fn settled(peer: &Peer, want: Option<SocketAddr>) -> Option<SocketAddr> {
        let until = Instant::now() + Duration::from_secs(1);
        while peer.get() != want && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        peer.get()
    }

    #[test]
    fn only_the_newest_authentic_hello_moves_the_stream() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let params = NativeVideoParams {
            codec: Codec::H264,
            format: Format::default(),
            bitrate_bps: 1,
            refresh_mhz: 60_000,
            shard_len: 1400,
            fec_percent: 20,
            fec_max_percent: 0,
            max_frame_len: 1 << 20,
            key: [1; 16],
            mic_key: [2; 16],
            token: 7,
            encoder: "software".into(),
            pacing: Default::default(),
            resume: None,
            invalidation: false,
        };
        let (peer, heard) = (Peer::default(), Heard::default());
        let hearing = {
            let (peer, params, heard) = (peer.clone(), params.clone(), heard.clone());
            Listener::spawn("hellos", move |stop| listen_for_hellos(listener, &params, peer, heard, stop, None, || {})).unwrap()
        };
        let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut client = AudioSealer::new(&params.mic_key, KIND_HELLO);
        let first = client.seal(&[], 0).unwrap().to_vec();
        let second = client.seal(&[], 0).unwrap().to_vec();
        let third = client.seal(&[], 0).unwrap().to_vec();

        a.send_to(&second, to).unwrap();
        assert_eq!(settled(&peer, Some(a_addr)), Some(a_addr), "an authentic hello latches");
        let forged = AudioSealer::new(&[9; 16], KIND_HELLO).seal(&[], 0).unwrap().to_vec();
        b.send_to(&forged, to).unwrap();
        b.send_to(&second, to).unwrap();
        b.send_to(&first, to).unwrap();
        assert_eq!(settled(&peer, Some(b_addr)), Some(a_addr), "a forged, replayed or older hello moves nothing");
        b.send_to(&third, to).unwrap();
        assert_eq!(settled(&peer, Some(b_addr)), Some(b_addr), "a newer one (the client's new address) does");
        drop(hearing);
        assert_eq!(heard.hello.get(), Some(2), "the newest hello taken, for the next process");

        // The stream's next process takes no hello its last one took, only newer ones.
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let resume = NativeResume { hello_seen: heard.hello.get(), ..NativeResume::default() };
        let params = NativeVideoParams { resume: Some(resume), ..params };
        let (peer, heard) = (Peer::default(), Heard::default());
        let hearing = {
            let (peer, heard) = (peer.clone(), heard.clone());
            Listener::spawn("hellos", move |stop| listen_for_hellos(listener, &params, peer, heard, stop, None, || {})).unwrap()
        };
        a.send_to(&third, to).unwrap();
        assert_eq!(settled(&peer, Some(a_addr)), None, "a replay of the last process's hello latches nothing");
        a.send_to(client.seal(&[], 0).unwrap(), to).unwrap();
        assert_eq!(settled(&peer, Some(a_addr)), Some(a_addr), "the client's next hello does");
        drop(hearing);
    }
}
