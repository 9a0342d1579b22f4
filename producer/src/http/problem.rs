//! Errors as `application/problem+json` (RFC 9457): a status, a title, a
//! detail that says what to change and, for a request with wrong fields,
//! `errors`: one entry per field, each with a JSON pointer into the body.
//! Internal errors never reach the client verbatim beyond what helps it act
//! (e.g. "Redis is unreachable, retry").

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request::FieldError;

/// One problem.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A URI naming the problem type ("about:blank": the status says it all).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short, the same for every occurrence.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// This occurrence, and what to do about it.
    pub detail: String,
    /// The request's wrong fields, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    #[serde(skip)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem with `status`; the title is the status' reason phrase.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// The same problem, answered with one more header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The same problem, listing the fields at fault.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Redis failed: the client should retry (503 says so to load balancers
    /// and client libraries alike).
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}; retry later (with the same Idempotency-Key for enqueues)"),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
