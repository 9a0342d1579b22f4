//! `Symbol`: a market's ticker, parsed once. It is stored, logged and put in
//! idempotency keys, so its alphabet is small.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A market's ticker: 1 to 32 characters from `A-Z`, `0-9` and `. _ - / :`,
/// starting with a letter or digit (`BTCUSDT`, `EUR/USD`, `ES:CME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

/// Why a text is not a symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "symbol {shown:?} is not valid: use 1 to 32 characters from A-Z, 0-9 and . _ - / :, \
     starting with a letter or digit (e.g. BTCUSDT, EUR/USD)"
)]
pub struct InvalidSymbol {
    /// The rejected input, shortened.
    pub shown: String,
}

impl Symbol {
    /// Parses a ticker; lowercase is refused rather than folded, so one
    /// market never has two spellings.
    pub fn parse(input: &str) -> Result<Self, InvalidSymbol> {
        let ok = (1..=32).contains(&input.len())
            && input
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && input
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b".-_/:".contains(&b));
        if ok {
            Ok(Symbol(input.to_owned()))
        } else {
            Err(InvalidSymbol {
                shown: input.chars().take(40).collect(),
            })
        }
    }

    /// The validated text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Symbol {
    type Err = InvalidSymbol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_of_common_markets_parse() {
        for ok in ["BTCUSDT", "EUR/USD", "ES:CME", "BRK.B", "1INCH-PERP"] {
            assert!(Symbol::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn lowercase_spaces_and_punctuation_are_refused() {
        for bad in ["", "btcusdt", "BTC USDT", "/USD", "A'B", &"A".repeat(33)] {
            let err = Symbol::parse(bad).unwrap_err().to_string();
            assert!(err.contains("A-Z"), "{bad:?}: {err}");
        }
    }
}
