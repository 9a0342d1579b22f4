//! The README's demo and the shipped benchmark, run small: they end by
//! themselves and print what they promise. (The benchmark's figures are not
//! asserted here: timings are shown by running it, not by tests.)

use std::path::PathBuf;
use std::process::Command;

use flotilla_tests::{fresh_namespace, redis_url};

fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("FLOTILLA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    dir.join(name)
}

#[test]
fn demo_drains_its_workload_and_prints_a_per_tenant_summary() {
    let out = Command::new(bin("flotilla-producer"))
        .args([
            "demo",
            "--tenants",
            "4",
            "--noisy-jobs",
            "200",
            "--worker-bin",
        ])
        .arg(bin("flotilla-worker"))
        .env("REDIS_URL", redis_url())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pending"),
        "live depth is printed: {stdout}"
    );
    let noisy = stdout
        .lines()
        .find(|l| l.starts_with("noisy "))
        .expect("a row for the noisy tenant");
    assert!(
        noisy.split_whitespace().nth(1) == Some("200"),
        "every noisy job done: {noisy}"
    );
    let failing = stdout
        .lines()
        .find(|l| l.starts_with("tenant-00 "))
        .expect("a row for tenant-00");
    assert_eq!(
        failing.split_whitespace().nth(2),
        Some("3"),
        "the three failing jobs reached the dead letter: {failing}"
    );
    assert!(stdout.contains("dead letter: job"), "{stdout}");
}

#[test]
fn bench_queue_prints_every_figure_the_issue_names() {
    let out = Command::new(bin("flotilla-producer"))
        .args([
            "bench",
            "queue",
            "--json",
            "--scale",
            "0.01",
            "--pickup-duration",
            "1s",
            "--worker-bin",
        ])
        .arg(bin("flotilla-worker"))
        .env("REDIS_URL", redis_url())
        .env("FLOTILLA_NAMESPACE", fresh_namespace().as_str())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in [
        "/throughput/flotilla_jobs_per_s",
        "/throughput/apalis_redis_jobs_per_s",
        "/throughput/redis_cost/flotilla_cpu_us_per_job",
        "/throughput/redis_cost/apalis_redis_cpu_us_per_job",
        "/fairness/quiet_p99_ms_loaded",
        "/fairness/quiet_p99_ms_unloaded",
        "/pickup/p50_ms",
        "/pickup/p99_ms",
        "/rss/idle_mb",
        "/rss/load_mb",
    ] {
        assert!(
            report
                .pointer(path)
                .is_some_and(serde_json::Value::is_number),
            "{path} in {report}"
        );
    }
    for rounds in [
        "/throughput/flotilla_rounds_jobs_per_s",
        "/throughput/apalis_redis_rounds_jobs_per_s",
    ] {
        let n = report
            .pointer(rounds)
            .and_then(|r| r.as_array())
            .map(Vec::len);
        assert_eq!(
            n,
            Some(5),
            "five throughput rounds by default: {rounds} in {report}"
        );
    }
    let shares = report
        .pointer("/fairness/shares")
        .and_then(|s| s.as_object())
        .unwrap();
    assert_eq!(shares.keys().collect::<Vec<_>>(), ["1", "2", "4"]);
    let total: f64 = shares.values().filter_map(serde_json::Value::as_f64).sum();
    assert!((total - 1.0).abs() < 1e-9, "shares add up to 1: {total}");
}

#[test]
fn bench_provisioning_prints_per_tier_and_concurrent_percentiles() {
    let out = Command::new(bin("flotilla-producer"))
        .args([
            "bench",
            "provisioning",
            "--json",
            "--scale",
            "0.03",
            "--worker-bin",
        ])
        .arg(bin("flotilla-worker"))
        .env("REDIS_URL", redis_url())
        .env("DATABASE_URL", flotilla_tests::database_url())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in [
        "/per_tier/starter/p50_ms",
        "/per_tier/starter/p99_ms",
        "/per_tier/pro/p50_ms",
        "/per_tier/pro/p99_ms",
        "/per_tier/enterprise/p50_ms",
        "/per_tier/enterprise/p99_ms",
        "/concurrent_100/p99_ms",
    ] {
        let ms = report.pointer(path).and_then(serde_json::Value::as_f64);
        assert!(ms.is_some_and(|ms| ms > 0.0), "{path} in {report}");
    }
    assert_eq!(report.pointer("/concurrent_100/tenants"), Some(&3.into()));
}

#[test]
fn bench_connect_prints_connects_per_second_and_the_host_balance() {
    let out = Command::new(bin("flotilla-producer"))
        .args([
            "bench",
            "connect",
            "--json",
            "--scale",
            "0.02",
            "--workers",
            "1",
            "--worker-bin",
        ])
        .arg(bin("flotilla-worker"))
        .env("REDIS_URL", redis_url())
        .env("DATABASE_URL", flotilla_tests::database_url())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["users"].as_u64(), report["hosts"].as_u64()),
        (Some(200), Some(20))
    );
    assert!(
        report["connects_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    // 200 users over 20 equal hosts: ten each, exactly.
    assert_eq!(report["load_max_over_min"].as_f64(), Some(1.0), "{report}");
    assert_eq!(
        report["held_by_hosts"], 200,
        "the hosts hold every user: {report}"
    );
    assert_eq!(report["bad_signatures"], 0, "{report}");
}
