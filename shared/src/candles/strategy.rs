//! The built-in strategy kinds, as pure functions of the closed candles.
//!
//! A strategy looks at the last [`StrategySpec::lookback`] candles, oldest
//! first, the just-closed one last, and answers with an [`Entry`] (long or
//! short, with entry, stop-loss and take-profit prices) or no signal. Entries
//! are at the last close; stop and target sit `stop_pct` and `target_pct`
//! percent away from it, on the losing and winning side.

use serde::{Deserialize, Serialize};

use super::candle::Candle;

/// Longest lookback a strategy may ask for (the job loads this many candles).
pub const MAX_PERIOD: usize = 500;

/// Which way a trade goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy, profit when the price rises.
    Long,
    /// Sell, profit when the price falls.
    Short,
}

impl Side {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
}

/// A signal to open a trade.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Long or short.
    pub side: Side,
    /// Entry price (the last close).
    pub entry: f64,
    /// Stop-loss price.
    pub stop: f64,
    /// Take-profit price.
    pub target: f64,
}

/// How far stop and target sit from the entry, in percent of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exits {
    /// Stop-loss distance, percent (default 1).
    pub stop_pct: f64,
    /// Take-profit distance, percent (default 2).
    pub target_pct: f64,
}

impl Exits {
    fn entry(self, side: Side, price: f64) -> Entry {
        let (stop, target) = match side {
            Side::Long => (
                price * (1.0 - self.stop_pct / 100.0),
                price * (1.0 + self.target_pct / 100.0),
            ),
            Side::Short => (
                price * (1.0 + self.stop_pct / 100.0),
                price * (1.0 - self.target_pct / 100.0),
            ),
        };
        Entry {
            side,
            entry: price,
            stop,
            target,
        }
    }
}

fn default_stop() -> f64 {
    1.0
}
fn default_target() -> f64 {
    2.0
}
fn default_oversold() -> f64 {
    30.0
}
fn default_overbought() -> f64 {
    70.0
}

/// A strategy kind with its parameters, as stored (`kind` + `parameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "parameters", rename_all = "snake_case")]
pub enum StrategySpec {
    /// Long when the fast simple moving average crosses above the slow one,
    /// short when it crosses below.
    SmaCrossover(SmaCrossover),
    /// Long when RSI is below `oversold`, short when above `overbought`.
    Rsi(Rsi),
    /// Long when the close breaks above the highest high of the previous
    /// `period` candles, short when it breaks below their lowest low.
    Donchian(Donchian),
}

/// Parameters of [`StrategySpec::SmaCrossover`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaCrossover {
    /// Candles in the fast average.
    pub fast: usize,
    /// Candles in the slow average (more than `fast`).
    pub slow: usize,
    /// Stop-loss distance, percent.
    #[serde(default = "default_stop")]
    pub stop_pct: f64,
    /// Take-profit distance, percent.
    #[serde(default = "default_target")]
    pub target_pct: f64,
}

/// Parameters of [`StrategySpec::Rsi`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rsi {
    /// Price changes averaged (Cutler's RSI: simple averages).
    pub period: usize,
    /// Below this RSI: long (default 30).
    #[serde(default = "default_oversold")]
    pub oversold: f64,
    /// Above this RSI: short (default 70).
    #[serde(default = "default_overbought")]
    pub overbought: f64,
    /// Stop-loss distance, percent.
    #[serde(default = "default_stop")]
    pub stop_pct: f64,
    /// Take-profit distance, percent.
    #[serde(default = "default_target")]
    pub target_pct: f64,
}

/// Parameters of [`StrategySpec::Donchian`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Donchian {
    /// Candles in the channel (before the current one).
    pub period: usize,
    /// Stop-loss distance, percent.
    #[serde(default = "default_stop")]
    pub stop_pct: f64,
    /// Take-profit distance, percent.
    #[serde(default = "default_target")]
    pub target_pct: f64,
}

/// Why a strategy definition is refused; says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidStrategy(pub String);

/// The job had fewer candles than the strategy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough candles: have {have}, the strategy needs {need}")]
pub struct NotEnoughCandles {
    /// Candles available.
    pub have: usize,
    /// Candles needed.
    pub need: usize,
}

/// The kinds, as the API spells them.
pub const KINDS: [&str; 3] = ["sma_crossover", "rsi", "donchian"];

impl StrategySpec {
    /// Parses and checks a stored or submitted `kind` and `parameters`.
    pub fn parse(kind: &str, parameters: &serde_json::Value) -> Result<Self, InvalidStrategy> {
        if !KINDS.contains(&kind) {
            return Err(InvalidStrategy(format!(
                "unknown strategy kind {:?}; use one of {}",
                kind.chars().take(40).collect::<String>(),
                KINDS.join(", ")
            )));
        }
        let tagged = serde_json::json!({"kind": kind, "parameters": parameters});
        let spec: StrategySpec = serde_json::from_value(tagged)
            .map_err(|e| InvalidStrategy(format!("parameters of {kind}: {e}")))?;
        spec.check()?;
        Ok(spec)
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            StrategySpec::SmaCrossover(_) => "sma_crossover",
            StrategySpec::Rsi(_) => "rsi",
            StrategySpec::Donchian(_) => "donchian",
        }
    }

    /// The parameters as JSON (defaults filled in).
    pub fn parameters(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("specs serialize");
        v["parameters"].take()
    }

    fn exits(&self) -> Exits {
        let (stop_pct, target_pct) = match self {
            StrategySpec::SmaCrossover(p) => (p.stop_pct, p.target_pct),
            StrategySpec::Rsi(p) => (p.stop_pct, p.target_pct),
            StrategySpec::Donchian(p) => (p.stop_pct, p.target_pct),
        };
        Exits {
            stop_pct,
            target_pct,
        }
    }

    fn check(&self) -> Result<(), InvalidStrategy> {
        let bad = |m: &str| Err(InvalidStrategy(m.to_owned()));
        let exits = self.exits();
        if !(exits.stop_pct > 0.0 && exits.stop_pct < 100.0) {
            return bad("stop_pct must be above 0 and below 100 (percent of the entry price)");
        }
        if !(exits.target_pct > 0.0 && exits.target_pct <= 1000.0) {
            return bad("target_pct must be above 0 and at most 1000 (percent of the entry price)");
        }
        match self {
            StrategySpec::SmaCrossover(p) => {
                if p.fast == 0 || p.slow <= p.fast || p.slow > MAX_PERIOD {
                    return bad("sma_crossover needs 1 <= fast < slow <= 500");
                }
            }
            StrategySpec::Rsi(p) => {
                if !(2..=MAX_PERIOD).contains(&p.period) {
                    return bad("rsi needs a period from 2 to 500");
                }
                if !(0.0 < p.oversold && p.oversold < p.overbought && p.overbought < 100.0) {
                    return bad("rsi needs 0 < oversold < overbought < 100");
                }
            }
            StrategySpec::Donchian(p) => {
                if !(1..=MAX_PERIOD).contains(&p.period) {
                    return bad("donchian needs a period from 1 to 500");
                }
            }
        }
        Ok(())
    }

    /// Candles the strategy reads, the just-closed one included.
    pub fn lookback(&self) -> usize {
        match self {
            // Two consecutive slow averages: slow + 1 closes.
            StrategySpec::SmaCrossover(p) => p.slow + 1,
            StrategySpec::Rsi(p) => p.period + 1,
            StrategySpec::Donchian(p) => p.period + 1,
        }
    }

    /// The signal on `candles` (oldest first, the just-closed one last).
    /// Only the last [`Self::lookback`] candles are read.
    pub fn evaluate(&self, candles: &[Candle]) -> Result<Option<Entry>, NotEnoughCandles> {
        let need = self.lookback();
        if candles.len() < need {
            return Err(NotEnoughCandles {
                have: candles.len(),
                need,
            });
        }
        let window = &candles[candles.len() - need..];
        let last = window[need - 1].close;
        let side = match self {
            StrategySpec::SmaCrossover(p) => sma_cross(window, p.fast, p.slow),
            StrategySpec::Rsi(p) => {
                let closes: Vec<f64> = window.iter().map(|c| c.close).collect();
                rsi(&closes).and_then(|v| {
                    if v < p.oversold {
                        Some(Side::Long)
                    } else if v > p.overbought {
                        Some(Side::Short)
                    } else {
                        None
                    }
                })
            }
            StrategySpec::Donchian(_) => donchian(window),
        };
        Ok(side.map(|side| self.exits().entry(side, last)))
    }
}

/// Mean of the last `n` closes of `candles`.
fn sma(candles: &[Candle], n: usize) -> f64 {
    candles[candles.len() - n..]
        .iter()
        .map(|c| c.close)
        .sum::<f64>()
        / n as f64
}

/// The crossing on the last candle of `window` (`slow + 1` candles).
fn sma_cross(window: &[Candle], fast: usize, slow: usize) -> Option<Side> {
    let before = &window[..window.len() - 1];
    let (f0, s0) = (sma(before, fast), sma(before, slow));
    let (f1, s1) = (sma(window, fast), sma(window, slow));
    if f0 <= s0 && f1 > s1 {
        Some(Side::Long)
    } else if f0 >= s0 && f1 < s1 {
        Some(Side::Short)
    } else {
        None
    }
}

/// Cutler's RSI over every change in `closes`: 100 − 100 / (1 + avg gain /
/// avg loss); 100 when nothing fell, `None` when nothing moved.
pub fn rsi(closes: &[f64]) -> Option<f64> {
    let (mut gain, mut loss) = (0.0, 0.0);
    for pair in closes.windows(2) {
        let change = pair[1] - pair[0];
        if change > 0.0 {
            gain += change;
        } else {
            loss -= change;
        }
    }
    if gain == 0.0 && loss == 0.0 {
        return None;
    }
    if loss == 0.0 {
        return Some(100.0);
    }
    Some(100.0 - 100.0 / (1.0 + gain / loss))
}

/// A breakout of the channel of every candle of `window` but the last.
fn donchian(window: &[Candle]) -> Option<Side> {
    let (channel, last) = window.split_at(window.len() - 1);
    let upper = channel.iter().map(|c| c.high).fold(f64::MIN, f64::max);
    let lower = channel.iter().map(|c| c.low).fold(f64::MAX, f64::min);
    let close = last[0].close;
    if close > upper {
        Some(Side::Long)
    } else if close < lower {
        Some(Side::Short)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn closes(values: &[f64]) -> Vec<Candle> {
        values
            .iter()
            .map(|&c| Candle {
                close_ms: 0,
                open: c,
                high: c,
                low: c,
                close: c,
                volume: 1.0,
            })
            .collect()
    }

    fn bar(high: f64, low: f64, close: f64) -> Candle {
        Candle {
            close_ms: 0,
            open: close,
            high,
            low,
            close,
            volume: 1.0,
        }
    }

    fn close_to(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn sma_crossover_goes_long_when_the_fast_average_crosses_above() {
        // Before: fast (10+9)/2 = 9.5 <= slow (10+10+9)/3 = 9.667.
        // After:  fast (9+12)/2 = 10.5 > slow (10+9+12)/3 = 10.333.
        let spec = StrategySpec::parse("sma_crossover", &json!({"fast": 2, "slow": 3})).unwrap();
        let entry = spec
            .evaluate(&closes(&[10.0, 10.0, 10.0, 9.0, 12.0]))
            .unwrap()
            .unwrap();
        assert_eq!(entry.side, Side::Long);
        assert!(close_to(entry.entry, 12.0));
        assert!(close_to(entry.stop, 11.88), "{entry:?}");
        assert!(close_to(entry.target, 12.24), "{entry:?}");
    }

    #[test]
    fn sma_crossover_goes_short_when_the_fast_average_crosses_below() {
        // Before: fast (9+12)/2 = 10.5 >= slow (10+9+12)/3 = 10.333.
        // After:  fast (12+5)/2 = 8.5 < slow (9+12+5)/3 = 8.667.
        let spec = StrategySpec::parse("sma_crossover", &json!({"fast": 2, "slow": 3})).unwrap();
        let entry = spec
            .evaluate(&closes(&[10.0, 9.0, 12.0, 5.0]))
            .unwrap()
            .unwrap();
        assert_eq!(entry.side, Side::Short);
        assert!(close_to(entry.stop, 5.05), "{entry:?}");
        assert!(close_to(entry.target, 4.9), "{entry:?}");
    }

    #[test]
    fn sma_crossover_without_a_cross_is_no_signal() {
        let spec = StrategySpec::parse("sma_crossover", &json!({"fast": 2, "slow": 3})).unwrap();
        assert_eq!(spec.evaluate(&closes(&[10.0, 11.0, 12.0, 13.0])), Ok(None));
    }

    #[test]
    fn rsi_matches_a_hand_computed_value() {
        // Changes +0.5 -1 -0.5: avg gain 0.5/3, avg loss 1.5/3, RS 1/3, RSI 25.
        assert!(close_to(rsi(&[9.0, 9.5, 8.5, 8.0]).unwrap(), 25.0));
        assert_eq!(rsi(&[1.0, 2.0, 3.0]), Some(100.0));
        assert_eq!(rsi(&[2.0, 2.0]), None);
    }

    #[test]
    fn rsi_below_oversold_goes_long_and_above_overbought_goes_short() {
        let spec = StrategySpec::parse("rsi", &json!({"period": 3})).unwrap();
        let long = spec.evaluate(&closes(&[10.0, 9.0, 9.5, 8.5, 8.0])).unwrap();
        assert_eq!(long.map(|e| e.side), Some(Side::Long));
        // Changes -0.5 +1 +0.5: RSI 75.
        let short = spec
            .evaluate(&closes(&[10.0, 9.0, 8.5, 9.5, 10.0]))
            .unwrap();
        assert_eq!(short.map(|e| e.side), Some(Side::Short));
        // Changes +1 -1 +0.5: RSI 60.
        let none = spec.evaluate(&closes(&[1.0, 9.0, 10.0, 9.0, 9.5])).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn donchian_breakouts_above_and_below_the_channel() {
        let spec = StrategySpec::parse("donchian", &json!({"period": 3, "stop_pct": 2})).unwrap();
        let channel = [
            bar(10.0, 9.0, 9.5),
            bar(11.0, 9.5, 10.0),
            bar(10.5, 9.2, 10.0),
        ];
        let mut up = channel.to_vec();
        up.push(bar(11.3, 10.8, 11.2));
        let entry = spec.evaluate(&up).unwrap().unwrap();
        assert_eq!(entry.side, Side::Long);
        assert!(close_to(entry.stop, 11.2 * 0.98), "{entry:?}");
        let mut down = channel.to_vec();
        down.push(bar(9.1, 8.8, 8.9));
        assert_eq!(spec.evaluate(&down).unwrap().unwrap().side, Side::Short);
        let mut inside = channel.to_vec();
        inside.push(bar(10.9, 9.1, 10.9));
        assert_eq!(spec.evaluate(&inside), Ok(None));
    }

    #[test]
    fn too_few_candles_says_how_many_are_needed() {
        let spec = StrategySpec::parse("donchian", &json!({"period": 20})).unwrap();
        let err = spec.evaluate(&closes(&[1.0; 5])).unwrap_err();
        assert_eq!(err, NotEnoughCandles { have: 5, need: 21 });
    }

    #[test]
    fn bad_definitions_are_refused_with_what_to_fix() {
        for (kind, params, expect) in [
            ("macd", json!({}), "use one of"),
            (
                "sma_crossover",
                json!({"fast": 5, "slow": 5}),
                "fast < slow",
            ),
            ("sma_crossover", json!({"fast": 2}), "missing field `slow`"),
            (
                "rsi",
                json!({"period": 14, "oversold": 80}),
                "oversold < overbought",
            ),
            ("donchian", json!({"period": 20, "stop_pct": 0}), "stop_pct"),
            (
                "donchian",
                json!({"period": 20, "colour": "red"}),
                "unknown field",
            ),
        ] {
            let err = StrategySpec::parse(kind, &params).unwrap_err().to_string();
            assert!(err.contains(expect), "{kind} {params}: {err}");
        }
    }

    #[test]
    fn parameters_are_stored_with_their_defaults_filled_in() {
        let spec = StrategySpec::parse("rsi", &json!({"period": 14})).unwrap();
        assert_eq!(
            spec.parameters(),
            json!({"period": 14, "oversold": 30.0, "overbought": 70.0, "stop_pct": 1.0, "target_pct": 2.0})
        );
    }
}
