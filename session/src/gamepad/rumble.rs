//! Force feedback as a game plays it on a virtual pad, turned into the two motor levels a
//! client's pad has. uinput hands the device's owner the effects a game uploads and the
//! play/stop requests; timing (delay, length, repeats) is the owner's to keep. Sans-IO: the
//! effects and requests in, with explicit time; motor levels and the next change out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// At most this many effects per pad (what the device declares; the kernel enforces it).
pub const MAX_EFFECTS: u32 = 16;

/// An uploaded effect, as motor levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Heavy (low-frequency) and light (high-frequency) motor, 0..=0xffff.
    pub strong: u16,
    pub weak: u16,
    pub delay: Duration,
    /// Zero: until stopped.
    pub length: Duration,
}

impl Effect {
    /// The motor levels of an effect a game uploads. Pads have motors, not force axes: a
    /// constant, periodic or ramp force drives both at its strength; conditions (spring,
    /// damper, …) move nothing.
    pub fn from_ff(data: &evdev::FFEffectData) -> Self {
        use evdev::FFEffectKind as K;
        let level = |l: i16| l.unsigned_abs().saturating_mul(2);
        let (strong, weak) = match data.kind {
            K::Rumble { strong_magnitude, weak_magnitude } => (strong_magnitude, weak_magnitude),
            K::Constant { level: l, .. } => (level(l), level(l)),
            K::Periodic { magnitude, .. } => (level(magnitude), level(magnitude)),
            K::Ramp { start_level, end_level, .. } => {
                let l = level(start_level).max(level(end_level));
                (l, l)
            }
            K::Damper | K::Inertia | K::Spring { .. } | K::Friction { .. } => (0, 0),
        };
        // The kernel's limit for both (ms, 0x7fff).
        let ms = |v: u16| Duration::from_millis(v.min(0x7fff).into());
        Self { strong, weak, delay: ms(data.replay.delay), length: ms(data.replay.length) }
    }
}

/// One pad's effects and what plays.
#[derive(Debug)]
pub struct ForceFeedback {
    effects: HashMap<i16, Effect>,
    /// Effect id → when it starts and (unless endless) ends.
    playing: HashMap<i16, (Instant, Option<Instant>)>,
    /// FF_GAIN, 0..=0xffff.
    gain: u16,
}

impl Default for ForceFeedback {
    fn default() -> Self {
        Self { effects: HashMap::new(), playing: HashMap::new(), gain: u16::MAX }
    }
}

impl ForceFeedback {
    pub fn upload(&mut self, id: i16, effect: Effect) {
        if self.effects.len() < MAX_EFFECTS as usize || self.effects.contains_key(&id) {
            self.effects.insert(id, effect);
        }
    }

    pub fn erase(&mut self, id: i16) {
        self.effects.remove(&id);
        self.playing.remove(&id);
    }

    /// EV_FF for an effect: play it `count` times from `now`, or stop it (0).
    pub fn play(&mut self, id: i16, count: i32, now: Instant) {
        let Some(effect) = self.effects.get(&id).filter(|_| count > 0) else {
            self.playing.remove(&id);
            return;
        };
        let start = now + effect.delay;
        let end = (!effect.length.is_zero()).then(|| start + effect.length * count.min(1000) as u32);
        self.playing.insert(id, (start, end));
    }

    pub fn set_gain(&mut self, gain: u16) {
        self.gain = gain;
    }

    /// The motor levels at `now` (low, high): the effects playing then, added up.
    pub fn motors(&self, now: Instant) -> (u16, u16) {
        let (mut strong, mut weak) = (0u32, 0u32);
        for (id, &(start, end)) in &self.playing {
            if now >= start && end.is_none_or(|end| now < end) {
                let e = self.effects[id];
                strong += u32::from(e.strong);
                weak += u32::from(e.weak);
            }
        }
        let scale = |v: u32| (v.min(0xffff) * u32::from(self.gain) / 0xffff) as u16;
        (scale(strong), scale(weak))
    }

    /// When the levels change next without a new request (an effect starts or ends), and
    /// forgets effects that ended before `now`.
    pub fn next_change(&mut self, now: Instant) -> Option<Instant> {
        self.playing.retain(|_, (_, end)| end.is_none_or(|end| end > now));
        self.playing.values().flat_map(|&(start, end)| [Some(start), end]).flatten().filter(|&t| t > now).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn rumble(strong: u16, weak: u16, delay: u64, length: u64) -> Effect {
        Effect { strong, weak, delay: MS * delay as u32, length: MS * length as u32 }
    }

    #[test]
    fn an_effect_plays_for_its_length_after_its_delay() {
        let (mut ff, t0) = (ForceFeedback::default(), Instant::now());
        ff.upload(0, rumble(0x8000, 0x4000, 10, 100));
        ff.play(0, 1, t0);
        assert_eq!(ff.motors(t0), (0, 0), "delayed");
        assert_eq!(ff.next_change(t0), Some(t0 + MS * 10));
        assert_eq!(ff.motors(t0 + MS * 10), (0x8000, 0x4000));
        assert_eq!(ff.next_change(t0 + MS * 10), Some(t0 + MS * 110));
        assert_eq!(ff.motors(t0 + MS * 110), (0, 0), "over");
        assert_eq!(ff.next_change(t0 + MS * 110), None);
    }

    #[test]
    fn repeats_endless_effects_stop_erase_and_gain() {
        let (mut ff, t0) = (ForceFeedback::default(), Instant::now());
        ff.upload(1, rumble(0xffff, 0, 0, 50));
        ff.upload(2, rumble(0, 0x1000, 0, 0));
        ff.play(1, 3, t0);
        ff.play(2, 1, t0);
        assert_eq!(ff.motors(t0 + MS * 149), (0xffff, 0x1000), "three times 50 ms, with the endless one");
        assert_eq!(ff.motors(t0 + MS * 150), (0, 0x1000));
        assert_eq!(ff.next_change(t0 + MS * 150), None, "the endless one never changes by itself");
        ff.set_gain(0x8000);
        assert_eq!(ff.motors(t0 + MS * 151), (0, 0x0800));
        ff.play(2, 0, t0);
        assert_eq!(ff.motors(t0 + MS * 151), (0, 0), "stopped");
        ff.play(2, 1, t0);
        ff.erase(2);
        assert_eq!(ff.motors(t0), (0, 0), "erased while playing");
        ff.play(7, 1, t0);
        assert_eq!(ff.motors(t0), (0, 0), "an id never uploaded plays nothing");
    }

    #[test]
    fn effects_add_up_to_full_strength_and_are_bounded_in_number() {
        let (mut ff, t0) = (ForceFeedback::default(), Instant::now());
        for id in 0..40 {
            ff.upload(id, rumble(0x9000, 0x9000, 0, 0));
            ff.play(id, 1, t0);
        }
        assert_eq!(ff.effects.len(), MAX_EFFECTS as usize);
        assert_eq!(ff.motors(t0), (0xffff, 0xffff));
    }

    #[test]
    fn forces_drive_both_motors() {
        let data = |kind| evdev::FFEffectData {
            direction: 0,
            trigger: evdev::FFTrigger::default(),
            replay: evdev::FFReplay { length: 60000, delay: 5 },
            kind,
        };
        let envelope = evdev::FFEnvelope { attack_length: 0, attack_level: 0, fade_length: 0, fade_level: 0 };
        let constant = Effect::from_ff(&data(evdev::FFEffectKind::Constant { level: -0x4000, envelope }));
        assert_eq!((constant.strong, constant.weak, constant.delay, constant.length), (0x8000, 0x8000, MS * 5, MS * 0x7fff));
        let rumble = Effect::from_ff(&data(evdev::FFEffectKind::Rumble { strong_magnitude: 1, weak_magnitude: 2 }));
        assert_eq!((rumble.strong, rumble.weak), (1, 2));
        assert_eq!(Effect::from_ff(&data(evdev::FFEffectKind::Damper)).strong, 0);
    }
}
