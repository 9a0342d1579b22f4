//! A closed candle from a market-data feed: checked, stored, and turned into
//! one job per strategy on its market. The HTTP route and the benchmark
//! both come through here.

use std::time::Duration;

use super::trigger::{self, TriggerError, Triggered};
use super::{Candle, Interval, Resolution, Symbol, store};
use crate::queue::FairQueue;

/// How far in the future a close time may be: the feed's clock may run a
/// little ahead of ours.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// A candle as a feed reports it, parsed.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The market.
    pub symbol: Symbol,
    /// Its interval (from the resolution and the close time).
    pub interval: Interval,
    /// The bar, `close_ms` on the interval's end.
    pub candle: Candle,
}

/// Why a candle is refused; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Older than the horizon: too late to trade on.
    #[error(
        "the candle closed at {close}, {late} ago; candles older than {horizon} are refused \
         (FLOTILLA_CANDLE_HORIZON): send candles as they close"
    )]
    TooOld {
        /// Its close, RFC 3339.
        close: String,
        /// How late, readable.
        late: String,
        /// The horizon, readable.
        horizon: String,
    },
    /// Not closed yet.
    #[error("the candle closes at {close}, in the future; send it once it has closed")]
    NotClosed {
        /// Its close, RFC 3339.
        close: String,
    },
    /// PostgreSQL or Redis failed; retry.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
}

impl FeedError {
    /// True when the candle itself is at fault (422), not the services (503).
    pub fn is_input(&self) -> bool {
        !matches!(self, FeedError::Trigger(_))
    }
}

/// What an ingest did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ingested {
    /// The interval's key.
    pub interval: String,
    /// False when the same candle was already stored (the first one stays).
    pub stored: bool,
    /// How late it arrived, in ms after its close.
    pub late_ms: i64,
    /// The jobs.
    #[serde(flatten)]
    pub jobs: Triggered,
}

impl Closed {
    /// The candle of `resolution` closing at `close_ms` (on the boundary, or
    /// the millisecond before it, as feeds differ).
    pub fn new(symbol: Symbol, resolution: Resolution, close_ms: i64, mut candle: Candle) -> Self {
        let interval = resolution.interval_closing_at(close_ms);
        candle.close_ms = interval.end_ms();
        Closed {
            symbol,
            interval,
            candle,
        }
    }
}

fn rfc3339(ms: i64) -> String {
    sqlx::types::chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Checks the candle's age against `horizon` at `now_ms`, stores it and
/// enqueues its strategies.
pub async fn ingest(
    pool: &sqlx::PgPool,
    queue: &FairQueue,
    closed: &Closed,
    horizon: Duration,
    now_ms: i64,
) -> Result<Ingested, FeedError> {
    let close = closed.interval.end_ms();
    let late_ms = now_ms - close;
    if late_ms < -(CLOCK_SKEW.as_millis() as i64) {
        return Err(FeedError::NotClosed {
            close: rfc3339(close),
        });
    }
    if late_ms > horizon.as_millis() as i64 {
        return Err(FeedError::TooOld {
            close: rfc3339(close),
            late: humantime::format_duration(Duration::from_secs((late_ms / 1000) as u64))
                .to_string(),
            horizon: humantime::format_duration(horizon).to_string(),
        });
    }
    let stored = store::insert_candle(pool, &closed.symbol, closed.interval, &closed.candle)
        .await
        .map_err(TriggerError::Db)?;
    let jobs = trigger::enqueue_interval(pool, queue, &closed.symbol, closed.interval).await?;
    Ok(Ingested {
        interval: closed.interval.key(),
        stored,
        late_ms,
        jobs,
    })
}
