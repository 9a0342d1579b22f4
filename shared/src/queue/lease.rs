//! Claiming jobs under a lease, keeping the lease, and settling the outcome.
//!
//! A claim hands out a fencing token per job; extension and settling must
//! present it, so a worker whose lease expired (and whose job may already run
//! elsewhere) can change nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FairQueue, QueueError, array, as_i64, as_string, scripts};
use crate::ids::{JobId, TenantId};

/// The fencing token of one lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseToken(pub u64);

/// A job leased to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job.
    pub id: JobId,
    /// Its owner.
    pub tenant: TenantId,
    /// The payload as enqueued (JSON, unless a producer wrote garbage).
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The lease's fencing token.
    pub token: LeaseToken,
    /// When the job was enqueued (ms).
    pub enqueued_at: u64,
    /// When it last became claimable (ms): enqueue, promotion or hand-back.
    pub ready_at: u64,
    /// When it was claimed (ms, queue clock).
    pub claimed_at: u64,
}

impl ClaimedJob {
    /// How long the job waited to be claimed since it became claimable.
    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.claimed_at.saturating_sub(self.ready_at))
    }
}

/// The result of one claim call.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    /// The leased jobs, in fair order.
    pub jobs: Vec<ClaimedJob>,
    /// The queue clock when claimed (ms).
    pub now_ms: u64,
    /// When the next scheduled job or lease deadline falls due (ms), if any:
    /// an idle worker need not look again before then unless woken.
    pub next_due_ms: Option<u64>,
}

/// What to do with a leased job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Done,
    /// Try again after `delay` (durably, from the scheduled set).
    Retry {
        /// The backoff.
        delay: Duration,
        /// What went wrong.
        error: String,
    },
    /// Give up: to the dead letter.
    Dead {
        /// What went wrong.
        error: String,
    },
    /// Hand it back unfinished, at the head of its tenant's queue, without
    /// counting the attempt (graceful shutdown).
    Release,
}

/// An outcome for a job held under `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The job.
    pub id: JobId,
    /// The lease's token.
    pub token: LeaseToken,
    /// What happened.
    pub outcome: Outcome,
}

/// What settling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Settled {
    /// Marked done.
    Done,
    /// Scheduled for a retry.
    Scheduled,
    /// In the dead letter.
    Dead,
    /// Back on its tenant's queue.
    Released,
    /// The lease was no longer the caller's: nothing changed.
    Stale,
}

/// What one upkeep pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Due scheduled jobs made claimable.
    pub promoted: u64,
    /// Expired leases returned to their queues (or the dead letter).
    pub reaped: u64,
    /// Dead jobs removed by retention.
    pub trimmed: u64,
    /// When the next scheduled job or lease falls due (ms), if any.
    pub next_due_ms: Option<u64>,
}

/// Error text stored on a job is bounded, so a huge panic message cannot bloat Redis.
const MAX_ERROR_BYTES: usize = 2048;

fn bounded(error: &str) -> &str {
    if error.len() <= MAX_ERROR_BYTES {
        return error;
    }
    let mut end = MAX_ERROR_BYTES;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

fn due(ms: i64) -> Option<u64> {
    (ms >= 0).then_some(ms as u64)
}

fn protocol(script: &'static str, detail: impl ToString) -> QueueError {
    QueueError::Protocol {
        script,
        detail: detail.to_string(),
    }
}

impl FairQueue {
    /// Leases up to `max` jobs to `worker`, fairly across tenants.
    pub async fn claim(&self, worker: &str, max: usize) -> Result<Claim, QueueError> {
        let mut inv = self.invocation(&scripts::CLAIM);
        inv.arg(worker).arg(max).arg(self.settings.upkeep_batch);
        let reply = array("claim", self.run("claim", &inv).await?)?;
        if reply.len() < 2 || (reply.len() - 2) % 8 != 0 {
            return Err(protocol("claim", format!("{} entries", reply.len())));
        }
        let now_ms = as_i64("claim", &reply[0])? as u64;
        let next_due_ms = due(as_i64("claim", &reply[1])?);
        let jobs = reply[2..]
            .chunks(8)
            .map(|f| {
                Ok(ClaimedJob {
                    id: JobId::parse(&as_string("claim", &f[0])?)
                        .map_err(|e| protocol("claim", e))?,
                    tenant: TenantId::parse(&as_string("claim", &f[1])?)
                        .map_err(|e| protocol("claim", e))?,
                    payload: as_string("claim", &f[2])?,
                    attempt: as_i64("claim", &f[3])? as u32,
                    max_attempts: as_i64("claim", &f[4])? as u32,
                    token: LeaseToken(as_i64("claim", &f[5])? as u64),
                    enqueued_at: as_i64("claim", &f[6])? as u64,
                    ready_at: as_i64("claim", &f[7])? as u64,
                    claimed_at: now_ms,
                })
            })
            .collect::<Result<_, QueueError>>()?;
        Ok(Claim {
            jobs,
            now_ms,
            next_due_ms,
        })
    }

    /// Applies outcomes to leased jobs in one call; one result per settlement.
    pub async fn settle(&self, settlements: &[Settlement]) -> Result<Vec<Settled>, QueueError> {
        if settlements.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.invocation(&scripts::SETTLE);
        // Each outcome carries only the arguments it needs (settle.lua).
        for s in settlements {
            inv.arg(s.id.to_string()).arg(s.token.0);
            match &s.outcome {
                Outcome::Done => inv.arg("done"),
                Outcome::Release => inv.arg("release"),
                Outcome::Retry { delay, error } => inv
                    .arg("retry")
                    .arg(delay.as_millis() as u64)
                    .arg(bounded(error)),
                Outcome::Dead { error } => inv.arg("dead").arg(bounded(error)),
            };
        }
        let reply = array("settle", self.run("settle", &inv).await?)?;
        reply
            .iter()
            .map(|v| match as_string("settle", v)?.as_str() {
                "done" => Ok(Settled::Done),
                "scheduled" => Ok(Settled::Scheduled),
                "dead" => Ok(Settled::Dead),
                "released" => Ok(Settled::Released),
                "stale" => Ok(Settled::Stale),
                other => Err(protocol("settle", format!("status {other:?}"))),
            })
            .collect()
    }

    /// Pushes back the lease deadline of jobs still held; `false` for a lease
    /// that is no longer the caller's.
    pub async fn extend(&self, leases: &[(JobId, LeaseToken)]) -> Result<Vec<bool>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.invocation(&scripts::EXTEND);
        for (id, token) in leases {
            inv.arg(id.to_string()).arg(token.0);
        }
        let reply = array("extend", self.run("extend", &inv).await?)?;
        reply
            .iter()
            .map(|v| Ok(as_i64("extend", v)? == 1))
            .collect()
    }

    /// One bounded upkeep pass: promotes due jobs, reaps expired leases,
    /// trims the dead letter to its retention.
    pub async fn upkeep(&self) -> Result<Upkeep, QueueError> {
        let mut inv = self.invocation(&scripts::MAINTAIN);
        inv.arg(self.settings.upkeep_batch);
        let reply = array("maintain", self.run("maintain", &inv).await?)?;
        if reply.len() != 4 {
            return Err(protocol("maintain", format!("{} entries", reply.len())));
        }
        Ok(Upkeep {
            promoted: as_i64("maintain", &reply[0])? as u64,
            reaped: as_i64("maintain", &reply[1])? as u64,
            trimmed: as_i64("maintain", &reply[2])? as u64,
            next_due_ms: due(as_i64("maintain", &reply[3])?),
        })
    }
}
