//! The `candles` handler: runs one strategy on one closed candle through
//! [`flotilla::candles::execute`], which makes the effects exactly-once, and
//! records the fan-out size and the drift.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use flotilla::backend::{JobContext, JobError};
use flotilla::candles::execute::{ExecError, Outcome, RunContext, execute, record_failure};
use flotilla::kinds::candles::CandleJob;
use flotilla::telemetry::names;
use metrics::histogram;
use sqlx::PgPool;

/// Whether this worker honours test hooks in payloads (`FLOTILLA_TEST_HOOKS=1`).
fn test_hooks() -> bool {
    static ON: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var("FLOTILLA_TEST_HOOKS").is_ok_and(|v| v == "1"));
    *ON
}

/// Runs `job` for its tenant on `db`, as `worker`.
pub async fn handle(
    db: PgPool,
    worker: String,
    job: CandleJob,
    ctx: JobContext,
) -> Result<(), JobError> {
    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let run = RunContext {
        tenant: ctx.tenant.to_string(),
        worker,
        started_ms,
        // The test hook holds only the first attempt, so the redelivery
        // runs through; production workers never hold a transaction open.
        pause: job
            .pause_before_commit_ms
            .filter(|_| ctx.attempt == 1 && test_hooks())
            .map(Duration::from_millis),
    };
    match execute(&db, &job, &run).await {
        Ok(Outcome::Executed(report)) => {
            histogram!(names::CANDLE_FANOUT_SIZE).record(report.subscribers as f64);
            histogram!(names::CANDLE_DRIFT).record(report.drift.max(0) as f64 / 1000.0);
            tracing::info!(
                strategy = job.strategy_id,
                interval = %job.interval,
                status = report.status.as_str(),
                subscribers = report.subscribers,
                trades = report.trades,
                closed = report.closed,
                drift_ms = report.drift,
                "candle executed"
            );
            Ok(())
        }
        Ok(Outcome::AlreadyDone) => {
            tracing::info!(strategy = job.strategy_id, interval = %job.interval, "already executed");
            Ok(())
        }
        Err(ExecError::Permanent(reason)) => {
            give_up(&db, &job, &run, &reason).await;
            Err(JobError::permanent(anyhow!(reason)))
        }
        Err(e) => {
            if ctx.attempt >= ctx.max_attempts {
                give_up(&db, &job, &run, &e.to_string()).await;
            }
            Err(JobError::transient(e))
        }
    }
}

/// The job goes to the dead letter: its interval shows as failed, with why.
async fn give_up(db: &PgPool, job: &CandleJob, run: &RunContext, reason: &str) {
    if let Err(e) = record_failure(db, job, run, reason).await {
        tracing::warn!(strategy = job.strategy_id, interval = %job.interval, error = %e,
            "could not record the failed execution");
    }
}
