//! Reading a [`JobRequest`] out of JSON text, field by field, so a bad
//! request is answered with every wrong field at once, each named by a JSON
//! pointer (`/tenant`), instead of serde's first complaint with a line and
//! column. The HTTP API turns the list into RFC 9457 `errors`; the CLI prints
//! it after the line number.

use serde::Serialize;
use serde_json::Value;

use super::{JobRequest, RunAt};

/// The fields a request may carry, for error messages.
const FIELDS: &str = "tenant, payload, idempotency_key, delay_ms, run_at";

/// One thing wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer to the field (RFC 6901); empty for the whole document.
    pub pointer: String,
    /// What is wrong and what to send instead.
    pub detail: String,
}

impl FieldError {
    /// An error about the field at `pointer`.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pointer.strip_prefix('/') {
            Some(field) => write!(f, "{field}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

/// Why text is not a job request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON at all (HTTP 400).
    Syntax(String),
    /// JSON, but not the request's shape (HTTP 422): every wrong field.
    Shape(Vec<FieldError>),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Syntax(e) => write!(f, "not valid JSON: {e}"),
            ParseError::Shape(errors) => {
                let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join("; "))
            }
        }
    }
}

impl JobRequest {
    /// Parses JSON text (a request body, a line of a JSON-lines file).
    pub fn parse(text: &[u8]) -> Result<Self, ParseError> {
        let value: Value =
            serde_json::from_slice(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
        Self::from_value(value).map_err(ParseError::Shape)
    }

    /// Reads a request from a JSON value; `null` fields count as absent.
    pub fn from_value(value: Value) -> Result<Self, Vec<FieldError>> {
        let Value::Object(map) = value else {
            return Err(vec![FieldError::new(
                "",
                format!(
                    "expected a JSON object such as {{\"tenant\": \"acme\", \"payload\": {{}}}}, got {}",
                    kind(&value)
                ),
            )]);
        };
        let mut request = JobRequest::default();
        let mut errors = Vec::new();
        for (name, value) in map {
            if value.is_null() {
                continue;
            }
            let pointer = format!("/{}", escape(&name));
            let wrong = |expected: &str| {
                FieldError::new(
                    &pointer,
                    format!("expected {expected}, got {}", kind(&value)),
                )
            };
            match name.as_str() {
                "tenant" => match value {
                    Value::String(s) => request.tenant = Some(s),
                    _ => errors.push(wrong("a string (the tenant's id)")),
                },
                "payload" => request.payload = Some(value),
                "idempotency_key" => match value {
                    Value::String(s) => request.idempotency_key = Some(s),
                    _ => errors.push(wrong("a string")),
                },
                "delay_ms" => match value.as_u64() {
                    Some(ms) => request.delay_ms = Some(ms),
                    None => errors.push(wrong("a whole number of milliseconds, 0 or more")),
                },
                "run_at" => match value {
                    Value::String(s) => request.run_at = Some(RunAt::Text(s)),
                    Value::Number(ref n) if n.as_u64().is_some() => {
                        request.run_at = n.as_u64().map(RunAt::Millis);
                    }
                    _ => errors.push(wrong(
                        "RFC 3339 text (2026-11-22T18:00:00Z) or milliseconds since the epoch",
                    )),
                },
                _ => errors.push(FieldError::new(
                    &pointer,
                    format!("unknown field; a job request has {FIELDS}"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(request)
        } else {
            Err(errors)
        }
    }
}

/// A JSON pointer token for a member name (RFC 6901), shortened: it may be
/// hostile input and is echoed back.
fn escape(name: &str) -> String {
    name.chars()
        .take(40)
        .collect::<String>()
        .replace('~', "~0")
        .replace('/', "~1")
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wrong_field_is_reported_with_its_pointer() {
        let err =
            JobRequest::parse(br#"{"tenant": 5, "delay_ms": -1, "a/b": true, "payload": {}}"#)
                .unwrap_err();
        let ParseError::Shape(errors) = err else {
            panic!("{err:?}")
        };
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers.len(), 3);
        for p in ["/tenant", "/delay_ms", "/a~1b"] {
            assert!(pointers.contains(&p), "{pointers:?}");
        }
    }

    #[test]
    fn text_that_is_not_json_is_a_syntax_error() {
        assert!(matches!(
            JobRequest::parse(b"{\"tenant\":"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            JobRequest::parse(b"[1]"),
            Err(ParseError::Shape(e)) if e[0].pointer.is_empty()
        ));
    }

    #[test]
    fn run_at_takes_text_or_millis_and_nulls_are_absent() {
        let r = JobRequest::parse(br#"{"tenant":"acme","run_at":1700000000000,"delay_ms":null}"#)
            .unwrap();
        assert!(matches!(r.run_at, Some(RunAt::Millis(1_700_000_000_000))));
        assert!(r.delay_ms.is_none());
        let r = JobRequest::parse(br#"{"run_at":"2026-11-22T18:00:00Z"}"#).unwrap();
        assert!(matches!(r.run_at, Some(RunAt::Text(_))));
        assert!(JobRequest::parse(br#"{"run_at":1.5}"#).is_err());
    }
}
