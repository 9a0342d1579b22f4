//! Real processes for end-to-end tests: the `flotilla-worker` binary as an
//! operator runs it (env vars, signals, HTTP probes), and private
//! `redis-server`s for tests that need a Redis they may misconfigure, stop
//! and restart without disturbing the shared one.
//!
//! Every process is killed when its handle drops, so a failing test leaves
//! nothing running. Waits poll real state with a deadline; a timeout panics
//! with the process' log, which is usually the whole diagnosis.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla::ids::{JobId, Namespace, QueueName};
use flotilla::job::{JobState, JobStatus, NewJob};
use flotilla::kinds::JobKind;
use flotilla::kinds::bench::{Bench, BenchJob};
use flotilla::queue::{FairQueue, QueueSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the binaries are: `FLOTILLA_BIN_DIR` (set by `deploy/local/test`),
/// else the workspace's `target/debug`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("FLOTILLA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

/// The `flotilla-worker` binary; panics with how to build it when missing.
pub fn worker_binary() -> PathBuf {
    let path = bin_dir().join("flotilla-worker");
    assert!(
        path.exists(),
        "{} does not exist: build it first (cargo build -p flotilla-worker), or run deploy/local/test",
        path.display()
    );
    path
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after
/// `limit` with `what` and `context()` (e.g. a process log).
pub async fn wait_for<T, F, Fut>(
    limit: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}\n--- context ---\n{}",
                context()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET http://127.0.0.1:{port}{path}`: the status code and body.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Collects a child's output lines in memory.
fn capture(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut log = into.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// How to start a worker: the environment an operator would set.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    env: Vec<(String, String)>,
}

impl WorkerSpec {
    /// A `bench` worker on `redis_url` in `namespace`, named `name`, with
    /// JSON logs at info.
    pub fn new(redis_url: &str, namespace: &Namespace, name: &str) -> Self {
        let spec = Self { env: Vec::new() };
        spec.env("REDIS_URL", redis_url)
            .env("FLOTILLA_NAMESPACE", namespace.as_str())
            .env("WORKER_NAME", name)
            .env("QUEUES", "bench")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
    }

    /// Sets (or overrides) an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Starts the worker on a free loopback port (`PORT` unless set).
    pub fn spawn(self) -> WorkerProcess {
        let port = self
            .env
            .iter()
            .find(|(k, _)| k == "PORT")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or_else(free_port);
        let mut cmd = Command::new(worker_binary());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting flotilla-worker");
        let log = Arc::new(Mutex::new(String::new()));
        capture(child.stdout.take().unwrap(), log.clone());
        capture(child.stderr.take().unwrap(), log.clone());
        WorkerProcess {
            child,
            port,
            log,
            exit: None,
        }
    }
}

/// A running `flotilla-worker`; killed on drop.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    /// Its HTTP port.
    pub port: u16,
    log: Arc<Mutex<String>>,
    exit: Option<ExitStatus>,
}

impl WorkerProcess {
    /// Everything it printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A closure giving its log, for [`wait_for`]'s context.
    pub fn log_fn(&self) -> impl Fn() -> String + use<> {
        let log = self.log.clone();
        move || log.lock().unwrap().clone()
    }

    /// `/readyz`'s status code, `None` if nothing answers.
    pub async fn readyz(&self) -> Option<u16> {
        http_get(self.port, "/readyz")
            .await
            .ok()
            .map(|(status, _)| status)
    }

    /// Waits until `/readyz` is 200; panics (with the log) if the worker
    /// exits or takes longer than `limit`.
    pub async fn wait_ready(&mut self, limit: Duration) {
        self.wait_readyz(200, limit).await;
    }

    /// Waits until `/readyz` answers `status`.
    pub async fn wait_readyz(&mut self, status: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.readyz().await == Some(status) {
                return;
            }
            if let Some(exit) = self.try_exit() {
                panic!(
                    "flotilla-worker exited ({exit}) while waiting for /readyz {status}\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "/readyz did not answer {status} within {limit:?}\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{name} {} failed", self.child.id());
    }

    /// Its exit status, if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("polling the worker process");
        }
        self.exit
    }

    /// Waits for it to exit; panics (with the log) after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let log = self.log_fn();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                // Let the capture threads read the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return status;
            }
            if Instant::now() > deadline {
                panic!("flotilla-worker did not exit within {limit:?}\n{}", log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A private `redis-server` on a free loopback port, without persistence;
/// killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port (kept across restarts).
    pub port: u16,
    policy: String,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one with this `maxmemory-policy` and waits until it answers.
    pub async fn start(policy: &str) -> Self {
        let mut server = Self {
            port: free_port(),
            policy: policy.to_owned(),
            child: None,
        };
        server.restart().await;
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port; waits until it answers PING.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--maxmemory-policy",
                &self.policy,
                "--dir",
                &std::env::temp_dir().to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server (is it installed? deploy/local/services installs it)");
        self.child = Some(child);
        let url = self.url();
        wait_for(
            Duration::from_secs(10),
            "the private redis-server to answer",
            String::new,
            || {
                let url = url.clone();
                async move {
                    let client = redis::Client::open(url).ok()?;
                    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .ok()
                }
            },
        )
        .await;
    }

    /// `SHUTDOWN NOSAVE`: it exits and its data is gone.
    pub async fn shutdown(&mut self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to the private Redis");
        let _ = redis::cmd("SHUTDOWN")
            .arg("NOSAVE")
            .query_async::<()>(&mut conn)
            .await;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `bench` queue of `namespace` on `redis_url`, default settings.
pub async fn bench_queue(redis_url: &str, namespace: &Namespace) -> FairQueue {
    let (_, conn) = flotilla::redis_conn::connect(redis_url)
        .await
        .expect("Redis is reachable");
    FairQueue::new(
        conn,
        namespace,
        QueueName::parse(Bench::QUEUE).unwrap(),
        QueueSettings::default(),
    )
}

/// Enqueues a bench job for `tenant` with the kind's attempt budget.
pub async fn enqueue_bench(queue: &FairQueue, tenant: &str, job: &BenchJob) -> JobId {
    let payload = serde_json::to_string(job).unwrap();
    let new = NewJob::new(
        crate::tenant(tenant),
        payload,
        Bench::retry_policy().max_attempts,
    );
    queue.enqueue(new).await.expect("enqueue").id()
}

/// Waits until every job in `ids` is in a final state (done or dead) and
/// returns their statuses.
pub async fn wait_finished(
    queue: &FairQueue,
    ids: &[JobId],
    limit: Duration,
    context: impl Fn() -> String,
) -> Vec<JobStatus> {
    wait_for(
        limit,
        "every job to finish (done or dead)",
        context,
        || async {
            let statuses = queue.jobs(ids).await.ok()?;
            let all: Option<Vec<JobStatus>> = statuses.into_iter().collect();
            all.filter(|s| {
                s.iter()
                    .all(|j| matches!(j.state, JobState::Done | JobState::Dead))
            })
        },
    )
    .await
}

/// Waits until job `id` is in `state`.
pub async fn wait_state(
    queue: &FairQueue,
    id: JobId,
    state: JobState,
    limit: Duration,
    context: impl Fn() -> String,
) -> JobStatus {
    wait_for(
        limit,
        &format!("job {id} to be {state}"),
        context,
        || async {
            queue
                .job(id)
                .await
                .ok()
                .flatten()
                .filter(|j| j.state == state)
        },
    )
    .await
}
