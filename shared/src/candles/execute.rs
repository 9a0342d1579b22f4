//! One candle job's effects, in one tenant-scoped transaction: claim the
//! (strategy, interval) execution row, close the open trades the candle
//! crossed, compute the signal, size it for every active subscription and
//! write all trades in one statement, then finish the execution row.
//!
//! Exactly once: everything commits together or not at all, and the
//! execution row is UNIQUE per (strategy, interval). A redelivered job finds
//! the committed row and does nothing; a job whose worker died mid-way left
//! nothing behind and starts over; two workers racing on one interval
//! serialise on the unique index and the second finds the first's row.

use std::time::Duration;

use serde_json::json;
use sqlx::types::chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::Candle;
use super::sizing::{self, Account};
use super::strategy::{Entry, StrategySpec};
use crate::db::{DbError, tenant_transaction};
use crate::kinds::candles::CandleJob;

/// What an execution ended as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A signal, fanned out to the subscribers.
    Success,
    /// The strategy saw nothing to do.
    NoSignal,
    /// The strategy could not run (inactive, too few candles, no candle).
    Skipped,
}

impl Status {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::NoSignal => "no_signal",
            Status::Skipped => "skipped",
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// This run executed the interval.
    Executed(Report),
    /// The interval had already been executed (a redelivery or a second
    /// trigger); nothing was written.
    AlreadyDone,
}

/// The figures of an execution, as recorded in its row.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The execution row's id.
    pub execution_id: i64,
    /// How it ended.
    pub status: Status,
    /// Why it was skipped, when it was.
    pub reason: Option<String>,
    /// Active subscriptions at the time.
    pub subscribers: usize,
    /// Trades opened.
    pub trades: u64,
    /// Subscriptions sizing refused.
    pub skipped: usize,
    /// Open trades this candle closed.
    pub closed: u64,
    /// How late the run started after the candle closed (negative: early).
    pub drift: i64,
}

/// Why a run failed. `Permanent` ones cannot succeed on a retry.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The database failed; retry.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The job does not match its tenant's data.
    #[error("{0}")]
    Permanent(String),
}

impl From<sqlx::Error> for ExecError {
    fn from(e: sqlx::Error) -> Self {
        ExecError::Db(DbError::Query(e))
    }
}

/// Where the run happens, for the execution row.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The job's tenant (the strategy's owner).
    pub tenant: String,
    /// The worker running it.
    pub worker: String,
    /// When the run started, ms since the epoch.
    pub started_ms: i64,
    /// Honour the payload's test pause (first attempt only).
    pub pause: Option<Duration>,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("times within chrono's range")
}

/// Records that `job`'s interval failed for good (its last attempt, or a
/// permanent error), so the history shows it; a later run (a replay of the
/// dead job) claims the interval again. Nothing is written when the
/// interval already has an execution, or the strategy is not the tenant's.
pub async fn record_failure(
    pool: &PgPool,
    job: &CandleJob,
    ctx: &RunContext,
    reason: &str,
) -> Result<(), ExecError> {
    let mut tx = tenant_transaction(pool, &ctx.tenant).await?;
    sqlx::query(
        "INSERT INTO executions (tenant_id, strategy_id, strategy_version, interval_key, \
             scheduled_at, started_at, drift_ms, worker, status, reason) \
         SELECT $1, s.id, s.version, $3, $4, $5, $6, $7, 'failed', $8 \
           FROM strategies s WHERE s.id = $2 \
         ON CONFLICT (strategy_id, interval_key) DO NOTHING",
    )
    .bind(&ctx.tenant)
    .bind(job.strategy_id)
    .bind(&job.interval)
    .bind(at(job.close_ms))
    .bind(at(ctx.started_ms))
    .bind(ctx.started_ms - job.close_ms)
    .bind(&ctx.worker)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Runs `job` for `ctx.tenant`.
pub async fn execute(
    pool: &PgPool,
    job: &CandleJob,
    ctx: &RunContext,
) -> Result<Outcome, ExecError> {
    let clock = std::time::Instant::now();
    let mut tx = tenant_transaction(pool, &ctx.tenant).await?;
    let row = sqlx::query(
        "SELECT kind, symbol, resolution, parameters, version, active FROM strategies WHERE id = $1",
    )
    .bind(job.strategy_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(ExecError::Permanent(format!(
            "tenant {} has no strategy {}",
            ctx.tenant, job.strategy_id
        )));
    };
    let (symbol, resolution): (String, String) = (row.get("symbol"), row.get("resolution"));
    if symbol != job.symbol.as_str() || resolution != job.resolution.to_string() {
        return Err(ExecError::Permanent(format!(
            "strategy {} runs on {symbol} {resolution}, not on {} {}",
            job.strategy_id, job.symbol, job.resolution
        )));
    }
    let version: i32 = row.get("version");
    let drift = ctx.started_ms - job.close_ms;
    // Claim the interval first. The row starts as 'skipped' and gets its
    // real status before the commit; no other transaction ever sees it in
    // between, and a concurrent run of the same interval waits here on the
    // unique index until this one commits or rolls back. A row left
    // 'failed' by a run that gave up (see [`record_failure`]) is claimed
    // again: that is how a replay from the dead letter runs the interval.
    let claimed: Option<i64> = sqlx::query_scalar(
        "INSERT INTO executions (tenant_id, strategy_id, strategy_version, interval_key, \
             scheduled_at, started_at, drift_ms, worker, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'skipped') \
         ON CONFLICT (strategy_id, interval_key) DO UPDATE SET \
             strategy_version = EXCLUDED.strategy_version, started_at = EXCLUDED.started_at, \
             drift_ms = EXCLUDED.drift_ms, worker = EXCLUDED.worker, status = 'skipped', \
             reason = NULL \
         WHERE executions.status = 'failed' RETURNING id",
    )
    .bind(&ctx.tenant)
    .bind(job.strategy_id)
    .bind(version)
    .bind(&job.interval)
    .bind(at(job.close_ms))
    .bind(at(ctx.started_ms))
    .bind(drift)
    .bind(&ctx.worker)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(execution_id) = claimed else {
        return Ok(Outcome::AlreadyDone);
    };
    let mut report = Report {
        execution_id,
        status: Status::Skipped,
        reason: None,
        subscribers: 0,
        trades: 0,
        skipped: 0,
        closed: 0,
        drift,
    };
    let mut signal = None;
    if !row.get::<bool, _>("active") {
        report.reason = Some("the strategy is inactive".into());
    } else {
        let spec = StrategySpec::parse(row.get("kind"), &row.get("parameters"))
            .map_err(|e| ExecError::Permanent(format!("strategy {}: {e}", job.strategy_id)))?;
        let candles = load_candles(&mut tx, job, spec.lookback()).await?;
        match candles.last() {
            Some(last) if last.close_ms == job.close_ms => {
                report.closed = close_crossed(&mut tx, job, last, execution_id).await?;
                match spec.evaluate(&candles) {
                    Err(e) => report.reason = Some(e.to_string()),
                    Ok(None) => report.status = Status::NoSignal,
                    Ok(Some(entry)) => {
                        report.status = Status::Success;
                        fan_out(&mut tx, job, &ctx.tenant, execution_id, entry, &mut report)
                            .await?;
                        signal = Some(entry);
                    }
                }
            }
            _ => {
                report.reason = Some(format!(
                    "no {} {} candle is stored for {}",
                    job.symbol, job.resolution, job.interval
                ))
            }
        }
    }
    if let Some(pause) = ctx.pause {
        tokio::time::sleep(pause).await;
    }
    sqlx::query(
        "UPDATE executions SET status = $2, reason = $3, signal = $4, subscribers = $5, \
             trades = $6, skipped = $7, closed = $8, duration_ms = $9 WHERE id = $1",
    )
    .bind(execution_id)
    .bind(report.status.as_str())
    .bind(&report.reason)
    .bind(signal.map(|e: Entry| json!(e)))
    .bind(report.subscribers as i32)
    .bind(report.trades as i32)
    .bind(report.skipped as i32)
    .bind(report.closed as i32)
    .bind(clock.elapsed().as_millis() as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Outcome::Executed(report))
}

/// The last `n` candles up to the job's close, oldest first.
async fn load_candles(
    tx: &mut Transaction<'static, Postgres>,
    job: &CandleJob,
    n: usize,
) -> Result<Vec<Candle>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT close_time, open, high, low, close, volume FROM candles \
         WHERE symbol = $1 AND resolution = $2 AND close_time <= $3 \
         ORDER BY close_time DESC LIMIT $4",
    )
    .bind(job.symbol.as_str())
    .bind(job.resolution.to_string())
    .bind(at(job.close_ms))
    .bind(n as i64)
    .fetch_all(&mut **tx)
    .await?;
    let mut candles: Vec<Candle> = rows
        .iter()
        .map(|r| Candle {
            close_ms: r.get::<DateTime<Utc>, _>("close_time").timestamp_millis(),
            open: r.get("open"),
            high: r.get("high"),
            low: r.get("low"),
            close: r.get("close"),
            volume: r.get("volume"),
        })
        .collect();
    candles.reverse();
    Ok(candles)
}

/// Closes the strategy's trades opened before this candle whose stop or
/// target it crossed, at that price. When a candle crosses both, the stop
/// wins: a bar does not say which came first, and assuming the loss is the
/// conservative reading.
async fn close_crossed(
    tx: &mut Transaction<'static, Postgres>,
    job: &CandleJob,
    candle: &Candle,
    execution_id: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH crossed AS ( \
             SELECT id, CASE \
                 WHEN side = 'long'  AND $3 <= stop   THEN 'stop' \
                 WHEN side = 'short' AND $4 >= stop   THEN 'stop' \
                 WHEN side = 'long'  AND $4 >= target THEN 'target' \
                 WHEN side = 'short' AND $3 <= target THEN 'target' END AS reason \
             FROM strategy_trades \
             WHERE strategy_id = $1 AND status = 'open' AND opened_at < $2) \
         UPDATE strategy_trades t SET \
             status = 'closed', exit_reason = c.reason, closed_at = $2, closed_by = $5, \
             exit_price = CASE c.reason WHEN 'stop' THEN t.stop ELSE t.target END, \
             pnl = (CASE c.reason WHEN 'stop' THEN t.stop ELSE t.target END - t.entry) * t.size \
                   * CASE t.side WHEN 'long' THEN 1 ELSE -1 END \
         FROM crossed c WHERE t.id = c.id AND c.reason IS NOT NULL",
    )
    .bind(job.strategy_id)
    .bind(at(job.close_ms))
    .bind(candle.low)
    .bind(candle.high)
    .bind(execution_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Sizes `entry` for every active subscription and writes the trades in one
/// statement; a subscription sizing refuses is counted, not traded.
async fn fan_out(
    tx: &mut Transaction<'static, Postgres>,
    job: &CandleJob,
    tenant: &str,
    execution_id: i64,
    entry: Entry,
    report: &mut Report,
) -> Result<(), sqlx::Error> {
    let subs = sqlx::query(
        "SELECT id, capital, risk_pct, leverage FROM subscriptions \
         WHERE strategy_id = $1 AND status = 'active'",
    )
    .bind(job.strategy_id)
    .fetch_all(&mut **tx)
    .await?;
    report.subscribers = subs.len();
    let mut ids = Vec::with_capacity(subs.len());
    let mut sizes = Vec::with_capacity(subs.len());
    for sub in &subs {
        let account = Account {
            capital: sub.get("capital"),
            risk_pct: sub.get("risk_pct"),
            leverage: sub.get("leverage"),
        };
        match sizing::size(account, entry.entry, entry.stop) {
            Ok(position) => {
                ids.push(sub.get::<i64, _>("id"));
                sizes.push(position.size);
            }
            Err(skip) => {
                report.skipped += 1;
                tracing::debug!(subscription = sub.get::<i64, _>("id"), %skip, "no trade");
            }
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let written = sqlx::query(
        "INSERT INTO strategy_trades (tenant_id, subscription_id, execution_id, strategy_id, \
             symbol, side, entry, stop, target, size, opened_at) \
         SELECT $1, u.subscription_id, $2, $3, $4, $5, $6, $7, $8, u.size, $9 \
         FROM unnest($10::bigint[], $11::float8[]) AS u(subscription_id, size) \
         ON CONFLICT (subscription_id, execution_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(execution_id)
    .bind(job.strategy_id)
    .bind(job.symbol.as_str())
    .bind(entry.side.as_str())
    .bind(entry.entry)
    .bind(entry.stop)
    .bind(entry.target)
    .bind(at(job.close_ms))
    .bind(&ids)
    .bind(&sizes)
    .execute(&mut **tx)
    .await?;
    report.trades = written.rows_affected();
    Ok(())
}
