//! Virtual gamepads: each of a client's controllers becomes a pad of the matching kind, so
//! games see a real device: Xbox and Switch pads through uinput ([`layout`]), a DualSense or
//! DualShock 4 through uhid so the kernel's own driver makes it, motion sensors and touchpad
//! included ([`playstation`], [`uhid`]). What games do with a pad goes back to the client:
//! rumble ([`rumble`] times uinput force feedback; the Sony pads' drivers send their
//! motors), the lightbar's colour, a DualSense's trigger effects. Pads belong to the
//! client's control connection: created when its controller arrives (or first moves),
//! removed when the client unplugs it or the connection ends. Where a pad cannot be
//! created, controller input is logged once and ignored.

pub mod dualsense;
pub mod dualshock4;
pub mod layout;
pub mod nodes;
pub mod playstation;
pub mod rumble;
pub mod uhid;
pub mod worker;

use crate::input_view::InputView;
use layout::{GamepadChoice, PadKind};
use playstation::{Charge, Contact, Extras, Model};
use punktfunk_core::gamepad::{ControllerArrival, ControllerKind, ControllerState, MAX_PADS, PadEvent, PadFeedback, TriggerEffect, caps};
use rumble::{Effect, ForceFeedback};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The rate motion readings are asked for, where the client's pad has sensors.
const MOTION_HZ: u16 = 100;
/// An errno for a feature report the pad does not have (EIO).
const NO_SUCH_REPORT: u16 = 5;
/// A slot's pad is made at most this many times in a window: a client alternating kinds or
/// plugging and unplugging costs the host a device's creation and removal each time.
const MAKES_PER_WINDOW: u8 = 4;
const MAKE_WINDOW: Duration = Duration::from_secs(10);
/// Pads on this host at most, all clients and connections together.
const MAX_LIVE_PADS: usize = 64;
/// How long a Sony pad's nodes are looked for once its driver bound.
const PLACING: Duration = Duration::from_secs(5);
/// What a pad answers of what the kernel and games ask, per turn (the rest next turn).
const REQUESTS_PER_TURN: usize = 64;

static LIVE_PADS: AtomicUsize = AtomicUsize::new(0);

struct Pad {
    number: u16,
    kind: PadKind,
    state: ControllerState,
    /// Its nodes in its session's input view (before `device`: taken back while the device
    /// still holds its numbers, which another pad may take once it is gone).
    placed: nodes::Placed,
    device: Device,
}

enum Device {
    Uinput {
        device: evdev::uinput::VirtualDevice,
        ff: ForceFeedback,
        /// The motor levels the client was last told.
        told: (u16, u16),
    },
    /// A DualSense or DualShock 4, made by the kernel's driver.
    PlayStation {
        model: Model,
        hid: uhid::Uhid,
        mac: [u8; 6],
        extras: Extras,
        created: Instant,
        /// The driver has bound (its first output report came): reports count from now.
        bound: bool,
        /// The client's pad has motion sensors: ask for their readings once bound.
        motion: bool,
        /// The rumble, lightbar and trigger effects the client was last told.
        told: (u16, u16),
        lit: Option<[u8; 3]>,
        triggers: Option<PadFeedback>,
    },
}

impl Drop for Pad {
    fn drop(&mut self) {
        LIVE_PADS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether pads with a touchpad and motion sensors (DualSense, DualShock 4) can be made here:
/// what the host tells clients before they send such events.
pub fn touchpads(choice: GamepadChoice) -> bool {
    matches!(choice, GamepadChoice::Auto | GamepadChoice::DualSense | GamepadChoice::DualShock4)
        && std::fs::OpenOptions::new().read(true).write(true).open("/dev/uhid").is_ok()
}

/// The virtual pads of one client.
pub struct Gamepads {
    choice: GamepadChoice,
    /// What the client said each controller is and can do.
    held: [Option<ControllerArrival>; MAX_PADS],
    pads: [Option<Pad>; MAX_PADS],
    /// Per slot: when its window began, and how many pads were made in it.
    made: [(Option<Instant>, u8); MAX_PADS],
    /// uinput or uhid could not be opened: that kind of pad is not tried again.
    no_uinput: bool,
    no_uhid: bool,
    /// Feedback for pads already gone (their rumble stopped, their sensors quiet).
    farewells: Vec<PadFeedback>,
    /// The session's view of the input devices, where its pads' nodes are shown.
    view: Option<Arc<InputView>>,
}

impl Gamepads {
    pub fn new(choice: GamepadChoice) -> Self {
        Self {
            choice,
            held: [None; MAX_PADS],
            pads: Default::default(),
            made: [(None, 0); MAX_PADS],
            no_uinput: false,
            no_uhid: false,
            farewells: Vec::new(),
            view: None,
        }
    }

    /// The pads of a session with this input view: their nodes are shown in it.
    pub fn in_view(mut self, view: Option<Arc<InputView>>) -> Self {
        self.view = view;
        self
    }

    /// What a client's controller did, from either protocol.
    pub fn handle(&mut self, event: PadEvent) {
        match event {
            PadEvent::Arrived(arrival) => self.arrive(&arrival),
            PadEvent::State(state) => self.update(state),
            PadEvent::Touch { number, event, pointer, x, y } => self.touch(number, event, pointer, x, y),
            PadEvent::Motion { number, motion_type, xyz } => self.motion(number, motion_type, xyz),
            PadEvent::Battery { number, state, percent } => self.battery(number, state, percent),
        }
    }

    /// A controller arrived: its pad is created now, of the kind it is.
    pub fn arrive(&mut self, arrival: &ControllerArrival) {
        let n = usize::from(arrival.number);
        if n >= MAX_PADS {
            return;
        }
        self.held[n] = Some(*arrival);
        // Compared with what would be made now: a Sony pad asked for where none can be made
        // is the Xbox pad already there, not a reason to make it again.
        let kind = self.kind_for(Some(arrival.kind));
        if self.pads[n].as_ref().is_some_and(|p| p.kind != kind) {
            self.remove(n);
        }
        self.pad(n);
    }

    /// Removes pad `n`; the client's pad stops what it was asked to do.
    fn remove(&mut self, n: usize) {
        let Some(pad) = self.pads[n].take() else { return };
        tracing::info!(pad = n, "gamepad removed");
        let number = pad.number;
        let (told, motion, triggers) = match &pad.device {
            Device::Uinput { told, .. } => (*told, false, false),
            Device::PlayStation { told, motion, bound, triggers, .. } => (*told, *motion && *bound, triggers.is_some()),
        };
        if told != (0, 0) {
            self.farewells.push(PadFeedback::Rumble { number, low: 0, high: 0 });
        }
        if motion {
            self.farewells.extend([1, 2].map(|motion_type| PadFeedback::MotionEvents { number, motion_type, rate_hz: 0 }));
        }
        if triggers {
            // Both triggers back to no effect: the client's pad would keep a resistance.
            let off = TriggerEffect::default();
            self.farewells.push(PadFeedback::AdaptiveTriggers { number, flags: 0x0c, left: off, right: off });
        }
    }

    pub fn update(&mut self, next: ControllerState) {
        let n = usize::from(next.number);
        if n >= MAX_PADS {
            return;
        }
        if next.active_mask & (1 << n) == 0 {
            self.held[n] = None;
            self.remove(n);
            return;
        }
        if let Some(pad) = self.pad(n) {
            pad.set_state(next);
        }
    }

    /// A touch on pad `number`'s touchpad (Moonlight's touch events: 1 down, 2 up, 3 move,
    /// 4 cancel, 7 cancel all).
    pub fn touch(&mut self, number: u8, event: u8, pointer: u32, x: f32, y: f32) {
        self.with_extras(number, |extras| {
            let slot = extras.contacts.iter().position(|c| c.is_some_and(|c| u32::from(c.id) == pointer & 0x7f));
            match event {
                1 | 3 => {
                    let contact = Contact { id: (pointer & 0x7f) as u8, x, y };
                    if let Some(free) = slot.or_else(|| extras.contacts.iter().position(Option::is_none)) {
                        extras.contacts[free] = Some(contact);
                    }
                }
                2 | 4 => {
                    if let Some(slot) = slot {
                        extras.contacts[slot] = None;
                    }
                }
                7 => extras.contacts = [None; 2],
                _ => {}
            }
        });
    }

    /// A motion reading: accelerometer (type 1, m/s²) or gyroscope (type 2, °/s).
    pub fn motion(&mut self, number: u8, motion_type: u8, xyz: [f32; 3]) {
        self.with_extras(number, |extras| match motion_type {
            1 => extras.accel = xyz,
            2 => extras.gyro = xyz,
            _ => {}
        });
    }

    /// The client pad's battery: Moonlight's state (2 discharging, 3 charging, 5 full) and
    /// percent (0xff unknown).
    pub fn battery(&mut self, number: u8, state: u8, percent: u8) {
        self.with_extras(number, |extras| {
            extras.battery = match (state, percent) {
                (5, _) => Some((100, Charge::Full)),
                (_, 0xff) => None,
                (3, p) => Some((p, Charge::Charging)),
                (_, p) => Some((p, Charge::Discharging)),
            }
        });
    }

    /// Changes a Sony pad's extras and sends it its report; other pads have none.
    fn with_extras(&mut self, number: u8, change: impl FnOnce(&mut Extras)) {
        let Some(pad) = self.pads.get_mut(usize::from(number)).and_then(Option::as_mut) else { return };
        if let Device::PlayStation { extras, .. } = &mut pad.device {
            change(extras);
            let state = pad.state;
            pad.set_state(state);
        }
    }

    /// Pad `n`, created if it is not there yet (and may be: not made too often lately, the
    /// The kind of pad made for a client's pad of `kind`: the configured choice, an Xbox pad
    /// for a Sony pad once /dev/uhid has failed.
    fn kind_for(&self, kind: Option<ControllerKind>) -> PadKind {
        match self.choice.kind(kind) {
            kind if kind.playstation().is_some() && self.no_uhid => PadKind::Xbox,
            kind => kind,
        }
    }

    /// Pad `n`, created if it is not there yet (and may be: not made too often lately, the
    /// host's pads not all taken, its kind's device openable; a Sony pad that cannot be
    /// made is an Xbox pad).
    fn pad(&mut self, n: usize) -> Option<&mut Pad> {
        let now = Instant::now();
        let (window, makes) = &mut self.made[n];
        if window.is_none_or(|t| now.duration_since(t) > MAKE_WINDOW) {
            (*window, *makes) = (Some(now), 0);
        }
        if self.pads[n].is_none() && *makes < MAKES_PER_WINDOW && LIVE_PADS.load(Ordering::Relaxed) < MAX_LIVE_PADS {
            let held = self.held[n];
            let kind = self.kind_for(held.map(|h| h.kind));
            let motion = held.is_some_and(|h| h.capabilities & (caps::ACCEL | caps::GYRO) != 0);
            let uhid = kind.playstation().is_some();
            let made = if !uhid && self.no_uinput { None } else { Some(Pad::create(kind, n as u16, motion, self.view.clone())) };
            match made {
                Some(Ok(pad)) => {
                    tracing::info!(pad = n, ?kind, "gamepad created");
                    self.made[n].1 += 1;
                    self.pads[n] = Some(pad);
                }
                Some(Err(e)) => {
                    let device = if uhid { "/dev/uhid" } else { "/dev/uinput" };
                    tracing::warn!("cannot create a {kind:?} pad ({e}); give this user access to {device}");
                    if uhid {
                        self.no_uhid = true;
                        return self.pad(n);
                    }
                    self.no_uinput = true;
                }
                None => {}
            }
        }
        self.pads[n].as_mut()
    }

    /// The pads' devices, readable when a game or driver asked them for something.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.pads.iter().flatten().map(|p| match &p.device {
            Device::Uinput { device, .. } => device.as_fd(),
            Device::PlayStation { hid, .. } => hid.as_fd(),
        })
    }

    /// Takes what games and drivers asked of the pads and adds what the client must hear of
    /// it to `out`: rumble whenever a pad's motors change, a Sony pad's lightbar colour,
    /// requests for motion readings.
    pub fn service(&mut self, now: Instant, out: &mut Vec<PadFeedback>) {
        out.append(&mut self.farewells);
        for (n, pad) in self.pads.iter_mut().enumerate().filter_map(|(n, p)| Some((n, p.as_mut()?))) {
            if let Err(e) = pad.service(now, out) {
                tracing::warn!(pad = n, "gamepad requests: {e}");
            }
        }
    }

    /// When a pad's rumble changes next by itself (an effect starts or ends).
    pub fn next_change(&mut self, now: Instant) -> Option<Instant> {
        let ff = self.pads.iter_mut().flatten().filter_map(|p| match &mut p.device {
            Device::Uinput { ff, .. } => Some(ff),
            Device::PlayStation { .. } => None,
        });
        ff.filter_map(|ff| ff.next_change(now)).min()
    }
}

impl Pad {
    fn create(kind: PadKind, number: u16, motion: bool, view: Option<Arc<InputView>>) -> std::io::Result<Self> {
        let mut placed = nodes::Placed::new(view);
        let device = match kind.playstation() {
            Some(model) => {
                // A locally administered address, random: the driver refuses a second pad
                // with the MAC of one it has (another client's, the host's own).
                let mac = [0x02, 0x70, 0x66, rand::random(), rand::random(), rand::random()];
                let uniq = playstation::uniq(mac);
                let (vendor, product, version) = kind.ids();
                let identity = uhid::Identity {
                    name: kind.name(),
                    uniq: &uniq,
                    vendor: vendor.into(),
                    product: product.into(),
                    version: version.into(),
                    descriptor: model.descriptor(),
                };
                let hid = uhid::Uhid::create(&identity)?;
                let created = Instant::now();
                let extras = Extras::default();
                Device::PlayStation { model, hid, mac, extras, created, bound: false, motion, told: (0, 0), lit: None, triggers: None }
            }
            None => {
                let mut device = create_uinput(kind, number.into())?;
                placed.place(device.get_syspath().map(|p| nodes::of_input(&p)).unwrap_or_default());
                Device::Uinput { device, ff: ForceFeedback::default(), told: (0, 0) }
            }
        };
        LIVE_PADS.fetch_add(1, Ordering::Relaxed);
        Ok(Self { number, kind, state: ControllerState { number, ..Default::default() }, device, placed })
    }

    fn set_state(&mut self, next: ControllerState) {
        let number = self.number;
        let result = match &mut self.device {
            Device::Uinput { device, .. } => {
                let events: Vec<evdev::InputEvent> =
                    self.kind.changes(&self.state, &next).into_iter().map(|(t, c, v)| evdev::InputEvent::new(t, c, v)).collect();
                if events.is_empty() { Ok(()) } else { device.emit(&events) }
            }
            Device::PlayStation { model, hid, extras, created, .. } => {
                extras.sequence = extras.sequence.wrapping_add(1);
                // The sensor clock counts 1/3 µs.
                extras.timestamp = (created.elapsed().as_micros() as u64 * 3) as u32;
                hid.input(&model.input_report(&next, extras))
            }
        };
        if let Err(e) = result {
            tracing::warn!(pad = number, "gamepad event: {e}");
        }
        self.state = next;
    }

    fn service(&mut self, now: Instant, out: &mut Vec<PadFeedback>) -> std::io::Result<()> {
        match &mut self.device {
            Device::Uinput { device, ff, told } => {
                read_ff_requests(device, ff, now)?;
                let motors = ff.motors(now);
                if motors != *told {
                    *told = motors;
                    out.push(PadFeedback::Rumble { number: self.number, low: motors.0, high: motors.1 });
                }
            }
            Device::PlayStation { model, hid, mac, bound, motion, told, lit, triggers, created, .. } => {
                let was_bound = *bound;
                for _ in 0..REQUESTS_PER_TURN {
                    let Some(event) = hid.read()? else { break };
                    let answered = match event {
                        uhid::Event::GetReport { id, report } => match model.feature_report(report, *mac) {
                            Some(data) => hid.reply_report(id, Ok(&data)),
                            None => hid.reply_report(id, Err(NO_SUCH_REPORT)),
                        },
                        uhid::Event::SetReport { id, .. } => hid.reply_set(id, 0),
                        uhid::Event::Output(report) => {
                            // The driver's first output comes once its devices are all made.
                            *bound = true;
                            // Only what changes: a program writing reports in a loop sends
                            // the client nothing new.
                            for feedback in model.feedback(self.number, &report) {
                                let new = match feedback {
                                    PadFeedback::Rumble { low, high, .. } => std::mem::replace(told, (low, high)) != (low, high),
                                    PadFeedback::Led { rgb, .. } => lit.replace(rgb) != Some(rgb),
                                    effects @ PadFeedback::AdaptiveTriggers { .. } => triggers.replace(effects) != Some(effects),
                                    _ => true,
                                };
                                if new {
                                    out.push(feedback);
                                }
                            }
                            Ok(())
                        }
                        _ => Ok(()),
                    };
                    if let Err(e) = answered {
                        tracing::warn!(pad = self.number, "answering the {model:?} driver: {e}");
                    }
                }
                // The driver's devices (pad, motion sensors, touchpad; their hidraw node) into
                // the session's view, looked for from its first output report for a while.
                let (events, hidraw) = self.placed.found();
                if *bound && (events < 3 || !hidraw) && now.duration_since(*created) < PLACING {
                    self.placed.place(nodes::of_uniq(Path::new("/sys"), &playstation::uniq(*mac)));
                }
                if *bound && !was_bound {
                    // What the client sent while the driver bound was not taken: again, and
                    // now the pad is there to read its sensors.
                    if *motion {
                        out.extend([1, 2].map(|motion_type| PadFeedback::MotionEvents {
                            number: self.number,
                            motion_type,
                            rate_hz: MOTION_HZ,
                        }));
                    }
                    let state = self.state;
                    self.set_state(state);
                }
            }
        }
        Ok(())
    }
}

/// Takes the force-feedback requests games made on a uinput pad.
fn read_ff_requests(device: &mut evdev::uinput::VirtualDevice, ff: &mut ForceFeedback, now: Instant) -> std::io::Result<()> {
    use evdev::{EventSummary, FFEffectCode, UInputCode};
    for _ in 0..REQUESTS_PER_TURN {
        let events: Vec<evdev::InputEvent> = match device.fetch_events() {
            Ok(events) => events.collect(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        for event in events {
            let taken = match event.destructure() {
                // The game's upload waits until this is dropped (retval 0: taken).
                EventSummary::UInput(request, UInputCode::UI_FF_UPLOAD, _) => {
                    device.process_ff_upload(request).map(|upload| ff.upload(upload.effect_id(), Effect::from_ff(&upload.effect())))
                }
                EventSummary::UInput(request, UInputCode::UI_FF_ERASE, _) => {
                    device.process_ff_erase(request).map(|erase| ff.erase(erase.effect_id() as i16))
                }
                EventSummary::ForceFeedback(_, FFEffectCode::FF_GAIN, gain) => {
                    ff.set_gain(gain.clamp(0, 0xffff) as u16);
                    Ok(())
                }
                EventSummary::ForceFeedback(_, FFEffectCode(id), count) => {
                    ff.play(id as i16, count, now);
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = taken {
                tracing::warn!("a game's force-feedback request: {e}");
            }
        }
    }
    Ok(())
}

fn create_uinput(kind: PadKind, n: usize) -> std::io::Result<evdev::uinput::VirtualDevice> {
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
