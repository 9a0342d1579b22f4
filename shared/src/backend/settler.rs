//! Writes outcomes to Redis in batches: under load many acks share one script
//! call; at low load each goes out at once. A failed write is retried (with
//! backoff) until it succeeds: an outcome is never dropped while the process
//! lives.

use std::sync::Arc;
use std::time::Duration;

use metrics::counter;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::ledger::Ledger;
use crate::queue::lease::{Settled, Settlement};
use crate::telemetry::names;

/// Most outcomes written per script call.
const BATCH: usize = 512;

pub(crate) async fn run(ledger: Arc<Ledger>, mut rx: mpsc::Receiver<Settlement>) {
    let queue_label = ledger.queue.name().to_string();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(50);
        let results = loop {
            match ledger.queue.settle(&batch).await {
                Ok(results) => {
                    ledger.set_redis_ok(true);
                    break results;
                }
                Err(e) => {
                    ledger.set_redis_ok(false);
                    counter!(names::REDIS_ERRORS, "operation" => "settle").increment(1);
                    warn!(error = %e, pending = batch.len(), "could not record job outcomes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        };
        for (s, result) in batch.iter().zip(&results) {
            ledger.forget(&s.id, s.token);
            match result {
                Settled::Stale => {
                    counter!(names::JOBS_STALE, "queue" => queue_label.clone()).increment(1);
                    warn!(job_id = %s.id, "outcome ignored: the lease had expired and the job was handed to another worker");
                }
                Settled::Released => {
                    counter!(names::JOBS_RELEASED, "queue" => queue_label.clone()).increment(1)
                }
                _ => debug!(job_id = %s.id, ?result, "settled"),
            }
        }
        ledger.done_settling(batch.len());
        batch.clear();
    }
}
