//! Virtual gamepads: each of a client's controllers becomes a pad of the matching kind
//! created through uinput ([`layout`]), so games see a real evdev device, and what games play
//! on it (rumble, [`rumble`]) goes back to the client. Pads belong to the client's control
//! connection: created when its controller arrives (or first moves), removed when the
//! client unplugs it or the connection ends. Where /dev/uinput cannot be opened, controller
//! input is logged once and ignored.

pub mod layout;
pub mod rumble;

use layout::{GamepadChoice, PadKind};
use punktfunk_core::gamestream::control::PadFeedback;
use punktfunk_core::gamestream::input::{ControllerArrival, ControllerKind, ControllerState};
use rumble::{Effect, ForceFeedback};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

/// Up to 16 controllers (Sunshine's extension of GameStream's 4).
const MAX_PADS: usize = 16;

struct Pad {
    kind: PadKind,
    device: evdev::uinput::VirtualDevice,
    state: ControllerState,
    ff: ForceFeedback,
    /// The motor levels the client was last told.
    told: (u16, u16),
}

/// The virtual pads of one client.
pub struct Gamepads {
    choice: GamepadChoice,
    /// What the client said each controller is.
    held: [Option<ControllerKind>; MAX_PADS],
    pads: [Option<Pad>; MAX_PADS],
    unavailable: bool,
}

impl Gamepads {
    pub fn new(choice: GamepadChoice) -> Self {
        Self { choice, held: [None; MAX_PADS], pads: Default::default(), unavailable: false }
    }

    /// A controller arrived: its pad is created now, of the kind it is.
    pub fn arrive(&mut self, arrival: &ControllerArrival) {
        let n = usize::from(arrival.number);
        if n >= MAX_PADS {
            return;
        }
        self.held[n] = Some(arrival.kind);
        let kind = self.choice.kind(Some(arrival.kind));
        if self.pads[n].as_ref().is_some_and(|p| p.kind != kind) {
            self.pads[n] = None;
        }
        self.pad(n);
    }

    pub fn update(&mut self, next: ControllerState) {
        let n = usize::from(next.number);
        if n >= MAX_PADS {
            return;
        }
        if next.active_mask & (1 << n) == 0 {
            self.held[n] = None;
            if self.pads[n].take().is_some() {
                tracing::info!(pad = n, "gamepad removed");
            }
            return;
        }
        let Some(pad) = self.pad(n) else { return };
        let events: Vec<evdev::InputEvent> =
            pad.kind.changes(&pad.state, &next).into_iter().map(|(t, c, v)| evdev::InputEvent::new(t, c, v)).collect();
        if !events.is_empty()
            && let Err(e) = pad.device.emit(&events)
        {
            tracing::warn!(pad = n, "gamepad event: {e}");
        }
        pad.state = next;
    }

    /// Pad `n`, created if it is not there yet.
    fn pad(&mut self, n: usize) -> Option<&mut Pad> {
        if self.pads[n].is_none() && !self.unavailable {
            let kind = self.choice.kind(self.held[n]);
            match create(kind, n) {
                Ok(device) => {
                    tracing::info!(pad = n, ?kind, "gamepad created");
                    let state = ControllerState { number: n as u16, ..Default::default() };
                    self.pads[n] = Some(Pad { kind, device, state, ff: ForceFeedback::default(), told: (0, 0) });
                }
                Err(e) => {
                    tracing::warn!("gamepad input ignored: cannot create a uinput device ({e}); give this user access to /dev/uinput");
                    self.unavailable = true;
                }
            }
        }
        self.pads[n].as_mut()
    }

    /// The pads' devices, readable when a game asked them for something.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.pads.iter().flatten().map(|p| p.device.as_fd())
    }

    /// Takes what games asked of the pads (effects uploaded, played, stopped) and adds what
    /// the client must hear of it to `out`: a pad's motor levels whenever they change.
    pub fn service(&mut self, now: Instant, out: &mut Vec<PadFeedback>) {
        for (n, pad) in self.pads.iter_mut().enumerate().filter_map(|(n, p)| Some((n, p.as_mut()?))) {
            if let Err(e) = pad.read_requests(now) {
                tracing::warn!(pad = n, "gamepad requests: {e}");
            }
            let motors = pad.ff.motors(now);
            if motors != pad.told {
                pad.told = motors;
                out.push(PadFeedback::Rumble { number: n as u16, low: motors.0, high: motors.1 });
            }
        }
    }

    /// When a pad's rumble changes next by itself (an effect starts or ends).
    pub fn next_change(&mut self, now: Instant) -> Option<Instant> {
        self.pads.iter_mut().flatten().filter_map(|p| p.ff.next_change(now)).min()
    }
}

impl Pad {
    fn read_requests(&mut self, now: Instant) -> std::io::Result<()> {
        use evdev::{EventSummary, FFEffectCode, UInputCode};
        loop {
            let events: Vec<evdev::InputEvent> = match self.device.fetch_events() {
                Ok(events) => events.collect(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            for event in events {
                match event.destructure() {
                    EventSummary::UInput(request, UInputCode::UI_FF_UPLOAD, _) => {
                        // The game's upload waits until this is dropped (retval 0: taken).
                        let upload = self.device.process_ff_upload(request)?;
                        self.ff.upload(upload.effect_id(), Effect::from_ff(&upload.effect()));
                    }
                    EventSummary::UInput(request, UInputCode::UI_FF_ERASE, _) => {
                        let erase = self.device.process_ff_erase(request)?;
                        self.ff.erase(erase.effect_id() as i16);
                    }
                    EventSummary::ForceFeedback(_, FFEffectCode::FF_GAIN, gain) => self.ff.set_gain(gain.clamp(0, 0xffff) as u16),
                    EventSummary::ForceFeedback(_, FFEffectCode(id), count) => self.ff.play(id as i16, count, now),
                    _ => {}
                }
            }
        }
    }
}

fn create(kind: PadKind, n: usize) -> std::io::Result<evdev::uinput::VirtualDevice> {
    use evdev::{AbsInfo, AbsoluteAxisCode, AttributeSet, FFEffectCode, InputId, KeyCode, UinputAbsSetup};
    let keys: AttributeSet<KeyCode> = kind.keys().into_iter().map(KeyCode::new).collect();
    let ff: AttributeSet<FFEffectCode> = [
        FFEffectCode::FF_RUMBLE,
        FFEffectCode::FF_CONSTANT,
        FFEffectCode::FF_PERIODIC,
        FFEffectCode::FF_SINE,
        FFEffectCode::FF_RAMP,
        FFEffectCode::FF_GAIN,
    ]
    .into_iter()
    .collect();
    let (vendor, product, version) = kind.ids();
    let name = format!("{} {}", kind.name(), n + 1);
    let mut builder = evdev::uinput::VirtualDevice::builder()?
        .name(&name)
        .input_id(InputId::new(evdev::BusType::BUS_USB, vendor, product, version))
        .with_keys(&keys)?
        .with_ff(&ff)?
        .with_ff_effects_max(rumble::MAX_EFFECTS);
    for (code, min, max, fuzz, flat) in kind.axes() {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(AbsoluteAxisCode(code), AbsInfo::new(0, min, max, fuzz, flat, 0)))?;
    }
    let device = builder.build()?;
    // Requests are read in the control thread's loop, which must never wait on a pad.
    nix::fcntl::fcntl(device.as_fd(), nix::fcntl::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
    Ok(device)
}
