//! Market data, and the questions the triggers ask across tenants: which
//! strategies run on a market, which markets are in use, which intervals
//! never ran. These reads use the service's own role outside any tenant
//! scope (the `service_read` policy); every tenant-owned write goes through
//! [`crate::db::tenant_transaction`].

use sqlx::PgPool;
use sqlx::types::chrono::{DateTime, Utc};

use super::{Candle, Interval, Resolution, Symbol};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("times within chrono's range")
}

/// Stores a closed candle; `false` when that candle was already stored (the
/// first one stays: executions may have read it).
pub async fn insert_candle(
    pool: &PgPool,
    symbol: &Symbol,
    interval: Interval,
    candle: &Candle,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO candles (symbol, resolution, open_time, close_time, open, high, low, close, volume) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (symbol, resolution, close_time) DO NOTHING",
    )
    .bind(symbol.as_str())
    .bind(interval.resolution().to_string())
    .bind(at(interval.start_ms()))
    .bind(at(interval.end_ms()))
    .bind(candle.open)
    .bind(candle.high)
    .bind(candle.low)
    .bind(candle.close)
    .bind(candle.volume)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An active strategy, as the triggers need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Scheduled {
    /// Its id.
    pub id: i64,
    /// Its tenant, who owns its jobs.
    pub tenant_id: String,
}

/// The active strategies on a market, every tenant's, that existed when the
/// candle of `interval` closed (a strategy never runs on a candle older than
/// itself).
pub async fn strategies_on(
    pool: &PgPool,
    symbol: &Symbol,
    interval: Interval,
) -> Result<Vec<Scheduled>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, tenant_id FROM strategies \
         WHERE active AND symbol = $1 AND resolution = $2 AND created_at <= $3 ORDER BY id",
    )
    .bind(symbol.as_str())
    .bind(interval.resolution().to_string())
    .bind(at(interval.end_ms()))
    .fetch_all(pool)
    .await
}

/// A market with active strategies, and its latest stored candle's close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    /// The symbol.
    pub symbol: Symbol,
    /// The resolution.
    pub resolution: Resolution,
    /// The latest stored candle's close (ms), if any.
    pub latest_close_ms: Option<i64>,
}

/// Every (symbol, resolution) some active strategy runs on.
pub async fn markets_in_use(pool: &PgPool) -> Result<Vec<Market>, sqlx::Error> {
    let rows: Vec<(String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT m.symbol, m.resolution, \
             (SELECT max(c.close_time) FROM candles c \
              WHERE c.symbol = m.symbol AND c.resolution = m.resolution) \
         FROM (SELECT DISTINCT symbol, resolution FROM strategies WHERE active) m \
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        // The table's checks admit only valid symbols and resolutions.
        .filter_map(|(symbol, resolution, latest)| {
            Some(Market {
                symbol: Symbol::parse(&symbol).ok()?,
                resolution: Resolution::parse(&resolution).ok()?,
                latest_close_ms: latest.map(|t| t.timestamp_millis()),
            })
        })
        .collect())
}

/// A stored candle some active strategy has not executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The strategy.
    pub strategy: Scheduled,
    /// Its market.
    pub symbol: Symbol,
    /// The candle's interval.
    pub interval: Interval,
}

/// Stored candles that closed in `(since_ms, until_ms]` and that an active
/// strategy (older than the candle) has no execution row for; at most
/// `limit`, oldest first.
pub async fn missing_executions(
    pool: &PgPool,
    since_ms: i64,
    until_ms: i64,
    limit: i64,
) -> Result<Vec<Missing>, sqlx::Error> {
    let rows: Vec<(i64, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT s.id, s.tenant_id, s.symbol, s.resolution, c.close_time \
         FROM strategies s \
         JOIN candles c ON c.symbol = s.symbol AND c.resolution = s.resolution \
         WHERE s.active AND c.close_time > $1 AND c.close_time <= $2 \
           AND c.close_time >= s.created_at \
           AND NOT EXISTS (SELECT 1 FROM executions e \
                           WHERE e.strategy_id = s.id AND e.scheduled_at = c.close_time) \
         ORDER BY c.close_time, s.id LIMIT $3",
    )
    .bind(at(since_ms))
    .bind(at(until_ms))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, tenant_id, symbol, resolution, close)| {
            let resolution = Resolution::parse(&resolution).ok()?;
            Some(Missing {
                strategy: Scheduled { id, tenant_id },
                symbol: Symbol::parse(&symbol).ok()?,
                interval: resolution.interval_closing_at(close.timestamp_millis()),
            })
        })
        .collect())
}
