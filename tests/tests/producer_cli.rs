//! The `flotilla-producer` CLI verbs as users run them: real processes
//! against a real Redis, each test in its own namespace. Bad input gets one
//! clear line on stderr, a non-zero exit, and enqueues nothing.
//!
//! Dead jobs are made without a worker: bench jobs asking to fail
//! permanently are claimed and settled as dead through the queue API, as the
//! worker would.

use flotilla::ids::{JobId, Namespace};
use flotilla::job::JobState;
use flotilla::queue::FairQueue;
use flotilla::queue::lease::{Outcome, Settlement};
use flotilla_tests::processes::bench_queue;
use flotilla_tests::producer::{Run, cli, cli_with_env};
use flotilla_tests::{fresh_namespace, redis_url};

async fn queue(ns: &Namespace) -> FairQueue {
    bench_queue(&redis_url(), ns).await
}

/// Enqueues one permanently failing bench job per tenant listed, and buries
/// them all in the dead letter; returns their ids in order.
async fn dead_jobs(ns: &Namespace, tenants: &[&str]) -> Vec<String> {
    let lines: String = tenants
        .iter()
        .map(|t| format!("{{\"tenant\":\"{t}\",\"payload\":{{\"fail\":\"permanent\"}}}}\n"))
        .collect();
    let ids: Vec<String> = cli(ns, &["enqueue", "bench", "-", "--json"], Some(&lines))
        .ok()
        .json()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let q = queue(ns).await;
    let claimed = q.claim("test-worker", tenants.len()).await.unwrap().jobs;
    assert_eq!(claimed.len(), tenants.len());
    let buried: Vec<Settlement> = claimed
        .iter()
        .map(|j| Settlement {
            id: j.id,
            token: j.token,
            outcome: Outcome::Dead {
                error: "permanent: asked to fail".into(),
            },
        })
        .collect();
    q.settle(&buried).await.unwrap();
    ids
}

fn assert_one_error_line(run: &Run) {
    assert!(!run.status.success(), "must fail: {run:?}");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(!run.stderr.contains("backtrace"), "{}", run.stderr);
}

async fn enqueued_total(ns: &Namespace) -> u64 {
    queue(ns).await.depth().await.unwrap().totals.enqueued
}

// ------------------------------------------------------------------ enqueue

#[tokio::test]
async fn enqueue_from_jsonl_reports_counts_and_enqueues_each_line_once() {
    let ns = fresh_namespace();
    let dir = std::env::temp_dir().join(format!("flotilla-{}", ns.as_str()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jobs.jsonl");
    std::fs::write(
        &file,
        "{\"tenant\":\"acme\",\"payload\":{\"sleep_ms\":1},\"idempotency_key\":\"a-1\"}\n\
         \n\
         {\"tenant\":\"globex\",\"idempotency_key\":\"g-1\"}\n\
         {\"tenant\":\"acme\",\"payload\":{\"seq\":3},\"idempotency_key\":\"a-2\",\"delay_ms\":60000}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();

    let first = cli(&ns, &["enqueue", "bench", path, "--json"], None)
        .ok()
        .json();
    assert_eq!(
        (
            &first["enqueued"],
            &first["duplicates"],
            &first["conflicts"]
        ),
        (&3.into(), &0.into(), &0.into())
    );
    let again = cli(&ns, &["enqueue", "bench", path, "--json"], None)
        .ok()
        .json();
    assert_eq!(
        (&again["enqueued"], &again["duplicates"]),
        (&0.into(), &3.into())
    );
    assert_eq!(first["ids"], again["ids"], "replays return the first ids");

    let text = cli(&ns, &["enqueue", "bench", path], None).ok();
    assert!(text.stdout.contains("3 duplicate(s)"), "{}", text.stdout);

    let depth = queue(&ns).await.depth().await.unwrap();
    assert_eq!((depth.pending, depth.scheduled), (2, 1));
    assert_eq!(depth.totals.enqueued, 3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn enqueue_reads_stdin_and_fills_in_the_default_tenant() {
    let ns = fresh_namespace();
    let lines = "{\"payload\":{\"seq\":1}}\n{\"tenant\":\"globex\"}\n";
    let out = cli(
        &ns,
        &["enqueue", "bench", "-", "--tenant", "initech", "--json"],
        Some(lines),
    )
    .ok()
    .json();
    let ids: Vec<JobId> = out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| JobId::parse(v.as_str().unwrap()).unwrap())
        .collect();
    let jobs = queue(&ns).await.jobs(&ids).await.unwrap();
    let tenants: Vec<String> = jobs
        .iter()
        .map(|j| j.as_ref().unwrap().tenant.to_string())
        .collect();
    assert_eq!(tenants, ["initech", "globex"]);
    assert_eq!(jobs[0].as_ref().unwrap().payload["seq"], 1);
}

#[tokio::test]
async fn enqueue_rejects_file_with_bad_line_and_enqueues_nothing() {
    let ns = fresh_namespace();
    let lines = "{\"tenant\":\"acme\"}\n\
                 {\"tenant\":\"acme\",\"payload\":{\"sleep_ms\":\"soon\"}}\n\
                 not json\n\
                 {\"tenant\":\"Bad Tenant\"}\n\
                 {\"tenant\":\"acme\",\"colour\":\"red\"}\n";
    let run = cli(&ns, &["enqueue", "bench", "-"], Some(lines));
    assert_one_error_line(&run);
    for needle in [
        "4 bad line(s)",
        "nothing enqueued",
        "line 2",
        "line 3",
        "line 4",
        "line 5: colour",
    ] {
        assert!(run.stderr.contains(needle), "{needle:?} in {}", run.stderr);
    }
    assert!(!run.stderr.contains("line 1:"), "{}", run.stderr);
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn enqueue_with_same_idempotency_key_returns_first_id() {
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
    let first = cli(&ns, &args, None).ok().json();
    let again = cli(&ns, &args, None).ok().json();
    assert_eq!(first["ids"], again["ids"]);
    assert_eq!(
        (&again["enqueued"], &again["duplicates"]),
        (&0.into(), &1.into())
    );
    let text = cli(&ns, &args[..6], None).ok();
    assert!(text.stdout.contains("already enqueued"), "{}", text.stdout);

    let mut other_payload = args[..6].to_vec();
    other_payload.extend(["--payload", "{\"sleep_ms\": 5}"]);
    let conflict = cli(&ns, &other_payload, None);
    assert_one_error_line(&conflict);
    assert!(
        conflict.stderr.contains(first["ids"][0].as_str().unwrap()),
        "names the first job: {}",
        conflict.stderr
    );
    assert_eq!(enqueued_total(&ns).await, 1);
}

#[tokio::test]
async fn enqueue_refuses_hostile_tenants_unknown_queues_and_absurd_delays() {
    let ns = fresh_namespace();
    for args in [
        vec!["enqueue", "bench", "--tenant", "acme'; DROP TABLE x; --"],
        vec!["enqueue", "bench", "--tenant", ""],
        vec!["enqueue", "bench"],
        vec!["enqueue", "nope", "--tenant", "acme"],
        vec!["enqueue", "bench", "--tenant", "acme", "--delay", "400d"],
        vec![
            "enqueue",
            "bench",
            "--tenant",
            "acme",
            "--run-at",
            "next tuesday",
        ],
        vec![
            "enqueue",
            "bench",
            "--tenant",
            "acme",
            "--payload",
            "{\"sleep_ms\": -1}",
        ],
        vec![
            "enqueue",
            "bench",
            "--tenant",
            "acme",
            "--payload",
            "{not json",
        ],
        vec!["enqueue", "bench", "/no/such/file.jsonl"],
    ] {
        let run = cli(&ns, &args, None);
        assert_one_error_line(&run);
    }
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn cli_errors_are_one_line_saying_what_to_do() {
    let ns = fresh_namespace();
    let run = cli_with_env(
        &ns,
        &["queues"],
        None,
        &[("REDIS_URL", "redis://127.0.0.1:1")],
    );
    assert_one_error_line(&run);
    assert!(run.stderr.contains("Redis"), "{}", run.stderr);
}

// ---------------------------------------------------------------- job, queues

#[tokio::test]
async fn job_unknown_id_exits_nonzero_with_one_line() {
    let ns = fresh_namespace();
    let run = cli(&ns, &["job", &JobId::new().to_string()], None);
    assert_one_error_line(&run);
    assert!(run.stderr.contains("no job"), "{}", run.stderr);
    assert_one_error_line(&cli(&ns, &["job", "not-an-id"], None));
}

#[tokio::test]
async fn job_shows_state_attempts_and_last_error() {
    let ns = fresh_namespace();
    let ids = dead_jobs(&ns, &["acme"]).await;
    let status = cli(&ns, &["job", &ids[0], "--json"], None).ok().json();
    assert_eq!(status["state"], "dead");
    assert_eq!(status["tenant"], "acme");
    assert_eq!(status["attempts"], 1);
    assert_eq!(status["max_attempts"], 3);
    assert_eq!(status["last_error"], "permanent: asked to fail");
    assert!(status["enqueued_at"].as_u64().unwrap() > 0);
    assert!(status["finished_at"].as_u64().unwrap() > 0);
    let text = cli(&ns, &["job", &ids[0]], None).ok().stdout;
    assert!(
        text.contains("dead") && text.contains("1 of 3") && text.contains("asked to fail"),
        "{text}"
    );
}

#[tokio::test]
async fn queues_json_reports_depth_by_state() {
    let ns = fresh_namespace();
    dead_jobs(&ns, &["acme"]).await;
    cli(&ns, &["enqueue", "bench", "--tenant", "acme"], None).ok();
    cli(&ns, &["enqueue", "bench", "--tenant", "globex"], None).ok();
    cli(
        &ns,
        &["enqueue", "bench", "--tenant", "acme", "--delay", "1h"],
        None,
    )
    .ok();
    let claimed = queue(&ns).await.claim("test-worker", 1).await.unwrap().jobs;
    assert_eq!(claimed.len(), 1);

    let depths = cli(&ns, &["queues", "--json"], None).ok().json();
    let bench = depths
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["queue"] == "bench")
        .expect("the bench queue is listed");
    for (state, n) in [
        ("pending", 1),
        ("scheduled", 1),
        ("running", 1),
        ("dead", 1),
    ] {
        assert_eq!(bench[state], n, "{state}: {bench}");
    }
    assert_eq!(bench["tenants_ready"], 1, "{bench}");
    assert!(bench["oldest_pending_ms"].is_u64());
    let table = cli(&ns, &["queues"], None).ok().stdout;
    assert!(
        table.contains("pending") && table.contains("bench"),
        "{table}"
    );
}

// --------------------------------------------------------------------- dlq

#[tokio::test]
async fn dlq_replay_by_tenant_moves_only_that_tenant() {
    let ns = fresh_namespace();
    let ids = dead_jobs(&ns, &["acme", "acme", "globex"]).await;
    let q = queue(&ns).await;

    let listed = cli(&ns, &["dlq", "list", "--tenant", "acme", "--json"], None)
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["tenant"] == "acme")
    );

    let replayed = cli(&ns, &["dlq", "replay", "--tenant", "acme", "--json"], None)
        .ok()
        .json();
    assert_eq!(replayed["done"], 2);
    let depth = q.depth().await.unwrap();
    assert_eq!((depth.pending, depth.dead), (2, 1));
    let globex = JobId::parse(&ids[2]).unwrap();
    assert_eq!(q.job(globex).await.unwrap().unwrap().state, JobState::Dead);
    for id in &ids[..2] {
        let job = q.job(JobId::parse(id).unwrap()).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Pending);
    }
}

#[tokio::test]
async fn dlq_list_show_and_replay_by_id() {
    let ns = fresh_namespace();
    let ids = dead_jobs(&ns, &["acme", "globex", "initech"]).await;

    let page = cli(&ns, &["dlq", "list", "--limit", "2", "--json"], None)
        .ok()
        .json();
    assert_eq!(page.as_array().unwrap().len(), 2);
    let rest = cli(
        &ns,
        &["dlq", "list", "--limit", "2", "--offset", "2", "--json"],
        None,
    )
    .ok()
    .json();
    assert_eq!(rest.as_array().unwrap().len(), 1);

    let shown = cli(&ns, &["dlq", "show", &ids[1], "--json"], None)
        .ok()
        .json();
    assert_eq!(
        (&shown["tenant"], &shown["state"]),
        (&"globex".into(), &"dead".into())
    );

    let out = cli(&ns, &["dlq", "replay", &ids[1]], None).ok();
    assert!(out.stdout.contains("replayed 1"), "{}", out.stdout);
    let again = cli(&ns, &["dlq", "replay", &ids[1]], None);
    assert_one_error_line(&again);
    assert!(again.stderr.contains(&ids[1]), "{}", again.stderr);
    assert_eq!(queue(&ns).await.depth().await.unwrap().dead, 2);
}

#[tokio::test]
async fn dlq_purge_by_id_or_in_bulk_with_yes() {
    let ns = fresh_namespace();
    let ids = dead_jobs(&ns, &["acme", "acme", "globex"]).await;
    let q = queue(&ns).await;

    cli(&ns, &["dlq", "purge", &ids[0]], None).ok();
    assert!(
        q.job(JobId::parse(&ids[0]).unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let without_yes = cli(&ns, &["dlq", "purge", "--all"], None);
    assert_one_error_line(&without_yes);
    assert!(
        without_yes.stderr.contains("--yes"),
        "{}",
        without_yes.stderr
    );
    assert_eq!(q.depth().await.unwrap().dead, 2);

    let nothing_chosen = cli(&ns, &["dlq", "replay"], None);
    assert!(!nothing_chosen.status.success());

    let purged = cli(&ns, &["dlq", "purge", "--all", "--yes", "--json"], None)
        .ok()
        .json();
    assert_eq!(purged["done"], 2);
    assert_eq!(q.depth().await.unwrap().dead, 0);
}
