//! `flotilla-producer serve` as clients call it: a real process on a free
//! loopback port, a real Redis, a namespace per test. Every refused request
//! is `application/problem+json` and enqueues nothing.

use std::time::Duration;

use flotilla::ids::{JobId, Namespace};
use flotilla::job::JobState;
use flotilla_tests::processes::bench_queue;
use flotilla_tests::producer::{ADMIN_KEY, Api, problem};
use flotilla_tests::{fresh_namespace, redis_url};

async fn enqueued_total(ns: &Namespace) -> u64 {
    bench_queue(&redis_url(), ns)
        .await
        .depth()
        .await
        .unwrap()
        .totals
        .enqueued
}

#[tokio::test]
async fn http_post_returns_202_and_location() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
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
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/jobs/{id}"));
    assert_eq!(
        (
            &body["queue"],
            &body["tenant"],
            &body["state"],
            &body["duplicate"]
        ),
        (
            &"bench".into(),
            &"acme".into(),
            &"pending".into(),
            &false.into()
        )
    );

    let status: serde_json::Value = api.get(&location).await.json().await.unwrap();
    assert_eq!(status["state"], "pending");
    assert_eq!(status["tenant"], "acme");
    assert_eq!(status["attempts"], 0);
    assert_eq!(status["payload"]["sleep_ms"], 2);
}

#[tokio::test]
async fn http_delayed_jobs_are_scheduled() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    for (body, state) in [
        (
            r#"{"tenant":"acme","delay_ms":60000}"#.to_owned(),
            "scheduled",
        ),
        (
            format!(r#"{{"tenant":"acme","run_at":{in_an_hour}}}"#),
            "scheduled",
        ),
        (
            r#"{"tenant":"acme","run_at":"2020-01-01T00:00:00Z"}"#.to_owned(),
            "pending",
        ),
    ] {
        let resp = api.post("bench", body.clone(), None).await;
        assert_eq!(resp.status().as_u16(), 202, "{body}");
        let accepted: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(accepted["state"], state, "{body}");
    }
    // The 365-day limit applies to run_at as to delay_ms.
    let far = api
        .post(
            "bench",
            r#"{"tenant":"acme","run_at":"2999-01-01T00:00:00Z"}"#,
            None,
        )
        .await;
    let p = problem(far, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/run_at", "{p}");
    let depth = bench_queue(&redis_url(), &ns).await.depth().await.unwrap();
    assert_eq!((depth.scheduled, depth.pending), (2, 1));
}

#[tokio::test]
async fn http_idempotency_key_replay_returns_same_id() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let first: serde_json::Value = api
        .post("bench", r#"{"tenant":"acme"}"#, Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    let replay = api
        .post("bench", r#"{"tenant":"acme"}"#, Some("\"k-1\""))
        .await;
    assert_eq!(replay.status().as_u16(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(
        (&again["duplicate"], &again["state"]),
        (&true.into(), &"pending".into())
    );
    // The same key of another tenant is another job.
    let other: serde_json::Value = api
        .post("bench", r#"{"tenant":"globex"}"#, Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first["id"], other["id"]);
    assert_eq!(enqueued_total(&ns).await, 2);
}

/// DESIGN §4 and the IETF Idempotency-Key draft: a key reused with a
/// different payload is 422 (409 is for a request still in flight, which an
/// atomic enqueue never has).
#[tokio::test]
async fn http_conflicting_idempotency_key_is_422_problem_json() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let first: serde_json::Value = api
        .post("bench", r#"{"tenant":"acme"}"#, Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    let conflict = api
        .post(
            "bench",
            r#"{"tenant":"acme","payload":{"sleep_ms":9}}"#,
            Some("k-1"),
        )
        .await;
    let body = problem(conflict, 422).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap()),
        "names the first job: {body}"
    );
    assert_eq!(enqueued_total(&ns).await, 1);
}

#[tokio::test]
async fn http_malformed_json_is_400_problem_json() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    for body in [r#"{"tenant":"#, "", "{\"tenant\":\"acme\"} trailing"] {
        let _ = problem(api.post("bench", body, None).await, 400).await;
    }
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn http_wrong_payload_type_is_422_and_enqueues_nothing() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let cases = [
        (
            r#"{"tenant":"acme","payload":{"sleep_ms":"x"}}"#,
            "/payload",
        ),
        (r#"{"tenant":5}"#, "/tenant"),
        (r#"{"tenant":"acme","delay_ms":-3}"#, "/delay_ms"),
        (r#"{"tenant":"acme","priority":1}"#, "/priority"),
        (r#"[{"tenant":"acme"}]"#, ""),
    ];
    for (body, pointer) in cases {
        let p = problem(api.post("bench", body, None).await, 422).await;
        let errors = p["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors in {p}"));
        assert!(
            errors
                .iter()
                .any(|e| e["pointer"] == pointer && e["detail"].is_string()),
            "{body}: {p}"
        );
    }
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn http_empty_or_hostile_tenant_is_422() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    for body in [
        r#"{"payload":{}}"#,
        r#"{"tenant":""}"#,
        r#"{"tenant":"ACME; DROP TABLE tenants"}"#,
        r#"{"tenant":"../../etc"}"#,
        r#"{"tenant":"acme\n"}"#,
    ] {
        let p = problem(api.post("bench", body, None).await, 422).await;
        assert_eq!(p["errors"][0]["pointer"], "/tenant", "{body}: {p}");
    }
    let bad_key = api
        .post("bench", r#"{"tenant":"acme"}"#, Some("has space"))
        .await;
    let _ = problem(bad_key, 422).await;
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn http_absurd_delay_is_422() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let p = problem(
        api.post("bench", r#"{"tenant":"acme","delay_ms":40000000000}"#, None)
            .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/delay_ms", "{p}");
    let both = api
        .post(
            "bench",
            r#"{"tenant":"acme","delay_ms":5,"run_at":1}"#,
            None,
        )
        .await;
    let _ = problem(both, 422).await;
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn http_oversize_body_is_413() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    // A body over the limit, and a body within it whose payload is over 64 KiB.
    for pad in [200 * 1024, 64 * 1024 + 10] {
        let big = format!(
            r#"{{"tenant":"acme","payload":{{"pad":"{}"}}}}"#,
            "x".repeat(pad)
        );
        let _ = problem(api.post("bench", big, None).await, 413).await;
    }
    assert_eq!(enqueued_total(&ns).await, 0);
}

#[tokio::test]
async fn http_unknown_queue_is_404_problem_json() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let p = problem(api.post("nope", r#"{"tenant":"acme"}"#, None).await, 404).await;
    assert!(
        p["detail"].as_str().unwrap().contains("bench"),
        "lists the known queues: {p}"
    );
    let _ = problem(api.get("/v2/elsewhere").await, 404).await;
}

#[tokio::test]
async fn http_unsupported_media_type_is_415() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = api
            .http
            .post(api.url("/v1/jobs/bench"))
            .bearer_auth(ADMIN_KEY)
            .body(r#"{"tenant":"acme"}"#);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let _ = problem(req.send().await.unwrap(), 415).await;
    }
    let charset = api
        .http
        .post(api.url("/v1/jobs/bench"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"tenant":"acme"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(charset.status().as_u16(), 202);
    assert_eq!(enqueued_total(&ns).await, 1);
}

#[tokio::test]
async fn http_get_unknown_job_is_404() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let _ = problem(api.get(&format!("/v1/jobs/{}", JobId::new())).await, 404).await;
    let _ = problem(api.get("/v1/jobs/not-a-ulid").await, 404).await;
}

#[tokio::test]
async fn probes_and_queue_depths_answer() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    assert_eq!(api.get("/healthz").await.status().as_u16(), 200);
    assert_eq!(api.get("/readyz").await.status().as_u16(), 200);
    api.post("bench", r#"{"tenant":"acme"}"#, None).await;
    let depths: serde_json::Value = api.get("/v1/queues").await.json().await.unwrap();
    let bench = depths
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["queue"] == "bench")
        .unwrap();
    assert_eq!(bench["pending"], 1);
}

#[tokio::test]
async fn metrics_exposes_enqueued_counter() {
    let ns = fresh_namespace();
    let api = Api::start(&ns).await;
    let before = api.get("/metrics").await.text().await.unwrap();
    assert!(
        before.contains("flotilla_jobs_enqueued_total{queue=\"bench\"} 0"),
        "the series exists from the start: {before}"
    );
    api.post("bench", r#"{"tenant":"acme"}"#, Some("m-1")).await;
    api.post("bench", r#"{"tenant":"acme"}"#, Some("m-1")).await;
    api.post("bench", r#"{"tenant":5}"#, None).await;
    let after = api.get("/metrics").await.text().await.unwrap();
    assert!(
        after.contains("flotilla_jobs_enqueued_total{queue=\"bench\"} 1"),
        "a replay and a refusal count nothing: {after}"
    );
    let q = bench_queue(&redis_url(), &ns).await;
    let claimed = q.claim("t", 1).await.unwrap().jobs;
    assert_eq!(
        q.job(claimed[0].id).await.unwrap().unwrap().state,
        JobState::Running
    );
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let ns = fresh_namespace();
    let mut api = Api::start(&ns).await;
    api.terminate();
    let status = api.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}\n{}", api.log_fn()());
}
