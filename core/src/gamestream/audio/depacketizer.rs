//! The receiving side of GameStream audio, as Moonlight clients behave: the host never runs
//! it; the tests, the loss harness and the fuzz targets check the packetizer against it.

use super::*;

/// What the audio depacketizer hands out, in sequence order.
#[derive(Debug, PartialEq, Eq)]
pub enum AudioEvent<'a> {
    /// An Opus packet (decrypted), received or rebuilt by FEC.
    Packet { seq: u16, timestamp: u32, opus: &'a [u8], recovered: bool },
    /// A packet that could not be recovered; the decoder should conceal it.
    Lost { seq: u16 },
}

struct RxBlock {
    base: u16,
    timestamp: Option<u32>,
    lens: [usize; DATA_PER_BLOCK + PARITY_PER_BLOCK],
    shards: [[u8; MAX_PAYLOAD]; DATA_PER_BLOCK + PARITY_PER_BLOCK],
    present: [bool; DATA_PER_BLOCK + PARITY_PER_BLOCK],
}

/// Receives audio as a Moonlight client does: whole 4-packet blocks, recovered with the
/// fixed matrix when at least four of six equal-length shards arrived.
pub struct AudioDepacketizer {
    cipher: Option<AudioCipher>,
    code: Code,
    packet_ms: u32,
    block: Box<RxBlock>,
    /// Whether `block` holds anything.
    open: bool,
    /// Base sequence of the first block not yet delivered.
    next: Option<u16>,
    /// Consecutive packets too far ahead of `next` (see `WINDOW`).
    out_of_window: u16,
    plain: [u8; MAX_PAYLOAD],
    pub stats: Stats,
}

impl AudioDepacketizer {
    pub fn new(packet_ms: u32, key: Option<([u8; 16], u32)>) -> Self {
        Self {
            cipher: key.map(|(k, id)| AudioCipher::new(&k, id)),
            code: audio_code(),
            packet_ms,
            block: Box::new(RxBlock {
                base: 0,
                timestamp: None,
                lens: [0; 6],
                shards: [[0; MAX_PAYLOAD]; DATA_PER_BLOCK + PARITY_PER_BLOCK],
                present: [false; 6],
            }),
            open: false,
            next: None,
            out_of_window: 0,
            plain: [0; MAX_PAYLOAD],
            stats: Stats::default(),
        }
    }

    pub fn push(&mut self, datagram: &[u8], mut sink: impl FnMut(AudioEvent<'_>)) -> Result<(), AudioError> {
        self.stats.packets_received += 1;
        let r = self.push_inner(datagram, &mut sink);
        if r.is_err() {
            self.stats.packets_invalid += 1;
        }
        r
    }

    fn push_inner(&mut self, d: &[u8], sink: &mut impl FnMut(AudioEvent<'_>)) -> Result<(), AudioError> {
        if d.len() < RTP_HEADER_LEN || d.len() > MAX_DATAGRAM || d[0] & 0xC0 != 0x80 {
            return Err(AudioError::Malformed);
        }
        let (index, base, ts, payload) = match d[1] {
            PT_DATA => {
                let seq = u16::from_be_bytes([d[2], d[3]]);
                let ts = u32::from_be_bytes(d[4..8].try_into().expect("4 bytes"));
                let i = seq as usize % DATA_PER_BLOCK;
                (i, seq.wrapping_sub(i as u16), ts.wrapping_sub(i as u32 * self.packet_ms), &d[RTP_HEADER_LEN..])
            }
            PT_FEC => {
                let h = d.get(RTP_HEADER_LEN..RTP_HEADER_LEN + FEC_HEADER_LEN).ok_or(AudioError::Malformed)?;
                let j = h[0] as usize;
                let base = u16::from_be_bytes([h[2], h[3]]);
                if j >= PARITY_PER_BLOCK || h[1] != PT_DATA || base % 4 != 0 {
                    return Err(AudioError::Malformed);
                }
                let ts = u32::from_be_bytes(h[4..8].try_into().expect("4 bytes"));
                (DATA_PER_BLOCK + j, base, ts, &d[RTP_HEADER_LEN + FEC_HEADER_LEN..])
            }
            _ => return Err(AudioError::Malformed),
        };
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Err(AudioError::Malformed);
        }
        let next = *self.next.get_or_insert(base);
        let ahead = base.wrapping_sub(next) as i16;
        if ahead < 0 && next.wrapping_sub(base) == DATA_PER_BLOCK as u16 {
            return Ok(()); // parity of the block just delivered: expected
        }
        if ahead < 0 || (self.open && (base.wrapping_sub(self.block.base) as i16) < 0) {
            self.stats.packets_late += 1;
            return Ok(());
        }
        if ahead as u16 > WINDOW {
            // Headers are not authenticated: only a sustained jump moves the stream.
            self.out_of_window += 1;
            if self.out_of_window < RESYNC_AFTER {
                return Err(AudioError::Malformed);
            }
            if self.open {
                self.flush(sink);
            }
            self.next = Some(base);
        }
        self.out_of_window = 0;
        if self.open && self.block.base != base {
            // A newer block started: whatever the old one lacks is gone.
            self.flush(sink);
        }
        if !self.open {
            // Whole blocks skipped on the way are lost too.
            let mut seq = self.next.unwrap_or(base);
            while seq != base {
                sink(AudioEvent::Lost { seq });
                seq = seq.wrapping_add(1);
            }
        }
        let b = &mut *self.block;
        if !self.open {
            b.base = base;
            b.timestamp = None;
            b.present = [false; 6];
            self.open = true;
        }
        if b.present[index] {
            self.stats.packets_duplicate += 1;
            return Ok(());
        }
        b.shards[index][..payload.len()].copy_from_slice(payload);
        b.lens[index] = payload.len();
        b.present[index] = true;
        b.timestamp.get_or_insert(ts);
        if b.present.iter().filter(|&&p| p).count() >= DATA_PER_BLOCK {
            self.flush(sink);
        }
        Ok(())
    }

    /// Delivers the open block: rebuilt where possible, the rest reported lost.
    // `i` is a slot of the block: shards, lengths, presence and recovery are indexed alike.
    #[allow(clippy::needless_range_loop)]
    fn flush(&mut self, sink: &mut impl FnMut(AudioEvent<'_>)) {
        let b = &mut *self.block;
        let present = b.present;
        // Recovered: not received, but present once the block was rebuilt.
        let mut recovered = [false; DATA_PER_BLOCK];
        let len = (0..6).find(|&i| present[i]).map_or(0, |i| b.lens[i]);
        let same_len = (0..6).all(|i| !present[i] || b.lens[i] == len);
        if same_len && !present[..DATA_PER_BLOCK].iter().all(|&p| p) {
            let mut shards: Vec<&mut [u8]> = b.shards.iter_mut().map(|s| &mut s[..len]).collect();
            if self.code.reconstruct(&mut shards, &present).is_ok() {
                recovered = std::array::from_fn(|i| !present[i]);
                b.present[..DATA_PER_BLOCK].fill(true);
                b.lens[..DATA_PER_BLOCK].fill(len);
                self.stats.packets_recovered += recovered.iter().filter(|&&r| r).count() as u64;
            }
        }
        for i in 0..DATA_PER_BLOCK {
            let seq = b.base.wrapping_add(i as u16);
            let shard = &b.shards[i][..b.lens[i]];
            let opus: Option<&[u8]> = match (&self.cipher, b.present[i]) {
                (_, false) => None,
                (None, true) => Some(shard),
                (Some(c), true) => {
                    let p = &mut self.plain[..shard.len()];
                    p.copy_from_slice(shard);
                    c.open(seq, p).ok().map(|n| &self.plain[..n])
                }
            };
            match opus {
                Some(opus) => {
                    let timestamp = b.timestamp.unwrap_or(0).wrapping_add(i as u32 * self.packet_ms);
                    sink(AudioEvent::Packet { seq, timestamp, opus, recovered: recovered[i] });
                }
                None => sink(AudioEvent::Lost { seq }),
            }
        }
        self.stats.fec_blocks += 1;
        self.open = false;
        self.next = Some(b.base.wrapping_add(DATA_PER_BLOCK as u16));
    }
}
