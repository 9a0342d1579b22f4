//! The worker's settings, from flags or the environment (12-factor), parsed
//! and checked once here so the rest of the worker never sees a bad value.
//! Every error names the variable and says what it should be.

use std::time::Duration;

use clap::Parser;
use flotilla::config::{DatabaseArgs, LogArgs, QueueArgs, RedisArgs, parse_duration};
use flotilla::ids::QueueName;
use flotilla::kinds::known_queues;

/// Runs Flotilla jobs: one apalis worker per queue on the fair Redis queue,
/// with /healthz, /readyz and /metrics over HTTP.
///
/// Every flag can also be set from the environment variable shown.
/// On SIGTERM or SIGINT the worker stops claiming at once, lets running jobs
/// finish within SHUTDOWN_GRACE, hands the rest back to the queue and exits 0.
#[derive(Debug, Clone, Parser)]
#[command(name = "flotilla-worker", version, max_term_width = 100)]
pub struct Config {
    /// Queues to consume, comma-separated (e.g. `bench`). Default: every queue
    /// this build knows.
    #[arg(long, env = "QUEUES", value_name = "QUEUES", value_delimiter = ',', value_parser = parse_queue)]
    pub queues: Vec<QueueName>,

    /// Jobs each queue runs at once in this process.
    #[arg(
        long,
        env = "WORKER_CONCURRENCY",
        value_name = "WORKER_CONCURRENCY",
        default_value_t = 16,
        value_parser = parse_concurrency
    )]
    pub concurrency: usize,

    /// HTTP port for /healthz, /readyz and /metrics (0 picks a free port and logs it).
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 9090)]
    pub port: u16,

    /// Address the HTTP server listens on (127.0.0.1 to keep it local).
    #[arg(long, env = "BIND", value_name = "BIND", default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,

    /// Jobs claimed beyond the free slots, per queue, so a busy worker never
    /// waits for a claim round trip. They hold leases while they wait: use 0
    /// for queues of long jobs. Default: the concurrency.
    #[arg(long, env = "WORKER_PREFETCH", value_name = "WORKER_PREFETCH")]
    pub prefetch: Option<usize>,

    /// On SIGTERM, how long running jobs may take to finish before they are
    /// handed back to the queue for another worker. Keep it below the
    /// platform's kill timeout (Heroku 30s; Railway's drainingSeconds).
    #[arg(long, env = "SHUTDOWN_GRACE", value_name = "SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// A job attempt running longer than this fails (transient: retried with backoff).
    #[arg(long, env = "JOB_TIMEOUT", value_name = "JOB_TIMEOUT", default_value = "15m", value_parser = parse_timeout)]
    pub job_timeout: Duration,

    /// This worker's name in the registry and on the jobs it leases. Default:
    /// the platform's (DYNO, RAILWAY_REPLICA_ID, HOSTNAME), else host-pid.
    #[arg(long, env = "WORKER_NAME", value_name = "WORKER_NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Pause after each tenant-provisioning step (tests and demos use it to
    /// stop a worker mid-provisioning).
    #[arg(long, env = "FLOTILLA_PROVISION_STEP_PAUSE", hide = true, default_value = "0s", value_parser = parse_duration)]
    pub provision_step_pause: Duration,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub redis: RedisArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub queue: QueueArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub connect: flotilla::connect::ConnectArgs,

    #[allow(missing_docs)]
    #[command(flatten)]
    pub log: LogArgs,
}

impl Config {
    /// The queues to consume: those asked for (once each), or every known queue.
    pub fn queues(&self) -> Vec<QueueName> {
        if self.queues.is_empty() {
            return known_queues()
                .into_iter()
                .map(|q| QueueName::parse(q).expect("known queues are valid names"))
                .collect();
        }
        let mut queues = self.queues.clone();
        queues.sort();
        queues.dedup();
        queues
    }

    /// The worker's name: `--name`/`WORKER_NAME`, else the platform's.
    pub fn worker_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            platform_name(|v| std::env::var(v).ok(), &host_name(), std::process::id())
        })
    }
}

/// The platform's name for this replica: Heroku's `DYNO` (`worker.1`),
/// Railway's `RAILWAY_REPLICA_ID`, Kubernetes' `HOSTNAME` (the pod), else
/// `host-pid` so two local workers never share a name.
pub fn platform_name(env: impl Fn(&str) -> Option<String>, host: &str, pid: u32) -> String {
    ["DYNO", "RAILWAY_REPLICA_ID", "HOSTNAME"]
        .iter()
        .filter_map(|var| env(var))
        .map(|v| v.trim().to_owned())
        .find(|v| parse_name(v).is_ok())
        .unwrap_or_else(|| format!("{host}-{pid}"))
}

/// The machine's host name, read from the kernel (no unsafe FFI).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

fn parse_queue(s: &str) -> Result<QueueName, String> {
    let s = s.trim();
    let known = known_queues();
    if s.is_empty() {
        return Err(format!(
            "QUEUES has an empty name; unset QUEUES to consume every queue, or list some of: {}",
            known.join(", ")
        ));
    }
    if !known.contains(&s) {
        return Err(format!(
            "unknown queue {:?} in QUEUES; known queues: {} (comma-separated)",
            s.chars().take(40).collect::<String>(),
            known.join(", ")
        ));
    }
    QueueName::parse(s).map_err(|e| e.to_string())
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    const MAX: usize = 4096;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        _ => Err(format!(
            "WORKER_CONCURRENCY must be a whole number from 1 to {MAX} (jobs per queue at once)"
        )),
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("JOB_TIMEOUT must be longer than 0s".into()),
        d => Ok(d),
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(s.to_owned())
    } else {
        Err("WORKER_NAME must be 1 to 100 printable ASCII characters without spaces".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("flotilla-worker").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_consume_every_known_queue_with_16_slots_on_port_9090() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.queues().iter().map(|q| q.as_str()).collect::<Vec<_>>(),
            known_queues()
        );
        assert_eq!(
            (c.concurrency, c.port, c.shutdown_grace),
            (16, 9090, Duration::from_secs(25))
        );
    }

    #[test]
    fn an_unknown_queue_is_refused_with_the_known_ones_listed() {
        let err = parse(&["--queues", "bench,nope"]).unwrap_err().to_string();
        assert!(
            err.contains("unknown queue \"nope\" in QUEUES; known queues: bench"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_connect_setting_names_its_variable() {
        let err = parse(&["--heartbeat-timeout", "soon"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FLOTILLA_HOST_HEARTBEAT_TIMEOUT") && err.contains("30s"),
            "{err}"
        );
    }

    #[test]
    fn queues_are_trimmed_and_deduplicated() {
        let c = parse(&["--queues", "bench, bench"]).unwrap();
        assert_eq!(c.queues().len(), 1);
    }

    #[test]
    fn zero_concurrency_and_bad_durations_name_the_variable() {
        let err = parse(&["--concurrency", "0"]).unwrap_err().to_string();
        assert!(
            err.contains("WORKER_CONCURRENCY must be a whole number from 1"),
            "{err}"
        );
        let err = parse(&["--shutdown-grace", "soon"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SHUTDOWN_GRACE") && err.contains("30s"),
            "{err}"
        );
    }

    #[test]
    fn the_platform_names_the_worker_in_order_dyno_railway_hostname() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            platform_name(env(&[("HOSTNAME", "pod-7"), ("DYNO", "worker.1")]), "h", 1),
            "worker.1"
        );
        assert_eq!(
            platform_name(
                env(&[("HOSTNAME", "pod-7"), ("RAILWAY_REPLICA_ID", "r-2")]),
                "h",
                1
            ),
            "r-2"
        );
        assert_eq!(
            platform_name(env(&[("HOSTNAME", "pod-7")]), "h", 1),
            "pod-7"
        );
        assert_eq!(
            platform_name(env(&[("HOSTNAME", " ")]), "box", 42),
            "box-42"
        );
    }
}
