//! The output mode a stream asks for: `WIDTHxHEIGHT@HZ`, fractional refresh allowed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mode {
    pub width: u32,
    pub height: u32,
    /// Refresh in millihertz (59.94 Hz = 59940), as Wayland outputs carry it.
    pub refresh_mhz: u32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid mode {0:?}: expected WIDTHxHEIGHT@HZ, e.g. 1920x1080@60 or 2560x1440@59.94 (sizes 16..=16384, 1..=1000 Hz)")]
pub struct ModeError(String);

impl Mode {
    pub fn new(width: u32, height: u32, hz: f64) -> Result<Self, ModeError> {
        let m = Self { width, height, refresh_mhz: (hz * 1000.0).round() as u32 };
        m.check().map(|_| m)
    }

    fn check(&self) -> Result<(), ModeError> {
        let size_ok = |v: u32| (16..=16384).contains(&v);
        if size_ok(self.width) && size_ok(self.height) && (1_000..=1_000_000).contains(&self.refresh_mhz) {
            Ok(())
        } else {
            Err(ModeError(self.to_string()))
        }
    }

    /// A mode at a whole-number refresh, as GameStream and punktfunk/1 negotiate it.
    pub fn at_fps(width: u32, height: u32, fps: u32) -> Result<Self, ModeError> {
        Self::new(width, height, f64::from(fps))
    }

    /// Time between frames.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_nanos(1_000_000_000_000 / u64::from(self.refresh_mhz))
    }
}

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, ModeError> {
        let bad = || ModeError(s.to_string());
        let (size, hz) = s.split_once('@').ok_or_else(bad)?;
        let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
        let hz: f64 = hz.parse().map_err(|_| bad())?;
        if !hz.is_finite() {
            return Err(bad());
        }
        Self::new(w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?, hz).map_err(|_| bad())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, f64::from(self.refresh_mhz) / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integer_and_fractional_refresh() {
        assert_eq!("1920x1080@60".parse(), Ok(Mode { width: 1920, height: 1080, refresh_mhz: 60_000 }));
        let m: Mode = "2560x1440@59.94".parse().unwrap();
        assert_eq!(m.refresh_mhz, 59_940);
        assert_eq!(m.frame_interval(), Duration::from_nanos(16_683_350));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errors_without_panicking(s in "\\PC{0,40}") {
            if let Ok(m) = s.parse::<Mode>() {
                proptest::prop_assert!(m.frame_interval() > Duration::ZERO);
                proptest::prop_assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
            }
        }

        #[test]
        fn valid_modes_round_trip(w in 16u32..=16384, h in 16u32..=16384, mhz in 1_000u32..=1_000_000) {
            let m = Mode { width: w, height: h, refresh_mhz: mhz };
            proptest::prop_assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
        }
    }

    #[test]
    fn rejects_garbage_with_a_clear_error() {
        for bad in ["", "1920x1080", "1920@60", "0x0@60", "1920x1080@0", "axb@c", "99999x10@60", "10x10@inf", "1920x1080@-5"] {
            let e = bad.parse::<Mode>().unwrap_err();
            assert!(e.to_string().contains("expected WIDTHxHEIGHT@HZ"), "{bad}");
        }
    }
}
