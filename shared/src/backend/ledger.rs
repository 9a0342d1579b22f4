//! The leases one worker process holds on one queue, shared by the backend
//! (which claims), the settle layer (which reports outcomes), the settler
//! (which writes them) and the keeper (which extends leases).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::ids::JobId;
use crate::queue::FairQueue;
use crate::queue::lease::{LeaseToken, Outcome, Settlement};
use crate::retry::RetryPolicy;

/// Shared state of one backend.
#[derive(Debug)]
pub(crate) struct Ledger {
    pub(crate) queue: FairQueue,
    pub(crate) worker: String,
    pub(crate) policy: RetryPolicy,
    /// Leases held, and whether their outcome is already on its way to Redis.
    held: Mutex<HashMap<JobId, (LeaseToken, bool)>>,
    running: AtomicUsize,
    unsettled: AtomicUsize,
    settled: Notify,
    settle_tx: mpsc::Sender<Settlement>,
    redis_ok: AtomicBool,
}

impl Ledger {
    pub(crate) fn new(
        queue: FairQueue,
        worker: String,
        policy: RetryPolicy,
        settle_tx: mpsc::Sender<Settlement>,
    ) -> Self {
        Self {
            queue,
            worker,
            policy,
            held: Mutex::default(),
            running: AtomicUsize::new(0),
            unsettled: AtomicUsize::new(0),
            settled: Notify::new(),
            settle_tx,
            redis_ok: AtomicBool::new(true),
        }
    }

    pub(crate) fn hold(&self, id: JobId, token: LeaseToken) {
        self.held
            .lock()
            .expect("ledger lock")
            .insert(id, (token, false));
    }

    /// Forgets a lease, unless it was replaced by a newer one for the same job.
    pub(crate) fn forget(&self, id: &JobId, token: LeaseToken) {
        let mut held = self.held.lock().expect("ledger lock");
        if held.get(id).is_some_and(|(t, _)| *t == token) {
            held.remove(id);
        }
    }

    /// Whether this lease's outcome has been handed to the settler: a lease
    /// that then fails to extend was most likely just settled, not lost.
    pub(crate) fn is_settling(&self, id: &JobId, token: LeaseToken) -> bool {
        self.held
            .lock()
            .expect("ledger lock")
            .get(id)
            .is_none_or(|(t, settling)| *t != token || *settling)
    }

    pub(crate) fn held(&self) -> Vec<(JobId, LeaseToken)> {
        self.held
            .lock()
            .expect("ledger lock")
            .iter()
            .map(|(id, (t, _))| (*id, *t))
            .collect()
    }

    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    pub(crate) fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn finished(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Queues an outcome for the settler. Waits when the settler is far
    /// behind (Redis down): backpressure instead of unbounded memory.
    pub(crate) async fn settle(&self, id: JobId, token: LeaseToken, outcome: Outcome) {
        self.unsettled.fetch_add(1, Ordering::SeqCst);
        if let Some(entry) = self
            .held
            .lock()
            .expect("ledger lock")
            .get_mut(&id)
            .filter(|(t, _)| *t == token)
        {
            entry.1 = true;
        }
        if self
            .settle_tx
            .send(Settlement { id, token, outcome })
            .await
            .is_err()
        {
            // The settler is gone (process shutting down): the lease expires and
            // the job runs again; at-least-once holds.
            self.done_settling(1);
        }
    }

    pub(crate) fn done_settling(&self, n: usize) {
        if self.unsettled.fetch_sub(n, Ordering::SeqCst) == n {
            self.settled.notify_waiters();
        }
    }

    /// Waits until every queued outcome is written, or `limit` passes.
    pub(crate) async fn flushed(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.settled.notified();
                if self.unsettled.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    pub(crate) fn set_redis_ok(&self, ok: bool) {
        if self.redis_ok.swap(ok, Ordering::SeqCst) != ok {
            metrics::gauge!(crate::telemetry::names::REDIS_UP).set(if ok { 1.0 } else { 0.0 });
        }
    }

    pub(crate) fn redis_ok(&self) -> bool {
        self.redis_ok.load(Ordering::SeqCst)
    }
}
