//! A batch of equal-length datagrams in one reusable buffer, ready for sendmmsg or GSO.

/// Datagrams laid out back to back, `len` bytes each.
#[derive(Clone, Copy, Debug)]
pub struct Datagrams<'a> {
    buf: &'a [u8],
    len: usize,
}

impl<'a> Datagrams<'a> {
    pub(crate) fn new(buf: &'a [u8], len: usize) -> Self {
        debug_assert!(len > 0 && buf.len().is_multiple_of(len));
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

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        self.buf.chunks_exact(self.len)
    }
}
