//! Reading an enqueue request's body: size, media type, JSON, shape, in that
//! order, each failure its own status (413, 415, 400, 422), so a client can
//! tell a transport mistake from a content mistake.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use flotilla::ids::IdempotencyKey;

use super::problem::Problem;
use crate::request::{FieldError, JobRequest, ParseError};

/// Largest request body: a 64 KiB payload plus its envelope. Larger bodies
/// get 413.
pub const MAX_BODY_BYTES: usize = flotilla::job::MAX_PAYLOAD_BYTES + 16 * 1024;

/// Bodies up to this size are read in full even when over [`MAX_BODY_BYTES`],
/// so the client reliably gets its 413: answering before the body is read
/// makes the connection close with unread data, and the client may see a
/// reset instead of the answer. Beyond this the connection is cut.
pub const DRAIN_BODY_BYTES: usize = 4 * 1024 * 1024;

/// `application/json` or any `application/*+json`, parameters ignored.
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

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is over {MAX_BODY_BYTES} bytes; job payloads are at most {} bytes: store big data elsewhere and pass a reference",
            flotilla::job::MAX_PAYLOAD_BYTES
        ),
    )
}

/// The body, checked for size (413) and media type (415).
fn json_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    not_json: &str,
) -> Result<Bytes, Problem> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => too_large(),
        other => Problem::new(StatusCode::BAD_REQUEST, other.body_text()),
    })?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    if !is_json(headers) {
        return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, not_json));
    }
    Ok(body)
}

/// A JSON object body of at most [`MAX_BODY_BYTES`], for routes other than
/// enqueue: 413, 415, 400 and 422 (not an object) as for jobs.
pub fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Map<String, serde_json::Value>, Problem> {
    let body = json_bytes(
        headers,
        body,
        "send JSON with Content-Type: application/json",
    )?;
    match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object",
        )
        .with_errors(vec![FieldError::new("", "expected an object")])),
        Err(e) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// The job request in a body, with the `Idempotency-Key` header folded in.
pub fn job_request(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<JobRequest, Problem> {
    let body = json_bytes(
        headers,
        body,
        "send the job as JSON with Content-Type: application/json",
    )?;
    let mut request = JobRequest::parse(&body).map_err(|e| match e {
        ParseError::Syntax(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        ),
        ParseError::Shape(errors) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body has the wrong shape: send {\"tenant\": \"...\", \"payload\": {...}}; see errors",
        )
        .with_errors(errors),
    })?;
    if let Some(key) = idempotency_key(headers)? {
        if request
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k != key.as_str())
        {
            let detail =
                "the Idempotency-Key header and the body's idempotency_key differ; send one";
            return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
                .with_errors(vec![FieldError::new("/idempotency_key", detail)]));
        }
        request.idempotency_key = Some(key.as_str().to_owned());
    }
    Ok(request)
}

/// The `Idempotency-Key` header, if any. The IETF draft sends it as a
/// structured-field string (`"abc"`); a bare token is accepted too.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|k| IdempotencyKey::parse(k.trim().trim_matches('"')).ok())
        .map(Some)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key: use 1 to 255 printable ASCII characters without spaces",
            )
        })
}
