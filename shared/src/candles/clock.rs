//! The clock's tick: the fallback trigger at candle boundaries and the
//! reconciler. Time is an argument ([`Clock::tick`] takes `now`), so tests
//! drive it with any instant and never sleep; `flotilla-producer clock`
//! calls it at each boundary with the wall clock.
//!
//! Each tick:
//! 1. for every market (symbol, resolution) with active strategies whose
//!    resolution crossed a boundary since the last tick, enqueues the
//!    strategies' jobs for the latest stored candle when it is the one that
//!    closed at that boundary (a no-op when the feed already did: same
//!    natural key);
//! 2. reconciles: every stored candle within the horizon that closed at
//!    least one interval ago and that an active strategy has no execution
//!    row for is enqueued again. PostgreSQL is the truth; Redis may have
//!    lost the job (failover, FLUSHALL). The natural key dedupes a job still
//!    queued; Redis forgets keys after FLOTILLA_IDEMPOTENCY_TTL (24 h), but
//!    then the execution row's unique key still makes the run happen once.

use std::time::Duration;

use super::store;
use super::trigger::{self, TriggerError, Triggered};
use crate::job::NewJob;
use crate::queue::FairQueue;

/// Most missing executions one tick re-enqueues (the next tick takes more).
pub const RECONCILE_BATCH: i64 = 5_000;

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tick {
    /// Markets whose boundary passed, enqueued from their latest candle.
    pub markets: usize,
    /// Their jobs.
    pub fallback: Triggered,
    /// Intervals found without an execution, and their jobs.
    pub reconciled: Triggered,
}

/// The clock's state between ticks.
#[derive(Debug, Clone)]
pub struct Clock {
    horizon: Duration,
    last_tick_ms: Option<i64>,
}

impl Clock {
    /// A clock that looks back `horizon` (candles older than that are not
    /// executed, as the feed refuses them).
    pub fn new(horizon: Duration) -> Self {
        Clock {
            horizon,
            last_tick_ms: None,
        }
    }

    /// One tick at `now_ms`.
    pub async fn tick(
        &mut self,
        pool: &sqlx::PgPool,
        queue: &FairQueue,
        now_ms: i64,
    ) -> Result<Tick, TriggerError> {
        let horizon_ms = self.horizon.as_millis() as i64;
        let mut out = Tick::default();
        let mut jobs: Vec<NewJob> = Vec::new();
        for market in store::markets_in_use(pool).await? {
            let r = market.resolution;
            let crossed = self
                .last_tick_ms
                .is_none_or(|last| r.floor(now_ms) > r.floor(last));
            let Some(close) = market.latest_close_ms else {
                continue;
            };
            // Only the candle that closed at the boundary just crossed: an
            // older latest candle means the feed missed this one, and older
            // unexecuted candles are the reconciler's.
            if !crossed || close < r.floor(now_ms) || close > now_ms {
                continue;
            }
            out.markets += 1;
            let interval = r.interval_closing_at(close);
            for s in store::strategies_on(pool, &market.symbol, interval).await? {
                jobs.extend(trigger::job_for(&s, &market.symbol, interval));
            }
        }
        out.fallback = trigger::enqueue(queue, &jobs).await?;
        let missing =
            store::missing_executions(pool, now_ms - horizon_ms, now_ms, RECONCILE_BATCH).await?;
        let overdue: Vec<NewJob> = missing
            .iter()
            .filter(|m| m.interval.end_ms() + m.interval.resolution().millis() <= now_ms)
            .filter_map(|m| trigger::job_for(&m.strategy, &m.symbol, m.interval))
            .collect();
        out.reconciled = trigger::enqueue(queue, &overdue).await?;
        self.last_tick_ms = Some(now_ms);
        Ok(out)
    }

    /// When the next tick is due after `now_ms`: the next boundary of any
    /// resolution in use, and at least every minute (new markets).
    pub async fn next_tick_ms(
        &self,
        pool: &sqlx::PgPool,
        now_ms: i64,
    ) -> Result<i64, TriggerError> {
        let minute = super::Resolution::parse("1m").expect("1m is supported");
        Ok(store::markets_in_use(pool)
            .await?
            .iter()
            .map(|m| m.resolution.next_close(now_ms))
            .chain([minute.next_close(now_ms)])
            .min()
            .expect("the chain has one element"))
    }
}
