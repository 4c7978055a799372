//! The control stream's messages inside ENet packets (core/GAMESTREAM.md §6.2–6.3): the AES-GCM
//! envelope with V2 IVs, and the message types a host acts on. Sans-IO: packet bytes in,
//! [`Message`]s out; messages in, packet bytes out.

use super::envelope::{self, Direction, iv};
use super::input::{self, InputPacket};
use crate::crypto::{Gcm, TAG_LEN};
use crate::gamepad::PadFeedback;

const ENCRYPTED_TYPE: u16 = 0x0001;
/// Envelope: type (2), length (2), sequence (4), tag (16).
const ENVELOPE: usize = 8 + TAG_LEN;
/// Client messages are built in a 256-byte buffer; anything far larger is not from a client.
pub const MAX_PACKET: usize = 1024;

pub const TYPE_PING: u16 = 0x0200;
pub const TYPE_LOSS_STATS: u16 = 0x0201;
pub const TYPE_INPUT: u16 = 0x0206;
pub const TYPE_RFI: u16 = 0x0301;
pub const TYPE_IDR: u16 = 0x0302;
pub const TYPE_START_B: u16 = 0x0307;
pub const TYPE_LTR_ACK: u16 = 0x0350;
pub const TYPE_FEC_STATUS: u16 = 0x5502;
pub const TYPE_TERMINATION: u16 = 0x0109;

pub const TYPE_RUMBLE: u16 = 0x010b;
pub const TYPE_RUMBLE_TRIGGERS: u16 = 0x5500;
pub const TYPE_MOTION_EVENTS: u16 = 0x5501;
pub const TYPE_CONTROLLER_LED: u16 = 0x5502;
pub const TYPE_ADAPTIVE_TRIGGERS: u16 = 0x5503;

/// HRESULT for "the app closed normally".
pub const TERMINATION_GRACEFUL: u32 = 0x8003_0023;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("packet of {0} bytes is too short or too long")]
    Length(usize),
    #[error("unencrypted packet on an encrypted control stream")]
    NotEncrypted,
    #[error("envelope length {0} does not match the packet")]
    EnvelopeLength(usize),
    #[error("control packet does not decrypt")]
    Decrypt,
    #[error("inner length {0} does not match the message")]
    InnerLength(usize),
    #[error(transparent)]
    Input(#[from] input::InputError),
}

/// A client message the host acts on.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    RequestIdr,
    /// The client lost frames `first..=last` (and drops what follows until a repair):
    /// reference frame invalidation (0x0301, little-endian first at 0 and last at 8).
    InvalidateRefs {
        first: u32,
        last: u32,
    },
    Input(InputPacket),
    /// How a frame that needed FEC (or was lost) arrived (Sunshine's extension, 0x5502).
    FecStatus(FecStatus),
    /// Ping, start, stats and other messages that only prove liveness.
    Other(u16),
}

/// 0x0301's payload: the first and last lost frames, little-endian at 0 and 8 (the rest is
/// reserved). One too short or running backwards still says the client lost something and
/// waits for a repair: a key frame repairs whatever it was.
fn invalidation(p: &[u8]) -> Message {
    if p.len() < 12 {
        return Message::RequestIdr;
    }
    let le32 = |at: usize| u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
    let (first, last) = (le32(0), le32(8));
    if first > last {
        return Message::RequestIdr;
    }
    Message::InvalidateRefs { first, last }
}

/// A client's report on one FEC block of a frame that needed recovery or was lost
/// (0x5502, big-endian; what the parity tuner learns the link's loss from).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FecStatus {
    pub frame_index: u32,
    /// Datagrams missing before the highest one received: lost, not merely late.
    pub missing: u16,
    pub total_data: u16,
    pub total_parity: u16,
    pub received_data: u16,
    pub received_parity: u16,
    pub fec_percent: u8,
}

impl FecStatus {
    pub const LEN: usize = 21;

    /// Whether the block decoded: enough of its data and parity arrived to rebuild it.
    pub fn repaired(&self) -> bool {
        u32::from(self.received_data) + u32::from(self.received_parity) >= u32::from(self.total_data)
    }

    /// The datagrams this block lost together, when it lost a quarter of its datagrams or
    /// more: random loss at the rates FEC covers rarely takes that much of one block, a burst
    /// does (Moonlight reports no runs of loss, only blocks). A block needs that much parity
    /// to outlive such a burst.
    pub fn burst(&self) -> Option<u16> {
        let total = u32::from(self.total_data) + u32::from(self.total_parity);
        (self.missing >= 2 && u32::from(self.missing) * 4 >= total).then_some(self.missing)
    }

    fn parse(p: &[u8]) -> Result<Self, ControlError> {
        if p.len() < Self::LEN {
            return Err(ControlError::InnerLength(p.len()));
        }
        let be16 = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
        Ok(Self {
            frame_index: u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
            missing: be16(8),
            total_data: be16(10),
            total_parity: be16(12),
            received_data: be16(14),
            received_parity: be16(16),
            fec_percent: p[18],
        })
    }
}

/// One direction pair of the encrypted control stream.
pub struct ControlCipher {
    gcm: Gcm,
    /// The next host message's sequence number; `None` when spent.
    send_seq: Option<u32>,
}

impl ControlCipher {
    pub fn new(key: &[u8; 16]) -> Self {
        Self { gcm: Gcm::new(key), send_seq: Some(0) }
    }

    /// Opens one client packet into its `(sequence, type, payload)`.
    pub fn open(&self, packet: &[u8]) -> Result<(u32, u16, Vec<u8>), ControlError> {
        if packet.len() < ENVELOPE + 4 || packet.len() > MAX_PACKET {
            return Err(ControlError::Length(packet.len()));
        }
        if u16::from_le_bytes([packet[0], packet[1]]) != ENCRYPTED_TYPE {
            return Err(ControlError::NotEncrypted);
        }
        let len = u16::from_le_bytes([packet[2], packet[3]]) as usize;
        if len + 4 != packet.len() {
            return Err(ControlError::EnvelopeLength(len));
        }
        let seq = u32::from_le_bytes(packet[4..8].try_into().unwrap());
        let mut inner = envelope::open(&self.gcm, iv(seq, Direction::Client, b'C'), packet, 8).ok_or(ControlError::Decrypt)?;
        let ty = u16::from_le_bytes([inner[0], inner[1]]);
        let plen = u16::from_le_bytes([inner[2], inner[3]]) as usize;
        if plen + 4 != inner.len() {
            return Err(ControlError::InnerLength(plen));
        }
        inner.drain(..4);
        Ok((seq, ty, inner))
    }

    /// Opens and interprets one client packet.
    pub fn decode(&self, packet: &[u8]) -> Result<Message, ControlError> {
        self.decode_seq(packet).map(|(_, m)| m)
    }

    /// [`Self::decode`], with the sender's sequence number for replay checks.
    pub fn decode_seq(&self, packet: &[u8]) -> Result<(u32, Message), ControlError> {
        let (seq, ty, payload) = self.open(packet)?;
        Ok((
            seq,
            match ty {
                TYPE_IDR => Message::RequestIdr,
                TYPE_RFI => invalidation(&payload),
                TYPE_INPUT => Message::Input(input::parse(&payload)?),
                TYPE_FEC_STATUS => Message::FecStatus(FecStatus::parse(&payload)?),
                other => Message::Other(other),
            },
        ))
    }

    /// Seals one host message; `None` once the 2³² sequence numbers under this key are
    /// spent (they never wrap: that would repeat an IV).
    pub fn seal(&mut self, ty: u16, payload: &[u8]) -> Option<Vec<u8>> {
        let seq = self.send_seq?;
        self.send_seq = seq.checked_add(1);
        Some(seal_with(&self.gcm, seq, Direction::Host, ty, payload))
    }

    /// Seals like the client does, for tests and fuzzing.
    pub fn seal_as_client(&self, seq: u32, ty: u16, payload: &[u8]) -> Vec<u8> {
        seal_with(&self.gcm, seq, Direction::Client, ty, payload)
    }

    /// Seals a controller's feedback for its client.
    pub fn feedback(&mut self, feedback: &PadFeedback) -> Option<Vec<u8>> {
        let (ty, payload) = feedback.encode();
        self.seal(ty, &payload)
    }

    /// The termination message for an app that exited normally.
    pub fn termination(&mut self) -> Option<Vec<u8>> {
        self.seal(TYPE_TERMINATION, &TERMINATION_GRACEFUL.to_be_bytes())
    }
}

impl PadFeedback {
    /// The message type and payload, laid out as moonlight-common-c reads them (Sunshine's
    /// extensions but rumble; fields little-endian).
    pub fn encode(&self) -> (u16, Vec<u8>) {
        let le = |values: &[u16]| values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        match *self {
            // Four bytes the client skips come first.
            Self::Rumble { number, low, high } => (TYPE_RUMBLE, [&[0u8; 4][..], &le(&[number, low, high])].concat()),
            Self::TriggerRumble { number, left, right } => (TYPE_RUMBLE_TRIGGERS, le(&[number, left, right])),
            Self::MotionEvents { number, motion_type, rate_hz } => {
                (TYPE_MOTION_EVENTS, [le(&[number, rate_hz]), vec![motion_type]].concat())
            }
            Self::Led { number, rgb } => (TYPE_CONTROLLER_LED, [le(&[number]), rgb.to_vec()].concat()),
            Self::AdaptiveTriggers { number, flags, left, right } => (
                TYPE_ADAPTIVE_TRIGGERS,
                [le(&[number]), vec![flags, left.mode, right.mode], left.params.to_vec(), right.params.to_vec()].concat(),
            ),
        }
    }
}

/// Rejects replayed client messages: each sequence number is accepted once, within a
/// window of the last 64 (ENet channels deliver in their own order, so not strictly rising).
#[derive(Default)]
pub struct ReplayWindow {
    highest: Option<u32>,
    /// Bit i: `highest - i` was seen.
    seen: u64,
}

impl ReplayWindow {
    pub fn accept(&mut self, seq: u32) -> bool {
        let Some(highest) = self.highest else {
            (self.highest, self.seen) = (Some(seq), 1);
            return true;
        };
        let ahead = seq.wrapping_sub(highest);
        if ahead != 0 && ahead < 1 << 31 {
            self.seen = if ahead >= 64 { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.highest = Some(seq);
            return true;
        }
        let behind = highest.wrapping_sub(seq);
        if behind >= 64 || self.seen & (1 << behind) != 0 {
            return false;
        }
        self.seen |= 1 << behind;
        true
    }
}

fn seal_with(gcm: &Gcm, seq: u32, direction: Direction, ty: u16, payload: &[u8]) -> Vec<u8> {
    let inner = 4 + payload.len();
    let mut out = Vec::with_capacity(ENVELOPE + inner);
    out.extend_from_slice(&ENCRYPTED_TYPE.to_le_bytes());
    out.extend_from_slice(&((4 + TAG_LEN + inner) as u16).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; TAG_LEN]);
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(payload);
    envelope::seal(gcm, iv(seq, direction, b'C'), &mut out, 8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamepad::TriggerEffect;

    #[test]
    fn client_messages_round_trip() {
        let c = ControlCipher::new(&[3; 16]);
        assert_eq!(c.decode(&c.seal_as_client(0, TYPE_IDR, &[0, 0])).unwrap(), Message::RequestIdr);
        // FEC status, big-endian as Sunshine's clients write it.
        let status = [0, 0, 1, 2, 0, 9, 0, 7, 0, 3, 0, 20, 0, 4, 0, 18, 0, 3, 20, 0, 1];
        assert_eq!(
            c.decode(&c.seal_as_client(2, TYPE_FEC_STATUS, &status)).unwrap(),
            Message::FecStatus(FecStatus {
                frame_index: 258,
                missing: 3,
                total_data: 20,
                total_parity: 4,
                received_data: 18,
                received_parity: 3,
                fec_percent: 20
            })
        );
        assert!(c.decode(&c.seal_as_client(3, TYPE_FEC_STATUS, &status[..20])).is_err(), "short");
        let block = |received_data, received_parity| FecStatus { total_data: 20, received_data, received_parity, ..FecStatus::default() };
        assert!(block(18, 3).repaired() && block(17, 3).repaired(), "two data datagrams lost, three parity in: rebuilt");
        assert!(!block(16, 3).repaired(), "four lost, three parity: lost");
        let lost = |missing, total_data, total_parity| FecStatus { missing, total_data, total_parity, ..FecStatus::default() };
        assert_eq!(lost(3, 1, 2).burst(), Some(3), "a small frame lost whole");
        assert_eq!(lost(3, 10, 2).burst(), Some(3), "a quarter of a block");
        assert_eq!(lost(2, 20, 4).burst(), None, "a block's share of random loss");
        assert_eq!(lost(1, 1, 2).burst(), None, "one datagram is no burst");
        // Reference frame invalidation, as moonlight-common-c lays it out (24 bytes).
        let mut rfi = [0u8; 24];
        rfi[0..4].copy_from_slice(&70u32.to_le_bytes());
        rfi[8..12].copy_from_slice(&72u32.to_le_bytes());
        assert_eq!(c.decode(&c.seal_as_client(4, TYPE_RFI, &rfi)).unwrap(), Message::InvalidateRefs { first: 70, last: 72 });
        // Malformed, it is still a loss: a key frame.
        assert_eq!(c.decode(&c.seal_as_client(5, TYPE_RFI, &rfi[..11])).unwrap(), Message::RequestIdr);
        rfi[8..12].copy_from_slice(&69u32.to_le_bytes());
        assert_eq!(c.decode(&c.seal_as_client(6, TYPE_RFI, &rfi)).unwrap(), Message::RequestIdr);
        assert_eq!(c.decode(&c.seal_as_client(1, TYPE_PING, &[4, 0, 0, 0, 0, 0, 0, 0])).unwrap(), Message::Other(TYPE_PING));
        let key_down = [0, 0, 0, 10, 3, 0, 0, 0, 0, 0x41, 0x80, 0, 0, 0];
        assert!(matches!(c.decode(&c.seal_as_client(2, TYPE_INPUT, &key_down)).unwrap(), Message::Input(_)));
    }

    #[test]
    fn rejects_tampered_and_plain_packets() {
        let mut c = ControlCipher::new(&[3; 16]);
        let mut p = c.seal_as_client(0, TYPE_IDR, &[0, 0]);
        p[29] ^= 1;
        assert_eq!(c.decode(&p), Err(ControlError::Decrypt));
        // The host's own message uses the other direction byte: it must not open as a client's.
        let host = c.seal(TYPE_IDR, &[0, 0]).unwrap();
        assert_eq!(c.decode(&host), Err(ControlError::Decrypt));
        assert_eq!(c.decode(&[0x02, 0x03, 0, 0]), Err(ControlError::Length(4)));
        let mut plain = c.seal_as_client(0, TYPE_IDR, &[0, 0]);
        plain[0] = 0x02;
        assert_eq!(c.decode(&plain), Err(ControlError::NotEncrypted));
        let mut short = c.seal_as_client(0, TYPE_IDR, &[0, 0]);
        short.pop();
        assert!(matches!(c.decode(&short), Err(ControlError::EnvelopeLength(_))));
    }

    #[test]
    fn replays_are_rejected_reordering_is_not() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(5) && w.accept(7) && w.accept(6));
        assert!(!w.accept(6) && !w.accept(5) && !w.accept(7));
        assert!(w.accept(100));
        assert!(!w.accept(30), "too old to tell apart from a replay");
        assert!(w.accept(99) && !w.accept(99));
        let mut wrap = ReplayWindow::default();
        assert!(wrap.accept(u32::MAX) && wrap.accept(0) && !wrap.accept(u32::MAX));
    }

    #[test]
    fn termination_is_a_big_endian_hresult() {
        let mut c = ControlCipher::new(&[1; 16]);
        let t = c.termination().unwrap();
        let opener = ControlCipher::new(&[1; 16]);
        let mut inner = t[ENVELOPE..].to_vec();
        // The IV as documented: sequence 0 (LE), zeros, then 'H'ost and 'C'ontrol.
        let iv = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'H', b'C'];
        opener.gcm.open(iv, &[], &mut inner, &t[8..ENVELOPE]).unwrap();
        assert_eq!(inner, [0x09, 0x01, 4, 0, 0x80, 0x03, 0x00, 0x23]);
    }

    #[test]
    fn pad_feedback_is_laid_out_as_the_client_reads_it() {
        let mut c = ControlCipher::new(&[2; 16]);
        let sealed = c.feedback(&PadFeedback::Rumble { number: 1, low: 0x1234, high: 0xffff }).unwrap();
        let mut inner = sealed[ENVELOPE..].to_vec();
        let iv = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'H', b'C'];
        ControlCipher::new(&[2; 16]).gcm.open(iv, &[], &mut inner, &sealed[8..ENVELOPE]).unwrap();
        // Type 0x010b, 10 bytes: 4 skipped, then number, low and high motor.
        assert_eq!(inner, [0x0b, 0x01, 10, 0, 0, 0, 0, 0, 1, 0, 0x34, 0x12, 0xff, 0xff]);
        let cases = [
            (PadFeedback::TriggerRumble { number: 2, left: 0x100, right: 1 }, TYPE_RUMBLE_TRIGGERS, vec![2, 0, 0, 1, 1, 0]),
            (PadFeedback::MotionEvents { number: 0, motion_type: 2, rate_hz: 250 }, TYPE_MOTION_EVENTS, vec![0, 0, 250, 0, 2]),
            (PadFeedback::Led { number: 3, rgb: [255, 0, 9] }, TYPE_CONTROLLER_LED, vec![3, 0, 255, 0, 9]),
            (
                PadFeedback::AdaptiveTriggers {
                    number: 3,
                    flags: 0x0c,
                    left: TriggerEffect { mode: 1, params: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
                    right: TriggerEffect { mode: 2, params: [0x80; 10] },
                },
                TYPE_ADAPTIVE_TRIGGERS,
                [vec![3, 0, 0x0c, 1, 2], (0..10).collect(), vec![0x80; 10]].concat(),
            ),
        ];
        for (feedback, ty, payload) in cases {
            assert_eq!(feedback.encode(), (ty, payload));
        }
    }
}
