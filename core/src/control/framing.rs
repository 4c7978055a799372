//! Control messages on a QUIC stream: a little-endian u32 length, then that many bytes of
//! JSON. Bounded: a peer cannot make the reader buffer more than [`MAX_MESSAGE`].

use serde::{Serialize, de::DeserializeOwned};

pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("control message of {0} bytes exceeds {MAX_MESSAGE}")]
    TooLong(usize),
    #[error("bad control message: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let body = serde_json::to_vec(msg).expect("control messages serialize");
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Collects stream bytes and hands out whole messages.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived. An error poisons nothing: the caller
    /// closes the connection.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let Some(len) = self.buf.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize) else { return Ok(None) };
        if len > MAX_MESSAGE {
            return Err(FrameError::TooLong(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        Ok(Some(msg?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let bytes: Vec<u8> = [encode(&vec![1u32, 2]), encode(&"x".to_string())].concat();
        for split in 0..bytes.len() {
            let mut r = Reader::default();
            r.push(&bytes[..split]);
            let mut got: Vec<String> = Vec::new();
            while let Some(v) = r.next_message::<serde_json::Value>().unwrap() {
                got.push(v.to_string());
            }
            r.push(&bytes[split..]);
            while let Some(v) = r.next_message::<serde_json::Value>().unwrap() {
                got.push(v.to_string());
            }
            assert_eq!(got, ["[1,2]", "\"x\""]);
        }
    }

    #[test]
    fn oversized_lengths_are_refused_before_buffering() {
        let mut r = Reader::default();
        r.push(&(MAX_MESSAGE as u32 + 1).to_le_bytes());
        assert!(matches!(r.next_message::<serde_json::Value>(), Err(FrameError::TooLong(_))));
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_or_waits(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut r = Reader::default();
            r.push(&bytes);
            for _ in 0..4 {
                if !matches!(r.next_message::<serde_json::Value>(), Ok(Some(_))) {
                    break;
                }
            }
        }
    }
}
