//! The host's side of the control connection as a sans-IO state machine, the mirror of
//! [`ClientControl`](super::client::ClientControl): bytes the client sent go in
//! ([`HostControl::push`]), bytes to send come out ([`HostControl::take_output`]), what the
//! client asks for comes out as [`HostEvent`]s, and time is explicit
//! ([`HostControl::poll_timeout`] / [`HostControl::handle_timeout`]).
//!
//! The machine owns the protocol's rules: hello first and at the right version, nothing but
//! pairing from an unpaired client and not for long, the pairing exchange and its deadline,
//! pings answered. The host's decisions stay with the caller (is this certificate paired,
//! which PIN did the user type, can the app start), which answers through the methods
//! named after the messages they send.

use super::framing::{self, Reader};
use super::messages::{ClientMessage, HostMessage, MAX_CLIPBOARD, ReceiveStats, Reconfigure, StartRequest, Started};
use super::pairing::HostPairing;
use super::{ControlError, VERSION};
use crate::gamepad::{PadEvent, PadFeedback};
use crate::input::InputEvent;
use std::collections::VecDeque;

/// How long a connection may take to say hello.
pub const HELLO_WAIT_US: u64 = 10_000_000;
/// How long an unpaired connection may stay: long enough to pair (the PIN wait and the
/// confirmation), not forever.
pub const UNPAIRED_STAY_US: u64 = 150_000_000;
/// How long the host waits for the client's pairing confirmation.
pub const CONFIRM_WAIT_US: u64 = 15_000_000;
/// The most frames one `FramesLost` names (more than a receiver reports for one gap): a
/// longer span is no loss a client saw.
const MAX_LOST_SPAN: u32 = 1024;
/// Longest client name kept (it reaches logs and the paired-client list).
const MAX_NAME_CHARS: usize = 64;

/// What the client asked for, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum HostEvent {
    /// The client said hello (its name, printable characters only): answer with
    /// [`HostControl::welcome`].
    Hello {
        name: String,
    },
    /// The client wants to pair with the PIN it shows: answer with
    /// [`HostControl::pair_with_pin`] once the user typed it, or refuse.
    PairRequested,
    /// The client confirmed the pairing: store it, then [`HostControl::paired`] (or refuse).
    PairConfirmed,
    /// The pairing failed (wrong PIN, no confirmation in time); the connection is refused.
    PairFailed {
        reason: String,
    },
    /// Answer with [`HostControl::started`] or refuse; the request is already validated.
    Start(StartRequest),
    /// Answer with [`HostControl::reconfigured`], saying what was applied.
    Reconfigure(Reconfigure),
    Input(InputEvent),
    /// One of the client's controllers; what games ask of it goes back through
    /// [`HostControl::pad_feedback`].
    Pad(PadEvent),
    RequestKeyframe,
    /// The client lost frames `first..=last` and drops frames until a repair (a key frame
    /// where the encoder cannot repair from an older picture).
    FramesLost {
        first: u32,
        last: u32,
    },
    Stats(ReceiveStats),
    /// The client's clipboard holds this text (at most `MAX_CLIPBOARD` bytes).
    Clipboard(String),
    /// The client ends the session; `Ended` is already on its way.
    Stop,
    /// The machine refused the client by itself (wrong version, not paired, too slow, a
    /// request no host can serve).
    Refused {
        reason: String,
    },
}

enum State {
    AwaitHello,
    /// The hello was reported; messages wait in the reader until [`HostControl::welcome`].
    AwaitWelcome,
    Ready,
    /// A `PairStart` was reported: its SPAKE2 message, until the user's PIN arrives.
    AwaitPin {
        spake: Vec<u8>,
    },
    AwaitConfirm {
        pairing: HostPairing,
        deadline_us: u64,
    },
    /// Confirmed; the caller stores the pairing.
    AwaitStored,
    /// Refused or broken: nothing more is read or sent.
    Closed,
}

pub struct HostControl {
    state: State,
    reader: Reader,
    out: Vec<u8>,
    events: VecDeque<HostEvent>,
    paired: bool,
    opened_us: u64,
}

impl HostControl {
    /// A connection opened at `now_us` (the host's monotonic clock, the one its frames carry).
    pub fn new(now_us: u64) -> Self {
        Self {
            state: State::AwaitHello,
            reader: Reader::default(),
            out: Vec::new(),
            events: VecDeque::new(),
            paired: false,
            opened_us: now_us,
        }
    }

    fn say(&mut self, msg: &HostMessage) {
        self.out.extend_from_slice(&framing::encode(msg));
    }

    /// Bytes for the control stream (empties the queue).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// Refused or broken: send what is queued, then close.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub fn is_paired(&self) -> bool {
        self.paired
    }

    /// Refuses the client (the connection closes after the refusal is sent).
    pub fn refuse(&mut self, reason: &str) {
        if !self.is_closed() {
            self.say(&HostMessage::Refused { reason: reason.into() });
            self.state = State::Closed;
        }
    }

    fn refuse_by_rule(&mut self, reason: &str) {
        self.refuse(reason);
        self.events.push_back(HostEvent::Refused { reason: reason.into() });
    }

    /// Answers the hello: `paired` says whether the host knows the client's certificate.
    /// Messages the client sent after its hello are handled now.
    pub fn welcome(&mut self, host_name: &str, paired: bool, now_us: u64) -> Result<(), ControlError> {
        if !matches!(self.state, State::AwaitWelcome) {
            return Err(ControlError::State("no hello to answer"));
        }
        self.paired = paired;
        self.say(&HostMessage::Welcome { version: VERSION, name: host_name.into(), paired });
        self.state = State::Ready;
        self.push(&[], now_us)
    }

    /// Answers a pairing request with the PIN the user typed: `client_fp` and `host_fp` are
    /// SHA-256 of both TLS certificates.
    pub fn pair_with_pin(&mut self, pin: &str, client_fp: &[u8; 32], host_fp: &[u8; 32], now_us: u64) -> Result<(), ControlError> {
        let State::AwaitPin { spake } = std::mem::replace(&mut self.state, State::Closed) else {
            return Err(ControlError::State("no pairing to answer"));
        };
        match HostPairing::respond(pin, client_fp, host_fp, &spake) {
            Ok((pairing, spake, mac)) => {
                self.say(&HostMessage::PairReply { spake, mac });
                self.state = State::AwaitConfirm { pairing, deadline_us: now_us.saturating_add(CONFIRM_WAIT_US) };
                self.push(&[], now_us)
            }
            Err(e) => {
                self.state = State::Ready;
                self.pair_failed(e.to_string());
                Ok(())
            }
        }
    }

    fn pair_failed(&mut self, reason: String) {
        self.refuse(&reason);
        self.events.push_back(HostEvent::PairFailed { reason });
    }

    /// The pairing is stored: the client is paired from now on.
    pub fn paired(&mut self) -> Result<(), ControlError> {
        if !matches!(self.state, State::AwaitStored) {
            return Err(ControlError::State("no confirmed pairing"));
        }
        self.paired = true;
        self.say(&HostMessage::Paired);
        self.state = State::Ready;
        Ok(())
    }

    /// The host no longer knows the client (unpaired while connected): it is refused.
    pub fn unpaired(&mut self) {
        if self.paired {
            self.paired = false;
            self.refuse_by_rule("this client is not paired");
        }
    }

    pub fn started(&mut self, started: Started) {
        self.say(&HostMessage::Started(started));
    }

    pub fn reconfigured(&mut self, applied: Reconfigure) {
        self.say(&HostMessage::Reconfigured(applied));
    }

    /// The session is over (the app exited, another client took it, …).
    /// The session's clipboard holds `text` now (the caller checked the client may have it).
    pub fn clipboard(&mut self, text: &str) {
        if self.paired && !matches!(self.state, State::Closed) && text.len() <= MAX_CLIPBOARD {
            self.say(&HostMessage::Clipboard { text: text.into() });
        }
    }

    /// A game asked this of one of the client's controllers.
    pub fn pad_feedback(&mut self, feedback: PadFeedback) {
        if self.paired && !matches!(self.state, State::Closed) {
            self.say(&HostMessage::Pad(feedback));
        }
    }

    pub fn ended(&mut self, reason: &str) {
        if !self.is_closed() {
            self.say(&HostMessage::Ended { reason: reason.into() });
        }
    }

    /// The next deadline, if any: call [`Self::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.state {
            State::Closed => None,
            State::AwaitHello => Some(self.opened_us.saturating_add(HELLO_WAIT_US)),
            State::AwaitConfirm { deadline_us, .. } => Some(*deadline_us),
            _ if !self.paired => Some(self.opened_us.saturating_add(UNPAIRED_STAY_US)),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now_us: u64) {
        if self.poll_timeout().is_none_or(|t| now_us < t) {
            return;
        }
        match self.state {
            State::AwaitHello => self.refuse_by_rule("no hello in time"),
            State::AwaitConfirm { .. } => self.pair_failed("the client did not confirm in time".into()),
            _ => self.refuse_by_rule("not paired"),
        }
    }

    /// Feeds bytes the client sent; `now_us` as for [`Self::new`]. An error means the client
    /// broke the protocol: close the connection.
    pub fn push(&mut self, bytes: &[u8], now_us: u64) -> Result<(), ControlError> {
        self.reader.push(bytes);
        // A hello waits for its welcome, a pairing request for its PIN, a confirmation for
        // its storing: later messages stay in the reader until then.
        while matches!(self.state, State::AwaitHello | State::Ready | State::AwaitConfirm { .. }) {
            let msg = match self.reader.next_message::<ClientMessage>() {
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
        Ok(())
    }

    fn handle(&mut self, msg: ClientMessage, now_us: u64) -> Result<(), ControlError> {
        let state = std::mem::replace(&mut self.state, State::Ready);
        let event = match (state, msg) {
            (State::AwaitHello, ClientMessage::Hello { version: VERSION, name }) => {
                self.state = State::AwaitWelcome;
                HostEvent::Hello { name: name.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect() }
            }
            (State::AwaitHello, ClientMessage::Hello { version, .. }) => {
                self.refuse_by_rule(&format!("protocol version {version} is not {VERSION}"));
                return Ok(());
            }
            (State::AwaitHello, _) => return Err(ControlError::Protocol("expected a hello")),
            (_, ClientMessage::Hello { .. }) => return Err(ControlError::Protocol("a second hello")),
            (State::AwaitConfirm { pairing, .. }, msg) => {
                match msg {
                    ClientMessage::PairConfirm { mac } => match pairing.verify(&mac) {
                        Ok(()) => {
                            self.state = State::AwaitStored;
                            self.events.push_back(HostEvent::PairConfirmed);
                        }
                        Err(e) => self.pair_failed(e.to_string()),
                    },
                    _ => self.pair_failed("the client gave up (a wrong PIN on its side)".into()),
                }
                return Ok(());
            }
            (_, ClientMessage::PairConfirm { .. }) => return Err(ControlError::Protocol("a confirmation without a pairing")),
            (_, ClientMessage::PairStart { spake }) => {
                self.state = State::AwaitPin { spake };
                HostEvent::PairRequested
            }
            (_, _) if !self.paired => {
                self.refuse_by_rule("this client is not paired");
                return Ok(());
            }
            (_, ClientMessage::Start(request)) => match request.validate() {
                Ok(()) => HostEvent::Start(request),
                Err(reason) => {
                    self.refuse_by_rule(reason);
                    return Ok(());
                }
            },
            (_, ClientMessage::Reconfigure(r)) => HostEvent::Reconfigure(r),
            (_, ClientMessage::Input(e)) => HostEvent::Input(e),
            (_, ClientMessage::Pad(e)) => HostEvent::Pad(e),
            (_, ClientMessage::RequestKeyframe) => HostEvent::RequestKeyframe,
            // A backwards or overlong span names no loss the host can find: a key frame
            // mends whatever it meant (the client waits for a repair).
            (_, ClientMessage::FramesLost { first, last }) if last.wrapping_sub(first) >= MAX_LOST_SPAN => HostEvent::RequestKeyframe,
            (_, ClientMessage::FramesLost { first, last }) => HostEvent::FramesLost { first, last },
            (_, ClientMessage::Stats(s)) => HostEvent::Stats(s),
            (_, ClientMessage::Clipboard { text }) if text.len() > MAX_CLIPBOARD => {
                return Err(ControlError::Protocol("clipboard text over MAX_CLIPBOARD"));
            }
            (_, ClientMessage::Clipboard { text }) => HostEvent::Clipboard(text),
            (_, ClientMessage::Ping { client_us }) => {
                self.say(&HostMessage::Pong { client_us, host_us: now_us });
                return Ok(());
            }
            (_, ClientMessage::Stop) => {
                self.say(&HostMessage::Ended { reason: "stopped by the client".into() });
                HostEvent::Stop
            }
        };
        self.events.push_back(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client::{ClientControl, ClientEvent};

    const CLIENT_FP: [u8; 32] = [1; 32];
    const HOST_FP: [u8; 32] = [2; 32];

    /// A host and a client machine wired to each other: what one writes the other reads.
    struct Pair {
        host: HostControl,
        client: ClientControl,
        now: u64,
    }

    impl Pair {
        fn new(name: &str) -> Self {
            Self { host: HostControl::new(0), client: ClientControl::new(name), now: 0 }
        }

        /// Delivers what each side queued, until both are quiet.
        fn exchange(&mut self) -> Result<(), ControlError> {
            loop {
                let to_host = self.client.take_output();
                let to_client = self.host.take_output();
                if to_host.is_empty() && to_client.is_empty() {
                    return Ok(());
                }
                self.host.push(&to_host, self.now)?;
                self.client.push(&to_client, self.now)?;
            }
        }

        fn host_events(&mut self) -> Vec<HostEvent> {
            std::iter::from_fn(|| self.host.poll_event()).collect()
        }

        fn client_events(&mut self) -> Vec<ClientEvent> {
            std::iter::from_fn(|| self.client.poll_event()).collect()
        }

        /// Hello and welcome.
        fn welcomed(paired: bool) -> Self {
            let mut p = Self::new("phone\u{7}");
            p.exchange().unwrap();
            assert_eq!(p.host_events(), [HostEvent::Hello { name: "phone".into() }], "control characters are dropped");
            p.host.welcome("pc", paired, p.now).unwrap();
            p.exchange().unwrap();
            assert_eq!(p.client_events(), [ClientEvent::Welcome { name: "pc".into(), paired }]);
            p
        }
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

    fn started() -> Started {
        Started {
            data_port: 9,
            token: 7,
            key: [3; 16],
            mic_key: [4; 16],
            shard_len: 1400,
            fec_percent: 20,
            fec_max_percent: 0,
            max_frame_len: 1 << 20,
            width: 1280,
            height: 720,
            fps: 60,
            ten_bit: false,
            yuv444: false,
            repairs: false,
        }
    }

    #[test]
    fn a_paired_client_starts_steers_and_stops_a_stream() {
        let mut p = Pair::welcomed(true);
        p.client.start(&request()).unwrap();
        p.client.input(InputEvent::Key { code: 30, pressed: true }).unwrap();
        p.client.request_keyframe().unwrap();
        p.client.reconfigure(Reconfigure { bitrate_kbps: Some(5_000), mode: None }).unwrap();
        p.exchange().unwrap();
        assert_eq!(
            p.host_events(),
            [
                HostEvent::Start(request()),
                HostEvent::Input(InputEvent::Key { code: 30, pressed: true }),
                HostEvent::RequestKeyframe,
                HostEvent::Reconfigure(Reconfigure { bitrate_kbps: Some(5_000), mode: None }),
            ]
        );
        p.host.started(started());
        p.host.reconfigured(Reconfigure { bitrate_kbps: Some(4_000), mode: None });
        p.exchange().unwrap();
        assert_eq!(
            p.client_events(),
            [ClientEvent::Started(started()), ClientEvent::Reconfigured(Reconfigure { bitrate_kbps: Some(4_000), mode: None })]
        );
        p.client.stop().unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::Stop]);
        assert_eq!(p.client_events(), [ClientEvent::Ended { reason: "stopped by the client".into() }]);
    }

    #[test]
    fn pings_are_answered_with_the_hosts_clock() {
        let mut p = Pair::welcomed(true);
        p.client.ping(1_000).unwrap();
        let bytes = p.client.take_output();
        p.host.push(&bytes, 80_000).unwrap();
        let bytes = p.host.take_output();
        p.client.push(&bytes, 1_400).unwrap();
        assert_eq!(p.client.clock_offset_us(), Some(80_000 - 1_200));
        assert!(p.host_events().is_empty(), "a ping is the machine's to answer");
    }

    #[test]
    fn pairing_with_the_right_pin_pairs_once_stored() {
        let mut p = Pair::welcomed(false);
        p.client.pair("1234", &CLIENT_FP, &HOST_FP).unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::PairRequested]);
        p.host.pair_with_pin("1234", &CLIENT_FP, &HOST_FP, p.now).unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::PairConfirmed]);
        assert!(!p.host.is_paired(), "not before the host stored it");
        p.host.paired().unwrap();
        p.exchange().unwrap();
        assert_eq!(p.client_events(), [ClientEvent::Paired]);
        p.client.start(&request()).unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::Start(request())]);
        p.now = UNPAIRED_STAY_US * 2;
        assert_eq!(p.host.poll_timeout(), None, "a paired client may stay");
    }

    #[test]
    fn a_wrong_pin_fails_the_pairing_on_both_sides() {
        let mut p = Pair::welcomed(false);
        p.client.pair("1234", &CLIENT_FP, &HOST_FP).unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::PairRequested]);
        p.host.pair_with_pin("9999", &CLIENT_FP, &HOST_FP, p.now).unwrap();
        p.exchange().unwrap();
        // The client catches it first and closes without confirming; the host, hearing
        // nothing more, fails the pairing at its deadline.
        assert!(matches!(p.client_events()[..], [ClientEvent::PairFailed { .. }]));
        assert_eq!(p.host.poll_timeout(), Some(CONFIRM_WAIT_US));
        p.host.handle_timeout(CONFIRM_WAIT_US - 1);
        assert!(p.host_events().is_empty() && !p.host.is_closed());
        p.host.handle_timeout(CONFIRM_WAIT_US);
        assert_eq!(p.host_events(), [HostEvent::PairFailed { reason: "the client did not confirm in time".into() }]);
        assert!(p.host.is_closed() && !p.host.is_paired());
    }

    #[test]
    fn a_forged_confirmation_fails_the_pairing() {
        let mut p = Pair::welcomed(false);
        p.client.pair("1234", &CLIENT_FP, &HOST_FP).unwrap();
        p.exchange().unwrap();
        p.host_events();
        p.host.pair_with_pin("1234", &CLIENT_FP, &HOST_FP, p.now).unwrap();
        p.host.take_output();
        p.host.push(&framing::encode(&ClientMessage::PairConfirm { mac: vec![0; 32] }), p.now).unwrap();
        assert!(matches!(p.host_events()[..], [HostEvent::PairFailed { .. }]));
        assert!(p.host.is_closed() && !p.host.is_paired());
    }

    #[test]
    fn an_unpaired_client_gets_nothing_but_pairing_and_not_for_long() {
        let mut p = Pair::welcomed(false);
        assert_eq!(p.host.poll_timeout(), Some(UNPAIRED_STAY_US));
        p.host.handle_timeout(UNPAIRED_STAY_US);
        assert_eq!(p.host_events(), [HostEvent::Refused { reason: "not paired".into() }]);
        p.exchange().unwrap();
        assert_eq!(p.client_events(), [ClientEvent::Refused { reason: "not paired".into() }]);

        let mut p = Pair::welcomed(false);
        p.client.start(&request()).unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::Refused { reason: "this client is not paired".into() }]);
        assert!(p.host.is_closed() && p.host.poll_timeout().is_none());
    }

    #[test]
    fn a_client_unpaired_while_connected_is_refused() {
        let mut p = Pair::welcomed(true);
        p.host.unpaired();
        p.exchange().unwrap();
        assert_eq!(p.client_events(), [ClientEvent::Refused { reason: "this client is not paired".into() }]);
    }

    #[test]
    fn controllers_go_to_the_host_and_rumble_comes_back() {
        use crate::gamepad::{ControllerState, PadEvent, PadFeedback};
        let state = PadEvent::State(ControllerState { number: 1, active_mask: 0b10, buttons: 0x1000, ..Default::default() });
        let motion = PadEvent::Motion { number: 1, motion_type: 2, xyz: [0.5, -1.0, 90.0] };
        let mut p = Pair::welcomed(true);
        p.client.pad(state).unwrap();
        p.client.pad(motion).unwrap();
        p.host.pad_feedback(PadFeedback::Rumble { number: 1, low: 0xffff, high: 0x8000 });
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::Pad(state), HostEvent::Pad(motion)]);
        assert_eq!(p.client_events(), [ClientEvent::Pad(PadFeedback::Rumble { number: 1, low: 0xffff, high: 0x8000 })]);
        // An unpaired client's pads go nowhere, and it hears of no game.
        let mut p = Pair::welcomed(false);
        p.client.pad(state).unwrap();
        p.host.pad_feedback(PadFeedback::Rumble { number: 1, low: 1, high: 1 });
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::Refused { reason: "this client is not paired".into() }]);
        assert!(!p.client_events().iter().any(|e| matches!(e, ClientEvent::Pad(_))));
    }

    #[test]
    fn clipboard_text_goes_both_ways_up_to_its_limit() {
        let mut p = Pair::welcomed(true);
        assert!(p.client.clipboard("from the client").unwrap());
        assert!(!p.client.clipboard(&"x".repeat(MAX_CLIPBOARD + 1)).unwrap(), "too long: not sent");
        p.host.clipboard("from the session");
        p.host.clipboard(&"y".repeat(MAX_CLIPBOARD + 1));
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::Clipboard("from the client".into())]);
        assert_eq!(p.client_events(), [ClientEvent::Clipboard { text: "from the session".into() }]);
        // A client that sends more than the limit anyway breaks the protocol.
        let mut host = Pair::welcomed(true).host;
        let long = framing::encode(&ClientMessage::Clipboard { text: "z".repeat(MAX_CLIPBOARD + 1) });
        assert!(host.push(&long, 0).is_err());
    }

    #[test]
    fn lost_frames_are_reported_and_a_span_that_names_none_asks_for_a_key_frame() {
        let mut p = Pair::welcomed(true);
        // Before a start that agreed to repairs, a loss asks for a key frame.
        p.client.frames_lost(1, 1).unwrap();
        p.exchange().unwrap();
        assert_eq!(p.host_events(), [HostEvent::RequestKeyframe]);
        p.host.started(Started { repairs: true, ..started() });
        p.exchange().unwrap();
        p.client_events();
        p.client.frames_lost(7, 9).unwrap();
        p.client.frames_lost(u32::MAX, 1).unwrap();
        p.client.frames_lost(9, 7).unwrap();
        p.exchange().unwrap();
        assert_eq!(
            p.host_events(),
            [HostEvent::FramesLost { first: 7, last: 9 }, HostEvent::FramesLost { first: u32::MAX, last: 1 }, HostEvent::RequestKeyframe]
        );
    }

    #[test]
    fn messages_after_the_hello_wait_for_the_welcome() {
        let mut host = HostControl::new(0);
        let bytes: Vec<u8> = [
            ClientMessage::Hello { version: VERSION, name: "tv".into() },
            ClientMessage::Ping { client_us: 5 },
            ClientMessage::RequestKeyframe,
        ]
        .iter()
        .flat_map(framing::encode)
        .collect();
        host.push(&bytes, 0).unwrap();
        assert_eq!(host.poll_event(), Some(HostEvent::Hello { name: "tv".into() }));
        assert_eq!(host.poll_event(), None);
        assert!(host.take_output().is_empty(), "no pong before the welcome");
        host.welcome("pc", true, 9).unwrap();
        assert_eq!(host.poll_event(), Some(HostEvent::RequestKeyframe));
        let mut r = Reader::default();
        r.push(&host.take_output());
        assert!(matches!(r.next_message::<HostMessage>().unwrap(), Some(HostMessage::Welcome { .. })));
        assert_eq!(r.next_message::<HostMessage>().unwrap(), Some(HostMessage::Pong { client_us: 5, host_us: 9 }));
    }

    #[test]
    fn broken_clients_are_refused_or_closed() {
        // A client that never speaks.
        let mut host = HostControl::new(100);
        assert_eq!(host.poll_timeout(), Some(100 + HELLO_WAIT_US));
        host.handle_timeout(100 + HELLO_WAIT_US);
        assert_eq!(host.poll_event(), Some(HostEvent::Refused { reason: "no hello in time".into() }));
        // Another version.
        let mut host = HostControl::new(0);
        host.push(&framing::encode(&ClientMessage::Hello { version: VERSION + 1, name: String::new() }), 0).unwrap();
        assert!(matches!(host.poll_event(), Some(HostEvent::Refused { .. })) && host.is_closed());
        // Anything before the hello, a second hello, a stray confirmation, an oversized frame.
        let mut host = HostControl::new(0);
        assert!(host.push(&framing::encode(&ClientMessage::Stop), 0).is_err());
        let mut p = Pair::welcomed(true);
        assert!(p.host.push(&framing::encode(&ClientMessage::Hello { version: VERSION, name: String::new() }), 0).is_err());
        let mut p = Pair::welcomed(true);
        assert!(p.host.push(&framing::encode(&ClientMessage::PairConfirm { mac: vec![] }), 0).is_err());
        let mut p = Pair::welcomed(true);
        assert!(p.host.push(&u32::MAX.to_le_bytes(), 0).is_err() && p.host.is_closed());
        // A request the host cannot serve is refused, with the reason.
        let mut p = Pair::welcomed(true);
        p.client.start(&StartRequest { codec: "vp9".into(), ..request() }).unwrap_err();
        p.host.push(&framing::encode(&ClientMessage::Start(StartRequest { codec: "vp9".into(), ..request() })), 0).unwrap();
        assert!(matches!(p.host.poll_event(), Some(HostEvent::Refused { .. })) && p.host.is_closed());
        p.exchange().unwrap();
        assert_eq!(p.client_events(), [ClientEvent::Refused { reason: "codec must be h264, hevc or av1".into() }]);
    }
}
