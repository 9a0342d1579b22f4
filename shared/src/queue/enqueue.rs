//! Enqueue, single and batch; a batch is one script call.

use sha2::{Digest, Sha256};

use super::{FairQueue, QueueError, array, as_string, scripts};
use crate::ids::JobId;
use crate::job::NewJob;

/// What an enqueue did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Enqueued under this id.
    New(JobId),
    /// The idempotency key was already used with the same payload: nothing
    /// was enqueued; this is the first job's id.
    Duplicate(JobId),
    /// The idempotency key was already used with a different payload: nothing
    /// was enqueued; this is the first job's id.
    Conflict(JobId),
}

impl Enqueued {
    /// The id of the job the caller should track.
    pub fn id(&self) -> JobId {
        match *self {
            Enqueued::New(id) | Enqueued::Duplicate(id) | Enqueued::Conflict(id) => id,
        }
    }
}

/// Most jobs one enqueue script call takes.
pub const MAX_SCRIPT_BATCH: usize = 1_000;

/// The digest an idempotent replay is compared by.
fn payload_hash(payload: &str) -> String {
    hex::encode(&Sha256::digest(payload.as_bytes())[..16])
}

impl FairQueue {
    /// Enqueues one job.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let mut out = self.enqueue_batch(std::slice::from_ref(&job)).await?;
        out.pop().ok_or(QueueError::Protocol {
            script: "enqueue",
            detail: "empty reply".into(),
        })
    }

    /// Enqueues many jobs in one atomic call; one result per job, in order.
    /// Batches above [`MAX_SCRIPT_BATCH`] jobs go out as several atomic calls
    /// (the script pushes a tenant's jobs with one call, and Lua bounds the
    /// arguments of one call).
    pub async fn enqueue_batch(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        if jobs.len() > MAX_SCRIPT_BATCH {
            let mut out = Vec::with_capacity(jobs.len());
            for chunk in jobs.chunks(MAX_SCRIPT_BATCH) {
                out.extend(Box::pin(self.enqueue_batch(chunk)).await?);
            }
            return Ok(out);
        }
        let mut inv = self.invocation(&scripts::ENQUEUE);
        for job in jobs {
            inv.arg(job.id.to_string())
                .arg(job.tenant.as_str())
                .arg(job.payload.as_str())
                .arg(job.max_attempts.max(1))
                .arg(job.run_at_ms.unwrap_or(0))
                .arg(job.delay.as_millis() as u64)
                .arg(job.idempotency_key.as_ref().map_or("", |k| k.as_str()))
                .arg(if job.idempotency_key.is_some() {
                    payload_hash(&job.payload)
                } else {
                    String::new()
                });
        }
        inv.arg(self.settings.idempotency_ttl.as_millis() as u64);
        let reply = array("enqueue", self.run("enqueue", &inv).await?)?;
        reply
            .chunks(2)
            .map(|pair| {
                let status = as_string("enqueue", &pair[0])?;
                let id = JobId::parse(&as_string("enqueue", &pair[1])?).map_err(|e| {
                    QueueError::Protocol {
                        script: "enqueue",
                        detail: e.to_string(),
                    }
                })?;
                match status.as_str() {
                    "new" => Ok(Enqueued::New(id)),
                    "dup" => Ok(Enqueued::Duplicate(id)),
                    "conflict" => Ok(Enqueued::Conflict(id)),
                    other => Err(QueueError::Protocol {
                        script: "enqueue",
                        detail: format!("status {other:?}"),
                    }),
                }
            })
            .collect()
    }
}
