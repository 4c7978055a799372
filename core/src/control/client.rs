//! The client's side of the control connection as a sans-IO state machine: bytes the host
//! sent go in ([`ClientControl::push`]), bytes to send come out
//! ([`ClientControl::take_output`]), and what happened comes out as [`ClientEvent`]s. The
//! QUIC stream around it belongs to the caller: quinn in `punktfunk-client`, the platform's
//! QUIC on Apple and Android (through the C ABI). Pairing, message order and the clock
//! offset live here so every client gets them right once.

use super::clock::ClockSync;
use super::framing::{self, Reader};
use super::messages::{ClientMessage, HostMessage, MAX_CLIPBOARD, ReceiveStats, Reconfigure, StartRequest, Started};
use super::pairing::ClientPairing;
use super::{ControlError, VERSION};
use crate::gamepad::{PadEvent, PadFeedback};
use crate::input::InputEvent;
use std::collections::VecDeque;

/// What the host said, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// The host answered hello: its name, and whether it knows this client's certificate.
    Welcome {
        name: String,
        paired: bool,
    },
    /// PIN pairing succeeded: pin the host's certificate now.
    Paired,
    /// The PINs differ (or the host is not the one whose certificate was seen); close.
    PairFailed {
        reason: String,
    },
    /// The host refused the last request and closes the connection.
    Refused {
        reason: String,
    },
    Started(Started),
    Reconfigured(Reconfigure),
    /// The session is over.
    Ended {
        reason: String,
    },
    /// A ping was answered: the best clock offset now (host − client, µs) and the round trip
    /// it was measured over.
    Clock {
        offset_us: i64,
        rtt_us: u64,
    },
    /// An app in the session copied this text.
    Clipboard {
        text: String,
    },
    /// A game asked this of one of the client's controllers.
    Pad(PadFeedback),
}

enum State {
    AwaitWelcome,
    Ready,
    Pairing(ClientPairing),
    AwaitPaired,
    /// A refusal, failed pairing or protocol error: nothing more is sent.
    Closed,
}

pub struct ClientControl {
    state: State,
    reader: Reader,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    clock: ClockSync,
    /// The host repairs lost frames (its last `Started` said so).
    repairs: bool,
}

impl ClientControl {
    /// A new connection; the hello is already queued.
    pub fn new(name: &str) -> Self {
        let mut c = Self {
            state: State::AwaitWelcome,
            reader: Reader::default(),
            out: Vec::new(),
            events: VecDeque::new(),
            clock: ClockSync::default(),
            repairs: false,
        };
        c.say(&ClientMessage::Hello { version: VERSION, name: name.into() });
        c
    }

    fn say(&mut self, msg: &ClientMessage) {
        self.out.extend_from_slice(&framing::encode(msg));
    }

    fn ready(&self) -> Result<(), ControlError> {
        match self.state {
            State::Ready => Ok(()),
            State::Closed => Err(ControlError::State("the connection is closing")),
            _ => Err(ControlError::State("waiting for the host")),
        }
    }

    /// Bytes for the control stream (empties the queue).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The queued bytes, without taking them (for callers that write from a borrowed buffer).
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Marks `n` bytes of [`Self::output`] as written.
    pub fn consume_output(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Starts PIN pairing: `pin` is what this client shows its user, the fingerprints are
    /// SHA-256 of this client's certificate and of the one the host showed in the handshake.
    pub fn pair(&mut self, pin: &str, client_fp: &[u8; 32], host_fp: &[u8; 32]) -> Result<(), ControlError> {
        self.ready()?;
        let (pairing, spake) = ClientPairing::start(pin, client_fp, host_fp);
        self.say(&ClientMessage::PairStart { spake });
        self.state = State::Pairing(pairing);
        Ok(())
    }

    pub fn start(&mut self, request: &StartRequest) -> Result<(), ControlError> {
        self.ready()?;
        request.validate().map_err(ControlError::State)?;
        self.say(&ClientMessage::Start(request.clone()));
        Ok(())
    }

    pub fn reconfigure(&mut self, change: Reconfigure) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::Reconfigure(change));
        Ok(())
    }

    pub fn input(&mut self, event: InputEvent) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::Input(event));
        Ok(())
    }

    /// What one of this client's controllers did.
    pub fn pad(&mut self, event: PadEvent) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::Pad(event));
        Ok(())
    }

    pub fn request_keyframe(&mut self) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::RequestKeyframe);
        Ok(())
    }

    /// Frames `first..=last` were lost and the frames after them are dropped until a repair;
    /// a key frame is asked for instead where the host did not agree to `repairs`.
    pub fn frames_lost(&mut self, first: u32, last: u32) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&if self.repairs { ClientMessage::FramesLost { first, last } } else { ClientMessage::RequestKeyframe });
        Ok(())
    }

    pub fn report(&mut self, stats: ReceiveStats) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::Stats(stats));
        Ok(())
    }

    /// Asks for the host's clock; `now_us` is this client's clock (any monotonic µs clock,
    /// the same one passed to [`Self::push`]). About once a second keeps the offset fresh.
    pub fn ping(&mut self, now_us: u64) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::Ping { client_us: now_us });
        Ok(())
    }

    /// This client's clipboard holds `text` now; longer than `MAX_CLIPBOARD` bytes, it is
    /// not sent (`false`).
    pub fn clipboard(&mut self, text: &str) -> Result<bool, ControlError> {
        self.ready()?;
        if text.len() > MAX_CLIPBOARD {
            return Ok(false);
        }
        self.say(&ClientMessage::Clipboard { text: text.into() });
        Ok(true)
    }

    /// Ends the session (the host quits the app and answers `Ended`).
    pub fn stop(&mut self) -> Result<(), ControlError> {
        self.ready()?;
        self.say(&ClientMessage::Stop);
        Ok(())
    }

    /// host clock − client clock in µs, once a ping was answered.
    pub fn clock_offset_us(&self) -> Option<i64> {
        self.clock.best().map(|s| s.offset_us)
    }

    pub fn clock(&self) -> &ClockSync {
        &self.clock
    }

    /// Feeds bytes the host sent; `now_us` as for [`Self::ping`]. An error means the
    /// connection is unusable: close it.
    pub fn push(&mut self, bytes: &[u8], now_us: u64) -> Result<(), ControlError> {
        self.reader.push(bytes);
        loop {
            let msg = match self.reader.next_message::<HostMessage>() {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.state = State::Closed;
                    return Err(e.into());
                }
            };
            if let Err(e) = self.handle(msg, now_us) {
                self.state = State::Closed;
                return Err(e);
            }
        }
    }

    fn handle(&mut self, msg: HostMessage, now_us: u64) -> Result<(), ControlError> {
        let state = std::mem::replace(&mut self.state, State::Ready);
        let event = match (state, msg) {
            (State::Closed, _) => {
                self.state = State::Closed;
                return Ok(());
            }
            (_, HostMessage::Refused { reason }) => {
                self.state = State::Closed;
                ClientEvent::Refused { reason }
            }
            (State::AwaitWelcome, HostMessage::Welcome { name, paired, .. }) => ClientEvent::Welcome { name, paired },
            (State::AwaitWelcome, _) => return Err(ControlError::Protocol("expected a welcome")),
            (_, HostMessage::Welcome { .. }) => return Err(ControlError::Protocol("a second welcome")),
            (State::Pairing(pairing), HostMessage::PairReply { spake, mac }) => match pairing.finish(&spake, &mac) {
                Ok(confirm) => {
                    self.say(&ClientMessage::PairConfirm { mac: confirm });
                    self.state = State::AwaitPaired;
                    return Ok(());
                }
                Err(e) => {
                    self.state = State::Closed;
                    ClientEvent::PairFailed { reason: e.to_string() }
                }
            },
            (State::AwaitPaired, HostMessage::Paired) => ClientEvent::Paired,
            (State::Pairing(_) | State::AwaitPaired, _) => return Err(ControlError::Protocol("expected the pairing's answer")),
            (_, HostMessage::PairReply { .. } | HostMessage::Paired) => {
                return Err(ControlError::Protocol("a pairing answer nobody asked for"));
            }
            (_, HostMessage::Started(s)) => {
                self.repairs = s.repairs;
                ClientEvent::Started(s)
            }
            (_, HostMessage::Reconfigured(r)) => ClientEvent::Reconfigured(r),
            (_, HostMessage::Ended { reason }) => ClientEvent::Ended { reason },
            (_, HostMessage::Clipboard { text }) => ClientEvent::Clipboard { text },
            (_, HostMessage::Pad(feedback)) => ClientEvent::Pad(feedback),
            (_, HostMessage::Pong { client_us, host_us }) => {
                self.clock.record(client_us, host_us, now_us).ok_or(ControlError::Protocol("a pong to a ping not yet sent"))?;
                let best = self.clock.best().expect("just recorded");
                ClientEvent::Clock { offset_us: best.offset_us, rtt_us: best.rtt_us }
            }
        };
        self.events.push_back(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::pairing::HostPairing;

    /// The host's side of a test: reads what the client sent.
    fn host_reads(c: &mut ClientControl) -> Vec<ClientMessage> {
        let mut r = Reader::default();
        r.push(&c.take_output());
        std::iter::from_fn(|| r.next_message().unwrap()).collect()
    }

    /// The one message the client sent.
    fn one(c: &mut ClientControl) -> ClientMessage {
        let mut msgs = host_reads(c);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        msgs.remove(0)
    }

    fn host_says(c: &mut ClientControl, msgs: &[HostMessage], now: u64) -> Result<(), ControlError> {
        let bytes: Vec<u8> = msgs.iter().flat_map(framing::encode).collect();
        c.push(&bytes, now)
    }

    fn welcomed(paired: bool) -> ClientControl {
        let mut c = ClientControl::new("phone");
        assert_eq!(host_reads(&mut c), [ClientMessage::Hello { version: VERSION, name: "phone".into() }]);
        assert!(c.start(&request()).is_err(), "nothing before the welcome");
        host_says(&mut c, &[HostMessage::Welcome { version: VERSION, name: "pc".into(), paired }], 0).unwrap();
        assert_eq!(c.poll_event(), Some(ClientEvent::Welcome { name: "pc".into(), paired }));
        c
    }

    fn request() -> StartRequest {
        StartRequest {
            app: String::new(),
            width: 1280,
            height: 720,
            fps: 60,
            codec: "h264".into(),
            bitrate_kbps: 20_000,
            fec_percent: 20,
            shard_len: 1400,
            ten_bit: false,
            yuv444: false,
            fec_adaptive: false,
            clipboard: false,
            repairs: false,
        }
    }

    #[test]
    fn pairing_with_the_right_pin_confirms_and_reports() {
        let (cfp, hfp) = ([1; 32], [2; 32]);
        let mut c = welcomed(false);
        c.pair("1234", &cfp, &hfp).unwrap();
        let ClientMessage::PairStart { spake } = one(&mut c) else { panic!("expected PairStart") };
        let (host, reply, mac) = HostPairing::respond("1234", &cfp, &hfp, &spake).unwrap();
        host_says(&mut c, &[HostMessage::PairReply { spake: reply, mac }], 0).unwrap();
        let ClientMessage::PairConfirm { mac } = one(&mut c) else { panic!("expected PairConfirm") };
        host.verify(&mac).unwrap();
        host_says(&mut c, &[HostMessage::Paired], 0).unwrap();
        assert_eq!(c.poll_event(), Some(ClientEvent::Paired));
        c.start(&request()).unwrap();
        assert!(matches!(host_reads(&mut c)[..], [ClientMessage::Start(_)]));
    }

    #[test]
    fn a_wrong_pin_fails_without_confirming() {
        let mut c = welcomed(false);
        c.pair("1234", &[1; 32], &[2; 32]).unwrap();
        let ClientMessage::PairStart { spake } = one(&mut c) else { panic!("expected PairStart") };
        let (_, reply, mac) = HostPairing::respond("9999", &[1; 32], &[2; 32], &spake).unwrap();
        host_says(&mut c, &[HostMessage::PairReply { spake: reply, mac }], 0).unwrap();
        assert!(matches!(c.poll_event(), Some(ClientEvent::PairFailed { .. })));
        assert!(host_reads(&mut c).is_empty(), "no confirmation leaves the client");
        assert!(c.is_closed() && c.start(&request()).is_err());
    }

    #[test]
    fn streaming_events_and_the_clock() {
        let mut c = welcomed(true);
        c.ping(1_000).unwrap();
        assert_eq!(one(&mut c), ClientMessage::Ping { client_us: 1_000 });
        host_says(&mut c, &[HostMessage::Pong { client_us: 1_000, host_us: 50_600 }], 1_200).unwrap();
        assert_eq!(c.clock_offset_us(), Some(49_500));
        assert_eq!(c.poll_event(), Some(ClientEvent::Clock { offset_us: 49_500, rtt_us: 200 }));
        host_says(
            &mut c,
            &[HostMessage::Reconfigured(Reconfigure { bitrate_kbps: Some(5), mode: None }), HostMessage::Ended { reason: "bye".into() }],
            0,
        )
        .unwrap();
        assert!(matches!(c.poll_event(), Some(ClientEvent::Reconfigured(_))));
        assert_eq!(c.poll_event(), Some(ClientEvent::Ended { reason: "bye".into() }));
    }

    #[test]
    fn out_of_order_answers_close_the_connection() {
        let mut c = ClientControl::new("x");
        assert!(host_says(&mut c, &[HostMessage::Paired], 0).is_err());
        assert!(c.is_closed());
        let mut c = welcomed(true);
        assert!(host_says(&mut c, &[HostMessage::PairReply { spake: vec![], mac: vec![] }], 0).is_err());
        let mut c = welcomed(true);
        host_says(&mut c, &[HostMessage::Refused { reason: "no".into() }], 0).unwrap();
        assert_eq!(c.poll_event(), Some(ClientEvent::Refused { reason: "no".into() }));
        assert!(c.is_closed());
        let mut c = welcomed(true);
        assert!(c.push(&u32::MAX.to_le_bytes(), 0).is_err(), "oversized frames are refused");
    }
}
