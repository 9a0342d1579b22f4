//! Candle time math: which interval an instant falls in, when the next candle
//! closes, and the key that names an interval.
//!
//! Times are milliseconds since the Unix epoch, UTC. Every resolution divides
//! a day evenly, so flooring the epoch time aligns intervals with UTC
//! midnight (4h candles close at 00, 04, 08, ... UTC; 1D at midnight).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const MINUTE_MS: i64 = 60_000;

/// A candle length the platform supports. Parsed once from the forms feeds
/// and users write: minutes as a bare number (`"5"`), or with a unit
/// (`"15m"`, `"1h"`, `"4h"`, `"1D"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resolution {
    minutes: u32,
}

/// The supported lengths in minutes: 1m 3m 5m 10m 15m 30m 1h 2h 4h 6h 12h 1D.
const SUPPORTED: [u32; 12] = [1, 3, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440];

/// Why a text is not a supported resolution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "resolution {shown:?} is not supported; use one of 1m 3m 5m 10m 15m 30m 1h 2h 4h 6h 12h 1D \
     (a bare number means minutes: \"5\" is 5m)"
)]
pub struct InvalidResolution {
    /// The rejected input, shortened.
    pub shown: String,
}

impl Resolution {
    /// Every supported resolution, shortest first.
    pub fn all() -> impl Iterator<Item = Resolution> {
        SUPPORTED.into_iter().map(|minutes| Resolution { minutes })
    }

    /// Parses `"1"`, `"5"`, `"15m"`, `"1h"`, `"4h"`, `"1D"` (also `"1d"`, `"60"`,
    /// `"240"`, `"D"`); anything else is refused.
    pub fn parse(input: &str) -> Result<Self, InvalidResolution> {
        let invalid = || InvalidResolution {
            shown: input.chars().take(20).collect(),
        };
        let (number, unit_minutes) = match input.as_bytes().last() {
            Some(b'm') => (&input[..input.len() - 1], 1),
            Some(b'h' | b'H') => (&input[..input.len() - 1], 60),
            Some(b'D' | b'd') => (&input[..input.len() - 1], 1440),
            Some(b'0'..=b'9') => (input, 1),
            _ => return Err(invalid()),
        };
        // "D" alone is TradingView's spelling of one day.
        let count: u32 = if number.is_empty() && unit_minutes == 1440 {
            1
        } else if number.bytes().all(|b| b.is_ascii_digit()) && !number.starts_with('0') {
            number.parse().map_err(|_| invalid())?
        } else {
            return Err(invalid());
        };
        let minutes = count.checked_mul(unit_minutes).ok_or_else(invalid)?;
        if SUPPORTED.contains(&minutes) {
            Ok(Resolution { minutes })
        } else {
            Err(invalid())
        }
    }

    /// The length in minutes.
    pub fn minutes(self) -> u32 {
        self.minutes
    }

    /// The length in milliseconds.
    pub fn millis(self) -> i64 {
        i64::from(self.minutes) * MINUTE_MS
    }

    /// The start of the interval holding `at_ms`.
    pub fn floor(self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.millis()) * self.millis()
    }

    /// The first close strictly after `at_ms` (an instant on a boundary has
    /// just closed a candle; the next one closes a full interval later).
    pub fn next_close(self, at_ms: i64) -> i64 {
        self.floor(at_ms) + self.millis()
    }

    /// The interval holding `at_ms`.
    pub fn interval_at(self, at_ms: i64) -> Interval {
        Interval {
            resolution: self,
            start_ms: self.floor(at_ms),
        }
    }

    /// The interval of the candle closing at `close_ms`. Feeds give a close
    /// time either on the boundary (10:05:00.000) or just before it
    /// (10:04:59.999); both name the candle [10:00, 10:05).
    pub fn interval_closing_at(self, close_ms: i64) -> Interval {
        self.interval_at(close_ms - 1)
    }
}

impl fmt::Display for Resolution {
    /// The canonical spelling: `5m`, `4h`, `1D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minutes {
            1440 => f.write_str("1D"),
            m if m % 60 == 0 => write!(f, "{}h", m / 60),
            m => write!(f, "{m}m"),
        }
    }
}

impl FromStr for Resolution {
    type Err = InvalidResolution;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Resolution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Resolution {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One candle interval, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    resolution: Resolution,
    start_ms: i64,
}

impl Interval {
    /// Its resolution.
    pub fn resolution(self) -> Resolution {
        self.resolution
    }

    /// Its first instant (inclusive).
    pub fn start_ms(self) -> i64 {
        self.start_ms
    }

    /// Its end (exclusive): the candle's close time, when its strategies run.
    pub fn end_ms(self) -> i64 {
        self.start_ms + self.resolution.millis()
    }

    /// Whether `at_ms` lies in `[start, end)`.
    pub fn contains(self, at_ms: i64) -> bool {
        self.start_ms <= at_ms && at_ms < self.end_ms()
    }

    /// The interval before this one.
    pub fn previous(self) -> Interval {
        Interval {
            resolution: self.resolution,
            start_ms: self.start_ms - self.resolution.millis(),
        }
    }

    /// A name unique to this interval, readable in logs and stable across
    /// processes: the resolution and the start, `5m:2026-11-22T10:05Z`.
    /// It is half of the natural idempotency key `strategy:<id>:<key>`.
    pub fn key(self) -> String {
        let start = sqlx::types::chrono::DateTime::from_timestamp_millis(self.start_ms)
            .expect("interval starts are within chrono's range");
        format!("{}:{}", self.resolution, start.format("%Y-%m-%dT%H:%MZ"))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-22T10:07:30Z.
    const T: i64 = 1_795_342_050_000;

    fn res(s: &str) -> Resolution {
        Resolution::parse(s).unwrap()
    }

    #[test]
    fn the_seeds_spellings_parse_to_their_canonical_form() {
        for (input, canonical) in [
            ("1", "1m"),
            ("5", "5m"),
            ("15m", "15m"),
            ("60", "1h"),
            ("1h", "1h"),
            ("4h", "4h"),
            ("240", "4h"),
            ("12h", "12h"),
            ("1D", "1D"),
            ("1d", "1D"),
            ("D", "1D"),
            ("1440", "1D"),
        ] {
            assert_eq!(res(input).to_string(), canonical, "{input}");
        }
        assert_eq!(Resolution::all().count(), 12);
    }

    #[test]
    fn unsupported_resolutions_are_refused_with_the_list_of_valid_ones() {
        for bad in [
            "",
            "0",
            "2",
            "7m",
            "05",
            "1w",
            "1M",
            "h",
            "m",
            "-5",
            "5 m",
            "1.5h",
            "99999999999h",
        ] {
            let err = Resolution::parse(bad).unwrap_err().to_string();
            assert!(err.contains("1m 3m 5m"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn floor_next_close_and_key_on_a_known_instant() {
        let five = res("5m");
        assert_eq!(five.floor(T), T - 150_000);
        assert_eq!(five.next_close(T), T + 150_000);
        assert_eq!(five.interval_at(T).key(), "5m:2026-11-22T10:05Z");
        assert_eq!(res("4h").interval_at(T).key(), "4h:2026-11-22T08:00Z");
        assert_eq!(res("1D").interval_at(T).key(), "1D:2026-11-22T00:00Z");
    }

    #[test]
    fn a_close_time_on_or_just_before_the_boundary_names_the_same_candle() {
        let five = res("5");
        let boundary = five.next_close(T);
        assert_eq!(
            five.interval_closing_at(boundary),
            five.interval_closing_at(boundary - 1)
        );
        assert_eq!(five.interval_closing_at(boundary).end_ms(), boundary);
    }

    fn any_resolution() -> impl Strategy<Value = Resolution> {
        prop::sample::select(Resolution::all().collect::<Vec<_>>())
    }

    /// Instants from 1970 to 2100.
    fn any_instant() -> impl Strategy<Value = i64> {
        0i64..4_102_444_800_000
    }

    proptest! {
        #[test]
        fn every_instant_lies_in_exactly_one_interval(r in any_resolution(), at in any_instant()) {
            let i = r.interval_at(at);
            prop_assert!(i.contains(at));
            prop_assert!(!i.previous().contains(at));
            prop_assert!(!r.interval_at(i.end_ms()).contains(at));
            prop_assert_eq!(i.end_ms() - i.start_ms(), r.millis());
        }

        #[test]
        fn the_next_close_is_after_the_instant_and_on_a_boundary(r in any_resolution(), at in any_instant()) {
            let close = r.next_close(at);
            prop_assert!(close > at);
            prop_assert!(close - at <= r.millis());
            prop_assert_eq!(r.floor(close), close);
        }

        #[test]
        fn keys_are_unique_per_interval(r in any_resolution(), a in any_instant(), b in any_instant()) {
            let (ia, ib) = (r.interval_at(a), r.interval_at(b));
            prop_assert_eq!(ia == ib, ia.key() == ib.key());
        }

        #[test]
        fn keys_differ_across_resolutions(r in any_resolution(), s in any_resolution(), at in any_instant()) {
            prop_assume!(r != s);
            prop_assert_ne!(r.interval_at(at).key(), s.interval_at(at).key());
        }

        #[test]
        fn the_canonical_spelling_parses_back(r in any_resolution()) {
            prop_assert_eq!(Resolution::parse(&r.to_string()).unwrap(), r);
        }
    }
}
