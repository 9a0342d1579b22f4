//! `flotilla-producer` as its users run it: the CLI verbs as processes and
//! the HTTP API on loopback, against a real Redis. Bad input gets a clear
//! error and enqueues nothing.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use flotilla::ids::{Namespace, QueueName};
use flotilla::job::JobState;
use flotilla::queue::lease::{Outcome, Settlement};
use flotilla::queue::{FairQueue, QueueSettings};
use flotilla_tests::{fresh_namespace, redis, redis_url};

fn binary() -> PathBuf {
    let dir = std::env::var("FLOTILLA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    dir.join("flotilla-producer")
}

/// Runs the CLI in namespace `ns` with `stdin`.
fn cli(ns: &Namespace, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("REDIS_URL", redis_url())
        .env("FLOTILLA_NAMESPACE", ns.as_str())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flotilla-producer is built (deploy/local/test builds it)");
    if let Some(input) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn bench_queue(ns: &Namespace) -> FairQueue {
    FairQueue::new(
        redis().await,
        ns,
        QueueName::parse("bench").unwrap(),
        QueueSettings::default(),
    )
}

// ----------------------------------------------------------------------- CLI

#[tokio::test]
async fn enqueue_from_jsonl_reports_counts_and_enqueues_each_line_once() {
    let ns = fresh_namespace();
    let lines = "{\"tenant\":\"acme\",\"payload\":{\"sleep_ms\":1}}\n\n{\"tenant\":\"globex\"}\n{\"payload\":{\"seq\":3}}\n";
    let out = cli(
        &ns,
        &[
            "enqueue", "bench", "--file", "-", "--tenant", "initech", "--json",
        ],
        Some(lines),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["enqueued"], 3);
    let depth = bench_queue(&ns).await.depth().await.unwrap();
    assert_eq!((depth.pending, depth.tenants_ready), (3, 3));
}

#[tokio::test]
async fn enqueue_rejects_a_file_with_a_bad_line_and_enqueues_nothing() {
    let ns = fresh_namespace();
    let lines = "{\"tenant\":\"acme\"}\n{\"tenant\":\"acme\",\"payload\":{\"sleep_ms\":\"soon\"}}\nnot json\n";
    let out = cli(&ns, &["enqueue", "bench", "--file", "-"], Some(lines));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("line 2") && err.contains("line 3") && err.contains("nothing enqueued"),
        "{err}"
    );
    assert_eq!(
        bench_queue(&ns)
            .await
            .depth()
            .await
            .unwrap()
            .totals
            .enqueued,
        0
    );
}

#[tokio::test]
async fn enqueue_with_the_same_idempotency_key_returns_the_first_id() {
    let ns = fresh_namespace();
    let args = [
        "enqueue",
        "bench",
        "--tenant",
        "acme",
        "--idempotency-key",
        "order-1",
        "--json",
    ];
    let first: serde_json::Value = serde_json::from_str(&stdout(&cli(&ns, &args, None))).unwrap();
    let again: serde_json::Value = serde_json::from_str(&stdout(&cli(&ns, &args, None))).unwrap();
    assert_eq!(first["ids"], again["ids"]);
    assert_eq!(
        (again["enqueued"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn enqueue_refuses_hostile_tenants_unknown_queues_and_absurd_delays() {
    let ns = fresh_namespace();
    for args in [
        vec!["enqueue", "bench", "--tenant", "acme'; DROP TABLE x; --"],
        vec!["enqueue", "bench", "--tenant", ""],
        vec!["enqueue", "nope", "--tenant", "acme"],
        vec!["enqueue", "bench", "--tenant", "acme", "--delay", "400d"],
        vec![
            "enqueue",
            "bench",
            "--tenant",
            "acme",
            "--payload",
            "{\"sleep_ms\": -1}",
        ],
    ] {
        let out = cli(&ns, &args, None);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        bench_queue(&ns)
            .await
            .depth()
            .await
            .unwrap()
            .totals
            .enqueued,
        0
    );
}

#[tokio::test]
async fn job_with_an_unknown_id_exits_nonzero_with_one_line() {
    let ns = fresh_namespace();
    let out = cli(
        &ns,
        &["job", &flotilla::ids::JobId::new().to_string()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[tokio::test]
async fn queues_json_reports_depth_by_state() {
    let ns = fresh_namespace();
    cli(&ns, &["enqueue", "bench", "--tenant", "acme"], None);
    cli(
        &ns,
        &["enqueue", "bench", "--tenant", "acme", "--delay", "1h"],
        None,
    );
    let out = cli(&ns, &["queues", "--json"], None);
    let depths: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let bench = depths
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["queue"] == "bench")
        .unwrap();
    assert_eq!(
        (bench["pending"].as_u64(), bench["scheduled"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn dlq_replay_by_tenant_moves_only_that_tenants_jobs() {
    let ns = fresh_namespace();
    let q = bench_queue(&ns).await;
    cli(
        &ns,
        &["enqueue", "bench", "--file", "-"],
        Some("{\"tenant\":\"acme\"}\n{\"tenant\":\"acme\"}\n{\"tenant\":\"globex\"}\n"),
    );
    let claimed = q.claim("test", 10).await.unwrap().jobs;
    let buried: Vec<Settlement> = claimed
        .iter()
        .map(|j| Settlement {
            id: j.id,
            token: j.token,
            outcome: Outcome::Dead {
                error: "broken".into(),
            },
        })
        .collect();
    q.settle(&buried).await.unwrap();

    let listed: serde_json::Value = serde_json::from_str(&stdout(&cli(
        &ns,
        &["dlq", "list", "--tenant", "acme", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let out = cli(&ns, &["dlq", "replay", "--tenant", "acme"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let depth = q.depth().await.unwrap();
    assert_eq!((depth.pending, depth.dead), (2, 1));

    let purge_without_yes = cli(&ns, &["dlq", "purge", "--all"], None);
    assert!(
        !purge_without_yes.status.success(),
        "a bulk purge needs --yes"
    );
    assert!(
        cli(&ns, &["dlq", "purge", "--all", "--yes"], None)
            .status
            .success()
    );
    assert_eq!(q.depth().await.unwrap().dead, 0);
}

// ---------------------------------------------------------------------- HTTP

/// `flotilla-producer serve` on a free loopback port, stopped on drop.
struct Api {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn api(ns: &Namespace) -> Api {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .env("REDIS_URL", redis_url())
        .env("FLOTILLA_NAMESPACE", ns.as_str())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("flotilla-producer is built");
    let api = Api {
        child,
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
    };
    for _ in 0..200 {
        if api
            .http
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .is_ok()
        {
            return api;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("flotilla-producer serve did not answer /healthz within 10 s");
}

impl Api {
    async fn post(
        &self,
        queue: &str,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/v1/jobs/{queue}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        req.send().await.unwrap()
    }
}

async fn problem(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

#[tokio::test]
async fn http_post_returns_202_with_location_and_the_job_can_be_read_back() {
    let ns = fresh_namespace();
    let api = api(&ns).await;
    let resp = api
        .post(
            "bench",
            r#"{"tenant":"acme","payload":{"sleep_ms":2}}"#,
            None,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/jobs/{}", body["id"].as_str().unwrap())
    );

    let status: serde_json::Value = api
        .http
        .get(format!("{}{location}", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "pending");
    assert_eq!(status["tenant"], "acme");
    assert_eq!(status["payload"]["sleep_ms"], 2);
}

#[tokio::test]
async fn http_idempotency_key_replay_returns_the_same_id_and_a_different_body_is_422() {
    let ns = fresh_namespace();
    let api = api(&ns).await;
    let first: serde_json::Value = api
        .post("bench", r#"{"tenant":"acme"}"#, Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    let replay = api.post("bench", r#"{"tenant":"acme"}"#, Some("k-1")).await;
    assert_eq!(replay.status().as_u16(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    problem(
        api.post(
            "bench",
            r#"{"tenant":"acme","payload":{"sleep_ms":9}}"#,
            Some("k-1"),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        bench_queue(&ns)
            .await
            .depth()
            .await
            .unwrap()
            .totals
            .enqueued,
        1
    );
}

#[tokio::test]
async fn http_bad_requests_get_problem_json_and_enqueue_nothing() {
    let ns = fresh_namespace();
    let api = api(&ns).await;
    problem(api.post("bench", r#"{"tenant":"#, None).await, 400).await;
    problem(api.post("bench", r#"{"tenant":5}"#, None).await, 422).await;
    problem(
        api.post(
            "bench",
            r#"{"tenant":"acme","payload":{"sleep_ms":"x"}}"#,
            None,
        )
        .await,
        422,
    )
    .await;
    problem(
        api.post("bench", r#"{"tenant":"ACME; DROP"}"#, None).await,
        422,
    )
    .await;
    problem(
        api.post("bench", r#"{"tenant":"acme","delay_ms":40000000000}"#, None)
            .await,
        422,
    )
    .await;
    problem(api.post("nope", r#"{"tenant":"acme"}"#, None).await, 404).await;
    let big = format!(
        r#"{{"tenant":"acme","payload":{{"pad":"{}"}}}}"#,
        "x".repeat(200 * 1024)
    );
    problem(api.post("bench", big, None).await, 413).await;
    let plain = api
        .http
        .post(format!("{}/v1/jobs/bench", api.base))
        .body(r#"{"tenant":"acme"}"#)
        .send()
        .await
        .unwrap();
    problem(plain, 415).await;
    assert_eq!(
        bench_queue(&ns)
            .await
            .depth()
            .await
            .unwrap()
            .totals
            .enqueued,
        0
    );
}

#[tokio::test]
async fn http_get_of_an_unknown_job_is_404() {
    let ns = fresh_namespace();
    let api = api(&ns).await;
    let resp = api
        .http
        .get(format!(
            "{}/v1/jobs/{}",
            api.base,
            flotilla::ids::JobId::new()
        ))
        .send()
        .await
        .unwrap();
    problem(resp, 404).await;
}

#[tokio::test]
async fn metrics_count_enqueued_jobs() {
    let ns = fresh_namespace();
    let api = api(&ns).await;
    api.post("bench", r#"{"tenant":"acme"}"#, None).await;
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("flotilla_jobs_enqueued_total{queue=\"bench\"} 1"),
        "{text}"
    );
    let job = bench_queue(&ns).await.claim("t", 1).await.unwrap().jobs;
    assert_eq!(job.len(), 1);
    assert_eq!(
        bench_queue(&ns)
            .await
            .job(job[0].id)
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Running
    );
}
