//! Turns a handler's result into a durable outcome for the queue.

use std::time::Duration;

use apalis_core::error::{AbortError, BoxDynError, RetryAfterError};

use super::context::JobError;
use crate::queue::lease::Outcome;
use crate::retry::{AttemptError, Decision, RetryPolicy, decide};

/// Why a job went to the dead letter, for the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// Out of attempts.
    Exhausted,
    /// A permanent error.
    Permanent,
    /// The payload did not decode or validate.
    Undecodable,
}

impl DeadReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Exhausted => "exhausted",
            DeadReason::Permanent => "permanent",
            DeadReason::Undecodable => "undecodable",
        }
    }
}

/// The error's message with its causes, `a: b: c`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}

/// What failed, and whether a retry can help. Errors of apalis' own
/// vocabulary are honoured: `AbortError` is permanent, `RetryAfterError`
/// carries its delay; timeouts and panics are transient.
fn attempt_error(err: &BoxDynError) -> (AttemptError, Option<Duration>) {
    if let Some(e) = err.downcast_ref::<JobError>() {
        return match e {
            JobError::Permanent(_) => (AttemptError::Permanent(e.to_string()), None),
            JobError::Transient(_) => (AttemptError::Transient(e.to_string()), None),
            JobError::RetryAfter { after, .. } => {
                (AttemptError::Transient(e.to_string()), Some(*after))
            }
        };
    }
    if err.downcast_ref::<AbortError>().is_some() {
        return (AttemptError::Permanent(chain(err.as_ref())), None);
    }
    if let Some(e) = err.downcast_ref::<RetryAfterError>() {
        return (
            AttemptError::Transient(chain(err.as_ref())),
            Some(e.get_duration()),
        );
    }
    if err
        .downcast_ref::<tower::timeout::error::Elapsed>()
        .is_some()
    {
        return (
            AttemptError::Transient(
                "timed out: the handler ran longer than the job timeout".into(),
            ),
            None,
        );
    }
    (AttemptError::Transient(chain(err.as_ref())), None)
}

/// The outcome to record for an attempt, and the dead-letter reason if any.
pub fn outcome(
    result: Result<(), &BoxDynError>,
    attempt: u32,
    max_attempts: u32,
    policy: &RetryPolicy,
) -> (Outcome, Option<DeadReason>) {
    let Err(err) = result else {
        return (Outcome::Done, None);
    };
    let (error, retry_after) = attempt_error(err);
    let permanent = matches!(error, AttemptError::Permanent(_));
    match decide(policy, attempt, max_attempts, error, &mut rand::rng()) {
        Decision::Retry { delay, error } => (
            Outcome::Retry {
                delay: retry_after.unwrap_or(delay),
                error,
            },
            None,
        ),
        Decision::Bury { error } => {
            let reason = if permanent {
                DeadReason::Permanent
            } else {
                DeadReason::Exhausted
            };
            (Outcome::Dead { error }, Some(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        max_attempts: 3,
    };

    fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> BoxDynError {
        Box::new(e)
    }

    #[test]
    fn success_is_done() {
        assert_eq!(outcome(Ok(()), 1, 3, &POLICY), (Outcome::Done, None));
    }

    #[test]
    fn a_permanent_job_error_is_dead_lettered_at_once() {
        let err = boxed(JobError::permanent(anyhow::anyhow!("tenant slug is taken")));
        let (o, reason) = outcome(Err(&err), 1, 3, &POLICY);
        assert!(matches!(o, Outcome::Dead { error } if error.contains("tenant slug is taken")));
        assert_eq!(reason, Some(DeadReason::Permanent));
    }

    #[test]
    fn a_transient_error_on_the_last_attempt_is_exhausted() {
        let err = boxed(JobError::transient(anyhow::anyhow!("connection reset")));
        assert!(matches!(
            outcome(Err(&err), 1, 3, &POLICY).0,
            Outcome::Retry { .. }
        ));
        assert_eq!(
            outcome(Err(&err), 3, 3, &POLICY).1,
            Some(DeadReason::Exhausted)
        );
    }

    #[test]
    fn retry_after_is_honoured() {
        let err = boxed(JobError::RetryAfter {
            error: anyhow::anyhow!("429"),
            after: Duration::from_secs(7),
        });
        assert!(
            matches!(outcome(Err(&err), 1, 3, &POLICY).0, Outcome::Retry { delay, .. } if delay == Duration::from_secs(7))
        );
    }

    #[test]
    fn apalis_abort_errors_are_permanent_and_other_errors_transient() {
        let abort: BoxDynError = Box::new(AbortError::new("no"));
        assert_eq!(
            outcome(Err(&abort), 1, 3, &POLICY).1,
            Some(DeadReason::Permanent)
        );
        let io: BoxDynError = Box::new(std::io::Error::other("disk"));
        assert!(
            matches!(outcome(Err(&io), 1, 3, &POLICY).0, Outcome::Retry { error, .. } if error == "disk")
        );
    }
}
