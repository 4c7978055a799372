//! Just enough of ENet's wire format (core/GAMESTREAM.md §6.1) to admit a connection before
//! ENet sees it: a datagram to no peer yet must be a CONNECT, and its 32-bit connect data is
//! what the host handed the launching client (`X-SS-Connect-Data`). A CONNECT nobody was
//! given data for then costs the host nothing: no peer slot, no reply to a spoofed source.
//! ENet itself (rusty_enet) parses everything that passes.

/// The peer id of a datagram sent to no peer yet (ENet's maximum, 4095).
const NO_PEER: u16 = 0x0fff;
const PEER_ID_MASK: u16 = 0x0fff;
const FLAG_SENT_TIME: u16 = 0x8000;
const FLAG_COMPRESSED: u16 = 0x4000;
const COMMAND_MASK: u8 = 0x0f;
const COMMAND_CONNECT: u8 = 2;
/// Command header (4), outgoing peer id (2), session ids (2), nine u32 fields, connect id:
/// the data field follows.
const CONNECT_DATA_AT: usize = 4 + 2 + 2 + 9 * 4;

/// What an ENet datagram is, as far as admission cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// For a peer ENet knows (or not: ENet drops what matches none, without answering).
    ToPeer,
    /// A request for a new peer, with its connect data.
    Connect { data: u32 },
    /// To no peer, yet no CONNECT: nothing ENet would act on.
    Invalid,
}

/// Classifies one datagram (`checksum`: whether the host's datagrams carry ENet's optional
/// 4-byte checksum after the header; Moonlight's do not).
pub fn classify(datagram: &[u8], checksum: bool) -> Datagram {
    let Some(header) = datagram.get(..2) else { return Datagram::Invalid };
    let word = u16::from_be_bytes([header[0], header[1]]);
    if word & PEER_ID_MASK != NO_PEER {
        return Datagram::ToPeer;
    }
    if word & FLAG_COMPRESSED != 0 {
        // A compressor is agreed per host; this one has none, and ENet could not read it.
        return Datagram::Invalid;
    }
    let mut at = if word & FLAG_SENT_TIME != 0 { 4 } else { 2 };
    if checksum {
        at += 4;
    }
    let Some(command) = datagram.get(at..) else { return Datagram::Invalid };
    if command.first().map(|c| c & COMMAND_MASK) != Some(COMMAND_CONNECT) {
        return Datagram::Invalid;
    }
    match command.get(CONNECT_DATA_AT..CONNECT_DATA_AT + 4) {
        Some(d) => Datagram::Connect { data: u32::from_be_bytes([d[0], d[1], d[2], d[3]]) },
        None => Datagram::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CONNECT as ENet 1.3 writes it: no peer yet, sent time, then the command.
    fn connect(data: u32) -> Vec<u8> {
        let mut d = (FLAG_SENT_TIME | NO_PEER).to_be_bytes().to_vec();
        d.extend_from_slice(&[0x12, 0x34]);
        d.extend_from_slice(&[0x80 | COMMAND_CONNECT, 0xff, 0, 1]);
        d.extend_from_slice(&[0, 0, 0, 0]);
        for field in [1392u32, 32768, 0x30, 0, 0, 5000, 2, 2, 0xdead_beef, data] {
            d.extend_from_slice(&field.to_be_bytes());
        }
        d
    }

    #[test]
    fn finds_the_connect_data() {
        assert_eq!(classify(&connect(0x0102_0304), false), Datagram::Connect { data: 0x0102_0304 });
        // To an existing peer (id 3, session 1): ENet's business.
        assert_eq!(classify(&[0x90, 0x03, 0, 0, 6, 0, 0, 1], false), Datagram::ToPeer);
    }

    #[test]
    fn anything_else_to_no_peer_is_invalid() {
        let full = connect(7);
        for cut in 0..full.len() {
            assert_eq!(classify(&full[..cut], false), Datagram::Invalid, "cut at {cut}");
        }
        let mut ping = full.clone();
        ping[4] = 0x80 | 5;
        assert_eq!(classify(&ping, false), Datagram::Invalid);
        let mut compressed = full.clone();
        compressed[0] |= 0x40;
        assert_eq!(classify(&compressed, false), Datagram::Invalid);
        // With a checksum the command starts 4 bytes later.
        let mut summed = full[..4].to_vec();
        summed.extend_from_slice(&[0; 4]);
        summed.extend_from_slice(&full[4..]);
        assert_eq!(classify(&summed, true), Datagram::Connect { data: 7 });
    }
}
