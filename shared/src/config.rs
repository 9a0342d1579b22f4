//! Settings both binaries share, from flags or the environment (12-factor).
//! Defaults work against the services `deploy/local/services up` starts.

use std::time::Duration;

use crate::ids::Namespace;
use crate::queue::QueueSettings;
use crate::telemetry::LogFormat;

/// Parses durations like `30s`, `5m`, `24h`, `7d`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}; write a duration like 250ms, 30s, 5m, 24h or 7d"))
}

/// Where Redis is and which namespace of keys to use.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (redis://[:password@]host:port[/db], rediss:// for TLS).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:16379")]
    pub redis_url: String,
    /// First part of every Redis key, so several deployments can share a Redis.
    #[arg(long, env = "FLOTILLA_NAMESPACE", default_value = "flotilla")]
    pub namespace: Namespace,
}

/// Queue tunables (the same for every queue of the process).
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// How long a claimed job is leased; a worker that dies loses its jobs to
    /// other workers after this long.
    #[arg(long, env = "FLOTILLA_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How long finished jobs stay readable by id.
    #[arg(long, env = "FLOTILLA_FINISHED_TTL", default_value = "1h", value_parser = parse_duration)]
    pub finished_ttl: Duration,
    /// Dead-letter retention by count.
    #[arg(long, env = "FLOTILLA_DEAD_MAX", default_value_t = 100_000)]
    pub dead_max: u64,
    /// Dead-letter retention by age.
    #[arg(long, env = "FLOTILLA_DEAD_TTL", default_value = "7d", value_parser = parse_duration)]
    pub dead_ttl: Duration,
    /// How long an idempotency key remembers its first job.
    #[arg(long, env = "FLOTILLA_IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub idempotency_ttl: Duration,
}

impl QueueArgs {
    /// The settings these flags describe.
    pub fn settings(&self) -> QueueSettings {
        QueueSettings {
            lease: self.lease.max(Duration::from_millis(300)),
            finished_ttl: self.finished_ttl,
            dead_max: self.dead_max,
            dead_ttl: self.dead_ttl,
            idempotency_ttl: self.idempotency_ttl,
            ..QueueSettings::default()
        }
    }
}

/// PostgreSQL, the system of record.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL (the local default is what `deploy/local/services up` starts).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:15432/flotilla"
    )]
    pub database_url: String,
}

/// Logging.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// json in production, pretty locally.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = default_log_format())]
    pub log_format: LogFormat,
}

/// JSON when running on a platform (Heroku, Railway, Kubernetes), readable otherwise.
fn default_log_format() -> LogFormat {
    let on_platform = ["DYNO", "RAILWAY_ENVIRONMENT", "KUBERNETES_SERVICE_HOST"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if on_platform {
        LogFormat::Json
    } else {
        LogFormat::Pretty
    }
}
