//! Where the user's PIN meets a device waiting for it. A client shows a PIN and holds its
//! first pairing request open until the host knows it; the PIN arrives separately
//! (`punktfunk pair 1234`, the management API), for the one device waiting or for the device
//! the user names. Several devices may wait at once (one per address, a few in all), so a
//! stranger asking too cannot starve or take over a real pairing: the user sees who waits
//! and says which. A PIN given before any device asks stays valid for [`PIN_LIFETIME`] and
//! goes to the first that does.

use parking_lot::Mutex;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const PIN_LIFETIME: Duration = Duration::from_secs(120);
/// How long a pairing client waits for the user to enter its PIN.
pub const PIN_WAIT: Duration = Duration::from_secs(85);
/// Devices waiting for a PIN at once (one per address).
pub const MAX_WAITING: usize = 4;

/// How a pairing ended, for whoever gave the PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairOutcome {
    Paired { client: String },
    Failed(String),
}

/// A PIN for one device, and where to report how its pairing ended.
pub struct Given {
    pub pin: String,
    pub outcome: Reporter,
}

/// Tells whoever gave a PIN how the pairing ended; a pairing dropped without a word says
/// that it was abandoned.
pub struct Reporter(Option<oneshot::Sender<PairOutcome>>);

impl Reporter {
    pub fn report(&mut self, outcome: PairOutcome) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(outcome);
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.report(PairOutcome::Failed("the client did not finish pairing".into()));
    }
}

/// Why a PIN found no device.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GiveError {
    #[error("no device called {0:?} is waiting for a PIN")]
    NoSuchDevice(String),
    #[error("{} devices wait for a PIN: {}; say which (punktfunk pair PIN --device NAME)", .0.len(), .0.join(", "))]
    WhichDevice(Vec<String>),
}

struct Waiter {
    id: u64,
    device: String,
    address: IpAddr,
    tx: Option<oneshot::Sender<Given>>,
}

struct Early {
    pin: String,
    given: Instant,
    outcome: Reporter,
}

#[derive(Default)]
struct Desk {
    next_id: u64,
    waiting: Vec<Waiter>,
    early: Option<Early>,
}

#[derive(Default)]
pub struct PinDesk {
    desk: Mutex<Desk>,
}

/// A device's place at the desk; leaving (dropped) frees it.
pub struct Ticket<'a> {
    desk: &'a PinDesk,
    id: u64,
    rx: oneshot::Receiver<Given>,
}

impl Ticket<'_> {
    /// Waits up to `timeout` for the user's PIN; `None` when none came, or a newer request
    /// from the same address took this one's place.
    pub async fn pin(mut self, timeout: Duration) -> Option<Given> {
        tokio::time::timeout(timeout, &mut self.rx).await.ok()?.ok()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.desk.desk.lock().waiting.retain(|w| w.id != self.id);
    }
}

impl PinDesk {
    /// Seats `device` (at `address`) to wait for its PIN. A newer request from the same
    /// address replaces the older (a client that retried, or left without a word); `None`
    /// when [`MAX_WAITING`] other addresses wait already.
    pub fn wait(&self, device: String, address: IpAddr) -> Option<Ticket<'_>> {
        let mut desk = self.desk.lock();
        desk.waiting.retain(|w| w.address != address);
        if desk.waiting.len() >= MAX_WAITING {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let id = desk.next_id;
        desk.next_id += 1;
        let early = desk.early.take().filter(|e| e.given.elapsed() < PIN_LIFETIME);
        match early {
            Some(e) => {
                let _ = tx.send(Given { pin: e.pin, outcome: e.outcome });
            }
            None => desk.waiting.push(Waiter { id, device, address, tx: Some(tx) }),
        }
        Some(Ticket { desk: self, id, rx })
    }

    /// Gives a PIN to the device called `device` (its name, its address, or both as listed),
    /// or to the one device waiting, or (none waits yet) to the next to ask. The receiver
    /// learns how the pairing ended.
    pub fn give(&self, pin: String, device: Option<&str>) -> Result<oneshot::Receiver<PairOutcome>, GiveError> {
        let (tx, rx) = oneshot::channel();
        let mut desk = self.desk.lock();
        let mut open: Vec<&mut Waiter> = desk.waiting.iter_mut().filter(|w| w.tx.is_some()).collect();
        let waiter = match device {
            Some(name) => Some(
                open.into_iter()
                    .find(|w| w.device == name || w.address.to_string() == name || w.device.split(" at ").next() == Some(name))
                    .ok_or_else(|| GiveError::NoSuchDevice(name.into()))?,
            ),
            None if open.len() > 1 => return Err(GiveError::WhichDevice(open.iter().map(|w| w.device.clone()).collect())),
            None => open.pop(),
        };
        let given = Given { pin, outcome: Reporter(Some(tx)) };
        match waiter.and_then(|w| w.tx.take()) {
            Some(to) => {
                let _ = to.send(given);
            }
            None => {
                let Given { pin, outcome } = given;
                if let Some(mut replaced) = desk.early.replace(Early { pin, given: Instant::now(), outcome }) {
                    replaced.outcome.report(PairOutcome::Failed("another PIN replaced this one".into()));
                }
            }
        }
        Ok(rx)
    }

    /// The devices waiting for a PIN, as the user is shown them ("name at address").
    pub fn waiting(&self) -> Vec<String> {
        self.desk.lock().waiting.iter().filter(|w| w.tx.is_some()).map(|w| w.device.clone()).collect()
    }
}

/// Is this a PIN a client can show: 4 decimal digits.
pub fn valid_pin(pin: &str) -> bool {
    pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit())
}

/// A device name as the user may safely be shown it: printable characters only (no
/// terminal escapes), at most 64 of them.
pub fn printable_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if clean.trim().is_empty() { "client".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[tokio::test]
    async fn pin_before_or_after_the_request() {
        let desk = PinDesk::default();
        let mut outcome = desk.give("1234".into(), None).unwrap();
        let mut given = desk.wait("tv at 10.0.0.1".into(), ip(1)).unwrap().pin(Duration::from_millis(10)).await.unwrap();
        assert_eq!(given.pin, "1234");
        given.outcome.report(PairOutcome::Paired { client: "tv".into() });
        assert_eq!(outcome.try_recv().unwrap(), PairOutcome::Paired { client: "tv".into() });

        let ticket = desk.wait("deck at 10.0.0.2".into(), ip(2)).unwrap();
        assert_eq!(desk.waiting(), ["deck at 10.0.0.2"]);
        let mut outcome = desk.give("9999".into(), None).unwrap();
        let given = ticket.pin(Duration::from_secs(5)).await.unwrap();
        assert_eq!(given.pin, "9999");
        drop(given);
        assert_eq!(outcome.try_recv().unwrap(), PairOutcome::Failed("the client did not finish pairing".into()));
        assert!(desk.waiting().is_empty(), "a PIN is used once");
    }

    #[tokio::test]
    async fn a_stranger_waiting_too_takes_nothing() {
        let desk = PinDesk::default();
        let real = desk.wait("roth at 10.0.0.5".into(), ip(5)).unwrap();
        let _stranger = desk.wait("roth at 10.0.0.66".into(), ip(66)).unwrap();
        assert!(matches!(desk.give("1234".into(), None), Err(GiveError::WhichDevice(d)) if d.len() == 2));
        assert_eq!(desk.give("1234".into(), Some("evil")).err(), Some(GiveError::NoSuchDevice("evil".into())));
        desk.give("1234".into(), Some("10.0.0.5")).unwrap();
        assert_eq!(real.pin(Duration::from_secs(1)).await.unwrap().pin, "1234");
    }

    #[tokio::test]
    async fn one_seat_per_address_and_a_few_in_all() {
        let desk = PinDesk::default();
        let first = desk.wait("tv at 10.0.0.1".into(), ip(1)).unwrap();
        let _again = desk.wait("tv at 10.0.0.1".into(), ip(1)).unwrap();
        assert!(first.pin(Duration::from_secs(1)).await.is_none(), "a newer request from the address replaces it");
        let _others: Vec<_> = (2..=MAX_WAITING as u8).map(|n| desk.wait(format!("d{n}"), ip(n)).unwrap()).collect();
        assert!(desk.wait("one too many".into(), ip(99)).is_none());
        drop(_others);
        assert_eq!(desk.waiting(), ["tv at 10.0.0.1"], "leaving frees the seat");
    }

    #[test]
    fn names_are_printable() {
        assert_eq!(printable_name("tv\x1b[2J\x07 room"), "tv[2J room");
        assert_eq!(printable_name("\n"), "client");
        assert_eq!(printable_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn pins_are_four_digits() {
        assert!(valid_pin("0042"));
        assert!(!valid_pin("123") && !valid_pin("12345") && !valid_pin("12a4"));
    }
}
