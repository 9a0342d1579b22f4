//! Connecting to Redis, and refusing a Redis that would lose jobs.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thiserror::Error;

/// Why Flotilla will not use a Redis server.
#[derive(Debug, Error)]
pub enum RedisSetupError {
    /// The URL does not parse.
    #[error(
        "REDIS_URL {url:?} is not a Redis URL ({source}); expected e.g. redis://127.0.0.1:6379"
    )]
    BadUrl {
        /// The URL, with any password hidden.
        url: String,
        /// The parser's complaint.
        #[source]
        source: redis::RedisError,
    },
    /// Not reachable.
    #[error(
        "cannot reach Redis at {url}: {source}. Is it running? (deploy/local/services up starts one)"
    )]
    Unreachable {
        /// The URL, with any password hidden.
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis may evict keys: queued jobs would vanish under memory pressure.
    #[error(
        "Redis maxmemory-policy is {policy:?}: under memory pressure Redis would evict queued jobs. \
         Set it to noeviction (CONFIG SET maxmemory-policy noeviction, or maxmemory-policy in redis.conf, \
         or your provider's eviction setting)"
    )]
    EvictionPolicy {
        /// The policy found.
        policy: String,
    },
}

/// Hides the password in a Redis URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Opens a client and a multiplexed connection that reconnects by itself.
/// Each command has a response timeout, so a hung Redis is an error the
/// caller retries, not a worker stuck forever.
pub async fn connect(url: &str) -> Result<(redis::Client, ConnectionManager), RedisSetupError> {
    let client = redis::Client::open(url).map_err(|source| RedisSetupError::BadUrl {
        url: redact(url),
        source,
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    let conn = ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|source| RedisSetupError::Unreachable {
            url: redact(url),
            source,
        })?;
    Ok((client, conn))
}

/// What the safety check found that is worth a warning but not a refusal.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SafetyReport {
    /// Warnings to log.
    pub warnings: Vec<String>,
}

/// Checks that Redis will not lose jobs by itself: refuses an eviction
/// policy other than `noeviction`, warns when persistence is off or when the
/// server does not let us read its configuration (managed Redis).
pub async fn check_safety(conn: &mut ConnectionManager) -> Result<SafetyReport, RedisSetupError> {
    let mut report = SafetyReport::default();
    let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(conn)
        .await;
    match policy {
        Ok(kv) if kv.len() == 2 => {
            if kv[1] != "noeviction" {
                return Err(RedisSetupError::EvictionPolicy { policy: kv[1].clone() });
            }
        }
        _ => report.warnings.push(
            "could not read Redis' maxmemory-policy (CONFIG GET is disabled here); make sure it is noeviction".into(),
        ),
    }
    let info: Result<String, _> = redis::cmd("INFO")
        .arg("persistence")
        .query_async(conn)
        .await;
    if let Ok(info) = info {
        let aof = info.lines().any(|l| l.trim() == "aof_enabled:1");
        let save: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("save")
            .query_async(conn)
            .await;
        let rdb = save
            .map(|kv| kv.get(1).is_some_and(|v| !v.trim().is_empty()))
            .unwrap_or(true);
        if !aof && !rdb {
            report.warnings.push(
                "Redis has neither AOF nor RDB persistence: a restart loses every queued job \
                 (enable appendonly yes with appendfsync everysec)"
                    .into(),
            );
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
