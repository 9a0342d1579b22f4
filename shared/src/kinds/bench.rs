//! The `bench` job kind: does nothing, sleeps, or fails on purpose. Used by
//! benchmarks, the demo and end-to-end tests of the queue itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobKind;
use crate::retry::RetryPolicy;

/// The `bench` queue's job kind.
#[derive(Debug)]
pub struct Bench;

/// How a bench job fails, when asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Every attempt fails with a transient error: retried, then dead-lettered.
    Transient,
    /// Fails with a permanent error: dead-lettered at once.
    Permanent,
    /// The handler panics (caught; treated as transient).
    Panic,
}

/// A bench job's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchJob {
    /// How long the handler sleeps, in ms (at most 600,000).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sleep_ms: u64,
    /// Fail on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<Failure>,
    /// Fail only the first N attempts, then succeed (with `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_attempts: Option<u32>,
    /// A caller's sequence number, to follow jobs through a benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The longest sleep a bench job may ask for.
pub const MAX_SLEEP: Duration = Duration::from_secs(600);

impl JobKind for Bench {
    const QUEUE: &'static str = "bench";
    type Payload = BenchJob;

    fn retry_policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            max_attempts: 3,
        }
    }

    fn validate(job: &BenchJob) -> Result<(), String> {
        if job.sleep_ms > MAX_SLEEP.as_millis() as u64 {
            return Err(format!(
                "sleep_ms is {}; the most is {}",
                job.sleep_ms,
                MAX_SLEEP.as_millis()
            ));
        }
        if job.fail_attempts.is_some() && job.fail.is_none() {
            return Err("fail_attempts needs fail".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::kinds::{PayloadError, validate_payload};
    use serde_json::json;

    #[test]
    fn a_bench_payload_is_stored_in_canonical_form() {
        assert_eq!(validate_payload("bench", &json!({})).unwrap(), "{}");
        assert_eq!(
            validate_payload("bench", &json!({"sleep_ms": 5})).unwrap(),
            r#"{"sleep_ms":5}"#
        );
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_rejected_with_the_reason() {
        let err = validate_payload("bench", &json!({"sleep_ms": "soon"})).unwrap_err();
        assert!(
            matches!(&err, PayloadError::Invalid { reason, .. } if reason.contains("invalid type")),
            "{err}"
        );
        assert!(validate_payload("bench", &json!({"sleeep_ms": 1})).is_err());
        assert!(validate_payload("bench", &json!([1, 2])).is_err());
    }

    #[test]
    fn absurd_sleeps_are_rejected() {
        let err = validate_payload("bench", &json!({"sleep_ms": 10_000_000})).unwrap_err();
        assert!(err.to_string().contains("sleep_ms"), "{err}");
    }

    #[test]
    fn unknown_queues_are_named_in_the_error() {
        let err = validate_payload("nope", &json!({})).unwrap_err();
        assert!(err.to_string().contains("known queues: bench"), "{err}");
    }
}
