//! GameStream audio: what the handshake negotiated, and the sender (`crate::audio::sender`)
//! with the core's RTP packetizer (AES-CBC, 4+2 FEC), sending to the address the client's
//! audio pings come from (core/GAMESTREAM.md §9).

use super::video::{Pings, listen_for_pings};
use crate::audio::layout::{Channels, OpusLayout};
use crate::audio::queue::PcmQueue;
use crate::audio::sender::{AudioSender, Wire};
use crate::peer::{Listener, Peer};
use punktfunk_core::gamestream::audio::{AudioPacketizer, AudioPosition};
use std::net::UdpSocket;
use std::sync::Arc;

pub use punktfunk_core::stream::{AudioParams, AudioStats};

/// Starts the GameStream audio sender, with a thread latching the client's address from its
/// audio pings (core/GAMESTREAM.md §9.1); from `resume` when the same stream's audio starts
/// again (its sequence numbers, and so its IVs, go on).
pub fn start(
    params: AudioParams,
    socket: UdpSocket,
    pcm: Arc<PcmQueue>,
    source: Channels,
    resume: Option<AudioPosition>,
) -> std::io::Result<AudioSender> {
    let peer = Peer::default();
    let packetizer = match resume {
        Some(at) => AudioPacketizer::resume(params.packet_ms, params.key, at),
        None => AudioPacketizer::new(params.packet_ms, params.key),
    };
    let wire = Wire::GameStream(Box::new(packetizer));
    let layout = OpusLayout::new(params.channels, params.high_quality);
    let sender = AudioSender::start(layout, params.packet_ms, wire, socket.try_clone()?, peer.clone(), pcm, source)?;
    let pings = Pings { payload: params.ping_payload, client: params.client };
    let listener = Listener::spawn("audio-pings", move |stop| listen_for_pings(socket, pings, peer, stop, || {}))?;
    Ok(sender.with_listener(listener))
}
