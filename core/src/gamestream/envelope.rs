//! The AES-GCM envelope encrypted RTSP and the control stream share (core/GAMESTREAM.md §5.8,
//! §6.2): a header with the sender's sequence number, the 16-byte tag, then the sealed body;
//! the IV is the sequence number, who sends, and which channel.

use crate::crypto::{Gcm, TAG_LEN};

/// Who sealed a message: the IV's direction byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Host,
    Client,
}

/// The IV of message `seq` on `channel` (`b'R'` RTSP, `b'C'` control) from `direction`.
pub fn iv(seq: u32, direction: Direction, channel: u8) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..4].copy_from_slice(&seq.to_le_bytes());
    iv[10] = match direction {
        Direction::Host => b'H',
        Direction::Client => b'C',
    };
    iv[11] = channel;
    iv
}

/// Seals `message[tag_at + TAG_LEN..]` in place and writes its tag at `tag_at`.
pub fn seal(gcm: &Gcm, iv: [u8; 12], message: &mut [u8], tag_at: usize) {
    let body = tag_at + TAG_LEN;
    let tag = gcm.seal(iv, &[], &mut message[body..]);
    message[tag_at..body].copy_from_slice(&tag);
}

/// Opens `message`'s body (what follows its tag at `tag_at`) into a new buffer.
pub fn open(gcm: &Gcm, iv: [u8; 12], message: &[u8], tag_at: usize) -> Option<Vec<u8>> {
    let body = tag_at + TAG_LEN;
    let mut plain = message.get(body..)?.to_vec();
    gcm.open(iv, &[], &mut plain, &message[tag_at..body]).ok()?;
    Some(plain)
}
