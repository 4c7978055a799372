//! Where a frame's time on the host goes, stage by stage, from the app's commit to its last
//! datagram handed to the kernel. The stages follow each other without gaps, so a frame's
//! stages add up to its host latency, and their means to the mean host latency.

use serde::{Deserialize, Serialize};

/// One value per stage (a frame's durations, or a stream's mean or p99 per stage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages<T> {
    /// The app's commit → the render that picks it up (the compositor's frame clock).
    pub wait: T,
    /// Compositing, and converting to the encoder's format where the renderer does that.
    pub render: T,
    /// The rendered frame waiting for the encoder.
    pub queue: T,
    /// Converting to the encoder's format on the CPU.
    pub convert: T,
    pub encode: T,
    /// Packetizing, FEC parity and encryption.
    pub packetize: T,
    /// Waiting for the pacer.
    pub pacing: T,
    /// Handing the datagrams to the kernel.
    pub send: T,
}

impl<T> Stages<T> {
    /// The stages' names, in the order [`Self::values`] gives them.
    pub const NAMES: [&str; 8] = ["wait", "render", "queue", "convert", "encode", "packetize", "pacing", "send"];

    pub fn values(self) -> [T; 8] {
        [self.wait, self.render, self.queue, self.convert, self.encode, self.packetize, self.pacing, self.send]
    }

    pub fn from_values([wait, render, queue, convert, encode, packetize, pacing, send]: [T; 8]) -> Self {
        Self { wait, render, queue, convert, encode, packetize, pacing, send }
    }

    pub fn each_mut(&mut self) -> [&mut T; 8] {
        let Self { wait, render, queue, convert, encode, packetize, pacing, send } = self;
        [wait, render, queue, convert, encode, packetize, pacing, send]
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Stages<U> {
        Stages::from_values(self.values().map(f))
    }
}

impl Stages<u32> {
    /// "wait 0.9 · render 0.4 · … ms", the stages in milliseconds.
    pub fn describe_ms(self) -> String {
        let parts: Vec<String> =
            Self::NAMES.iter().zip(self.values()).map(|(name, us)| format!("{name} {:.1}", f64::from(us) / 1000.0)).collect();
        format!("{} ms", parts.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_the_names_order() {
        let s = Stages::from_values([1u32, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!((s.wait, s.queue, s.send), (1, 3, 8));
        assert_eq!(s.map(|v| v * 10).values(), [10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(
            Stages::from_values([900u32, 450, 0, 1200, 2500, 150, 0, 60]).describe_ms(),
            "wait 0.9 · render 0.5 · queue 0.0 · convert 1.2 · encode 2.5 · packetize 0.1 · pacing 0.0 · send 0.1 ms"
        );
    }
}
