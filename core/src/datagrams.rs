//! A batch of equal-length datagrams in one reusable buffer, ready for sendmmsg or GSO.

/// Datagrams laid out back to back, `len` bytes each.
#[derive(Clone, Copy, Debug)]
pub struct Datagrams<'a> {
    buf: &'a [u8],
    len: usize,
}

impl<'a> Datagrams<'a> {
    /// `buf` holds whole datagrams of `len` bytes each.
    pub fn new(buf: &'a [u8], len: usize) -> Self {
        assert!(len > 0 && buf.len().is_multiple_of(len), "{} bytes are not datagrams of {len}", buf.len());
        Self { buf, len }
    }

    /// Bytes in each datagram (the GSO segment size).
    pub fn datagram_len(&self) -> usize {
        self.len
    }

    pub fn count(&self) -> usize {
        self.buf.len() / self.len
    }

    /// All datagrams concatenated, for UDP GSO.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Datagrams `start..end` of the batch (for sending around a gap).
    pub fn range(&self, start: usize, end: usize) -> Datagrams<'a> {
        assert!(start < end && end <= self.count(), "datagrams {start}..{end} of {}", self.count());
        Self { buf: &self.buf[start * self.len..end * self.len], len: self.len }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        self.buf.chunks_exact(self.len)
    }
}
