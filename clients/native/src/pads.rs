//! This machine's game controllers, sent to the host as the session's pads (gilrs reads
//! them, with SDL's mapping database, so any pad SDL knows has the usual layout), and what
//! games ask of them played back here: rumble through the pad's force feedback.
//!
//! A thread of its own: gilrs polls devices, and the control loop must not wait on them.
//! Pads this machine's own punktfunk host made (a host and client on one machine) are left
//! out, or the host would get its own pads back as new ones.

use punktfunk_core::gamepad::{ControllerArrival, ControllerKind, ControllerState, MAX_PADS, PadEvent, PadFeedback, buttons, caps};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::Duration;

/// How long the thread waits for a pad's event before it looks for feedback to play.
const TURN: Duration = Duration::from_millis(4);
/// Pad events the control loop has not taken yet, at most (a state is whole: a dropped one
/// is repaired by the next).
const EVENTS: usize = 1024;
/// Feedback not played yet, at most.
const FEEDBACK: usize = 64;
/// The names of pads a punktfunk host makes (its DualSense carries Sony's name and is not
/// told apart).
const HOST_PADS: &str = "punktfunk ";

/// The pad buttons gilrs names, as Moonlight's bits (an Xbox pad's labels; see [`label`]).
const BUTTONS: [(gilrs::Button, u32); 15] = [
    (gilrs::Button::South, buttons::A),
    (gilrs::Button::East, buttons::B),
    (gilrs::Button::West, buttons::X),
    (gilrs::Button::North, buttons::Y),
    (gilrs::Button::LeftTrigger, buttons::LB),
    (gilrs::Button::RightTrigger, buttons::RB),
    (gilrs::Button::Select, buttons::BACK),
    (gilrs::Button::Start, buttons::START),
    (gilrs::Button::Mode, buttons::HOME),
    (gilrs::Button::LeftThumb, buttons::LS_CLICK),
    (gilrs::Button::RightThumb, buttons::RS_CLICK),
    (gilrs::Button::DPadUp, buttons::UP),
    (gilrs::Button::DPadDown, buttons::DOWN),
    (gilrs::Button::DPadLeft, buttons::LEFT),
    (gilrs::Button::DPadRight, buttons::RIGHT),
];

pub struct LocalPads {
    pub events: tokio::sync::mpsc::Receiver<PadEvent>,
    feedback: SyncSender<PadFeedback>,
}

impl LocalPads {
    /// Starts reading this machine's controllers (those there now are announced at once).
    pub fn start() -> anyhow::Result<Self> {
        let gilrs = gilrs::Gilrs::new().map_err(|e| anyhow::anyhow!("game controllers: {e}"))?;
        let (events_tx, events) = tokio::sync::mpsc::channel(EVENTS);
        let (feedback, feedback_rx) = std::sync::mpsc::sync_channel(FEEDBACK);
        std::thread::Builder::new().name("pads".into()).spawn(move || run(gilrs, &events_tx, &feedback_rx))?;
        Ok(Self { events, feedback })
    }

    /// Plays what a game asked of a pad (dropped when too much waits).
    pub fn play(&self, feedback: PadFeedback) {
        let _ = self.feedback.try_send(feedback);
    }
}

/// One local controller as the host knows it.
struct Slot {
    id: gilrs::GamepadId,
    kind: ControllerKind,
    sent: ControllerState,
    /// The rumble playing now, with its levels.
    rumble: Option<((u16, u16), gilrs::ff::Effect)>,
}

/// The local pads, and what the host has yet to hear of them.
#[derive(Default)]
struct Pads {
    slots: [Option<Slot>; MAX_PADS],
    /// Bit n: pad n was unplugged and the host not told yet (the queue was full).
    unplugged: u16,
}

fn run(mut gilrs: gilrs::Gilrs, events: &tokio::sync::mpsc::Sender<PadEvent>, feedback: &Receiver<PadFeedback>) {
    let mut pads = Pads::default();
    let send = |event: PadEvent| events.try_send(event).map_err(|e| matches!(e, tokio::sync::mpsc::error::TrySendError::Closed(_)));
    let present: Vec<gilrs::GamepadId> = gilrs.gamepads().map(|(id, _)| id).collect();
    for id in present {
        if pads.connect(&gilrs, id, &send).is_err() {
            return;
        }
    }
    loop {
        if let Some(event) = gilrs.next_event_blocking(Some(TURN)) {
            let id = event.id;
            let result = match event.event {
                gilrs::EventType::Connected => pads.connect(&gilrs, id, &send),
                gilrs::EventType::Disconnected => pads.disconnect(id, &send),
                // Buttons and sticks go out below, as whole states.
                _ => Ok(()),
            };
            if result.is_err() {
                return;
            }
        }
        // Each pad's state where it changed, and again what a full queue dropped (a lost
        // release must not hold a button down).
        if pads.resync(&gilrs, &send).is_err() {
            return;
        }
        loop {
            match feedback.try_recv() {
                Ok(f) => play(&mut gilrs, &mut pads.slots, f),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// `Err(true)`: the control loop is gone; `Err(false)`: its queue is full.
type Sent = Result<(), bool>;

/// The thread ends when the control loop is gone (`Err`).
type Go = Result<(), ()>;

impl Pads {
    /// Which slots are taken, as a state's `active_mask`.
    fn active(&self) -> u16 {
        self.slots.iter().enumerate().filter(|(_, s)| s.is_some()).fold(0, |mask, (n, _)| mask | 1 << n)
    }

    fn connect(&mut self, gilrs: &gilrs::Gilrs, id: gilrs::GamepadId, send: &impl Fn(PadEvent) -> Sent) -> Go {
        let pad = gilrs.gamepad(id);
        // The device's own name: `name()` is the mapping's ("Xbox One S Controller").
        if pad.os_name().starts_with(HOST_PADS) || self.slots.iter().flatten().any(|s| s.id == id) {
            return Ok(());
        }
        let Some(n) = self.slots.iter().position(Option::is_none) else {
            tracing::warn!(pad = pad.name(), "more than {MAX_PADS} controllers: this one is not sent");
            return Ok(());
        };
        let kind = match pad.vendor_id() {
            Some(0x045e) => ControllerKind::Xbox,
            Some(0x054c) => ControllerKind::PlayStation,
            Some(0x057e) => ControllerKind::Nintendo,
            _ => ControllerKind::Unknown,
        };
        let rumble = if pad.is_ff_supported() { caps::RUMBLE } else { 0 };
        let arrival = ControllerArrival {
            number: n as u8,
            kind,
            capabilities: caps::ANALOG_TRIGGERS | rumble,
            buttons: BUTTONS.iter().fold(0, |bits, (_, bit)| bits | bit),
        };
        tracing::info!(pad = pad.name(), number = n, ?kind, "controller connected");
        self.slots[n] = Some(Slot { id, kind, sent: ControllerState { number: n as u16, ..Default::default() }, rumble: None });
        self.unplugged &= !(1 << n);
        // A dropped arrival costs only the pad's kind: its first state makes the pad.
        forward(send(PadEvent::Arrived(arrival)))?;
        self.update(gilrs, n, send)
    }

    fn disconnect(&mut self, id: gilrs::GamepadId, send: &impl Fn(PadEvent) -> Sent) -> Go {
        let Some(n) = self.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.id == id)) else { return Ok(()) };
        self.slots[n] = None;
        self.unplugged |= 1 << n;
        tracing::info!(number = n, "controller disconnected");
        self.tell_unplugged(send)
    }

    /// A state without its own bit unplugs the host's pad.
    fn tell_unplugged(&mut self, send: &impl Fn(PadEvent) -> Sent) -> Go {
        let untold = self.unplugged;
        for n in (0..MAX_PADS).filter(|n| untold & (1 << n) != 0) {
            match send(PadEvent::State(ControllerState { number: n as u16, active_mask: self.active(), ..Default::default() })) {
                Ok(()) => self.unplugged &= !(1 << n),
                Err(false) => {}
                Err(true) => return Err(()),
            }
        }
        Ok(())
    }

    /// Sends pad `n`'s state when it differs from what the host last got.
    fn update(&mut self, gilrs: &gilrs::Gilrs, n: usize, send: &impl Fn(PadEvent) -> Sent) -> Go {
        let mask = self.active();
        let Some(slot) = self.slots[n].as_mut() else { return Ok(()) };
        let state = state_of(&gilrs.gamepad(slot.id), slot.kind, n as u16, mask);
        if state == slot.sent {
            return Ok(());
        }
        match send(PadEvent::State(state)) {
            Ok(()) => slot.sent = state,
            // Sent again next turn.
            Err(false) => {}
            Err(true) => return Err(()),
        }
        Ok(())
    }

    fn resync(&mut self, gilrs: &gilrs::Gilrs, send: &impl Fn(PadEvent) -> Sent) -> Go {
        self.tell_unplugged(send)?;
        (0..MAX_PADS).try_for_each(|n| self.update(gilrs, n, send))
    }
}

/// A full queue drops the event; a closed one ends the thread.
fn forward(sent: Sent) -> Go {
    match sent {
        Err(true) => Err(()),
        _ => Ok(()),
    }
}

/// gilrs names face buttons by place (South is the bottom one); Moonlight's bits, which the
/// host reads, are the labels: on a Nintendo pad the bottom button is B and the left one Y.
fn label(bit: u32, kind: ControllerKind) -> u32 {
    match (kind, bit) {
        (ControllerKind::Nintendo, buttons::A) => buttons::B,
        (ControllerKind::Nintendo, buttons::B) => buttons::A,
        (ControllerKind::Nintendo, buttons::X) => buttons::Y,
        (ControllerKind::Nintendo, buttons::Y) => buttons::X,
        _ => bit,
    }
}

fn state_of(pad: &gilrs::Gamepad<'_>, kind: ControllerKind, number: u16, active_mask: u16) -> ControllerState {
    let buttons = BUTTONS.iter().filter(|(b, _)| pad.is_pressed(*b)).fold(0, |bits, (_, bit)| bits | label(*bit, kind));
    let trigger = |b| (pad.button_data(b).map_or(0.0, |d| d.value()).clamp(0.0, 1.0) * 255.0).round() as u8;
    let axis = |a| (pad.value(a).clamp(-1.0, 1.0) * 32767.0).round() as i16;
    ControllerState {
        number,
        active_mask,
        buttons,
        left_trigger: trigger(gilrs::Button::LeftTrigger2),
        right_trigger: trigger(gilrs::Button::RightTrigger2),
        left_stick: (axis(gilrs::Axis::LeftStickX), axis(gilrs::Axis::LeftStickY)),
        right_stick: (axis(gilrs::Axis::RightStickX), axis(gilrs::Axis::RightStickY)),
    }
}

/// Plays a game's rumble on the pad it was meant for (other feedback has nothing to play on
/// through gilrs: no lights, no sensors).
fn play(gilrs: &mut gilrs::Gilrs, slots: &mut [Option<Slot>], feedback: PadFeedback) {
    let PadFeedback::Rumble { number, low, high } = feedback else {
        tracing::debug!(?feedback, "pad feedback this client cannot play");
        return;
    };
    let Some(slot) = slots.get_mut(usize::from(number)).and_then(Option::as_mut) else { return };
    if slot.rumble.as_ref().is_some_and(|(levels, _)| *levels == (low, high)) {
        return;
    }
    // Dropping the effect stops it.
    slot.rumble = None;
    if (low, high) == (0, 0) {
        return;
    }
    use gilrs::ff::{BaseEffect, BaseEffectType, EffectBuilder};
    let effect = EffectBuilder::new()
        .add_effect(BaseEffect { kind: BaseEffectType::Strong { magnitude: low }, ..Default::default() })
        .add_effect(BaseEffect { kind: BaseEffectType::Weak { magnitude: high }, ..Default::default() })
        .gamepads(&[slot.id])
        .finish(gilrs)
        .and_then(|effect| effect.play().map(|()| effect));
    match effect {
        Ok(effect) => slot.rumble = Some(((low, high), effect)),
        Err(e) => tracing::warn!(number, "rumble: {e}"),
    }
}
