//! Key frames as Moonlight can find them. moonlight-common-c recognises a key frame only when
//! its first packet holds the parameter sets *and* the start of the IDR slice; SEI units an
//! encoder puts in between (x265's ~2 KB settings string, HDR metadata) push the slice into a
//! later packet, and the client then waits for a key frame that never comes. So key frames
//! go out without SEI units: nothing a Moonlight decoder needs is in them.

use std::borrow::Cow;

/// `bitstream` (Annex B) without its SEI NAL units: H.264 type 6, HEVC types 39 and 40.
/// Borrowed when there are none.
pub fn without_sei(bitstream: &[u8], hevc: bool) -> Cow<'_, [u8]> {
    let is_sei = |header: u8| if hevc { matches!((header >> 1) & 0x3f, 39 | 40) } else { header & 0x1f == 6 };
    let units = nal_units(bitstream);
    let sei = |u: &Unit| u.header_at < u.end && is_sei(bitstream[u.header_at]);
    if !units.iter().any(sei) {
        return Cow::Borrowed(bitstream);
    }
    let mut out = Vec::with_capacity(bitstream.len());
    out.extend_from_slice(&bitstream[..units.first().map_or(bitstream.len(), |u| u.start)]);
    for u in units.iter().filter(|u| !sei(u)) {
        out.extend_from_slice(&bitstream[u.start..u.end]);
    }
    Cow::Owned(out)
}

/// One NAL unit: from its start code to the next one.
struct Unit {
    start: usize,
    /// Where its header byte is (`end` when the unit is only a start code).
    header_at: usize,
    end: usize,
}

/// The NAL units of an Annex B stream, each starting at its start code (3 or 4 bytes).
fn nal_units(b: &[u8]) -> Vec<Unit> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            // A 4-byte start code's leading zero belongs to it, not to the unit before.
            let start = if i > 0 && b[i - 1] == 0 { i - 1 } else { i };
            starts.push((start, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends = starts.iter().skip(1).map(|s| s.0).chain(std::iter::once(b.len()));
    starts.iter().zip(ends).map(|(&(start, header_at), end)| Unit { start, header_at, end }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const START4: [u8; 4] = [0, 0, 0, 1];

    fn unit(header: &[u8], len: usize) -> Vec<u8> {
        let mut u = START4.to_vec();
        u.extend_from_slice(header);
        u.extend((0..len).map(|i| (i % 200) as u8 + 2));
        u
    }

    #[test]
    fn an_hevc_key_frame_loses_its_sei_and_nothing_else() {
        let (vps, sps, pps, sei, idr) = (unit(&[0x40, 0x01], 24), unit(&[0x42, 0x01], 40), unit(&[0x44, 0x01], 6), unit(&[0x4e, 0x01], 2400), unit(&[0x28, 0x01], 9000));
        let frame = [vps.clone(), sps.clone(), pps.clone(), sei, idr.clone()].concat();
        assert_eq!(without_sei(&frame, true).as_ref(), [vps, sps, pps, idr].concat().as_slice());
    }

    #[test]
    fn h264_sei_goes_and_a_frame_without_any_is_borrowed() {
        let (sps, pps, sei, idr) = (unit(&[0x67], 20), unit(&[0x68], 4), unit(&[0x06], 700), unit(&[0x65], 5000));
        let frame = [sps.clone(), pps.clone(), sei, idr.clone()].concat();
        let clean = [sps, pps, idr].concat();
        assert_eq!(without_sei(&frame, false).as_ref(), clean.as_slice());
        assert!(matches!(without_sei(&clean, false), Cow::Borrowed(_)));
        // The H.264 SEI type is an HEVC slice type's header byte: HEVC keeps it.
        assert!(matches!(without_sei(&frame, true), Cow::Borrowed(_)));
    }

    proptest! {
        /// Whatever the bytes, no panic, never longer, and bytes without a start code pass as they are.
        #[test]
        fn any_bytes(b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..300), hevc: bool) {
            let out = without_sei(&b, hevc);
            prop_assert!(out.len() <= b.len());
            if !b.windows(3).any(|w| w == [0, 0, 1]) {
                prop_assert_eq!(out.as_ref(), b.as_slice());
            }
        }
    }
}
