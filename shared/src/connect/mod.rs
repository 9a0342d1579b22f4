//! User connect: the fleet's users are assigned to session hosts (processes
//! outside the fleet that hold their Telegram and broker sessions).
//!
//! PostgreSQL holds the truth: `session_hosts` (registered, heartbeating,
//! with a capacity and a load) and `user_connections` (what each user asked
//! for, and where they are). A `connect` job carries only the request; the
//! job re-reads the row, so a stale or repeated job does nothing.
//!
//! - [`hosts`]: register, heartbeat, drain, list
//! - [`users`]: a user's request (connect, disconnect) and its state
//! - [`assign`]: the pick of the least-loaded live host, atomic and exact
//! - [`run`]: what a connect job does: assign, call the host, record
//! - [`host_client`], [`signature`]: the signed HTTP call to a host
//! - [`sweep`]: failover: expired hosts go offline, their users and a
//!   draining host's users move, users whose job was lost are re-enqueued
//! - [`sim`]: a session host simulator, the peer of the benchmark and tests

pub mod assign;
pub mod host_client;
pub mod hosts;
pub mod run;
pub mod signature;
pub mod sim;
pub mod sweep;
pub mod users;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::parse_duration;

/// Settings of user connect, shared by the worker (which assigns, calls
/// hosts and sweeps) and the API (which shows which hosts are live).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// A session host is live while its last heartbeat is younger than this;
    /// then its users are moved to other hosts.
    #[arg(long, env = "FLOTILLA_HOST_HEARTBEAT_TIMEOUT", value_name = "FLOTILLA_HOST_HEARTBEAT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,
    /// How long a call to a session host may take; a slower one is retried.
    #[arg(long, env = "FLOTILLA_HOST_CALL_TIMEOUT", value_name = "FLOTILLA_HOST_CALL_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub host_call_timeout: Duration,
    /// The shared secret calls to session hosts are signed with
    /// (HMAC-SHA256 in `X-Flotilla-Signature`); hosts verify it. Unset:
    /// calls go unsigned and the worker warns.
    #[arg(
        long,
        env = "FLOTILLA_HOST_SECRET",
        value_name = "FLOTILLA_HOST_SECRET",
        hide_env_values = true
    )]
    pub host_secret: Option<String>,
    /// How often workers on the connect queue look for expired and
    /// draining hosts and for users whose job was lost.
    #[arg(long, env = "FLOTILLA_CONNECT_SWEEP_EVERY", value_name = "FLOTILLA_CONNECT_SWEEP_EVERY", default_value = "5s", value_parser = parse_duration)]
    pub sweep_every: Duration,
    /// A user assigning or disconnecting without progress for this long has
    /// lost its job (Redis lost it, or it was purged) and gets a new one.
    #[arg(long, env = "FLOTILLA_CONNECT_STUCK_AFTER", value_name = "FLOTILLA_CONNECT_STUCK_AFTER", default_value = "2m", value_parser = parse_duration)]
    pub stuck_after: Duration,
}

impl Default for ConnectArgs {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(30),
            host_call_timeout: Duration::from_secs(5),
            host_secret: None,
            sweep_every: Duration::from_secs(5),
            stuck_after: Duration::from_secs(120),
        }
    }
}

/// Where a session host stands, as stored. Whether it is live also depends
/// on its last heartbeat ([`hosts::Host::live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "session_host_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    /// Takes users while it heartbeats.
    Live,
    /// Takes no new users; its users are moved off.
    Draining,
    /// Its heartbeat expired; its users were moved off. A heartbeat makes it live again.
    Offline,
}

impl HostStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Live => "live",
            HostStatus::Draining => "draining",
            HostStatus::Offline => "offline",
        }
    }
}

/// Where a user's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "connection_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// A job is picking a host or calling it (also while moving).
    Assigning,
    /// The host accepted the user.
    Connected,
    /// A job is telling the host to let the user go.
    Disconnecting,
    /// Not on any host, as asked.
    Disconnected,
    /// Gave up; `reason` says why. A new connect request starts over.
    Failed,
}

impl ConnectionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Assigning => "assigning",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnecting => "disconnecting",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Failed => "failed",
        }
    }

    /// Every state, for gauges.
    pub const ALL: [ConnectionState; 5] = [
        ConnectionState::Assigning,
        ConnectionState::Connected,
        ConnectionState::Disconnecting,
        ConnectionState::Disconnected,
        ConnectionState::Failed,
    ];
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session host's base URL: `http` or `https`, no query or fragment.
/// Calls go to `<endpoint>/connect` and `<endpoint>/disconnect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Endpoint(String);

impl Endpoint {
    /// Parses and normalises (no trailing slash) a host's endpoint.
    pub fn parse(input: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(input).map_err(|e| {
            format!(
                "endpoint {:?} is not a URL ({e}); give e.g. http://10.0.0.5:8080",
                shorten(input)
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "endpoint {:?} must be http:// or https://",
                shorten(input)
            ));
        }
        if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "endpoint {:?} must name a host and have no query or fragment",
                shorten(input)
            ));
        }
        if input.len() > 2000 {
            return Err("endpoint is longer than 2000 characters".into());
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of one of the host's calls (`connect`, `disconnect`).
    pub fn call(&self, action: &str) -> String {
        format!("{}/{action}", self.0)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Milliseconds as PostgreSQL's interval arithmetic takes them.
pub(crate) fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_loses_its_trailing_slash_and_names_its_calls() {
        let e = Endpoint::parse("http://127.0.0.1:8080/hosts/a/").unwrap();
        assert_eq!(e.as_str(), "http://127.0.0.1:8080/hosts/a");
        assert_eq!(e.call("connect"), "http://127.0.0.1:8080/hosts/a/connect");
    }

    #[test]
    fn an_endpoint_must_be_http_with_a_host_and_no_query() {
        for bad in [
            "ftp://x",
            "not a url",
            "http://x/?a=1",
            "file:///etc/passwd",
            "http://x/#f",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
