//! The signed HTTP call to a session host: `POST <endpoint>/connect` or
//! `/disconnect` with `{"tenant", "user"}`. What the answer means for the
//! job: 2xx done; 5xx, 408, 429, timeouts and refused connections are worth
//! retrying; any other 4xx is the host's final word.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Endpoint, signature};
use crate::ids::{TenantId, UserId};

/// What a host is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Start holding the user's sessions.
    Connect,
    /// Let them go.
    Disconnect,
}

impl Call {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Connect => "connect",
            Call::Disconnect => "disconnect",
        }
    }
}

/// A host's answer, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Done,
    /// Worth retrying: what happened.
    Retry(String),
    /// A 4xx other than 408/429: the status and the host's message.
    Refused(u16, String),
}

/// Calls session hosts; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct HostClient {
    http: reqwest::Client,
    secret: Option<String>,
}

/// The most of a host's answer kept in errors and the database.
const MAX_MESSAGE: usize = 500;

impl HostClient {
    /// A client whose calls time out after `timeout`, signed with `secret`.
    pub fn new(timeout: Duration, secret: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()
            .expect("an HTTP client with timeouts builds");
        Self { http, secret }
    }

    /// Asks the host at `endpoint` to `call` for `user` of `tenant`.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        call: Call,
        tenant: &TenantId,
        user: &UserId,
    ) -> Answer {
        let body =
            serde_json::json!({"tenant": tenant.as_str(), "user": user.as_str()}).to_string();
        let mut request = self
            .http
            .post(endpoint.call(call.as_str()))
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request.header(
                signature::HEADER,
                signature::sign(secret, now, body.as_bytes()),
            );
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Answer::Retry(format!("{} timed out", endpoint.as_str()));
            }
            Err(e) => {
                return Answer::Retry(format!(
                    "cannot reach {}: {}",
                    endpoint.as_str(),
                    crate::backend::error_chain(&e)
                ));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Done;
        }
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(MAX_MESSAGE)
            .collect();
        let code = status.as_u16();
        if status.is_server_error() || code == 408 || code == 429 {
            Answer::Retry(format!("{} answered {code}: {text}", endpoint.as_str()))
        } else {
            Answer::Refused(code, text)
        }
    }
}
