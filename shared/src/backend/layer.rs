//! The backend's tower layer: wraps each job's handler (and the middleware
//! inside it: timeout, catch-panic, concurrency) to record its outcome.
//! It also opens the job's tracing span and records duration metrics.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use futures::FutureExt;
use futures::future::BoxFuture;
use metrics::{counter, gauge, histogram};
use tower::{Layer, Service};
use tracing::{Instrument, info_span, warn};

use super::classify::{self, DeadReason};
use super::context::JobContext;
use super::ledger::Ledger;
use crate::queue::lease::Outcome;
use crate::telemetry::names;

/// Layer that settles every job it runs.
#[derive(Debug, Clone)]
pub struct SettleLayer {
    ledger: Arc<Ledger>,
}

impl SettleLayer {
    pub(crate) fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }
}

impl<S> Layer<S> for SettleLayer {
    type Service = SettleService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SettleService {
            inner,
            ledger: self.ledger.clone(),
        }
    }
}

/// The service [`SettleLayer`] produces.
#[derive(Debug, Clone)]
pub struct SettleService<S> {
    inner: S,
    ledger: Arc<Ledger>,
}

impl<S, Args> Service<Task<Args>> for SettleService<S>
where
    S: Service<Task<Args>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let Some(job) = task.ctx().data().get::<JobContext>().cloned() else {
            return self.inner.call(task).map(|r| r.map_err(Into::into)).boxed();
        };
        let ledger = self.ledger.clone();
        let queue = job.queue.to_string();
        let span = info_span!("job", queue = %job.queue, tenant = %job.tenant, job_id = %job.id, attempt = job.attempt);
        ledger.started();
        gauge!(names::JOBS_RUNNING, "queue" => queue.clone()).set(ledger.running() as f64);
        let fut = self.inner.call(task);
        async move {
            let started = Instant::now();
            let result = fut.await.map_err(Into::into);
            let elapsed = started.elapsed().as_secs_f64();
            let (outcome, dead) = classify::outcome(result.as_ref().map(|_| ()), job.attempt, job.max_attempts, &ledger.policy);
            let label = match (&outcome, dead) {
                (Outcome::Done, _) => "done",
                (Outcome::Retry { .. }, _) => "retry",
                _ => "dead",
            };
            histogram!(names::JOB_DURATION, "queue" => queue.clone(), "outcome" => label).record(elapsed);
            match (&outcome, dead) {
                (Outcome::Done, _) => counter!(names::JOBS_COMPLETED, "queue" => queue.clone()).increment(1),
                (Outcome::Retry { delay, error }, _) => {
                    counter!(names::JOBS_RETRIED, "queue" => queue.clone()).increment(1);
                    warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "attempt failed; retrying later");
                }
                (Outcome::Dead { error }, reason) => {
                    let reason = reason.unwrap_or(DeadReason::Exhausted);
                    counter!(names::JOBS_DEAD_LETTERED, "queue" => queue.clone(), "reason" => reason.as_str()).increment(1);
                    warn!(error = %error, reason = reason.as_str(), "job dead-lettered");
                }
                (Outcome::Release, _) => {}
            }
            ledger.settle(job.id, job.token, outcome).await;
            ledger.finished();
            gauge!(names::JOBS_RUNNING, "queue" => queue).set(ledger.running() as f64);
            result
        }
        .instrument(span)
        .boxed()
    }
}
