//! The backend's housekeeping, on timers: extends the leases of jobs this
//! worker holds, runs the queue's bounded upkeep (promotion, reaping,
//! retention), and heartbeats the worker registry.

use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, gauge};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::ledger::Ledger;
use crate::telemetry::names;

/// How often the upkeep script runs per worker.
pub(crate) const UPKEEP_EVERY: Duration = Duration::from_secs(1);
/// How often a worker heartbeats the registry; it drops out after 3 misses.
pub(crate) const REGISTRY_EVERY: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    ledger: Arc<Ledger>,
    details: Vec<(&'static str, String)>,
    stop: CancellationToken,
) {
    let queue = ledger.queue.clone();
    let label = queue.name().to_string();
    let mut extend = tokio::time::interval(queue.settings().lease / 3);
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    let mut registry = tokio::time::interval(REGISTRY_EVERY);
    for timer in [&mut extend, &mut upkeep, &mut registry] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = extend.tick() => {
                let held = ledger.held();
                match queue.extend(&held).await {
                    Ok(kept) => {
                        ledger.set_redis_ok(true);
                        for ((id, token), kept) in held.iter().zip(kept) {
                            if !kept && !ledger.is_settling(id, *token) {
                                counter!(names::LEASES_LOST, "queue" => label.clone()).increment(1);
                                warn!(job_id = %id, "lease lost (it expired before it could be extended); this run's outcome will be ignored");
                                ledger.forget(id, *token);
                            }
                        }
                    }
                    Err(e) => {
                        ledger.set_redis_ok(false);
                        counter!(names::REDIS_ERRORS, "operation" => "extend").increment(1);
                        warn!(error = %e, held = held.len(), "could not extend leases; retrying at the next tick");
                    }
                }
            }
            _ = upkeep.tick() => {
                if let Err(e) = queue.upkeep().await {
                    counter!(names::REDIS_ERRORS, "operation" => "upkeep").increment(1);
                    warn!(error = %e, "queue upkeep failed; retrying at the next tick");
                }
            }
            _ = registry.tick() => {
                match queue.heartbeat(&ledger.worker, REGISTRY_EVERY * 3, &details).await {
                    Ok(live) => gauge!(names::WORKERS_LIVE, "queue" => label.clone()).set(live as f64),
                    Err(e) => {
                        counter!(names::REDIS_ERRORS, "operation" => "heartbeat").increment(1);
                        warn!(error = %e, "worker heartbeat failed; retrying at the next tick");
                    }
                }
            }
        }
    }
}
