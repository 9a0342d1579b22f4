//! The job kinds Flotilla runs. Each kind names its queue explicitly (a
//! stable string, never a Rust type name, so a rename cannot orphan queued
//! jobs), its payload type, how it is validated and how it retries.

pub mod bench;
pub mod candles;
pub mod connect;
pub mod provisioning;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ids::QueueName;
use crate::retry::RetryPolicy;

/// A kind of job and its queue.
pub trait JobKind: Send + Sync + 'static {
    /// The queue's stable name.
    const QUEUE: &'static str;
    /// What a job of this kind carries: ids and parameters, not database rows.
    type Payload: Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + Unpin
        + 'static;

    /// Whether `POST /v1/jobs/{queue}` and `enqueue` may feed this queue;
    /// queues with routes of their own (tenants, candles) say no.
    const ENQUEUED_BY_API: bool = true;

    /// How failed attempts are retried.
    fn retry_policy() -> RetryPolicy;

    /// Checks a decoded payload beyond its types; the error says what to fix.
    fn validate(_payload: &Self::Payload) -> Result<(), String> {
        Ok(())
    }

    /// The queue name, parsed.
    fn queue() -> QueueName {
        QueueName::parse(Self::QUEUE).expect("job kinds name their queue with a valid slug")
    }
}

/// Why a payload cannot be enqueued on a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// No job kind uses this queue.
    #[error("unknown queue {0:?}; known queues: {known}", known = known_queues().join(", "))]
    UnknownQueue(String),
    /// The queue is fed by routes of its own, not by a generic enqueue.
    #[error(
        "queue {0:?} cannot be enqueued on directly: it is fed by its own routes (provisioning: /v1/tenants; candles: /v1/candles and the clock; connect: /v1/users/{{id}}/connect and /disconnect)"
    )]
    OwnRoutes(String),
    /// The payload is not what the queue's job kind takes.
    #[error("invalid payload for queue {queue:?}: {reason}")]
    Invalid {
        /// The queue.
        queue: String,
        /// What is wrong.
        reason: String,
    },
    /// Bigger than [`crate::job::MAX_PAYLOAD_BYTES`].
    #[error(
        "payload is {size} bytes; the limit is {limit} bytes: store big data elsewhere and pass a reference"
    )]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// What the producer side needs to know about a queue without its Rust types.
#[derive(Debug, Clone, Copy)]
pub struct QueueSpec {
    /// The queue's name.
    pub name: &'static str,
    /// How its jobs retry.
    pub retry: RetryPolicy,
    /// Whether clients may enqueue on it directly (see [`JobKind::ENQUEUED_BY_API`]).
    pub enqueued_by_api: bool,
    /// Parses, validates and re-serializes a payload in canonical form.
    pub check: fn(&serde_json::Value) -> Result<String, String>,
}

fn check<K: JobKind>(raw: &serde_json::Value) -> Result<String, String> {
    let payload: K::Payload = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    K::validate(&payload)?;
    serde_json::to_string(&payload).map_err(|e| e.to_string())
}

/// A queue's spec, for kind `K`.
pub fn spec<K: JobKind>() -> QueueSpec {
    QueueSpec {
        name: K::QUEUE,
        retry: K::retry_policy(),
        enqueued_by_api: K::ENQUEUED_BY_API,
        check: check::<K>,
    }
}

/// Every queue this build knows.
pub fn catalogue() -> Vec<QueueSpec> {
    vec![
        spec::<bench::Bench>(),
        spec::<provisioning::Provisioning>(),
        spec::<candles::Candles>(),
        spec::<connect::Connect>(),
    ]
}

/// Names of every known queue.
pub fn known_queues() -> Vec<&'static str> {
    catalogue().iter().map(|s| s.name).collect()
}

/// The spec of a queue by name.
pub fn lookup(queue: &str) -> Result<QueueSpec, PayloadError> {
    catalogue()
        .into_iter()
        .find(|s| s.name == queue)
        .ok_or_else(|| PayloadError::UnknownQueue(queue.chars().take(40).collect()))
}

/// Validates a payload for a queue: known queue, right shape, within the size
/// limit. Returns the canonical JSON to store.
pub fn validate_payload(queue: &str, raw: &serde_json::Value) -> Result<String, PayloadError> {
    let spec = lookup(queue)?;
    let canonical = (spec.check)(raw).map_err(|reason| PayloadError::Invalid {
        queue: queue.to_owned(),
        reason,
    })?;
    if canonical.len() > crate::job::MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge {
            size: canonical.len(),
            limit: crate::job::MAX_PAYLOAD_BYTES,
        });
    }
    Ok(canonical)
}
