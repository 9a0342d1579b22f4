//! `Candle`: one closed OHLCV bar, checked once so strategies can trust it.

use serde::{Deserialize, Serialize};

/// One closed bar. Prices are `f64`: strategies compute in floating point,
/// and the database stores `double precision` (see the migration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// When the bar closed (the end of its interval), ms since the epoch.
    pub close_ms: i64,
    /// First price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Volume traded.
    pub volume: f64,
}

/// Why a bar is not a candle; the message says which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid candle: {0}")]
pub struct InvalidCandle(pub &'static str);

impl Candle {
    /// Checks the bar's prices are finite and consistent.
    pub fn check(&self) -> Result<(), InvalidCandle> {
        let prices = [self.open, self.high, self.low, self.close];
        if !prices.iter().all(|p| p.is_finite() && *p > 0.0) {
            return Err(InvalidCandle(
                "open, high, low and close must be finite numbers above 0",
            ));
        }
        if !(self.volume.is_finite() && self.volume >= 0.0) {
            return Err(InvalidCandle(
                "volume must be a finite number of at least 0",
            ));
        }
        if self.high < self.low {
            return Err(InvalidCandle("high is below low"));
        }
        if self.open > self.high || self.close > self.high {
            return Err(InvalidCandle("open and close must be at most high"));
        }
        if self.open < self.low || self.close < self.low {
            return Err(InvalidCandle("open and close must be at least low"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(open: f64, high: f64, low: f64, close: f64) -> Candle {
        Candle {
            close_ms: 0,
            open,
            high,
            low,
            close,
            volume: 1.0,
        }
    }

    #[test]
    fn a_consistent_bar_passes() {
        assert!(bar(10.0, 12.0, 9.0, 11.0).check().is_ok());
    }

    #[test]
    fn inconsistent_or_non_finite_bars_are_refused() {
        assert!(bar(10.0, 9.0, 12.0, 11.0).check().is_err());
        assert!(bar(13.0, 12.0, 9.0, 11.0).check().is_err());
        assert!(bar(10.0, 12.0, 9.0, 8.0).check().is_err());
        assert!(bar(f64::NAN, 12.0, 9.0, 11.0).check().is_err());
        assert!(bar(0.0, 12.0, 0.0, 11.0).check().is_err());
    }
}
