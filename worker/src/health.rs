//! Readiness: whether this worker should receive traffic and be counted as
//! capacity. Liveness (`/healthz`) is just "the process answers"; readiness
//! asks Redis each time (a PING with a short deadline), so a load balancer or
//! an operator sees a Redis outage, and the end of it, as it happens rather
//! than at the next background refresh.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tracing::debug;

/// How long a readiness PING may take before Redis counts as unreachable.
const PING_DEADLINE: Duration = Duration::from_secs(1);

/// Why the worker is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// SIGTERM or SIGINT arrived: the worker no longer claims jobs.
    ShuttingDown,
    /// Redis does not answer; the worker keeps retrying by itself.
    RedisUnreachable,
}

impl NotReady {
    /// A short, stable reason for the `/readyz` body.
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::ShuttingDown => "shutting down",
            NotReady::RedisUnreachable => "redis unreachable",
        }
    }
}

/// What `/readyz` reports.
#[derive(Debug)]
pub struct Health {
    conn: ConnectionManager,
    shutting_down: AtomicBool,
}

impl Health {
    /// Readiness over this connection.
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// From now on the worker reports not ready.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Ready, or why not.
    pub async fn check(&self) -> Result<(), NotReady> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(NotReady::ShuttingDown);
        }
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(PING_DEADLINE, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                debug!(error = %e, "readiness: Redis PING failed");
                Err(NotReady::RedisUnreachable)
            }
            Err(_) => {
                debug!(
                    deadline_ms = PING_DEADLINE.as_millis() as u64,
                    "readiness: Redis PING timed out"
                );
                Err(NotReady::RedisUnreachable)
            }
        }
    }
}
