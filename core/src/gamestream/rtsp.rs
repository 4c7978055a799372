//! RTSP as Moonlight speaks it (core/GAMESTREAM.md §5): one request per TCP connection, a response,
//! then the host closes. Hand-written because the client's dialect is quirky (exactly one
//! space after a header colon, `a=name:value ` SDP lines, a sealed binary framing for
//! `rtspenc://`) and the parser must be bounded; general RTSP crates fit neither.
//!
//! Sans-IO: [`parse`] takes the bytes read so far and yields a request once whole; [`Response::to_bytes`] and
//! [`seal`] produce the bytes to write.

use super::envelope::{self, Direction, iv};
use crate::crypto::{Gcm, TAG_LEN};

/// Longest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest body (the ANNOUNCE SDP is ~2 kB).
pub const MAX_BODY: usize = 32 * 1024;
const MAX_HEADERS: usize = 32;
/// Sealed-message header: type-and-length, sequence, tag.
pub const SEALED_HEADER: usize = 8 + TAG_LEN;
const SEALED_FLAG: u32 = 0x8000_0000;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtspError {
    #[error("request head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    #[error("body of {0} bytes is longer than {MAX_BODY}")]
    BodyTooLong(usize),
    #[error("malformed request line")]
    RequestLine,
    #[error("not RTSP/1.0")]
    Version,
    #[error("malformed header line")]
    Header,
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("bad Content-length")]
    ContentLength,
    #[error("request is not UTF-8")]
    Utf8,
    #[error("an encrypted session needs sealed messages")]
    NotSealed,
    #[error("sealed message does not decrypt")]
    Decrypt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive, as RTSP says).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.trim().parse().ok()
    }
}

/// Parses one plaintext request from the start of `buf`. `Ok(None)`: need more bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, RtspError> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Err(RtspError::HeadTooLong) } else { Ok(None) };
    };
    if head_end > MAX_HEAD {
        return Err(RtspError::HeadTooLong);
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| RtspError::Utf8)?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(RtspError::RequestLine);
    };
    if method.is_empty() || target.is_empty() {
        return Err(RtspError::RequestLine);
    }
    if version != "RTSP/1.0" {
        return Err(RtspError::Version);
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(RtspError::Header)?;
        if name.is_empty() || name.contains(' ') {
            return Err(RtspError::Header);
        }
        if headers.len() == MAX_HEADERS {
            return Err(RtspError::TooManyHeaders);
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut req = Request { method: method.to_owned(), target: target.to_owned(), headers, body: Vec::new() };
    let body_len = match req.header("Content-length") {
        Some(v) => v.parse::<usize>().map_err(|_| RtspError::ContentLength)?,
        None => 0,
    };
    if body_len > MAX_BODY {
        return Err(RtspError::BodyTooLong(body_len));
    }
    let start = head_end + 4;
    if buf.len() < start + body_len {
        return Ok(None);
    }
    req.body = buf[start..start + body_len].to_vec();
    Ok(Some((req, start + body_len)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response: status, headers in order, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response echoing the request's `CSeq` (the client rejects a response without headers).
    pub fn new(status: u16, cseq: Option<u32>) -> Self {
        Self { status, headers: vec![("CSeq", cseq.unwrap_or(0).to_string())], body: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            454 => "Session Not Found",
            _ => "Error",
        };
        let mut out = format!("RTSP/1.0 {} {reason}\r\n", self.status);
        for (n, v) in &self.headers {
            // Exactly one space after the colon: the client drops one character there.
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Length of the sealed message whose first bytes are `buf`, once its header is in.
pub fn sealed_len(buf: &[u8]) -> Result<Option<usize>, RtspError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let word = u32::from_be_bytes(buf[..4].try_into().unwrap());
    if word & SEALED_FLAG == 0 {
        return Err(RtspError::NotSealed);
    }
    let len = (word & !SEALED_FLAG) as usize;
    if len > MAX_HEAD + MAX_BODY {
        return Err(RtspError::BodyTooLong(len));
    }
    Ok(Some(SEALED_HEADER + len))
}

/// Opens one client message (`buf` holds exactly one sealed message).
pub fn open(gcm: &Gcm, buf: &[u8]) -> Result<Vec<u8>, RtspError> {
    let total = sealed_len(buf)?.ok_or(RtspError::NotSealed)?;
    if buf.len() != total {
        return Err(RtspError::NotSealed);
    }
    let seq = u32::from_be_bytes(buf[4..8].try_into().unwrap());
    envelope::open(gcm, iv(seq, Direction::Client, b'R'), buf, 8).ok_or(RtspError::Decrypt)
}

/// Seals one host message.
pub fn seal(gcm: &Gcm, seq: u32, plain: &[u8]) -> Vec<u8> {
    seal_with(gcm, seq, Direction::Host, plain)
}

/// Seals like the client does, for tests and fuzzing.
pub fn seal_as_client(gcm: &Gcm, seq: u32, plain: &[u8]) -> Vec<u8> {
    seal_with(gcm, seq, Direction::Client, plain)
}

/// The `rtspenc://` framing (core/GAMESTREAM.md §5.8): length with the sealed flag, sequence
/// number, tag, body.
fn seal_with(gcm: &Gcm, seq: u32, direction: Direction, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEALED_HEADER + plain.len());
    out.extend_from_slice(&(SEALED_FLAG | plain.len() as u32).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0; TAG_LEN]);
    out.extend_from_slice(plain);
    envelope::seal(gcm, iv(seq, direction, b'R'), &mut out, 8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETUP: &[u8] = b"SETUP streamid=audio/0/0 RTSP/1.0\r\nCSeq: 3\r\nX-GS-ClientVersion: 14\r\nHost: 10.0.0.1\r\nTransport: unicast;X-GS-ClientPort=50000-50001\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n";

    #[test]
    fn parses_a_setup_in_pieces() {
        for cut in 0..SETUP.len() {
            assert_eq!(parse(&SETUP[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (req, used) = parse(SETUP).unwrap().unwrap();
        assert_eq!(used, SETUP.len());
        assert_eq!((req.method.as_str(), req.target.as_str(), req.cseq()), ("SETUP", "streamid=audio/0/0", Some(3)));
        assert_eq!(req.header("transport"), Some("unicast;X-GS-ClientPort=50000-50001"));
    }

    #[test]
    fn reads_the_announce_body() {
        let msg = b"ANNOUNCE streamid=control/13/0 RTSP/1.0\r\nCSeq: 6\r\nContent-length: 5\r\n\r\nv=0\r\nEXTRA";
        let (req, used) = parse(msg).unwrap().unwrap();
        assert_eq!((req.body.as_slice(), used), (&b"v=0\r\n"[..], msg.len() - 5));
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(parse(b"SETUP x HTTP/1.1\r\n\r\n"), Err(RtspError::Version));
        assert_eq!(parse(b"SETUP\r\n\r\n"), Err(RtspError::RequestLine));
        assert_eq!(parse(b"A b RTSP/1.0\r\nnocolon\r\n\r\n"), Err(RtspError::Header));
        assert_eq!(parse(b"A b RTSP/1.0\r\nContent-length: -1\r\n\r\n"), Err(RtspError::ContentLength));
        assert_eq!(parse(b"A b RTSP/1.0\r\nContent-length: 99999999\r\n\r\n"), Err(RtspError::BodyTooLong(99999999)));
        assert_eq!(parse(&vec![b'a'; MAX_HEAD + 1]), Err(RtspError::HeadTooLong));
    }

    #[test]
    fn response_has_one_space_after_colons() {
        let r = Response::new(200, Some(7)).header("Session", "X;timeout = 90").to_bytes();
        assert_eq!(r, b"RTSP/1.0 200 OK\r\nCSeq: 7\r\nSession: X;timeout = 90\r\n\r\n");
    }

    #[test]
    fn sealed_round_trip_and_tamper() {
        let gcm = Gcm::new(&[7; 16]);
        let sealed = seal_as_client(&gcm, 1, SETUP);
        assert_eq!(sealed_len(&sealed).unwrap(), Some(sealed.len()));
        assert_eq!(open(&gcm, &sealed).unwrap(), SETUP);
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(open(&gcm, &bad), Err(RtspError::Decrypt));
        // A host message does not open as a client one (the direction byte differs).
        assert_eq!(open(&gcm, &seal(&gcm, 1, SETUP)), Err(RtspError::Decrypt));
        assert_eq!(sealed_len(b"OPTI"), Err(RtspError::NotSealed));
    }
}
