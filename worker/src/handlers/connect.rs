//! The `connect` handler: connects, disconnects or moves one user through
//! [`flotilla::connect::run::Connector`]. A host's 4xx dead-letters the job
//! with the host's answer; anything else retries with backoff, and the last
//! attempt marks the user failed with the reason, so the API shows why.

use anyhow::anyhow;
use flotilla::backend::{JobContext, JobError};
use flotilla::connect::run::{Connector, Done, RunError};
use flotilla::kinds::connect::{ConnectAction, ConnectJob};
use flotilla::telemetry::names;
use tracing::{info, warn};

/// Runs one connect job.
pub async fn handle(
    connector: Connector,
    job: ConnectJob,
    ctx: JobContext,
) -> Result<(), JobError> {
    let tenant = &ctx.tenant;
    let user = &job.user;
    let result = match job.action {
        ConnectAction::Connect => connector.connect(tenant, user, None).await,
        ConnectAction::Move => connector.connect(tenant, user, job.from.as_ref()).await,
        ConnectAction::Disconnect => connector.disconnect(tenant, user).await,
    };
    match result {
        Ok(Done::Connected { host, left }) => {
            if let Some(left) = &left {
                metrics::counter!(names::CONNECT_MOVES).increment(1);
                info!(%tenant, %user, %host, from = %left, "user moved");
            } else {
                info!(%tenant, %user, %host, "user connected");
            }
            Ok(())
        }
        Ok(Done::AlreadyConnected(host)) => {
            info!(%tenant, %user, %host, "user already connected");
            Ok(())
        }
        Ok(Done::Disconnected) => {
            info!(%tenant, %user, "user disconnected");
            Ok(())
        }
        Ok(Done::Stale(why)) => {
            info!(%tenant, %user, action = job.action.as_str(), why, "nothing to do");
            Ok(())
        }
        Err(e) if e.is_permanent() => Err(JobError::permanent(anyhow!(e))),
        Err(e) => {
            if matches!(e, RunError::NoCapacity) {
                metrics::counter!(names::CONNECT_NO_CAPACITY).increment(1);
            }
            if ctx.attempt >= ctx.max_attempts
                && let Err(mark) = connector.fail(tenant, user, &e.to_string()).await
            {
                warn!(%tenant, %user, error = %mark, "could not mark the user failed");
            }
            Err(JobError::transient(anyhow!(e)))
        }
    }
}
