//! Queue-wide gauges (depth by state, oldest pending job's age, live
//! workers) and `flotilla_redis_up`, refreshed on a timer. They describe
//! the queue, not this process, so every replica reports the same values;
//! dashboards aggregate them with `max()`. Refreshing here, rather than on
//! scrape, keeps a slow Redis from making `/metrics` slow.

use std::time::Duration;

use flotilla::queue::FairQueue;
use flotilla::telemetry::names;
use flotilla::tenancy::keys::TenantKeys;
use metrics::gauge;
use tracing::{info, warn};

/// How often the gauges are refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3);

/// A worker counts as live if it heartbeated within this long (the backend
/// heartbeats every 5 s and drops out of the registry after 3 misses).
const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// Registers this worker's counters at zero, so `rate()` and `increase()`
/// have a baseline from the start and alerts on them can fire on the
/// first event rather than the second.
pub fn zero_counters(queues: &[FairQueue]) {
    use flotilla::backend::classify::DeadReason;
    use metrics::counter;
    for queue in queues {
        let q = queue.name().to_string();
        for name in [
            names::JOBS_COMPLETED,
            names::JOBS_RETRIED,
            names::JOBS_RELEASED,
            names::JOBS_STALE,
            names::LEASES_LOST,
        ] {
            counter!(name, "queue" => q.clone()).absolute(0);
        }
        for reason in [
            DeadReason::Exhausted,
            DeadReason::Permanent,
            DeadReason::Undecodable,
        ] {
            counter!(names::JOBS_DEAD_LETTERED, "queue" => q.clone(), "reason" => reason.as_str())
                .absolute(0);
        }
    }
    counter!(names::PROVISIONING_FAILURES).absolute(0);
    if queues.iter().any(|q| q.name().as_str() == "connect") {
        counter!(names::CONNECT_NO_CAPACITY).absolute(0);
        counter!(names::CONNECT_MOVES).absolute(0);
    }
}

/// Refreshes the gauges of `queues` for as long as the process runs.
pub async fn run(queues: Vec<FairQueue>, tenants: TenantKeys) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        tick.tick().await;
        let mut up = true;
        for queue in &queues {
            if let Err(e) = refresh(queue, &tenants).await {
                up = false;
                if was_up {
                    warn!(queue = %queue.name(), error = %e, "cannot read queue gauges; Redis looks unreachable, retrying");
                }
                break;
            }
        }
        gauge!(names::REDIS_UP).set(if up { 1.0 } else { 0.0 });
        if up && !was_up {
            info!("Redis reachable again; queue gauges refreshed");
        }
        was_up = up;
    }
}

/// Tenants looked at for the per-tier depth on each refresh.
const MAX_TENANTS: usize = 5_000;

async fn refresh(
    queue: &FairQueue,
    tenants: &TenantKeys,
) -> Result<(), flotilla::queue::QueueError> {
    let depth = queue.depth().await?;
    let name = queue.name().to_string();
    for (state, value) in [
        ("pending", depth.pending),
        ("scheduled", depth.scheduled),
        ("running", depth.running),
        ("dead", depth.dead),
    ] {
        gauge!(names::QUEUE_DEPTH, "queue" => name.clone(), "state" => state).set(value as f64);
    }
    gauge!(names::QUEUE_OLDEST_PENDING, "queue" => name.clone())
        .set(depth.oldest_pending_ms as f64 / 1000.0);
    let live = queue.live_workers(LIVE_WITHIN).await?;
    gauge!(names::WORKERS_LIVE, "queue" => name.clone()).set(live.len() as f64);
    refresh_tiers(queue, tenants, &name).await
}

/// Pending depth per tier: tenants with pending work, looked up in their
/// Redis records (a few thousand tenants cost one pipelined round trip).
async fn refresh_tiers(
    queue: &FairQueue,
    tenants: &TenantKeys,
    name: &str,
) -> Result<(), flotilla::queue::QueueError> {
    let pending = queue.pending_by_tenant(MAX_TENANTS).await?;
    let mut tiers: Vec<Option<String>> = Vec::new();
    if !pending.is_empty() {
        let mut pipe = redis::pipe();
        for (t, _) in &pending {
            pipe.hget(tenants.record(t), "tier");
        }
        let mut conn = queue.connection();
        tiers = pipe.query_async(&mut conn).await.map_err(|source| {
            flotilla::queue::QueueError::Redis {
                action: "tenant tiers",
                source,
            }
        })?;
    }
    let mut by_tier: std::collections::BTreeMap<&str, u64> =
        ["starter", "pro", "enterprise", "none"]
            .map(|t| (t, 0))
            .into();
    for ((_, n), tier) in pending.iter().zip(&tiers) {
        let tier = match tier.as_deref() {
            Some("starter") => "starter",
            Some("pro") => "pro",
            Some("enterprise") => "enterprise",
            _ => "none",
        };
        *by_tier.entry(tier).or_default() += n;
    }
    for (tier, n) in by_tier {
        gauge!(names::QUEUE_PENDING_BY_TIER, "queue" => name.to_owned(), "tier" => tier)
            .set(n as f64);
    }
    Ok(())
}
