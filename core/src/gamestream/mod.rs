//! GameStream (Moonlight's protocol, core/GAMESTREAM.md), sans-IO: video and audio RTP
//! packetizers and depacketizers, RTSP and its SDP, the control stream's messages and the
//! input packets inside them. The daemon serves the handshake and control stream with these;
//! the stream process sends media with the packetizers.

pub mod annexb;
pub mod audio;
pub mod certificate;
pub mod control;
pub mod enet;
pub mod envelope;
pub mod input;
pub mod keymap;
pub mod launch;
pub mod pairing;
pub mod rtsp;
pub mod sdp;
pub mod video;
