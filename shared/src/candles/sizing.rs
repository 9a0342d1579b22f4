//! Risk-based position sizing: how much each subscriber trades on a signal.
//!
//! risk = capital × risk %; size = risk / |entry − stop|, capped by what the
//! leverage allows (leverage × capital / entry). A subscription whose
//! numbers make no trade possible is skipped with the reason, never sized
//! to zero or infinity.

use serde::{Deserialize, Serialize};

/// A subscriber's settings that sizing reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Capital allotted to the strategy.
    pub capital: f64,
    /// Percent of the capital risked per trade.
    pub risk_pct: f64,
    /// Most exposure as a multiple of the capital.
    pub leverage: f64,
}

/// A sized position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Units to trade.
    pub size: f64,
    /// Whether the leverage cap cut the size.
    pub capped: bool,
}

/// Why a subscription gets no trade on a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Capital is zero, negative or not a number.
    #[error("capital must be above 0")]
    Capital,
    /// Risk percent is outside (0, 100].
    #[error("risk_pct must be above 0 and at most 100")]
    Risk,
    /// Leverage is zero, negative or not a number.
    #[error("leverage must be above 0")]
    Leverage,
    /// The entry price is zero, negative or not a number.
    #[error("the entry price must be above 0")]
    Entry,
    /// Stop at the entry: the risk per unit is zero.
    #[error("the stop equals the entry, so the risk per unit is zero")]
    ZeroStopDistance,
}

/// Sizes a trade entering at `entry` with its stop at `stop`.
pub fn size(account: Account, entry: f64, stop: f64) -> Result<Position, Skip> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(account.capital) {
        return Err(Skip::Capital);
    }
    if !(positive(account.risk_pct) && account.risk_pct <= 100.0) {
        return Err(Skip::Risk);
    }
    if !positive(account.leverage) {
        return Err(Skip::Leverage);
    }
    if !positive(entry) {
        return Err(Skip::Entry);
    }
    let distance = (entry - stop).abs();
    if !positive(distance) {
        return Err(Skip::ZeroStopDistance);
    }
    let by_risk = account.capital * account.risk_pct / 100.0 / distance;
    let cap = account.leverage * account.capital / entry;
    Ok(if by_risk > cap {
        Position {
            size: cap,
            capped: true,
        }
    } else {
        Position {
            size: by_risk,
            capped: false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(capital: f64, risk_pct: f64, leverage: f64) -> Account {
        Account {
            capital,
            risk_pct,
            leverage,
        }
    }

    #[test]
    fn size_is_the_risk_over_the_stop_distance() {
        // Risk 10,000 × 1 % = 100; distance 100 − 98 = 2; size 50 (5,000 < 10,000 cap).
        let p = size(account(10_000.0, 1.0, 1.0), 100.0, 98.0).unwrap();
        assert_eq!(
            p,
            Position {
                size: 50.0,
                capped: false
            }
        );
        // Shorts: the stop is above.
        assert_eq!(
            size(account(10_000.0, 1.0, 1.0), 100.0, 102.0)
                .unwrap()
                .size,
            50.0
        );
    }

    #[test]
    fn leverage_caps_the_size() {
        // Risk 100 over a 0.5 distance is 200 units = 20,000 of exposure;
        // leverage 1 allows 10,000 / 100 = 100 units.
        let p = size(account(10_000.0, 1.0, 1.0), 100.0, 99.5).unwrap();
        assert_eq!(
            p,
            Position {
                size: 100.0,
                capped: true
            }
        );
        assert_eq!(
            size(account(10_000.0, 1.0, 3.0), 100.0, 99.5).unwrap().size,
            200.0
        );
    }

    #[test]
    fn zero_or_invalid_numbers_skip_with_a_reason() {
        let ok = account(10_000.0, 1.0, 1.0);
        assert_eq!(
            size(account(0.0, 1.0, 1.0), 100.0, 98.0),
            Err(Skip::Capital)
        );
        assert_eq!(
            size(account(f64::NAN, 1.0, 1.0), 100.0, 98.0),
            Err(Skip::Capital)
        );
        assert_eq!(size(account(1e4, 0.0, 1.0), 100.0, 98.0), Err(Skip::Risk));
        assert_eq!(size(account(1e4, 101.0, 1.0), 100.0, 98.0), Err(Skip::Risk));
        assert_eq!(
            size(account(1e4, 1.0, 0.0), 100.0, 98.0),
            Err(Skip::Leverage)
        );
        assert_eq!(size(ok, 0.0, 98.0), Err(Skip::Entry));
        assert_eq!(size(ok, 100.0, 100.0), Err(Skip::ZeroStopDistance));
        assert!(Skip::ZeroStopDistance.to_string().contains("zero"));
    }
}
