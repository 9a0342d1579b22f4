//! A request to enqueue one job, as the CLI (JSON lines) and the HTTP API
//! (request bodies) receive it, parsed once into a [`NewJob`]: every check a
//! producer makes before anything reaches Redis lives here, so both edges
//! refuse the same bad input with the same words.
//!
//! - [`parse`]: JSON text into a [`JobRequest`], with every wrong field named
//! - here: a [`JobRequest`] into a validated [`NewJob`]

pub mod parse;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flotilla::ids::{IdempotencyKey, InvalidId, TenantId};
use flotilla::job::{MAX_PAYLOAD_BYTES, NewJob};
use flotilla::kinds::{PayloadError, lookup, validate_payload};

pub use parse::{FieldError, ParseError};

/// The furthest ahead a job may be scheduled: anything later is a mistake
/// (milliseconds passed as seconds, a year typo) rather than a plan.
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// One job to enqueue, before validation. Read it from JSON with
/// [`JobRequest::parse`]: `{"tenant", "payload", "idempotency_key",
/// "delay_ms", "run_at"}`, all optional at this stage.
#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    /// The tenant the job belongs to.
    pub tenant: Option<String>,
    /// The job's payload; its shape depends on the queue (absent: `{}`).
    pub payload: Option<serde_json::Value>,
    /// Deduplicates retries of the same request (same tenant, 24 h).
    pub idempotency_key: Option<String>,
    /// Run no sooner than this many milliseconds from now.
    pub delay_ms: Option<u64>,
    /// Run no sooner than this instant: RFC 3339 text or milliseconds since the epoch.
    pub run_at: Option<RunAt>,
}

/// When a job should run, as given.
#[derive(Debug, Clone)]
pub enum RunAt {
    /// Milliseconds since the Unix epoch.
    Millis(u64),
    /// RFC 3339, e.g. `2026-11-22T18:00:00Z`.
    Text(String),
}

/// Why a request cannot be enqueued. Each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No tenant given.
    #[error("tenant is missing: every job belongs to a tenant (e.g. \"tenant\": \"acme\")")]
    MissingTenant,
    /// The tenant id is not a valid slug.
    #[error(transparent)]
    Tenant(InvalidId),
    /// The idempotency key is not valid.
    #[error(transparent)]
    Key(InvalidId),
    /// Unknown queue, wrong payload, or too large.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// `run_at` does not parse.
    #[error(
        "run_at {0:?} is not a time: give RFC 3339 (2026-11-22T18:00:00Z) or milliseconds since the epoch"
    )]
    BadRunAt(String),
    /// Too far in the future.
    #[error("the job would run {ahead} from now; the limit is 365 days")]
    TooFar {
        /// The field that asked for it (`delay_ms` or `run_at`).
        field: &'static str,
        /// How far ahead, in days.
        ahead: String,
    },
    /// Both a delay and a time given.
    #[error("give delay_ms or run_at, not both")]
    DelayAndRunAt,
}

impl RequestError {
    /// Whether the payload is over the size limit (413 over HTTP).
    pub fn is_too_large(&self) -> bool {
        matches!(self, RequestError::Payload(PayloadError::TooLarge { .. }))
    }

    /// The request field at fault, as a JSON pointer (RFC 6901).
    pub fn pointer(&self) -> &'static str {
        match self {
            RequestError::MissingTenant | RequestError::Tenant(_) => "/tenant",
            RequestError::Key(_) => "/idempotency_key",
            RequestError::Payload(PayloadError::UnknownQueue(_) | PayloadError::OwnRoutes(_)) => "",
            RequestError::Payload(_) => "/payload",
            RequestError::BadRunAt(_) | RequestError::DelayAndRunAt => "/run_at",
            RequestError::TooFar { field, .. } => field,
        }
    }

    /// The error as an entry of a problem's `errors` list.
    pub fn field_error(&self) -> FieldError {
        FieldError::new(self.pointer(), self.to_string())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl JobRequest {
    /// Validates the request for `queue`; `default_tenant` fills a missing tenant.
    pub fn into_job(
        self,
        queue: &str,
        default_tenant: Option<&str>,
    ) -> Result<NewJob, RequestError> {
        let spec = lookup(queue)?;
        if !spec.enqueued_by_api {
            return Err(PayloadError::OwnRoutes(queue.to_owned()).into());
        }
        let tenant = self
            .tenant
            .as_deref()
            .or(default_tenant)
            .ok_or(RequestError::MissingTenant)?;
        let tenant = TenantId::parse(tenant).map_err(RequestError::Tenant)?;
        let raw = self.payload.unwrap_or_else(|| serde_json::json!({}));
        // Size first: an oversize payload is refused as such (413 over HTTP)
        // whatever else is wrong with it.
        let size = serde_json::to_vec(&raw).map_or(0, |v| v.len());
        if size > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge {
                size,
                limit: MAX_PAYLOAD_BYTES,
            }
            .into());
        }
        let payload = validate_payload(queue, &raw)?;
        if self.delay_ms.is_some() && self.run_at.is_some() {
            return Err(RequestError::DelayAndRunAt);
        }
        let mut job = NewJob::new(tenant, payload, spec.retry.max_attempts);
        if let Some(key) = self.idempotency_key {
            job = job.idempotency_key(IdempotencyKey::parse(&key).map_err(RequestError::Key)?);
        }
        if let Some(ms) = self.delay_ms {
            let delay = Duration::from_millis(ms);
            if delay > MAX_DELAY {
                return Err(RequestError::TooFar {
                    field: "/delay_ms",
                    ahead: days(delay),
                });
            }
            job = job.delay(delay);
        }
        if let Some(run_at) = self.run_at {
            let at_ms = match run_at {
                RunAt::Millis(ms) => ms,
                RunAt::Text(text) => humantime::parse_rfc3339_weak(&text)
                    .map_err(|_| RequestError::BadRunAt(text.clone()))?
                    .duration_since(UNIX_EPOCH)
                    .map_err(|_| RequestError::BadRunAt(text))?
                    .as_millis() as u64,
            };
            let ahead = Duration::from_millis(at_ms.saturating_sub(now_ms()));
            if ahead > MAX_DELAY {
                return Err(RequestError::TooFar {
                    field: "/run_at",
                    ahead: days(ahead),
                });
            }
            job = job.run_at_ms(at_ms);
        }
        Ok(job)
    }
}

/// A duration over the limit, in the limit's unit ("36525 days", not
/// "100years 0months...").
fn days(d: Duration) -> String {
    format!("{} days", d.as_secs().div_ceil(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> JobRequest {
        JobRequest::from_value(json).unwrap()
    }

    #[test]
    fn a_valid_request_becomes_a_job_with_the_kinds_attempts() {
        let job = request(serde_json::json!({"tenant": "acme", "payload": {"sleep_ms": 5}}))
            .into_job("bench", None)
            .unwrap();
        assert_eq!(job.tenant.as_str(), "acme");
        assert_eq!(job.payload, r#"{"sleep_ms":5}"#);
        assert_eq!(
            job.max_attempts,
            lookup("bench").unwrap().retry.max_attempts
        );
    }

    #[test]
    fn hostile_tenant_names_are_refused() {
        for bad in [
            "",
            "Acme",
            "a b",
            "x'; DROP TABLE t; --",
            "é",
            &"a".repeat(300),
        ] {
            let err = request(serde_json::json!({"tenant": bad}))
                .into_job("bench", None)
                .unwrap_err();
            assert!(matches!(err, RequestError::Tenant(_)), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_missing_tenant_can_come_from_the_default() {
        assert!(matches!(
            request(serde_json::json!({})).into_job("bench", None),
            Err(RequestError::MissingTenant)
        ));
        assert!(
            request(serde_json::json!({}))
                .into_job("bench", Some("acme"))
                .is_ok()
        );
    }

    #[test]
    fn absurd_delays_are_refused() {
        let far =
            request(serde_json::json!({"tenant": "acme", "delay_ms": 400u64 * 24 * 3600 * 1000}));
        let err = far.into_job("bench", None).unwrap_err();
        assert!(matches!(
            err,
            RequestError::TooFar {
                field: "/delay_ms",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "the job would run 400 days from now; the limit is 365 days"
        );
        let bad = request(serde_json::json!({"tenant": "acme", "run_at": "next tuesday"}));
        assert!(matches!(
            bad.into_job("bench", None),
            Err(RequestError::BadRunAt(_))
        ));
    }

    #[test]
    fn unknown_queues_and_wrong_payloads_are_told_apart() {
        let unknown = request(serde_json::json!({"tenant": "acme"}))
            .into_job("nope", None)
            .unwrap_err();
        assert!(matches!(
            unknown,
            RequestError::Payload(PayloadError::UnknownQueue(_))
        ));
        let wrong = request(serde_json::json!({"tenant": "acme", "payload": {"sleep_ms": "x"}}))
            .into_job("bench", None)
            .unwrap_err();
        assert!(matches!(
            wrong,
            RequestError::Payload(PayloadError::Invalid { .. })
        ));
    }
}
