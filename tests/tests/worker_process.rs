//! `flotilla-worker` as an operator runs it: a real process configured by
//! environment variables, stopped by signals, probed over HTTP, against a
//! real Redis. Each test has its own key namespace (and, when it needs to
//! misconfigure or restart Redis, its own `redis-server`).
//!
//! Build the binary first: `cargo build -p flotilla-worker` (deploy/local/test does).

use std::time::Duration;

use flotilla::ids::JobId;
use flotilla::job::{JobState, NewJob};
use flotilla::kinds::JobKind;
use flotilla::kinds::bench::{Bench, BenchJob, Failure};
use flotilla_tests::processes::{
    RedisServer, WorkerSpec, bench_queue, enqueue_bench, http_get, wait_finished, wait_for,
    wait_state,
};
use flotilla_tests::{fresh_namespace, redis_url, tenant};

/// Time a worker gets to start answering `/readyz` with 200.
const START: Duration = Duration::from_secs(15);

fn sleeping(ms: u64) -> BenchJob {
    BenchJob {
        sleep_ms: ms,
        ..BenchJob::default()
    }
}

fn failing(fail: Failure, fail_attempts: Option<u32>) -> BenchJob {
    BenchJob {
        fail: Some(fail),
        fail_attempts,
        ..BenchJob::default()
    }
}

/// The JSON log line with this message, parsed.
fn log_event(log: &str, message: &str) -> Option<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == message)
}

#[tokio::test]
async fn sigterm_drains_in_flight_jobs_and_loses_nothing() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let mut ids: Vec<JobId> = Vec::new();
    for i in 0..200u64 {
        let job = BenchJob {
            seq: Some(i),
            ..sleeping(50)
        };
        ids.push(enqueue_bench(&queue, &format!("tenant-{}", i % 5), &job).await);
    }
    let spec = |name: &str| {
        WorkerSpec::new(&redis_url(), &ns, name)
            .env("WORKER_CONCURRENCY", "4")
            .env("SHUTDOWN_GRACE", "10s")
    };
    let mut leaving = spec("leaving").spawn();
    let mut staying = spec("staying").spawn();
    leaving.wait_ready(START).await;
    staying.wait_ready(START).await;

    wait_for(
        Duration::from_secs(20),
        "40 jobs done",
        leaving.log_fn(),
        || async {
            queue
                .depth()
                .await
                .ok()
                .filter(|d| d.totals.completed >= 40)
        },
    )
    .await;
    leaving.signal("TERM");
    let exit = leaving.wait_exit(Duration::from_secs(5)).await;
    assert!(
        exit.success(),
        "SIGTERM must end in a clean exit, got {exit}\n{}",
        leaving.log()
    );
    let stopped =
        log_event(&leaving.log(), "worker stopped").expect("a shutdown summary in the log");
    assert!(
        stopped["running_at_stop"].as_u64().unwrap() > 0,
        "the SIGTERM landed between jobs: {stopped}"
    );
    assert_eq!(
        (
            stopped["drained"].as_bool(),
            stopped["handed_back"].as_u64()
        ),
        (Some(true), Some(0)),
        "{stopped}"
    );

    let jobs = wait_finished(&queue, &ids, Duration::from_secs(30), staying.log_fn()).await;
    for job in &jobs {
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Done, 1),
            "job {} ran other than once: {job:?}",
            job.id
        );
    }
    let totals = queue.depth().await.unwrap().totals;
    assert_eq!(
        (totals.completed, totals.lease_expired),
        (200, 0),
        "{totals:?}"
    );
}

#[tokio::test]
async fn sigterm_hands_back_jobs_that_outlive_the_grace() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let id = enqueue_bench(&queue, "acme", &sleeping(3_000)).await;
    let mut first = WorkerSpec::new(&redis_url(), &ns, "first")
        .env("SHUTDOWN_GRACE", "500ms")
        .spawn();
    first.wait_ready(START).await;
    wait_state(
        &queue,
        id,
        JobState::Running,
        Duration::from_secs(10),
        first.log_fn(),
    )
    .await;

    first.signal("TERM");
    let exit = first.wait_exit(Duration::from_secs(2)).await;
    assert!(exit.success(), "got {exit}\n{}", first.log());
    let handed_back = queue.job(id).await.unwrap().unwrap();
    assert_eq!(handed_back.state, JobState::Pending, "{handed_back:?}");
    assert_eq!(
        handed_back.attempts, 0,
        "a handed-back attempt does not count: {handed_back:?}"
    );
    assert!(
        handed_back.history.is_empty(),
        "a hand-back is not a failure: {handed_back:?}"
    );
    let stopped = log_event(&first.log(), "worker stopped").expect("a shutdown summary in the log");
    assert_eq!(stopped["handed_back"].as_u64(), Some(1), "{stopped}");

    let mut second = WorkerSpec::new(&redis_url(), &ns, "second").spawn();
    second.wait_ready(START).await;
    let done = wait_state(
        &queue,
        id,
        JobState::Done,
        Duration::from_secs(10),
        second.log_fn(),
    )
    .await;
    assert_eq!(done.attempts, 1, "{done:?}");
}

#[tokio::test]
async fn malformed_payload_is_dead_lettered_and_worker_keeps_running() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let bad = NewJob::new(
        tenant("acme"),
        r#"{"sleep_ms": "soon"}"#,
        Bench::retry_policy().max_attempts,
    );
    let bad = queue.enqueue(bad).await.unwrap().id();
    let good = enqueue_bench(&queue, "acme", &BenchJob::default()).await;
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "w").spawn();
    worker.wait_ready(START).await;

    let jobs = wait_finished(
        &queue,
        &[bad, good],
        Duration::from_secs(10),
        worker.log_fn(),
    )
    .await;
    assert_eq!(jobs[0].state, JobState::Dead, "{:?}", jobs[0]);
    let error = jobs[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("does not decode as a bench job"),
        "the reason names the problem: {error}"
    );
    assert_eq!(jobs[1].state, JobState::Done, "{:?}", jobs[1]);
    assert_eq!(worker.readyz().await, Some(200));
    assert!(worker.try_exit().is_none());
}

#[tokio::test]
async fn refuses_to_start_when_redis_may_evict() {
    let redis = RedisServer::start("allkeys-lru").await;
    let mut worker = WorkerSpec::new(&redis.url(), &fresh_namespace(), "w").spawn();
    let exit = worker.wait_exit(Duration::from_secs(10)).await;
    assert!(!exit.success(), "it must refuse, got {exit}");
    let log = worker.log();
    assert!(log.contains("maxmemory-policy is \"allkeys-lru\""), "{log}");
    assert!(
        log.contains("CONFIG SET maxmemory-policy noeviction"),
        "the message says how to fix it: {log}"
    );
}

#[tokio::test]
async fn survives_a_redis_restart() {
    let mut redis = RedisServer::start("noeviction").await;
    let ns = fresh_namespace();
    let mut worker = WorkerSpec::new(&redis.url(), &ns, "w").spawn();
    worker.wait_ready(START).await;

    redis.shutdown().await;
    worker.wait_readyz(503, Duration::from_secs(5)).await;
    let (_, body) = http_get(worker.port, "/readyz").await.unwrap();
    assert!(body.contains("redis unreachable"), "{body}");
    assert_eq!(
        http_get(worker.port, "/healthz").await.unwrap().0,
        200,
        "alive while Redis is down"
    );

    redis.restart().await;
    worker.wait_ready(Duration::from_secs(15)).await;
    let queue = bench_queue(&redis.url(), &ns).await;
    let id = enqueue_bench(&queue, "acme", &BenchJob::default()).await;
    wait_state(
        &queue,
        id,
        JobState::Done,
        Duration::from_secs(15),
        worker.log_fn(),
    )
    .await;
    assert!(worker.try_exit().is_none());
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_dead_letter_with_their_history() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let id = enqueue_bench(&queue, "acme", &failing(Failure::Transient, None)).await;
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "w").spawn();
    worker.wait_ready(START).await;

    let dead = wait_state(
        &queue,
        id,
        JobState::Dead,
        Duration::from_secs(15),
        worker.log_fn(),
    )
    .await;
    let max = Bench::retry_policy().max_attempts;
    assert_eq!(dead.attempts, max, "{dead:?}");
    assert_eq!(
        dead.history.iter().map(|f| f.attempt).collect::<Vec<_>>(),
        (1..=max).collect::<Vec<_>>()
    );
    assert!(
        dead.history
            .iter()
            .all(|f| f.error.contains("failing on purpose (transient)")),
        "{dead:?}"
    );
    assert!(
        dead.history.windows(2).all(|w| w[0].at <= w[1].at),
        "{dead:?}"
    );
}

#[tokio::test]
async fn permanent_failure_is_dead_lettered_after_one_attempt() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let id = enqueue_bench(&queue, "acme", &failing(Failure::Permanent, None)).await;
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "w").spawn();
    worker.wait_ready(START).await;

    let dead = wait_state(
        &queue,
        id,
        JobState::Dead,
        Duration::from_secs(10),
        worker.log_fn(),
    )
    .await;
    assert_eq!((dead.attempts, dead.history.len()), (1, 1), "{dead:?}");
    assert!(
        dead.last_error
            .unwrap_or_default()
            .contains("failing on purpose (permanent)")
    );
}

#[tokio::test]
async fn panicking_job_is_caught_retried_and_the_worker_keeps_running() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let id = enqueue_bench(&queue, "acme", &failing(Failure::Panic, Some(1))).await;
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "w").spawn();
    worker.wait_ready(START).await;

    let done = wait_state(
        &queue,
        id,
        JobState::Done,
        Duration::from_secs(10),
        worker.log_fn(),
    )
    .await;
    assert_eq!(
        done.attempts, 2,
        "the panic used one attempt and kept its retries: {done:?}"
    );
    assert!(done.history[0].error.contains("panicked"), "{done:?}");
    assert_eq!(worker.readyz().await, Some(200));
    assert!(worker.try_exit().is_none());
}

#[tokio::test]
async fn worker_registers_while_running_and_deregisters_on_sigterm() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "registered").spawn();
    worker.wait_ready(START).await;
    let names = || async {
        let live = queue
            .live_workers(Duration::from_secs(15))
            .await
            .unwrap_or_default();
        live.into_iter().map(|w| w.name).collect::<Vec<_>>()
    };
    wait_for(
        Duration::from_secs(5),
        "the worker in the registry",
        worker.log_fn(),
        || async {
            names()
                .await
                .contains(&"registered".to_owned())
                .then_some(())
        },
    )
    .await;

    worker.signal("INT");
    assert!(
        worker.wait_exit(Duration::from_secs(5)).await.success(),
        "{}",
        worker.log()
    );
    assert!(names().await.is_empty(), "a clean exit leaves the registry");
}

#[tokio::test]
async fn metrics_report_queue_depth_live_workers_and_redis_up() {
    let ns = fresh_namespace();
    let queue = bench_queue(&redis_url(), &ns).await;
    let later = NewJob::new(tenant("acme"), "{}", 3).delay(Duration::from_secs(3600));
    queue.enqueue(later).await.unwrap();
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "w").spawn();
    worker.wait_ready(START).await;

    let expected = [
        r#"flotilla_queue_depth{queue="bench",state="scheduled"} 1"#,
        r#"flotilla_queue_depth{queue="bench",state="pending"} 0"#,
        r#"flotilla_queue_oldest_pending_seconds{queue="bench"} 0"#,
        r#"flotilla_workers_live{queue="bench"} 1"#,
        "flotilla_redis_up 1",
    ];
    let port = worker.port;
    wait_for(
        Duration::from_secs(10),
        "the gauges in /metrics",
        worker.log_fn(),
        || async move {
            let (status, text) = http_get(port, "/metrics").await.ok()?;
            (status == 200 && expected.iter().all(|line| text.lines().any(|l| l == *line)))
                .then_some(())
        },
    )
    .await;
}
