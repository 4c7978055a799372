//! A limit on how often something is reported: a flood of refused packets or connections
//! costs a few log lines a second, not one each (which would itself be a denial of service,
//! of the disk and of whoever reads the journal).

use std::time::{Duration, Instant};

/// Lets `burst` events through per `period` and counts the rest.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    burst: u32,
    window: Option<Instant>,
    passed: u32,
    held: u64,
}

impl Throttle {
    pub const fn new(period: Duration, burst: u32) -> Self {
        Self { period, burst, window: None, passed: 0, held: 0 }
    }

    /// Whether the event at `now` is reported; if so, with how many were held back since
    /// the last one that was.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.window.is_none_or(|start| now.saturating_duration_since(start) >= self.period) {
            (self.window, self.passed) = (Some(now), 0);
        }
        if self.passed >= self.burst {
            self.held += 1;
            return None;
        }
        self.passed += 1;
        Some(std::mem::take(&mut self.held))
    }
}

/// One second, five events: the limit for refusals a stranger can cause.
pub const fn refusals() -> Throttle {
    Throttle::new(Duration::from_secs(1), 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_period_then_the_count_of_what_was_held() {
        let (mut t, start) = (Throttle::new(Duration::from_secs(1), 2), Instant::now());
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(t.admit(at(0)), Some(0));
        assert_eq!(t.admit(at(10)), Some(0));
        assert_eq!((0..100).filter_map(|i| t.admit(at(20 + i))).count(), 0, "a flood is held back");
        assert_eq!(t.admit(at(1000)), Some(100), "the next period says how many");
        assert_eq!(t.admit(at(1001)), Some(0));
        assert_eq!(t.admit(at(1002)), None);
    }
}
