//! Candle execution on the producer side: the settings the feed route and
//! the clock share, and the `clock` verb ([`clock`]).

pub mod clock;

use std::time::Duration;

use flotilla::config::parse_duration;

/// Settings of the candle triggers.
#[derive(Debug, Clone, clap::Args)]
pub struct CandleArgs {
    /// Candles that closed longer ago than this are refused by
    /// `POST /v1/candles` (422) and left alone by the clock's reconciler:
    /// trading on them would be trading on stale prices.
    #[arg(long, env = "FLOTILLA_CANDLE_HORIZON", default_value = "1h", value_parser = parse_duration)]
    pub candle_horizon: Duration,
}
