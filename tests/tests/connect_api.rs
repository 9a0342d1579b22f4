//! User connect over HTTP and the CLI, on a real `flotilla-producer serve`
//! and a real worker: hosts register, heartbeat and drain with the admin
//! key; a tenant connects its users with its own key and sees only them.

use std::time::Duration;

use flotilla_tests::connect::{SECRET, connect_worker, count};
use flotilla_tests::processes::wait_for;
use flotilla_tests::producer::{ADMIN_KEY, Api, cli_with_env, problem};
use flotilla_tests::{fresh_database_with_url, fresh_namespace, tenant_with_key};
use serde_json::{Value, json};

async fn send(api: &Api, key: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = api.http.post(api.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the API answers")
}

#[tokio::test]
async fn a_host_registers_heartbeats_and_users_connect_through_the_api() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let api = Api::start_with_env(&ns, &url, &[("FLOTILLA_HOST_HEARTBEAT_TIMEOUT", "2s")]).await;
    let worker = connect_worker(&ns, &url, "w1").spawn();
    let sim = flotilla::connect::sim::SimHost::start(Some(SECRET.into()))
        .await
        .unwrap();
    let (acme, acme_key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (_, globex_key) = tenant_with_key(&pool, "globex", "pro", "active").await;

    let registered = send(
        &api,
        ADMIN_KEY,
        "/v1/hosts",
        Some(json!({"id": "tg-1", "endpoint": sim.endpoint().as_str(), "capacity": 100, "region": "eu-west"})),
    )
    .await;
    assert_eq!(registered.status(), 200);
    let host: Value = registered.json().await.unwrap();
    assert_eq!(
        (host["status"].as_str(), host["accepting"].as_bool()),
        (Some("live"), Some(true))
    );

    // A heartbeat loop, as a real host runs one.
    let beat = {
        let (http, url) = (api.http.clone(), api.url("/v1/hosts/tg-1/heartbeat"));
        tokio::spawn(async move {
            loop {
                let _ = http.post(&url).bearer_auth(ADMIN_KEY).send().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };

    let asked = send(&api, &acme_key, "/v1/users/u-42/connect", None).await;
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().await.unwrap();
    assert!(asked["job"].is_string(), "{asked}");
    assert_eq!(asked["status_url"], "/v1/users/u-42/connection");
    wait_for(
        Duration::from_secs(30),
        "u-42 connected",
        worker.log_fn(),
        || async {
            let shown: Value = api
                .get_as(&acme_key, "/v1/users/u-42/connection")
                .await
                .json()
                .await
                .ok()?;
            (shown["state"] == "connected").then_some(shown)
        },
    )
    .await;
    assert!(sim.holds(acme.as_str(), "u-42"));

    // Again: nothing to do, 200 and no job.
    let again = send(&api, &acme_key, "/v1/users/u-42/connect", None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["job"], Value::Null);

    // Another tenant's key does not see acme's user.
    problem(
        api.get_as(&globex_key, "/v1/users/u-42/connection").await,
        404,
    )
    .await;
    // The admin names the tenant.
    let shown: Value = api
        .get(&format!("/v1/users/u-42/connection?tenant={acme}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shown["host"].as_str(), shown["state"].as_str()),
        (Some("tg-1"), Some("connected"))
    );

    let hosts: Value = api.get("/v1/hosts").await.json().await.unwrap();
    assert_eq!(hosts["hosts"][0]["load"], 1, "{hosts}");
    assert_eq!(hosts["heartbeat_timeout_ms"], 2000);

    let gone = send(&api, &acme_key, "/v1/users/u-42/disconnect", None).await;
    assert_eq!(gone.status(), 202);
    wait_for(
        Duration::from_secs(30),
        "u-42 disconnected",
        worker.log_fn(),
        || async {
            (!sim.holds(acme.as_str(), "u-42")
                && count(
                    &pool,
                    "SELECT count(*) FROM user_connections WHERE state = 'disconnected'",
                )
                .await
                    == 1)
                .then_some(())
        },
    )
    .await;
    beat.abort();
}

#[tokio::test]
async fn host_routes_need_the_admin_key_and_bad_input_gets_a_problem() {
    let (pool, url) = fresh_database_with_url().await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let (_, acme_key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (_, frozen_key) = tenant_with_key(&pool, "frozen", "pro", "suspended").await;
    let good =
        json!({"id": "tg-1", "endpoint": "http://127.0.0.1:9", "capacity": 10, "region": "eu"});

    problem(
        send(&api, &acme_key, "/v1/hosts", Some(good.clone())).await,
        403,
    )
    .await;
    problem(api.get_as(&acme_key, "/v1/hosts").await, 403).await;
    for (bad, says) in [
        (
            json!({"id": "tg-1", "endpoint": "ftp://x", "capacity": 10, "region": "eu"}),
            "http",
        ),
        (
            json!({"id": "TG 1;drop", "endpoint": "http://x", "capacity": 10, "region": "eu"}),
            "host id",
        ),
        (
            json!({"id": "tg-1", "endpoint": "http://x", "capacity": 0, "region": "eu"}),
            "capacity",
        ),
        (
            json!({"id": "tg-1", "endpoint": "http://x", "capacity": "ten", "region": "eu"}),
            "capacity",
        ),
    ] {
        let p = problem(send(&api, ADMIN_KEY, "/v1/hosts", Some(bad)).await, 422).await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let p = problem(
        send(&api, ADMIN_KEY, "/v1/hosts/nobody/heartbeat", None).await,
        404,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("registers first"),
        "{p}"
    );
    problem(
        send(&api, ADMIN_KEY, "/v1/hosts/nobody/drain", None).await,
        404,
    )
    .await;

    // Users: hostile ids name nothing; a suspended tenant may not connect;
    // the admin must name a tenant.
    problem(
        send(&api, &acme_key, "/v1/users/a%20b%3B/connect", None).await,
        404,
    )
    .await;
    problem(
        send(&api, &frozen_key, "/v1/users/u-1/connect", None).await,
        403,
    )
    .await;
    problem(
        send(&api, ADMIN_KEY, "/v1/users/u-1/connect", None).await,
        422,
    )
    .await;
    problem(
        send(
            &api,
            ADMIN_KEY,
            "/v1/users/u-1/connect?tenant=01jnotatenant0000000000000",
            None,
        )
        .await,
        404,
    )
    .await;
    let p = problem(
        send(&api, &acme_key, "/v1/users/u-1/disconnect", None).await,
        404,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("never asked to connect"),
        "{p}"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM user_connections").await,
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn the_cli_lists_hosts_drains_one_and_shows_a_user() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let env = [("DATABASE_URL", url.as_str())];
    flotilla::connect::hosts::register(
        &pool,
        &flotilla::connect::hosts::Registration {
            id: "tg-1".parse().unwrap(),
            endpoint: flotilla::connect::Endpoint::parse("http://127.0.0.1:9").unwrap(),
            capacity: 10,
            region: "eu".parse().unwrap(),
        },
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    let listed = cli_with_env(&ns, &["hosts", "list"], None, &env)
        .ok()
        .json();
    assert_eq!(listed["hosts"][0]["id"], "tg-1");
    let drained = cli_with_env(&ns, &["hosts", "drain", "tg-1"], None, &env)
        .ok()
        .json();
    assert_eq!(drained["host"]["status"], "draining");

    let asked = cli_with_env(
        &ns,
        &["users", "connect", "u-7", "--tenant", acme.as_str()],
        None,
        &env,
    )
    .ok()
    .json();
    assert_eq!(asked["connection"]["state"], "assigning");
    let shown = cli_with_env(
        &ns,
        &["users", "show", "u-7", "--tenant", acme.as_str()],
        None,
        &env,
    )
    .ok()
    .json();
    assert_eq!(shown["user"], "u-7");

    let bad = cli_with_env(
        &ns,
        &["users", "show", "a b", "--tenant", acme.as_str()],
        None,
        &env,
    );
    assert!(!bad.status.success());
    assert!(
        bad.stderr.contains("user id") && bad.stderr.lines().count() == 1,
        "{}",
        bad.stderr
    );
}
