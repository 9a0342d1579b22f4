//! Queue-wide gauges (depth by state, oldest pending job's age, live
//! workers) and `flotilla_redis_up`, refreshed on a timer. They describe
//! the queue, not this process, so every replica reports the same values;
//! dashboards aggregate them with `max()`. Refreshing here, rather than on
//! scrape, keeps a slow Redis from making `/metrics` slow.

use std::time::Duration;

use flotilla::queue::FairQueue;
use flotilla::telemetry::names;
use metrics::gauge;
use tracing::{info, warn};

/// How often the gauges are refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3);

/// A worker counts as live if it heartbeated within this long (the backend
/// heartbeats every 5 s and drops out of the registry after 3 misses).
const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// Refreshes the gauges of `queues` for as long as the process runs.
pub async fn run(queues: Vec<FairQueue>) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        tick.tick().await;
        let mut up = true;
        for queue in &queues {
            if let Err(e) = refresh(queue).await {
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

async fn refresh(queue: &FairQueue) -> Result<(), flotilla::queue::QueueError> {
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
    gauge!(names::WORKERS_LIVE, "queue" => name).set(live.len() as f64);
    Ok(())
}
