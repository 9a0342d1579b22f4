//! A job as the queue sees it: its lifecycle states, what an enqueue carries,
//! and the status anyone can read back by id.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{IdempotencyKey, JobId, QueueName, TenantId};

/// The largest payload a job may carry. Bigger data belongs in PostgreSQL or
/// object storage, referenced from the payload.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Where a job is in its life. Every move between states is one Lua script
/// (`shared/lua/`); the diagram is in ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at`. `enqueue` puts a delayed job here; a claim or
    /// the periodic upkeep promotes it to `Pending` once due.
    Scheduled,
    /// On its tenant's queue, claimable. Reached from `enqueue`, promotion,
    /// a replay, a graceful hand-back, or an expired lease (at the head).
    Pending,
    /// Leased to one worker, which must extend the lease while it runs and
    /// settle with the lease's token. Left by settling or by lease expiry.
    Running,
    /// Failed an attempt and waits for its backoff in the scheduled set;
    /// promoted to `Pending` when due.
    Retrying,
    /// Finished. The job's record expires after the configured retention.
    Done,
    /// Gave up: out of attempts, or a permanent error. Stays in the dead
    /// letter with its error history until replayed or purged.
    Dead,
}

impl JobState {
    /// The stable name used in Redis, the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "scheduled" => JobState::Scheduled,
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "retrying" => JobState::Retrying,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            other => return Err(format!("unknown job state {other:?}")),
        })
    }
}

/// One job to enqueue. The payload is already-serialized JSON, validated for
/// its queue's job kind by the caller.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The id the job will have (unless an idempotent replay returns an older one).
    pub id: JobId,
    /// Who owns the job; fairness and caps are per tenant.
    pub tenant: TenantId,
    /// The job's JSON payload, at most [`MAX_PAYLOAD_BYTES`].
    pub payload: String,
    /// Makes the enqueue safe to repeat within the idempotency TTL.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Run no earlier than this (ms since the epoch); `None` runs now.
    pub run_at_ms: Option<u64>,
    /// Run no earlier than this long after the enqueue (on the queue's clock).
    pub delay: Duration,
    /// How many attempts before the job is dead-lettered.
    pub max_attempts: u32,
}

impl NewJob {
    /// A job for `tenant` with the given payload, a fresh id and defaults.
    pub fn new(tenant: TenantId, payload: impl Into<String>, max_attempts: u32) -> Self {
        Self {
            id: JobId::new(),
            tenant,
            payload: payload.into(),
            idempotency_key: None,
            run_at_ms: None,
            delay: Duration::ZERO,
            max_attempts,
        }
    }

    /// Sets an idempotency key.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Delays the job until `run_at_ms`.
    pub fn run_at_ms(mut self, run_at_ms: u64) -> Self {
        self.run_at_ms = Some(run_at_ms);
        self
    }

    /// Delays the job by `delay` from the moment it is enqueued.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One failed attempt, as kept in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// When it failed (ms since the epoch, Redis clock).
    pub at: u64,
    /// Which attempt failed (1-based).
    pub attempt: u32,
    /// What went wrong.
    pub error: String,
}

/// A job read back by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job's id.
    pub id: JobId,
    /// The queue it is on.
    pub queue: QueueName,
    /// Its owner.
    pub tenant: TenantId,
    /// Where it is now.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed before the dead letter.
    pub max_attempts: u32,
    /// When it was enqueued (ms).
    pub enqueued_at: u64,
    /// When it is due, for scheduled and retrying jobs (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<u64>,
    /// When its latest attempt started (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// When it finished or died (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// The worker that ran (or runs) its latest attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The most recent error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Failed attempts, oldest first (the last 20).
    pub history: Vec<Failure>,
    /// The idempotency key it was enqueued with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The payload as stored.
    pub payload: serde_json::Value,
}

impl JobStatus {
    /// Reads a job from its fields as text (see `queue::keys::JOB_FIELDS`,
    /// plus `payload` and `history`). `None` when the fields every job has
    /// are missing.
    pub fn from_hash(id: JobId, queue: QueueName, h: &HashMap<String, String>) -> Option<Self> {
        let num = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok());
        let text = |k: &str| h.get(k).filter(|v| !v.is_empty()).cloned();
        let tenant = TenantId::parse(h.get("tenant")?).ok()?;
        let state = h.get("state")?.parse().ok()?;
        let payload = h.get("payload")?;
        // The latest lease: "<token>:<started_at>:<worker>".
        let mut lease = h
            .get("lease")
            .map(|l| l.splitn(3, ':'))
            .into_iter()
            .flatten()
            .skip(1);
        let started_at = lease.next().and_then(|v| v.parse::<u64>().ok());
        let worker = lease.next().filter(|w| !w.is_empty()).map(str::to_owned);
        Some(Self {
            id,
            queue,
            tenant,
            state,
            attempts: num("attempts").unwrap_or(0) as u32,
            max_attempts: num("max_attempts").unwrap_or(1) as u32,
            enqueued_at: num("enqueued_at").unwrap_or(0),
            run_at: num("run_at")
                .filter(|_| matches!(state, JobState::Scheduled | JobState::Retrying)),
            started_at,
            finished_at: num("finished_at"),
            worker,
            last_error: text("last_error"),
            history: h
                .get("history")
                .and_then(|raw| serde_json::from_str(raw).ok())
                .unwrap_or_default(),
            idempotency_key: text("idem"),
            // A payload that is not JSON is shown as the string it is.
            payload: serde_json::from_str(payload)
                .unwrap_or_else(|_| serde_json::Value::String(payload.clone())),
        })
    }
}
