//! Turning a closed candle into jobs: one `candles` job per active strategy
//! on the market, owned by the strategy's tenant, under the natural key
//! `strategy:<id>:<interval>`, so the feed, the clock and the reconciler may
//! all enqueue the same interval and it still runs once.

use super::store::{self, Scheduled};
use super::{Interval, Symbol};
use crate::ids::TenantId;
use crate::job::NewJob;
use crate::kinds::JobKind;
use crate::kinds::candles::{CandleJob, Candles};
use crate::queue::FairQueue;
use crate::queue::enqueue::Enqueued;

/// Why jobs could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// PostgreSQL failed.
    #[error("reading the strategies failed: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis failed.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

/// What an enqueue of an interval did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Triggered {
    /// Strategies on the market.
    pub strategies: usize,
    /// Jobs enqueued now.
    pub enqueued: usize,
    /// Jobs already enqueued for the interval (same key).
    pub duplicates: usize,
}

/// The job of `strategy` on the candle of `interval`.
pub fn job_for(strategy: &Scheduled, symbol: &Symbol, interval: Interval) -> Option<NewJob> {
    let payload = CandleJob::new(strategy.id, symbol.clone(), interval);
    // Strategy rows' tenant ids are ULIDs, always valid; a row that is not
    // is skipped rather than failing every other tenant's job.
    let tenant = TenantId::parse(&strategy.tenant_id).ok()?;
    let key = payload.idempotency_key();
    let json = serde_json::to_string(&payload).expect("payloads serialize");
    Some(NewJob::new(tenant, json, Candles::retry_policy().max_attempts).idempotency_key(key))
}

/// Enqueues `jobs`, counting new ones and replays.
pub async fn enqueue(queue: &FairQueue, jobs: &[NewJob]) -> Result<Triggered, TriggerError> {
    let mut out = Triggered {
        strategies: jobs.len(),
        ..Triggered::default()
    };
    for result in queue.enqueue_batch(jobs).await? {
        match result {
            Enqueued::New(_) => out.enqueued += 1,
            // A conflict is the same interval with another payload (an older
            // build's): the interval is enqueued either way.
            Enqueued::Duplicate(_) | Enqueued::Conflict(_) => out.duplicates += 1,
        }
    }
    Ok(out)
}

/// Enqueues the interval's job for every active strategy on the market.
pub async fn enqueue_interval(
    pool: &sqlx::PgPool,
    queue: &FairQueue,
    symbol: &Symbol,
    interval: Interval,
) -> Result<Triggered, TriggerError> {
    let strategies = store::strategies_on(pool, symbol, interval).await?;
    let jobs: Vec<NewJob> = strategies
        .iter()
        .filter_map(|s| job_for(s, symbol, interval))
        .collect();
    enqueue(queue, &jobs).await
}
