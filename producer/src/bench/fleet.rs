//! Real `flotilla-worker` processes for the benchmarks: the figures are those
//! of the binary an operator runs, not of an in-process shortcut, and the
//! worker's memory can be read from the kernel.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use flotilla::ids::Namespace;
use flotilla::queue::FairQueue;
use tokio::process::{Child, Command};

/// How long a worker may take to register before the benchmark gives up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Finds `flotilla-worker`: `--worker-bin`, else next to this binary.
pub fn worker_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating flotilla-producer")?;
    let sibling = exe.with_file_name(format!("flotilla-worker{}", std::env::consts::EXE_SUFFIX));
    if !sibling.exists() {
        bail!(
            "flotilla-worker is not next to {} : build it (cargo build --release -p flotilla-worker) or pass --worker-bin",
            exe.display()
        );
    }
    Ok(sibling)
}

/// A worker process the benchmark started.
pub struct WorkerProcess {
    child: Child,
    name: String,
    pid: u32,
}

/// What a benchmark worker runs.
pub struct WorkerSpec<'a> {
    /// The `flotilla-worker` binary.
    pub binary: &'a Path,
    /// Redis.
    pub redis_url: &'a str,
    /// The run's own namespace.
    pub namespace: &'a Namespace,
    /// `WORKER_CONCURRENCY`.
    pub concurrency: usize,
    /// Where the worker's log goes (default: this process' stderr).
    pub log_file: Option<PathBuf>,
    /// `WORKER_PREFETCH`, when not the worker's default.
    pub prefetch: Option<usize>,
    /// More environment, applied last (the candles bench sets `QUEUES` and
    /// `DATABASE_URL`).
    pub env: Vec<(&'static str, String)>,
}

impl WorkerProcess {
    /// Starts a worker (on the `bench` queue unless `env` names others) and
    /// waits until it has registered on `queue`.
    pub async fn start(spec: &WorkerSpec<'_>, queue: &FairQueue) -> anyhow::Result<Self> {
        let name = format!("bench-{}", ulid::Ulid::new().to_string().to_lowercase());
        let stderr = match &spec.log_file {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot write the worker log {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(spec.binary);
        if let Some(prefetch) = spec.prefetch {
            command.env("WORKER_PREFETCH", prefetch.to_string());
        }
        let child = command
            .env("REDIS_URL", spec.redis_url)
            .env("FLOTILLA_NAMESPACE", spec.namespace.as_str())
            .env("QUEUES", "bench")
            .env("WORKER_CONCURRENCY", spec.concurrency.to_string())
            .env("WORKER_NAME", &name)
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .envs(spec.env.iter().map(|(k, v)| (*k, v.as_str())))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", spec.binary.display()))?;
        let pid = child.id().context("the worker exited at once")?;
        let mut worker = WorkerProcess { child, name, pid };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let live = queue.live_workers(Duration::from_secs(15)).await?;
            if live.iter().any(|w| w.name == worker.name) {
                return Ok(worker);
            }
            if let Some(status) = worker.child.try_wait()? {
                bail!("flotilla-worker exited during start-up ({status}); its log is above");
            }
            if Instant::now() > deadline {
                bail!("flotilla-worker did not register within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory in MiB, from /proc (Linux); `None` elsewhere.
    pub fn rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }

    /// SIGTERM, as a platform would send it; waits for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // The signal may find the worker already gone: a Ctrl-C in the
        // terminal reaches the whole process group, and it drains on its own.
        if self.child.try_wait()?.is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await {
            Ok(status) if status.as_ref().is_ok_and(|s| s.success()) => Ok(()),
            Ok(status) => bail!("worker {} exited with {status:?} after SIGTERM", self.name),
            Err(_) => {
                self.child.kill().await.ok();
                bail!("worker {} did not exit within 40 s of SIGTERM", self.name)
            }
        }
    }
}
