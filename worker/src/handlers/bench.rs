//! The `bench` handler: does nothing, sleeps, or fails on purpose, so the
//! benchmarks, the demo and the end-to-end tests exercise the real worker
//! (middleware, backend, settling) without any business logic in the way.

use std::time::Duration;

use anyhow::anyhow;
use flotilla::backend::{JobContext, JobError};
use flotilla::kinds::bench::{BenchJob, Failure};

/// Runs one bench job: sleeps `sleep_ms`, then fails as asked while
/// `attempt <= fail_attempts` (every attempt when `fail_attempts` is unset).
pub async fn handle(job: BenchJob, ctx: JobContext) -> Result<(), JobError> {
    if job.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
    }
    let Some(failure) = job.fail else {
        return Ok(());
    };
    if job.fail_attempts.is_some_and(|n| ctx.attempt > n) {
        return Ok(());
    }
    let attempt = format!("attempt {} of {}", ctx.attempt, ctx.max_attempts);
    match failure {
        Failure::Transient => Err(JobError::transient(anyhow!(
            "bench job failing on purpose (transient), {attempt}"
        ))),
        Failure::Permanent => Err(JobError::permanent(anyhow!(
            "bench job failing on purpose (permanent), {attempt}"
        ))),
        Failure::Panic => panic!("bench job panicking on purpose, {attempt}"),
    }
}
