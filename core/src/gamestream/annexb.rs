//! Key frames as Moonlight can find them. moonlight-common-c recognises a key frame only when
//! its first packet holds the parameter sets *and* the start of the IDR slice; SEI units an
//! encoder puts in between (x265's ~2 KB settings string, HDR metadata) push the slice into a
//! later packet, and the client then waits for a key frame that never comes. So key frames
//! go out without the SEI units before their slice: nothing a Moonlight decoder needs is in
//! them.

use std::borrow::Cow;

/// `bitstream` (Annex B) without the SEI NAL units before its first slice (H.264 type 6,
/// HEVC types 39 and 40); the slice and all after it stay as they are, so only the headers
/// are scanned. Borrowed when there is nothing to drop.
pub fn without_sei(bitstream: &[u8], hevc: bool) -> Cow<'_, [u8]> {
    let kind = |header: u8| if hevc { (header >> 1) & 0x3f } else { header & 0x1f };
    let is_sei = |k: u8| if hevc { matches!(k, 39 | 40) } else { k == 6 };
    let is_slice = |k: u8| if hevc { k < 32 } else { (1..=5).contains(&k) };
    let mut dropped = Vec::new();
    let mut unit = next_start(bitstream, 0);
    while let Some((start, header_at)) = unit {
        let Some(&header) = bitstream.get(header_at) else { break };
        if is_slice(kind(header)) {
            break;
        }
        unit = next_start(bitstream, header_at);
        if is_sei(kind(header)) {
            dropped.push(start..unit.map_or(bitstream.len(), |(next, _)| next));
        }
    }
    if dropped.is_empty() {
        return Cow::Borrowed(bitstream);
    }
    let mut out = Vec::with_capacity(bitstream.len());
    let mut kept = 0;
    for r in dropped {
        out.extend_from_slice(&bitstream[kept..r.start]);
        kept = r.end;
    }
    out.extend_from_slice(&bitstream[kept..]);
    Cow::Owned(out)
}

/// The next start code (3 or 4 bytes) at or after `from`: where it begins, and where the
/// unit's header byte is.
fn next_start(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let i = from + b.get(from..)?.windows(3).position(|w| w == [0, 0, 1])?;
    // A 4-byte start code's leading zero belongs to it, not to the unit before.
    let start = if i > from && b[i - 1] == 0 { i - 1 } else { i };
    Some((start, i + 3))
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
    fn an_hevc_key_frame_loses_its_sei_before_the_slice_and_nothing_else() {
        let (vps, sps, pps, sei, idr) = (
            unit(&[0x40, 0x01], 24),
            unit(&[0x42, 0x01], 40),
            unit(&[0x44, 0x01], 6),
            unit(&[0x4e, 0x01], 2400),
            unit(&[0x28, 0x01], 9000),
        );
        let suffix = unit(&[0x50, 0x01], 30); // a suffix SEI after the slice: harmless, kept
        let frame = [vps.clone(), sps.clone(), pps.clone(), sei, idr.clone(), suffix.clone()].concat();
        assert_eq!(without_sei(&frame, true).as_ref(), [vps, sps, pps, idr, suffix].concat().as_slice());
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
