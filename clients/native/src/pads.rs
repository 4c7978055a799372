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

/// The pad buttons gilrs names, as Moonlight's bits.
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
    sent: ControllerState,
    /// The rumble playing now, with its levels.
    rumble: Option<((u16, u16), gilrs::ff::Effect)>,
}

fn run(mut gilrs: gilrs::Gilrs, events: &tokio::sync::mpsc::Sender<PadEvent>, feedback: &Receiver<PadFeedback>) {
    let mut slots: [Option<Slot>; MAX_PADS] = Default::default();
    let send = |event: PadEvent| events.try_send(event).map_err(|e| matches!(e, tokio::sync::mpsc::error::TrySendError::Closed(_)));
    let present: Vec<gilrs::GamepadId> = gilrs.gamepads().map(|(id, _)| id).collect();
    for id in present {
        if connect(&gilrs, &mut slots, id, &send).is_err() {
            return;
        }
    }
    loop {
        if let Some(event) = gilrs.next_event_blocking(Some(TURN)) {
            let id = event.id;
            let result = match event.event {
                gilrs::EventType::Connected => connect(&gilrs, &mut slots, id, &send),
                gilrs::EventType::Disconnected => disconnect(&mut slots, id, &send),
                _ => update(&gilrs, &mut slots, id, &send),
            };
            if result.is_err() {
                return;
            }
        }
        loop {
            match feedback.try_recv() {
                Ok(f) => play(&mut gilrs, &mut slots, f),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// Which slots are taken, as a state's `active_mask`.
fn active(slots: &[Option<Slot>]) -> u16 {
    slots.iter().enumerate().filter(|(_, s)| s.is_some()).fold(0, |mask, (n, _)| mask | 1 << n)
}

/// `Err(true)`: the control loop is gone.
type Sent = Result<(), bool>;

fn connect(gilrs: &gilrs::Gilrs, slots: &mut [Option<Slot>], id: gilrs::GamepadId, send: &impl Fn(PadEvent) -> Sent) -> Result<(), ()> {
    let pad = gilrs.gamepad(id);
    // The device's own name: `name()` is the mapping's ("Xbox One S Controller").
    if pad.os_name().starts_with(HOST_PADS) || slots.iter().flatten().any(|s| s.id == id) {
        return Ok(());
    }
    let Some(n) = slots.iter().position(Option::is_none) else {
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
    slots[n] = Some(Slot { id, sent: ControllerState { number: n as u16, ..Default::default() }, rumble: None });
    forward(send(PadEvent::Arrived(arrival)))?;
    update(gilrs, slots, id, send)
}

fn disconnect(slots: &mut [Option<Slot>], id: gilrs::GamepadId, send: &impl Fn(PadEvent) -> Sent) -> Result<(), ()> {
    let Some(n) = slots.iter().position(|s| s.as_ref().is_some_and(|s| s.id == id)) else { return Ok(()) };
    slots[n] = None;
    tracing::info!(number = n, "controller disconnected");
    // A state without its own bit unplugs the host's pad.
    forward(send(PadEvent::State(ControllerState { number: n as u16, active_mask: active(slots), ..Default::default() })))
}

/// Sends the pad's state when it changed.
fn update(gilrs: &gilrs::Gilrs, slots: &mut [Option<Slot>], id: gilrs::GamepadId, send: &impl Fn(PadEvent) -> Sent) -> Result<(), ()> {
    let mask = active(slots);
    let Some((n, slot)) = slots.iter_mut().enumerate().find_map(|(n, s)| Some((n, s.as_mut().filter(|s| s.id == id)?))) else {
        return Ok(());
    };
    let state = state_of(&gilrs.gamepad(id), n as u16, mask);
    if state == slot.sent {
        return Ok(());
    }
    slot.sent = state;
    forward(send(PadEvent::State(state)))
}

/// A full queue drops the event; a closed one ends the thread.
fn forward(sent: Sent) -> Result<(), ()> {
    match sent {
        Err(true) => Err(()),
        _ => Ok(()),
    }
}

fn state_of(pad: &gilrs::Gamepad<'_>, number: u16, active_mask: u16) -> ControllerState {
    let buttons = BUTTONS.iter().filter(|(b, _)| pad.is_pressed(*b)).fold(0, |bits, (_, bit)| bits | bit);
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
