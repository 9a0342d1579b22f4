//! The `candles` job kind: run one strategy on one closed candle, once per
//! interval. The payload names the strategy and the candle; the job's tenant
//! is the strategy's. Natural idempotency key: [`CandleJob::idempotency_key`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobKind;
use crate::candles::{Interval, Resolution, Symbol};
use crate::ids::IdempotencyKey;
use crate::retry::RetryPolicy;

/// The `candles` queue's job kind.
#[derive(Debug)]
pub struct Candles;

/// Run strategy `strategy_id` on the candle of `symbol` and `resolution`
/// closing at `close_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandleJob {
    /// The strategy (a row of its tenant's `strategies`).
    pub strategy_id: i64,
    /// Its market.
    pub symbol: Symbol,
    /// Its candle length.
    pub resolution: Resolution,
    /// The interval's key (`5m:2026-11-22T10:05Z`), for logs and the
    /// execution row; must match `close_ms`.
    pub interval: String,
    /// The candle's close: the interval's end, ms since the epoch.
    pub close_ms: i64,
    /// Test hook: on the first attempt only, wait this long after writing
    /// the trades and before committing, so a test can kill the worker
    /// mid-job. Honoured only by a worker started with
    /// `FLOTILLA_TEST_HOOKS=1`; production workers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_before_commit_ms: Option<u64>,
}

impl CandleJob {
    /// The job for `strategy_id` on the candle of `interval`.
    pub fn new(strategy_id: i64, symbol: Symbol, interval: Interval) -> Self {
        CandleJob {
            strategy_id,
            symbol,
            resolution: interval.resolution(),
            interval: interval.key(),
            close_ms: interval.end_ms(),
            pause_before_commit_ms: None,
        }
    }

    /// The interval the job runs for.
    pub fn interval(&self) -> Interval {
        self.resolution.interval_closing_at(self.close_ms)
    }

    /// `strategy:<id>:<interval key>`: one job per strategy and interval
    /// however many triggers, feeds and clock replicas enqueue it.
    pub fn idempotency_key(&self) -> IdempotencyKey {
        IdempotencyKey::parse(&format!("strategy:{}:{}", self.strategy_id, self.interval))
            .expect("interval keys are printable ASCII without spaces")
    }
}

/// 2100-01-01T00:00Z: later close times are mistakes, and beyond what the
/// interval keys can format.
const MAX_CLOSE_MS: i64 = 4_102_444_800_000;

/// The longest a test hook may pause a job.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

impl JobKind for Candles {
    const QUEUE: &'static str = "candles";
    // Fed by POST /v1/candles and the clock, which key each run per interval.
    const ENQUEUED_BY_API: bool = false;
    type Payload = CandleJob;

    fn retry_policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_attempts: 8,
        }
    }

    fn validate(job: &CandleJob) -> Result<(), String> {
        if job.strategy_id <= 0 {
            return Err("strategy_id must be a positive strategy id".into());
        }
        if !(0..=MAX_CLOSE_MS).contains(&job.close_ms) {
            return Err(format!(
                "close_ms {} is not a time between 1970 and 2100 in ms since the epoch",
                job.close_ms
            ));
        }
        let interval = job.interval();
        if interval.end_ms() != job.close_ms {
            return Err(format!(
                "close_ms {} is not on a {} boundary; the candle closing then closes at {}",
                job.close_ms,
                job.resolution,
                interval.end_ms()
            ));
        }
        if interval.key() != job.interval {
            return Err(format!(
                "interval {:?} does not match close_ms; it is {:?}",
                job.interval,
                interval.key()
            ));
        }
        if job
            .pause_before_commit_ms
            .is_some_and(|ms| ms > MAX_PAUSE.as_millis() as u64)
        {
            return Err("pause_before_commit_ms is at most 600000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::validate_payload;
    use serde_json::json;

    fn job() -> CandleJob {
        let interval = Resolution::parse("5m")
            .unwrap()
            .interval_at(1_795_342_050_000);
        CandleJob::new(42, Symbol::parse("BTCUSDT").unwrap(), interval)
    }

    #[test]
    fn the_natural_key_names_the_strategy_and_the_interval() {
        assert_eq!(
            job().idempotency_key().as_str(),
            "strategy:42:5m:2026-11-22T10:05Z"
        );
    }

    #[test]
    fn a_candle_job_round_trips_through_the_catalogue() {
        let raw = serde_json::to_value(job()).unwrap();
        let canonical = validate_payload("candles", &raw).unwrap();
        assert_eq!(
            serde_json::from_str::<CandleJob>(&canonical).unwrap(),
            job()
        );
    }

    #[test]
    fn a_close_off_the_boundary_or_a_wrong_key_is_refused() {
        let mut raw = serde_json::to_value(job()).unwrap();
        raw["close_ms"] = json!(job().close_ms + 1);
        let err = validate_payload("candles", &raw).unwrap_err().to_string();
        assert!(err.contains("boundary"), "{err}");
        let mut raw = serde_json::to_value(job()).unwrap();
        raw["interval"] = json!("5m:2026-11-22T10:00Z");
        let err = validate_payload("candles", &raw).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        let mut raw = serde_json::to_value(job()).unwrap();
        raw["close_ms"] = json!(i64::MAX);
        let err = validate_payload("candles", &raw).unwrap_err().to_string();
        assert!(err.contains("between 1970 and 2100"), "{err}");
    }
}
