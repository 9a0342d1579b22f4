//! What a handler knows about the job it runs, and how it reports failure.

use std::time::Duration;

use apalis_core::task::Task;
use apalis_core::task::from_request::FromRequest;

use crate::ids::{JobId, QueueName, TenantId};
use crate::queue::lease::LeaseToken;

/// The job a handler is running. Extract it by naming it as a handler
/// argument: `async fn handle(job: MyPayload, ctx: JobContext)`.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's id.
    pub id: JobId,
    /// Its queue.
    pub queue: QueueName,
    /// Its owner.
    pub tenant: TenantId,
    /// This attempt, from 1.
    pub attempt: u32,
    /// Attempts allowed in all.
    pub max_attempts: u32,
    /// The lease's fencing token.
    pub token: LeaseToken,
    /// When the job was enqueued (ms).
    pub enqueued_at: u64,
    /// How long it waited to be claimed.
    pub wait: Duration,
}

/// The task was not produced by Flotilla's backend.
#[derive(Debug, thiserror::Error)]
#[error("the task carries no JobContext: it did not come from a FairBackend")]
pub struct MissingJobContext;

impl<Args: Sync> FromRequest<Task<Args>> for JobContext {
    type Error = MissingJobContext;
    async fn from_request(task: &Task<Args>) -> Result<Self, Self::Error> {
        task.ctx()
            .data()
            .get::<JobContext>()
            .cloned()
            .ok_or(MissingJobContext)
    }
}

/// How a handler failed, which decides what happens next.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Might succeed later: retried with backoff, then dead-lettered.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed (bad input, a peer's 4xx): dead-lettered at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// Retry after this long (a peer's `Retry-After`), still within the
    /// attempt budget.
    #[error("{error:#} (retry after {after:?})")]
    RetryAfter {
        /// What went wrong.
        error: anyhow::Error,
        /// When to retry.
        after: Duration,
    },
}

impl JobError {
    /// A transient failure.
    pub fn transient(e: impl Into<anyhow::Error>) -> Self {
        JobError::Transient(e.into())
    }

    /// A permanent failure.
    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        JobError::Permanent(e.into())
    }
}

/// Any error converts to a transient failure, so `?` in a handler retries by
/// default; say `JobError::permanent` for what must not be retried.
impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        JobError::Transient(e)
    }
}
