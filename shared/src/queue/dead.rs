//! The dead letter: list, replay and purge, one job or in bounded batches.

use super::{FairQueue, QueueError, array, as_i64, as_string, redis_err, scripts};
use crate::ids::{JobId, TenantId};
use crate::job::JobStatus;

/// Which dead jobs a bulk replay or purge touches.
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    /// Only this tenant's jobs; `None` for all.
    pub tenant: Option<TenantId>,
    /// Only jobs that died at or before this time (ms); `None` for all up to now.
    pub died_before_ms: Option<u64>,
}

/// How far a bulk replay or purge has got, for progress reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Jobs replayed or purged so far.
    pub done: u64,
    /// Dead jobs left in the queue (any tenant).
    pub remaining: u64,
}

/// Jobs examined per script call of a bulk replay or purge.
const WALK_BATCH: u32 = 500;

fn protocol(script: &'static str, detail: impl ToString) -> QueueError {
    QueueError::Protocol {
        script,
        detail: detail.to_string(),
    }
}

impl FairQueue {
    /// Dead jobs, newest first: up to `limit` after skipping `offset`,
    /// optionally of one tenant (that filter examines at most the newest
    /// 10,000 dead jobs).
    pub async fn dead_jobs(
        &self,
        tenant: Option<&TenantId>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<JobStatus>, QueueError> {
        let Some(tenant) = tenant else {
            let ids = self.dead_ids(offset, limit).await?;
            return Ok(self.jobs(&ids).await?.into_iter().flatten().collect());
        };
        let mut found = Vec::new();
        let mut matched = 0;
        let mut start = 0;
        while found.len() < limit && start < 10_000 {
            let ids = self.dead_ids(start, 200).await?;
            if ids.is_empty() {
                break;
            }
            start += ids.len();
            for job in self
                .jobs(&ids)
                .await?
                .into_iter()
                .flatten()
                .filter(|j| j.tenant == *tenant)
            {
                matched += 1;
                if matched > offset && found.len() < limit {
                    found.push(job);
                }
            }
        }
        Ok(found)
    }

    async fn dead_ids(&self, offset: usize, count: usize) -> Result<Vec<JobId>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.connection();
        let ids: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(self.keys.dead())
            .arg(offset)
            .arg(offset + count - 1)
            .query_async(&mut conn)
            .await
            .map_err(redis_err("ZREVRANGE dead"))?;
        Ok(ids.iter().filter_map(|s| JobId::parse(s).ok()).collect())
    }

    /// Replays dead jobs by id. Returns, per id, whether it was in the dead letter.
    pub async fn replay(&self, ids: &[JobId]) -> Result<Vec<bool>, QueueError> {
        self.by_ids(&scripts::REPLAY, "replay", "replayed", ids)
            .await
    }

    /// Purges dead jobs by id. Returns, per id, whether it was in the dead letter.
    pub async fn purge(&self, ids: &[JobId]) -> Result<Vec<bool>, QueueError> {
        self.by_ids(&scripts::PURGE, "purge", "purged", ids).await
    }

    /// Replays every dead job matching `filter`, in bounded batches, calling
    /// `progress` after each. Returns how many were replayed.
    pub async fn replay_all(
        &self,
        filter: &DeadFilter,
        progress: impl FnMut(Progress),
    ) -> Result<u64, QueueError> {
        self.walk(&scripts::REPLAY, "replay", filter, progress)
            .await
    }

    /// Purges every dead job matching `filter`, in bounded batches, calling
    /// `progress` after each. Returns how many were purged.
    pub async fn purge_all(
        &self,
        filter: &DeadFilter,
        progress: impl FnMut(Progress),
    ) -> Result<u64, QueueError> {
        self.walk(&scripts::PURGE, "purge", filter, progress).await
    }

    async fn by_ids(
        &self,
        script: &redis::Script,
        name: &'static str,
        ok: &str,
        ids: &[JobId],
    ) -> Result<Vec<bool>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.invocation(script);
        inv.arg("ids");
        for id in ids {
            inv.arg(id.to_string());
        }
        let reply = array(name, self.run(name, &inv).await?)?;
        reply
            .iter()
            .map(|v| Ok(as_string(name, v)? == ok))
            .collect()
    }

    async fn walk(
        &self,
        script: &redis::Script,
        name: &'static str,
        filter: &DeadFilter,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64, QueueError> {
        // Fix the upper bound once, so jobs that die during a long replay are
        // left for the next one rather than replayed in a loop.
        let until = match filter.died_before_ms {
            Some(ms) => ms,
            None => self.now_ms().await?,
        };
        let tenant = filter.tenant.as_ref().map_or("", |t| t.as_str());
        let (mut score, mut skip) = ("0".to_string(), 0i64);
        let mut total = 0u64;
        loop {
            let mut inv = self.invocation(script);
            inv.arg("walk")
                .arg(tenant)
                .arg(until)
                .arg(&score)
                .arg(skip)
                .arg(WALK_BATCH);
            let reply = array(name, self.run(name, &inv).await?)?;
            if reply.len() != 4 {
                return Err(protocol(name, format!("{} entries", reply.len())));
            }
            total += as_i64(name, &reply[0])? as u64;
            score = as_string(name, &reply[1])?;
            skip = as_i64(name, &reply[2])?;
            let finished = as_i64(name, &reply[3])? == 1;
            let mut conn = self.connection();
            let remaining: u64 = redis::cmd("ZCARD")
                .arg(self.keys.dead())
                .query_async(&mut conn)
                .await
                .map_err(redis_err("ZCARD dead"))?;
            progress(Progress {
                done: total,
                remaining,
            });
            if finished {
                return Ok(total);
            }
        }
    }
}
