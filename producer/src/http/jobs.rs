//! `/v1/jobs` and `/v1/queues`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flotilla::ids::{IdempotencyKey, JobId};
use flotilla::queue::enqueue::Enqueued;
use metrics::counter;
use serde::Serialize;

use super::AppState;
use super::problem::Problem;
use crate::request::JobRequest;

/// The answer to an accepted enqueue (and to its idempotent replays).
#[derive(Debug, Serialize)]
struct Accepted {
    id: String,
    queue: String,
    tenant: String,
    state: &'static str,
    /// True when this request replayed an earlier one with the same key.
    duplicate: bool,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// `POST /v1/jobs/{queue}`.
pub async fn enqueue(
    State(state): State<Arc<AppState>>,
    Path(queue_name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match accept(&state, &queue_name, &headers, body).await {
        Ok(r) => r,
        Err(p) => p.into_response(),
    }
}

async fn accept(
    state: &AppState,
    queue_name: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let queue = state
        .queues
        .get(queue_name)
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over {} bytes; job payloads are at most 64 KiB: store big data elsewhere and pass a reference",
                super::MAX_BODY_BYTES
            ),
        )
    };
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => too_large(),
        other => Problem::new(StatusCode::BAD_REQUEST, other.body_text()),
    })?;
    if body.len() > super::MAX_BODY_BYTES {
        return Err(too_large());
    }
    if !is_json(headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the job as JSON with Content-Type: application/json",
        ));
    }
    let mut request: JobRequest = serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, format!("the body has the wrong shape: {e}; send {{\"tenant\": \"...\", \"payload\": {{...}}}}")),
            _ => Problem::new(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {e}")),
        }
    })?;
    if let Some(key) = headers.get("idempotency-key") {
        let key = key
            .to_str()
            .ok()
            .and_then(|k| IdempotencyKey::parse(k.trim().trim_matches('"')).ok())
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Idempotency-Key: use 1 to 255 printable ASCII characters without spaces",
                )
            })?;
        if request
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k != key.as_str())
        {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the Idempotency-Key header and the body's idempotency_key differ; send one",
            ));
        }
        request.idempotency_key = Some(key.as_str().to_owned());
    }
    let job = request.into_job(queue_name, None).map_err(|e| {
        let status = if e.is_unknown_queue() {
            StatusCode::NOT_FOUND
        } else if e.is_too_large() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Problem::new(status, e.to_string())
    })?;
    let scheduled = job.delay > std::time::Duration::ZERO || job.run_at_ms.is_some();
    let tenant = job.tenant.to_string();
    let result = queue.enqueue(job).await.map_err(|e| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}; retry with the same Idempotency-Key"),
        )
    })?;
    let (id, duplicate) = match result {
        Enqueued::New(id) => {
            counter!(flotilla::telemetry::names::JOBS_ENQUEUED, "queue" => queue_name.to_owned())
                .increment(1);
            (id, false)
        }
        Enqueued::Duplicate(id) => (id, true),
        Enqueued::Conflict(id) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "this Idempotency-Key was used for job {id} with a different body; use a new key for a different job"
                ),
            ));
        }
    };
    let body = Accepted {
        id: id.to_string(),
        queue: queue_name.to_owned(),
        tenant,
        state: if scheduled { "scheduled" } else { "pending" },
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

/// `GET /v1/jobs/{id}`.
pub async fn status(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = JobId::parse(&id) else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!("{id:?} is not a job id (a 26-character ULID)"),
        )
        .into_response();
    };
    match state.queues.find_job(id).await {
        Ok(Some(status)) => Json(status).into_response(),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "no job {id}; finished jobs are kept for FLOTILLA_FINISHED_TTL (1h by default)"
            ),
        )
        .into_response(),
        Err(e) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `GET /v1/queues`.
pub async fn queues(State(state): State<Arc<AppState>>) -> Response {
    let mut depths = Vec::new();
    for q in state.queues.all() {
        match q.depth().await {
            Ok(d) => depths.push(d),
            Err(e) => {
                return Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                    .into_response();
            }
        }
    }
    Json(depths).into_response()
}
