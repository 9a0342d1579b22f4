//! `POST /v1/jobs/{queue}` enqueues one job; `GET /v1/jobs/{id}` follows it.
//!
//! Statuses: 202 accepted (also for an idempotent replay, which answers with
//! the first job's id and `"duplicate": true`), 404 unknown queue or job,
//! 413 too large, 415 not JSON, 400 malformed JSON, 422 a request that is
//! JSON but wrong (fields, tenant, payload, delay, an idempotency key reused
//! with a different payload), 503 Redis unreachable. Nothing is enqueued
//! unless the answer is 202.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flotilla::ids::JobId;
use flotilla::queue::FairQueue;
use flotilla::queue::enqueue::Enqueued;
use flotilla::tenancy::quota::{self, Quota};
use metrics::counter;
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::body::job_request;
use super::problem::Problem;

/// The answer to an accepted enqueue (and to its idempotent replays).
#[derive(Debug, Serialize)]
struct Accepted {
    id: String,
    queue: String,
    tenant: String,
    /// `pending` or `scheduled` for a new job; a replay reports the first
    /// job's state now (`expired` once a finished job's record is gone).
    state: String,
    /// True when this request replayed an earlier one with the same key.
    duplicate: bool,
}

/// `POST /v1/jobs/{queue}`.
pub async fn enqueue(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(queue_name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match accept(&state, &caller, &queue_name, &headers, body).await {
        Ok(r) => r,
        Err(p) => p.into_response(),
    }
}

async fn accept(
    state: &AppState,
    caller: &Caller,
    queue_name: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    // An unknown queue is a missing resource, whatever the body says.
    let queue = state
        .queues
        .get(queue_name)
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, e.to_string()))?;
    caller.require_writable()?;
    let mut request = job_request(headers, body)?;
    // A tenant key enqueues for its own tenant, whatever the body says.
    if let Some(own) = caller.tenant() {
        request.tenant = Some(own.to_string());
    }
    let job = request.into_job(queue_name, None).map_err(|e| {
        let status = if e.is_too_large() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Problem::new(status, e.to_string()).with_errors(vec![e.field_error()])
    })?;
    if matches!(caller, Caller::Admin) {
        refuse_inactive_tenant(state, &job.tenant).await?;
    }
    let due_later = job.delay > std::time::Duration::ZERO
        || job.run_at_ms.is_some_and(|at| at > flotilla_now_ms());
    let tenant = job.tenant.to_string();
    let now = flotilla_now_ms();
    let taken = take_quota(state, queue, caller, &job, now).await?;
    let enqueued = queue.enqueue(job).await.map_err(Problem::unavailable)?;
    if let (Caller::Tenant(owner), true, false) =
        (caller, taken, matches!(enqueued, Enqueued::New(_)))
    {
        let mut conn = queue.connection();
        // Best effort: a lost give-back costs the tenant one enqueue today.
        let _ = quota::give_back(&mut conn, &state.tenant_keys, &owner.tenant, 1, now).await;
    }
    let (id, state, duplicate) = match enqueued {
        Enqueued::New(id) => {
            counter!(flotilla::telemetry::names::JOBS_ENQUEUED, "queue" => queue_name.to_owned())
                .increment(1);
            let state = if due_later { "scheduled" } else { "pending" };
            (id, state.to_owned(), false)
        }
        Enqueued::Duplicate(id) => (id, current_state(queue, id).await?, true),
        Enqueued::Conflict(id) => {
            let detail = format!(
                "this Idempotency-Key was used for job {id} with a different payload; use a new key for a different job"
            );
            return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail));
        }
    };
    let body = Accepted {
        id: id.to_string(),
        queue: queue_name.to_owned(),
        tenant,
        state,
        duplicate,
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let location = HeaderValue::from_str(&format!("/v1/jobs/{id}")).expect("ids are header-safe");
    response.headers_mut().insert(header::LOCATION, location);
    if duplicate {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The admin key may enqueue for any tenant id (benchmarks and operators
/// use tenants PostgreSQL does not know), but not for a provisioned tenant
/// that may not enqueue now (suspended, deleted, not yet active).
async fn refuse_inactive_tenant(
    state: &AppState,
    tenant: &flotilla::ids::TenantId,
) -> Result<(), Problem> {
    let status: Option<flotilla::tenancy::TenantStatus> =
        sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&state.db)
            .await
            .map_err(|e| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("PostgreSQL failed: {e}; retry later"),
                )
            })?;
    match status {
        None | Some(flotilla::tenancy::TenantStatus::Active) => Ok(()),
        Some(status) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("tenant {tenant} is {status}: it cannot enqueue now"),
        )),
    }
}

/// Takes one enqueue from a tenant key's daily allowance (the admin key is
/// not limited): 429 with `Retry-After` once it is spent, except for a
/// replay of an earlier request, which is answered as before. True when
/// one was taken.
async fn take_quota(
    state: &AppState,
    queue: &FairQueue,
    caller: &Caller,
    job: &flotilla::job::NewJob,
    now_ms: u64,
) -> Result<bool, Problem> {
    let Caller::Tenant(owner) = caller else {
        return Ok(false);
    };
    let mut conn = state.queues.all()[0].connection();
    let limit = owner.settings.daily_enqueue_limit;
    match quota::take(
        &mut conn,
        &state.tenant_keys,
        &owner.tenant,
        limit,
        1,
        now_ms,
    )
    .await
    .map_err(Problem::unavailable)?
    {
        Quota::Allowed { .. } => Ok(true),
        Quota::Exceeded { limit, retry_after } => {
            if let Some(key) = &job.idempotency_key
                && queue
                    .idempotent_job(&owner.tenant, key)
                    .await
                    .map_err(Problem::unavailable)?
                    .is_some()
            {
                return Ok(false);
            }
            counter!(flotilla::telemetry::names::RATE_LIMITED, "tier" => owner.tier.as_str())
                .increment(1);
            Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "tenant {} ({} tier) has used its {limit} enqueues for today (UTC); retry after {} s, or ask the operator for a higher tier or limit",
                    owner.tenant, owner.tier, retry_after.as_secs()
                ),
            )
            .with_header(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs()),
            ))
        }
    }
}

/// The producer's clock, only to tell "scheduled" from "pending" in the
/// answer; the queue itself runs on Redis' clock.
fn flotilla_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn current_state(queue: &FairQueue, id: JobId) -> Result<String, Problem> {
    Ok(match queue.job(id).await.map_err(Problem::unavailable)? {
        Some(status) => status.state.as_str().to_owned(),
        None => "expired".to_owned(),
    })
}

/// `GET /v1/jobs/{id}`: the job's status, from whichever queue holds it.
pub async fn status(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = JobId::parse(&id) else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "{:?} is not a job id (a 26-character ULID)",
                id.chars().take(40).collect::<String>()
            ),
        )
        .into_response();
    };
    match state.queues.find_job(id).await {
        // Another tenant's job is as absent as a job that never was.
        Ok(Some(status)) if caller.can_see(&status.tenant) => Json(status).into_response(),
        Ok(_) => Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "no job {id}; finished jobs are kept for FLOTILLA_FINISHED_TTL (1h by default)"
            ),
        )
        .into_response(),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}
