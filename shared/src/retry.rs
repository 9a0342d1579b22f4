//! What happens after a failed attempt: the per-kind retry policy and the
//! decision between retrying later and the dead letter.
//!
//! Retries are durable: the decision is written to Redis (the job moves to the
//! scheduled set), never slept on in-process, so a retry survives the worker
//! and does not hold a concurrency slot while it waits.

use std::time::Duration;

use rand::Rng;

/// How a job kind retries: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The backoff ceiling before the first retry.
    pub base: Duration,
    /// No backoff is longer than this.
    pub cap: Duration,
    /// Attempts in all (the first run counts), before the dead letter.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The largest delay after `attempt` (1-based) failed: `min(cap, base * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A delay drawn uniformly from `[0, ceiling(attempt)]` ("full jitter"), so
    /// jobs that failed together do not come back together.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=ceiling))
    }
}

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// Might work next time (timeouts, 5xx, lost connections, panics).
    Transient(String),
    /// Will never work (payload does not decode, validation failed, a 4xx):
    /// straight to the dead letter.
    Permanent(String),
}

/// The durable next step for a job after an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Back to the scheduled set after this delay.
    Retry {
        /// The backoff.
        delay: Duration,
        /// What went wrong.
        error: String,
    },
    /// To the dead letter.
    Bury {
        /// What went wrong, and why there is no retry.
        error: String,
    },
}

/// Decides between a retry and the dead letter for a failed `attempt` of a
/// job allowed `max_attempts` attempts.
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    max_attempts: u32,
    err: AttemptError,
    rng: &mut impl Rng,
) -> Decision {
    match err {
        AttemptError::Permanent(e) => Decision::Bury {
            error: format!("permanent error: {e}"),
        },
        AttemptError::Transient(e) if attempt >= max_attempts => Decision::Bury {
            error: format!("gave up after {attempt} attempt(s): {e}"),
        },
        AttemptError::Transient(error) => Decision::Retry {
            delay: policy.backoff(attempt, rng),
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
        max_attempts: 5,
    };

    #[test]
    fn the_backoff_ceiling_doubles_per_attempt_up_to_the_cap() {
        let ceilings: Vec<u128> = (1..=7).map(|a| POLICY.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(POLICY.ceiling(500), Duration::from_secs(2));
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_spreads_out() {
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..1000).map(|_| POLICY.backoff(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(delays.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(300)));
    }

    #[test]
    fn a_permanent_error_is_buried_on_the_first_attempt() {
        let mut rng = StdRng::seed_from_u64(1);
        let d = decide(
            &POLICY,
            1,
            5,
            AttemptError::Permanent("bad payload".into()),
            &mut rng,
        );
        assert!(matches!(d, Decision::Bury { error } if error.contains("bad payload")));
    }

    #[test]
    fn a_transient_error_retries_until_the_last_attempt() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(
            decide(
                &POLICY,
                4,
                5,
                AttemptError::Transient("timeout".into()),
                &mut rng
            ),
            Decision::Retry { .. }
        ));
        let last = decide(
            &POLICY,
            5,
            5,
            AttemptError::Transient("timeout".into()),
            &mut rng,
        );
        assert!(matches!(last, Decision::Bury { error } if error.contains("after 5 attempt")));
    }
}
