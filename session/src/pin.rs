//! Where the user's PIN meets a waiting pairing. A Moonlight client shows a PIN and holds
//! its first pairing request open until the host knows it; the PIN arrives separately
//! (`punktfunk pair 1234`, the management API). Either may come first: a PIN given early
//! stays valid for [`PIN_LIFETIME`].

use parking_lot::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

pub const PIN_LIFETIME: Duration = Duration::from_secs(120);
/// How long a pairing client waits for the user to enter its PIN.
pub const PIN_WAIT: Duration = Duration::from_secs(85);

/// The claim of the one client waiting for a PIN (a PIN typed on the host goes to it, never
/// to a second client racing for it); released when dropped.
pub struct Waiting<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Waiting<'a> {
    pub fn claim(flag: &'a std::sync::atomic::AtomicBool) -> Option<Self> {
        (!flag.swap(true, std::sync::atomic::Ordering::AcqRel)).then_some(Self(flag))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// How a pairing ended, for whoever gave the PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairOutcome {
    Paired { client: String },
    Failed(String),
}

struct Pending {
    pin: String,
    given: Instant,
    outcome: Option<oneshot::Sender<PairOutcome>>,
}

#[derive(Default)]
pub struct PinDesk {
    pending: Mutex<Option<Pending>>,
    given: Notify,
}

impl PinDesk {
    /// Gives a PIN; the receiver learns how the pairing that used it ended.
    pub fn give(&self, pin: String) -> oneshot::Receiver<PairOutcome> {
        let (tx, rx) = oneshot::channel();
        *self.pending.lock() = Some(Pending { pin, given: Instant::now(), outcome: Some(tx) });
        self.given.notify_waiters();
        rx
    }

    /// Waits up to `timeout` for a PIN. Returns it with the sender for the outcome.
    pub async fn take(&self, timeout: Duration) -> Option<(String, Option<oneshot::Sender<PairOutcome>>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.given.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(p) = self.pending.lock().take()
                && p.given.elapsed() < PIN_LIFETIME
            {
                return Some((p.pin, p.outcome));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// Is this a PIN a client can show: 4 decimal digits.
pub fn valid_pin(pin: &str) -> bool {
    pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pin_before_or_after_the_request() {
        let desk = std::sync::Arc::new(PinDesk::default());
        let mut outcome = desk.give("1234".into());
        let (pin, tx) = desk.take(Duration::from_millis(10)).await.unwrap();
        assert_eq!(pin, "1234");
        tx.unwrap().send(PairOutcome::Paired { client: "tv".into() }).unwrap();
        assert_eq!(outcome.try_recv().unwrap(), PairOutcome::Paired { client: "tv".into() });

        let waiter = tokio::spawn({
            let desk = desk.clone();
            async move { desk.take(Duration::from_secs(5)).await.map(|(p, _)| p) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(desk.give("9999".into()));
        assert_eq!(waiter.await.unwrap().as_deref(), Some("9999"));
        assert!(desk.take(Duration::from_millis(10)).await.is_none(), "a PIN is used once");
    }

    #[test]
    fn pins_are_four_digits() {
        assert!(valid_pin("0042"));
        assert!(!valid_pin("123") && !valid_pin("12345") && !valid_pin("12a4"));
    }
}
