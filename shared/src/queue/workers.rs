//! The registry of workers consuming a queue: each heartbeats; one silent for
//! longer than the TTL is gone (and its leases expire on their own).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FairQueue, QueueError, redis_err, scripts};

/// A live worker as it last described itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its name (from the platform: DYNO, RAILWAY_REPLICA_ID, HOSTNAME).
    pub name: String,
    /// When it last heartbeated (ms).
    pub last_seen_ms: u64,
    /// What it said about itself (host, pid, concurrency, version, started_at).
    pub details: HashMap<String, String>,
}

impl FairQueue {
    /// Records that `name` is alive and consuming the queue. Returns the
    /// number of live workers.
    pub async fn heartbeat(
        &self,
        name: &str,
        ttl: Duration,
        details: &[(&str, String)],
    ) -> Result<u64, QueueError> {
        let mut inv = self.invocation(&scripts::HEARTBEAT);
        inv.arg(name).arg(ttl.as_millis() as u64);
        for (field, value) in details {
            inv.arg(*field).arg(value);
        }
        self.run("heartbeat", &inv).await
    }

    /// Removes `name` from the registry (a clean exit).
    pub async fn leave(&self, name: &str) -> Result<(), QueueError> {
        let mut conn = self.connection();
        let _: () = redis::pipe()
            .zrem(self.keys.workers(), name)
            .del(self.keys.worker(name))
            .query_async(&mut conn)
            .await
            .map_err(redis_err("leave"))?;
        Ok(())
    }

    /// Workers that heartbeated within `ttl`.
    pub async fn live_workers(&self, ttl: Duration) -> Result<Vec<WorkerInfo>, QueueError> {
        let now = self.now_ms().await?;
        let mut conn = self.connection();
        let live: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.workers())
            .arg(now.saturating_sub(ttl.as_millis() as u64))
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(redis_err("ZRANGEBYSCORE workers"))?;
        if live.is_empty() {
            // Redis rejects an empty pipeline.
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (name, _) in &live {
            pipe.hgetall(self.keys.worker(name));
        }
        let details: Vec<HashMap<String, String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(redis_err("HGETALL workers"))?;
        Ok(live
            .into_iter()
            .zip(details)
            .map(|((name, seen), details)| WorkerInfo {
                name,
                last_seen_ms: seen as u64,
                details,
            })
            .collect())
    }
}
