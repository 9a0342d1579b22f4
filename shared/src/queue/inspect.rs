//! Read-only views: a job by id, and the queue's depth by state.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::keys::JOB_FIELDS;
use super::{FairQueue, QueueError, array, as_i64, as_string, redis_err, scripts};
use crate::ids::{JobId, TenantId};
use crate::job::JobStatus;

/// How many tenants' queue heads [`FairQueue::depth`] reads for the oldest
/// pending age: enough for any fleet's busy tenants, bounded so a gauge
/// never holds Redis for long.
pub const DEPTH_SCAN_TENANTS: usize = 1_000;

/// How much work a queue holds, by state, plus its lifetime counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// Claimable jobs.
    pub pending: u64,
    /// Delayed jobs and retries waiting for their backoff.
    pub scheduled: u64,
    /// Leased jobs.
    pub running: u64,
    /// Jobs in the dead letter.
    pub dead: u64,
    /// How long the oldest claimable job has waited (ms); 0 when none.
    pub oldest_pending_ms: u64,
    /// Tenants with claimable work.
    pub tenants_ready: u64,
    /// Tenants with work parked at their in-flight cap.
    pub tenants_blocked: u64,
    /// Lifetime counters of the queue across the fleet.
    pub totals: Totals,
}

/// Lifetime counters kept in the queue's `meta` hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Jobs enqueued (idempotent replays excluded).
    pub enqueued: u64,
    /// Jobs done.
    pub completed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Jobs that reached the dead letter.
    pub dead_lettered: u64,
    /// Leases that expired (a worker died or stalled).
    pub lease_expired: u64,
}

impl FairQueue {
    /// The job with this id on this queue, if it exists (finished jobs are
    /// deleted after the queue's `finished_ttl`).
    pub async fn job(&self, id: JobId) -> Result<Option<JobStatus>, QueueError> {
        Ok(self.jobs(&[id]).await?.pop().flatten())
    }

    /// Several jobs at once (one round trip), in the order asked; `None` for
    /// those that are gone.
    pub async fn jobs(&self, ids: &[JobId]) -> Result<Vec<Option<JobStatus>>, QueueError> {
        if ids.is_empty() {
            // Redis rejects HMGET without fields.
            return Ok(Vec::new());
        }
        let fields: Vec<String> = ids.iter().map(JobId::to_string).collect();
        let mut pipe = redis::pipe();
        for name in JOB_FIELDS {
            pipe.cmd("HMGET")
                .arg(self.keys.job_field(name))
                .arg(&fields);
        }
        pipe.cmd("HMGET").arg(self.keys.payloads()).arg(&fields);
        pipe.cmd("HMGET").arg(self.keys.history()).arg(&fields);
        let mut conn = self.connection();
        let columns: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(redis_err("HMGET jobs"))?;
        let (payloads, history) = (&columns[JOB_FIELDS.len()], &columns[JOB_FIELDS.len() + 1]);
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut h: HashMap<String, String> = JOB_FIELDS
                    .iter()
                    .zip(&columns)
                    .filter_map(|(name, column)| Some((name.to_string(), column[i].clone()?)))
                    .collect();
                h.insert("payload".into(), payloads[i].clone()?);
                if let Some(history) = &history[i] {
                    h.insert("history".into(), history.clone());
                }
                JobStatus::from_hash(*id, self.name.clone(), &h)
            })
            .collect())
    }

    /// The queue's depth by state, read in one round trip.
    ///
    /// The oldest pending age is read from the heads of the queues of up to
    /// [`DEPTH_SCAN_TENANTS`] tenants with work (those served next) and as
    /// many capped ones; the count of pending jobs is exact.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let mut inv = self.invocation(&scripts::DEPTH);
        inv.arg(DEPTH_SCAN_TENANTS);
        let reply = array("depth", self.run("depth", &inv).await?)?;
        if reply.len() < 8 || reply.len() % 2 != 0 {
            return Err(QueueError::Protocol {
                script: "depth",
                detail: format!("{} entries", reply.len()),
            });
        }
        let n = |i: usize| as_i64("depth", &reply[i]).map(|v| v.max(0) as u64);
        let now = n(0)?;
        let oldest = as_i64("depth", &reply[2])?;
        let mut meta = HashMap::new();
        for pair in reply[8..].chunks(2) {
            meta.insert(as_string("depth", &pair[0])?, as_string("depth", &pair[1])?);
        }
        let counter = |name: &str| meta.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            queue: self.name.to_string(),
            pending: n(1)?,
            scheduled: n(3)?,
            running: n(4)?,
            dead: n(5)?,
            oldest_pending_ms: if oldest < 0 {
                0
            } else {
                now.saturating_sub(oldest as u64)
            },
            tenants_ready: n(6)?,
            tenants_blocked: n(7)?,
            totals: Totals {
                enqueued: counter("enqueued"),
                completed: counter("completed"),
                retried: counter("retried"),
                dead_lettered: counter("dead_lettered"),
                lease_expired: counter("lease_expired"),
            },
        })
    }

    /// Pending jobs per tenant, for tenants with pending work (at most
    /// `max_tenants` of them: the ones served next, then capped ones).
    pub async fn pending_by_tenant(
        &self,
        max_tenants: usize,
    ) -> Result<Vec<(TenantId, u64)>, QueueError> {
        let k = &self.keys;
        let mut conn = self.connection();
        let (ready, blocked): (Vec<String>, Vec<String>) = redis::pipe()
            .zrange(k.ready(), 0, max_tenants.saturating_sub(1) as isize)
            .srandmember_multiple(k.blocked(), max_tenants as isize)
            .query_async(&mut conn)
            .await
            .map_err(redis_err("pending by tenant"))?;
        let tenants: Vec<TenantId> = ready
            .iter()
            .chain(blocked.iter())
            .filter_map(|t| TenantId::parse(t).ok())
            .take(max_tenants)
            .collect();
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in &tenants {
            pipe.llen(k.tenant_queue(t));
        }
        let lengths: Vec<u64> = pipe
            .query_async(&mut conn)
            .await
            .map_err(redis_err("pending by tenant"))?;
        Ok(tenants.into_iter().zip(lengths).collect())
    }
}
