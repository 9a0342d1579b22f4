//! Logs and metrics, set up once per binary.
//!
//! Metric names are fixed here, once: prefix `flotilla_`, base units, counters
//! end in `_total`. Labels are bounded (queue, state, outcome, reason); never a
//! tenant id on a hot series. Histograms get real buckets, so they can be
//! summed across replicas (the exporter would render summaries otherwise).

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Metric names.
pub mod names {
    /// Counter {queue}: jobs enqueued by this process.
    pub const JOBS_ENQUEUED: &str = "flotilla_jobs_enqueued_total";
    /// Counter {queue}: jobs finished successfully.
    pub const JOBS_COMPLETED: &str = "flotilla_jobs_completed_total";
    /// Counter {queue}: failed attempts rescheduled with backoff.
    pub const JOBS_RETRIED: &str = "flotilla_jobs_retried_total";
    /// Counter {queue, reason}: jobs sent to the dead letter
    /// (reason: exhausted, permanent, undecodable).
    pub const JOBS_DEAD_LETTERED: &str = "flotilla_jobs_dead_lettered_total";
    /// Counter {queue}: jobs handed back unfinished at shutdown.
    pub const JOBS_RELEASED: &str = "flotilla_jobs_released_total";
    /// Counter {queue}: outcomes ignored because the lease had expired.
    pub const JOBS_STALE: &str = "flotilla_jobs_stale_total";
    /// Counter {queue}: leases this worker failed to extend in time.
    pub const LEASES_LOST: &str = "flotilla_leases_lost_total";
    /// Histogram {queue, outcome}: handler run time, seconds.
    pub const JOB_DURATION: &str = "flotilla_job_duration_seconds";
    /// Histogram {queue}: time from claimable to claimed, seconds.
    pub const JOB_WAIT: &str = "flotilla_job_wait_seconds";
    /// Gauge {queue}: jobs this worker is running now.
    pub const JOBS_RUNNING: &str = "flotilla_jobs_running";
    /// Gauge {queue, state}: jobs in the queue by state (pending, scheduled,
    /// running, dead). Queue-wide: aggregate across replicas with max().
    pub const QUEUE_DEPTH: &str = "flotilla_queue_depth";
    /// Gauge {queue}: age of the oldest claimable job, seconds. Queue-wide.
    pub const QUEUE_OLDEST_PENDING: &str = "flotilla_queue_oldest_pending_seconds";
    /// Gauge {queue}: workers that heartbeated recently. Queue-wide.
    pub const WORKERS_LIVE: &str = "flotilla_workers_live";
    /// Counter {operation}: Redis calls that failed (the caller retried).
    pub const REDIS_ERRORS: &str = "flotilla_redis_errors_total";
    /// Gauge: 1 while this process can reach Redis, else 0.
    pub const REDIS_UP: &str = "flotilla_redis_up";
    /// Gauge {queue, tier}: pending jobs by the owning tenant's tier
    /// (`none` for tenants not provisioned, e.g. benchmarks). Queue-wide.
    pub const QUEUE_PENDING_BY_TIER: &str = "flotilla_queue_pending_by_tier";
    /// Histogram {tier}: from a tenant's creation to active.
    pub const PROVISIONING_DURATION: &str = "flotilla_provisioning_duration_seconds";
    /// Counter: tenants whose provisioning ran out of retries (failed).
    pub const PROVISIONING_FAILURES: &str = "flotilla_provisioning_failures_total";
    /// Counter {tier}: enqueues refused by the daily limit (429).
    pub const RATE_LIMITED: &str = "flotilla_enqueues_rate_limited_total";
    /// Histogram: active subscriptions per candle execution (fan-out size).
    pub const CANDLE_FANOUT_SIZE: &str = "flotilla_candle_fanout_size";
    /// Histogram: how late a candle execution started after its candle closed.
    pub const CANDLE_DRIFT: &str = "flotilla_candle_drift_seconds";
    /// Counter: connect jobs that found no live session host with free capacity.
    pub const CONNECT_NO_CAPACITY: &str = "flotilla_connect_no_capacity_total";
    /// Counter: users moved to another session host (failover, drains).
    pub const CONNECT_MOVES: &str = "flotilla_connect_moves_total";
    /// Gauge {status}: session hosts live, draining, offline.
    pub const SESSION_HOSTS: &str = "flotilla_session_hosts";
    /// Gauge: free places on live session hosts.
    pub const SESSION_HOSTS_FREE: &str = "flotilla_session_hosts_capacity_free";
    /// Gauge {state}: users by connection state.
    pub const USER_CONNECTIONS: &str = "flotilla_user_connections";
}

/// Seconds; from a 1 ms no-op to a 10 minute job.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0,
];

/// Subscribers per execution; from a strategy nobody follows to 100,000.
const FANOUT_BUCKETS: &[f64] = &[
    0.0, 1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0,
];

/// Seconds after the close; from a feed-triggered run (tens of ms) to a
/// reconciled one (an interval or more late).
const DRIFT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Installs the Prometheus recorder; render its text with the handle.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
        .context("histogram buckets")?
        // Full-name matchers take precedence over the `_seconds` suffix.
        .set_buckets_for_metric(
            Matcher::Full(names::CANDLE_FANOUT_SIZE.into()),
            FANOUT_BUCKETS,
        )
        .context("histogram buckets")?
        .set_buckets_for_metric(Matcher::Full(names::CANDLE_DRIFT.into()), DRIFT_BUCKETS)
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the Prometheus metrics recorder (was it installed twice?)")
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (production: Railway, Heroku, Kubernetes).
    Json,
    /// Human-readable (local development).
    Pretty,
}

/// Sets up tracing; `RUST_LOG` overrides `default_filter`.
pub fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start several apps in one process) keeps the first.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
