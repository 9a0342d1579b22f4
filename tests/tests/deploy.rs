//! What an operator deploys, shown on the real binaries: the alert rules and
//! the dashboard name only metrics the processes export, the README lists
//! every metric they export, and the Procfile's processes run, drain on
//! SIGTERM and lose nothing, as a platform would run them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::ids::Namespace;
use flotilla_tests::processes::{WorkerSpec, bin_dir, free_port, http_get, wait_for};
use flotilla_tests::producer::{ADMIN_KEY, Api};
use flotilla_tests::{fresh_database_with_url, fresh_namespace, queue_in, redis_url};
use serde_json::json;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every `flotilla_*` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("flotilla_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The series names in a Prometheus text exposition, and each histogram's
/// own name (the base of its `_bucket` series).
fn exported(text: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let histograms: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix("_bucket").map(str::to_owned))
        .collect();
    names.extend(histograms);
    names
}

async fn scrape(port: u16) -> String {
    let (status, text) = http_get(port, "/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    text
}

/// A fleet that has done some of everything: provisioned a tenant, run a job.
async fn busy_fleet() -> (Api, flotilla_tests::processes::WorkerProcess, Namespace) {
    let (_, db_url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let api = Api::start_with_database(&ns, &db_url).await;
    let mut worker = WorkerSpec::new(&redis_url(), &ns, "scraped")
        .env("QUEUES", flotilla::kinds::known_queues().join(","))
        .env("DATABASE_URL", &db_url)
        .spawn();
    worker.wait_ready(Duration::from_secs(15)).await;
    let created = api
        .http
        .post(api.url("/v1/tenants"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"slug": "scraped", "tier": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 202);
    assert_eq!(
        api.post("bench", r#"{"tenant": "t1"}"#, None)
            .await
            .status()
            .as_u16(),
        202
    );
    (api, worker, ns)
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exported_by_a_live_process() {
    let (api, worker, _) = busy_fleet().await;
    let port = worker.port;
    let wanted: BTreeSet<String> = metric_names(&repo_file("deploy/prometheus/alerts.yml"))
        .union(&metric_names(&repo_file("deploy/grafana/flotilla.json")))
        .cloned()
        .collect();
    let api_port: u16 = api.base.rsplit(':').next().unwrap().parse().unwrap();
    let last_missing = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let shown = last_missing.clone();
    wait_for(
        Duration::from_secs(30),
        "every metric the rules and dashboard name",
        move || format!("still missing: {:?}", shown.lock().unwrap()),
        || {
            let wanted = wanted.clone();
            let last_missing = last_missing.clone();
            async move {
                let mut have = exported(&scrape(port).await);
                have.extend(exported(&scrape(api_port).await));
                let missing: Vec<String> = wanted.difference(&have).cloned().collect();
                let done = missing.is_empty();
                *last_missing.lock().unwrap() = missing;
                done.then_some(())
            }
        },
    )
    .await;
    assert!(wanted.len() >= 12, "the rules and dashboard use {wanted:?}");
}

#[tokio::test]
async fn the_readme_catalogues_every_metric_the_processes_export() {
    let (api, worker, _) = busy_fleet().await;
    let api_port: u16 = api.base.rsplit(':').next().unwrap().parse().unwrap();
    let port = worker.port;
    // Histograms export once recorded: wait for the job's.
    let text = wait_for(
        Duration::from_secs(30),
        "the job histograms",
        worker.log_fn(),
        || async move {
            let text = scrape(port).await;
            text.contains("flotilla_job_duration_seconds_bucket")
                .then_some(text)
        },
    )
    .await;
    let mut names = exported(&text);
    names.extend(exported(&scrape(api_port).await));
    let readme = repo_file("README.md");
    let undocumented: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("flotilla_"))
        .filter(|n| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            !readme.contains(&format!("`{base}`"))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in the README's metrics table: {undocumented:?}"
    );
}

/// One Procfile line, started as a platform would: its command through a
/// shell, the binaries of this build in place of `./target/release/`.
fn procfile() -> Vec<(String, String)> {
    repo_file("Procfile")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, cmd) = l.split_once(':').expect("name: command");
            (name.trim().to_owned(), cmd.trim().to_owned())
        })
        .collect()
}

fn platform_command(cmd: &str, env: &[(&str, String)]) -> Command {
    let bins: PathBuf = bin_dir();
    let cmd = cmd.replace("./target/release/", &format!("{}/", bins.display()));
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!("exec {cmd}")])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn has_verb(verb: &str) -> bool {
    Command::new(bin_dir().join("flotilla-producer"))
        .args([verb, "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn the_procfile_runs_three_workers_that_drain_on_sigterm_and_lose_nothing() {
    let (_, db_url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let lines = procfile();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["release", "web", "worker", "clock"]);
    let env = |port: u16| {
        vec![
            ("REDIS_URL", redis_url()),
            ("DATABASE_URL", db_url.clone()),
            ("FLOTILLA_NAMESPACE", ns.as_str().to_owned()),
            ("FLOTILLA_ADMIN_KEY", ADMIN_KEY.to_owned()),
            ("PORT", port.to_string()),
            ("BIND", "127.0.0.1".to_owned()),
            ("SHUTDOWN_GRACE", "3s".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]
    };
    let command = |name: &str| &lines.iter().find(|(n, _)| n == name).unwrap().1;

    let release = platform_command(command("release"), &env(0))
        .status()
        .unwrap();
    assert!(release.success(), "the release phase migrates");

    let mut processes: Vec<(String, Child)> = Vec::new();
    let web_port = free_port();
    processes.push((
        "web".into(),
        platform_command(command("web"), &env(web_port))
            .spawn()
            .unwrap(),
    ));
    for i in 0..3 {
        let child = platform_command(command("worker"), &env(free_port()))
            .spawn()
            .unwrap();
        processes.push((format!("worker.{i}"), child));
    }
    if has_verb("clock") {
        processes.push((
            "clock".into(),
            platform_command(command("clock"), &env(free_port()))
                .spawn()
                .unwrap(),
        ));
    } else {
        eprintln!("this build has no clock verb yet: the Procfile's clock line is not started");
    }
    wait_for(
        Duration::from_secs(20),
        "web to answer",
        String::new,
        || async {
            http_get(web_port, "/readyz")
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
        },
    )
    .await;

    let bench = queue_in(&ns, "bench").await;
    let total = 300;
    let http = reqwest::Client::new();
    for i in 0..total {
        let response = http
            .post(format!("http://127.0.0.1:{web_port}/v1/jobs/bench"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"tenant": format!("t{}", i % 7), "payload": {"sleep_ms": 400}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    wait_for(
        Duration::from_secs(30),
        "some jobs to finish",
        String::new,
        || async { (bench.depth().await.unwrap().totals.completed >= 30).then_some(()) },
    )
    .await;

    for (_, child) in &processes {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(3 + 10);
    for (name, child) in &mut processes {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not exit within its grace"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{name} exits 0 after SIGTERM: {status}");
    }

    let mut finisher = WorkerSpec::new(&redis_url(), &ns, "finisher").spawn();
    finisher.wait_ready(Duration::from_secs(15)).await;
    wait_for(
        Duration::from_secs(60),
        "every job done",
        finisher.log_fn(),
        || async {
            let depth = bench.depth().await.unwrap();
            (depth.totals.completed == total
                && depth.pending + depth.running + depth.scheduled == 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        bench.depth().await.unwrap().dead,
        0,
        "nothing lost, nothing dead"
    );
}
