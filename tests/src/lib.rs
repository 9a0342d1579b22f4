//! Helpers shared by the end-to-end tests: real Redis (from `REDIS_URL`,
//! started by `deploy/local/test`), a fresh key namespace per test so tests
//! run in parallel without sharing state.

use flotilla::ids::{Namespace, QueueName, TenantId};
use flotilla::queue::{Clock, FairQueue, QueueSettings};

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| {
        panic!("REDIS_URL is not set: run the tests with deploy/local/test, which starts Redis and PostgreSQL")
    })
}

/// A namespace no other test uses.
pub fn fresh_namespace() -> Namespace {
    Namespace::parse(&format!(
        "t{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap()
}

/// A tenant id from a literal.
pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// A connection to the test Redis.
pub async fn redis() -> redis::aio::ConnectionManager {
    flotilla::redis_conn::connect(&redis_url())
        .await
        .expect("test Redis is reachable")
        .1
}

/// A queue in a fresh namespace, with a manual clock starting at 1,000,000 ms.
pub async fn manual_queue(settings: QueueSettings) -> (FairQueue, Clock) {
    let clock = Clock::manual(1_000_000);
    let queue = FairQueue::new(
        redis().await,
        &fresh_namespace(),
        QueueName::parse("bench").unwrap(),
        settings,
    )
    .with_clock(clock.clone());
    (queue, clock)
}

/// A queue in a fresh namespace on the Redis clock.
pub async fn live_queue(settings: QueueSettings) -> FairQueue {
    FairQueue::new(
        redis().await,
        &fresh_namespace(),
        QueueName::parse("bench").unwrap(),
        settings,
    )
}

/// The queue `name` in namespace `ns`, as the processes of a test see it.
pub async fn queue_in(ns: &Namespace, name: &str) -> FairQueue {
    FairQueue::new(
        redis().await,
        ns,
        QueueName::parse(name).expect("a valid queue name"),
        QueueSettings::default(),
    )
}

/// Real `flotilla-worker` and private `redis-server` processes, with HTTP
/// probes and job-state waits (used by `tests/worker_process.rs`).
pub mod processes;

/// Strategies, subscribers and candles for the candle-execution tests.
pub mod candles;

/// Simulated session hosts and connect workers for the user-connect tests.
pub mod connect;

/// The PostgreSQL server the tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with deploy/local/test, which starts Redis and PostgreSQL")
    })
}

/// A new, empty database of its own on the test server, migrated, so tests
/// run in parallel without sharing rows.
pub async fn fresh_database() -> sqlx::PgPool {
    fresh_database_with_url().await.0
}

/// [`fresh_database`], with its URL for the processes a test starts.
pub async fn fresh_database_with_url() -> (sqlx::PgPool, String) {
    let server = database_url();
    let admin = flotilla::db::connect(&server)
        .await
        .expect("test PostgreSQL is reachable");
    drop_stale_test_databases(&admin).await;
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let pool = flotilla::db::connect(&url)
        .await
        .expect("connect to the test database");
    flotilla::db::migrate(&pool)
        .await
        .expect("migrations apply");
    (pool, url)
}

/// A tenant row with one issued API key, as provisioning leaves it, for
/// tests of what tenants do (not of provisioning itself). `tier` and
/// `status` are the database enums' names ("pro", "active", ...).
pub async fn tenant_with_key(
    pool: &sqlx::PgPool,
    slug: &str,
    tier: &str,
    status: &str,
) -> (TenantId, String) {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, tier, status) \
         VALUES ($1, $2, $2, $3::tenant_tier, $4::tenant_status)",
    )
    .bind(&id)
    .bind(slug)
    .bind(tier)
    .bind(status)
    .execute(pool)
    .await
    .expect("insert a test tenant");
    let tenant = TenantId::parse(&id).expect("lowercase ULIDs are tenant ids");
    let mut conn = pool.acquire().await.expect("a connection");
    let key = flotilla::tenancy::api_key::issue(&mut conn, &tenant)
        .await
        .expect("issue a key");
    (tenant, key.reveal().to_owned())
}

/// Test databases are named after a ULID; those over an hour old belong to
/// finished runs and are dropped, so a developer's server does not fill up.
async fn drop_stale_test_databases(admin: &sqlx::PgPool) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 't\\_%'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for name in names {
        let stale = name
            .strip_prefix("t_")
            .and_then(|id| ulid::Ulid::from_string(&id.to_uppercase()).ok())
            .is_some_and(|id| id.datetime() < hour_ago);
        if stale {
            // Another test binary may race to drop the same one: ignore errors.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(admin)
                .await;
        }
    }
}

/// `flotilla-producer` as its users run it: CLI verbs as processes, and
/// `serve` on a free loopback port (used by `tests/producer_*.rs`). Every
/// run gets the test's namespace through `FLOTILLA_NAMESPACE`.
pub mod producer {
    use std::io::{Read as _, Write as _};
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use flotilla::ids::Namespace;

    use crate::processes::{bin_dir, free_port, wait_for};

    /// The `flotilla-producer` binary; panics with how to build it when missing.
    pub fn binary() -> PathBuf {
        let path = bin_dir().join("flotilla-producer");
        assert!(
            path.exists(),
            "{} does not exist: build it first (cargo build -p flotilla-producer), or run deploy/local/test",
            path.display()
        );
        path
    }

    /// One finished CLI run.
    #[derive(Debug)]
    pub struct Run {
        /// How it exited.
        pub status: ExitStatus,
        /// Everything it printed on stdout.
        pub stdout: String,
        /// Everything it printed on stderr.
        pub stderr: String,
    }

    impl Run {
        /// Stdout as JSON; panics with both streams when it is not.
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
                panic!(
                    "stdout is not JSON ({e})\nstdout: {}\nstderr: {}",
                    self.stdout, self.stderr
                )
            })
        }

        /// Panics with stderr unless the run exited 0.
        pub fn ok(self) -> Self {
            assert!(
                self.status.success(),
                "flotilla-producer failed ({}): {}",
                self.status,
                self.stderr
            );
            self
        }
    }

    /// Runs `flotilla-producer args...` in namespace `ns` on the test Redis,
    /// feeding it `stdin`, and waits for it.
    pub fn cli(ns: &Namespace, args: &[&str], stdin: Option<&str>) -> Run {
        cli_with_env(ns, args, stdin, &[])
    }

    /// [`cli`] with extra environment variables (they override the defaults).
    pub fn cli_with_env(
        ns: &Namespace,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Run {
        let mut child = Command::new(binary())
            .args(args)
            .env("REDIS_URL", crate::redis_url())
            .env("FLOTILLA_NAMESPACE", ns.as_str())
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flotilla-producer starts");
        let input = child.stdin.take().unwrap();
        let text = stdin.unwrap_or_default().to_owned();
        // A thread, so a child that stops reading early cannot block us.
        let writer = std::thread::spawn(move || {
            let mut input = input;
            let _ = input.write_all(text.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The admin key every test API is started with.
    pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

    /// `flotilla-producer serve` on a free loopback port, killed on drop.
    pub struct Api {
        child: Child,
        log: Arc<Mutex<String>>,
        /// `http://127.0.0.1:<port>`.
        pub base: String,
        /// A client for it.
        pub http: reqwest::Client,
    }

    impl Api {
        /// Starts `serve` in namespace `ns` on a fresh database and waits
        /// until `/healthz` answers.
        pub async fn start(ns: &Namespace) -> Api {
            let (_, url) = crate::fresh_database_with_url().await;
            Self::start_with_database(ns, &url).await
        }

        /// [`Api::start`] on the database at `database_url`.
        pub async fn start_with_database(ns: &Namespace, database_url: &str) -> Api {
            Self::start_with_env(ns, database_url, &[]).await
        }

        /// [`Api::start_with_database`] with more environment variables.
        pub async fn start_with_env(
            ns: &Namespace,
            database_url: &str,
            env: &[(&str, &str)],
        ) -> Api {
            let port = free_port();
            let mut child = Command::new(binary())
                .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
                .env("REDIS_URL", crate::redis_url())
                .env("DATABASE_URL", database_url)
                .env("FLOTILLA_ADMIN_KEY", ADMIN_KEY)
                .env("FLOTILLA_NAMESPACE", ns.as_str())
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("flotilla-producer starts");
            let log = Arc::new(Mutex::new(String::new()));
            let mut stderr = child.stderr.take().unwrap();
            let sink = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            let api = Api {
                child,
                log,
                base: format!("http://127.0.0.1:{port}"),
                http: reqwest::Client::new(),
            };
            let url = api.url("/healthz");
            wait_for(
                Duration::from_secs(10),
                "serve to answer /healthz",
                api.log_fn(),
                || async {
                    api.http
                        .get(&url)
                        .send()
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                },
            )
            .await;
            api
        }

        /// The absolute URL of `path`.
        pub fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        /// What the server printed on stderr so far.
        pub fn log_fn(&self) -> impl Fn() -> String + use<> {
            let log = self.log.clone();
            move || log.lock().unwrap().clone()
        }

        /// `POST /v1/jobs/{queue}` with the admin key, a JSON body and an
        /// optional `Idempotency-Key`.
        pub async fn post(
            &self,
            queue: &str,
            body: impl Into<reqwest::Body>,
            key: Option<&str>,
        ) -> reqwest::Response {
            self.post_as(ADMIN_KEY, queue, body, key).await
        }

        /// `POST /v1/jobs/{queue}` with API key `api_key`.
        pub async fn post_as(
            &self,
            api_key: &str,
            queue: &str,
            body: impl Into<reqwest::Body>,
            key: Option<&str>,
        ) -> reqwest::Response {
            let mut request = self
                .http
                .post(self.url(&format!("/v1/jobs/{queue}")))
                .bearer_auth(api_key)
                .header("content-type", "application/json")
                .body(body);
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            request.send().await.expect("the API answers")
        }

        /// `GET path` with the admin key.
        pub async fn get(&self, path: &str) -> reqwest::Response {
            self.get_as(ADMIN_KEY, path).await
        }

        /// `GET path` with API key `api_key`.
        pub async fn get_as(&self, api_key: &str, path: &str) -> reqwest::Response {
            self.http
                .get(self.url(path))
                .bearer_auth(api_key)
                .send()
                .await
                .expect("the API answers")
        }

        /// Sends SIGTERM, as a platform stopping the process does.
        pub fn terminate(&self) {
            let status = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success());
        }

        /// Waits up to `limit` for the process to exit.
        pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
            let log = self.log_fn();
            let child = &mut self.child;
            let mut exited = None;
            wait_for(limit, "serve to exit", log, || {
                exited = exited.or_else(|| child.try_wait().ok().flatten());
                let status = exited;
                async move { status }
            })
            .await
        }
    }

    impl Drop for Api {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Checks an RFC 9457 answer (status, media type, status member and a
    /// non-empty detail) and returns its body.
    pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
        assert_eq!(
            response.status().as_u16(),
            status,
            "status of {}",
            response.url()
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: serde_json::Value = response.json().await.expect("a JSON problem");
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        body
    }
}
