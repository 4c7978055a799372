//! Plays the stream's sound: a PipeWire output stream (to the default output, like any
//! player) fed from a short playout buffer the receiver fills.

use punktfunk_core::channels::Channels;
use punktfunk_sound::node::{Io, NodeSpec, VirtualNode};
use punktfunk_sound::playout::Playout;
use std::sync::Arc;

pub struct Player {
    pub playout: Arc<Playout>,
    _node: VirtualNode,
}

impl Player {
    pub fn start() -> anyhow::Result<Self> {
        let playout = Arc::new(Playout::new()?);
        let fill = Arc::clone(&playout);
        // 5 ms cycles, like the host's packets: the playout buffer adds little on top.
        let spec = NodeSpec {
            name: "punktfunk-client".into(),
            description: "punktfunk stream".into(),
            channels: Channels::Stereo,
            quantum: 240,
            app_stream: true,
            target: None,
            capture_sink: false,
        };
        let node = VirtualNode::spawn(spec, Io::Play(Box::new(move |out| fill.fill(out))))?;
        Ok(Self { playout, _node: node })
    }
}
