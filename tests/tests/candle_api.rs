//! The candle-execution HTTP API on a real `flotilla-producer serve`:
//! strategies, subscriptions, executions and stats scoped by API key, and
//! the market-data feed `POST /v1/candles`.

use flotilla::candles::execute::{RunContext, execute};
use flotilla::kinds::candles::CandleJob;
use flotilla_tests::candles::*;
use flotilla_tests::producer::{ADMIN_KEY, Api, problem};
use flotilla_tests::{fresh_database_with_url, fresh_namespace, tenant_with_key};
use serde_json::{Value, json};

async fn send(
    api: &Api,
    method: &str,
    key: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = api
        .http
        .request(method.parse().unwrap(), api.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the API answers")
}

/// `POST path` as `key`, expecting 201; the created resource.
async fn created(api: &Api, key: &str, path: &str, body: Value) -> Value {
    ok(send(api, "POST", key, path, Some(body)).await, 201).await
}

async fn ok(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "{}", response.url());
    response.json().await.unwrap()
}

fn breakout() -> Value {
    json!({"name": "BTC breakout", "kind": "donchian", "symbol": "BTCUSDT", "resolution": "5m", "parameters": {"period": 3}})
}

fn settings(strategy: &Value) -> Value {
    json!({"strategy_id": strategy["id"], "user_id": "u-1", "capital": 10000, "risk_pct": 1, "leverage": 10, "broker_credential_ref": "vault:brokers/u-1"})
}

#[tokio::test]
async fn a_tenant_registers_a_strategy_and_its_users_subscribe() {
    let (pool, url) = fresh_database_with_url().await;
    let (tenant, key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;

    let strategy = created(&api, &key, "/v1/strategies", breakout()).await;
    let sub = created(&api, &key, "/v1/subscriptions", settings(&strategy)).await;
    let listed = ok(send(&api, "GET", &key, "/v1/strategies", None).await, 200).await;

    assert_eq!(strategy["tenant_id"], tenant.as_str());
    assert_eq!(
        (strategy["version"].clone(), strategy["active"].clone()),
        (json!(1), json!(true))
    );
    // Defaults are filled in and stored.
    assert_eq!(strategy["parameters"]["stop_pct"], 1.0);
    assert_eq!(
        (sub["status"].as_str(), sub["capital"].as_f64()),
        (Some("active"), Some(10000.0))
    );
    assert_eq!(listed["strategies"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn new_parameters_bump_the_version_and_delete_deactivates() {
    let (pool, url) = fresh_database_with_url().await;
    let (_, key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let strategy = created(&api, &key, "/v1/strategies", breakout()).await;
    let path = format!("/v1/strategies/{}", strategy["id"]);

    let renamed = ok(
        send(&api, "PATCH", &key, &path, Some(json!({"name": "renamed"}))).await,
        200,
    )
    .await;
    let updated = ok(
        send(
            &api,
            "PATCH",
            &key,
            &path,
            Some(json!({"parameters": {"period": 20}})),
        )
        .await,
        200,
    )
    .await;
    let gone = ok(send(&api, "DELETE", &key, &path, None).await, 200).await;

    assert_eq!(renamed["version"], 1, "a new name is not a new version");
    assert_eq!(
        (
            updated["version"].clone(),
            updated["parameters"]["period"].clone()
        ),
        (json!(2), json!(20))
    );
    assert_eq!(gone["active"], false);
    let market = send(
        &api,
        "PATCH",
        &key,
        &path,
        Some(json!({"symbol": "ETHUSDT"})),
    )
    .await;
    let body = problem(market, 422).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `symbol`"),
        "{body}"
    );
}

#[tokio::test]
async fn another_tenants_strategy_and_subscription_are_not_found() {
    let (pool, url) = fresh_database_with_url().await;
    let (_, acme) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (_, globex) = tenant_with_key(&pool, "globex", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let strategy = created(&api, &acme, "/v1/strategies", breakout()).await;
    let sub = created(&api, &acme, "/v1/subscriptions", settings(&strategy)).await;

    let id = &strategy["id"];
    problem(
        send(&api, "GET", &globex, &format!("/v1/strategies/{id}"), None).await,
        404,
    )
    .await;
    problem(
        send(
            &api,
            "PATCH",
            &globex,
            &format!("/v1/strategies/{id}"),
            Some(json!({"active": false})),
        )
        .await,
        404,
    )
    .await;
    problem(
        send(
            &api,
            "POST",
            &globex,
            "/v1/subscriptions",
            Some(settings(&strategy)),
        )
        .await,
        404,
    )
    .await;
    problem(
        send(
            &api,
            "POST",
            &globex,
            &format!("/v1/subscriptions/{}/pause", sub["id"]),
            None,
        )
        .await,
        404,
    )
    .await;
    let theirs = ok(
        send(&api, "GET", &globex, "/v1/strategies", None).await,
        200,
    )
    .await;
    assert_eq!(theirs["strategies"], json!([]));
}

#[tokio::test]
async fn the_admin_key_acts_for_the_tenant_it_names() {
    let (pool, url) = fresh_database_with_url().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;

    let unnamed = problem(
        send(&api, "POST", ADMIN_KEY, "/v1/strategies", Some(breakout())).await,
        422,
    )
    .await;
    let mut named = breakout();
    named["tenant"] = json!(tenant.as_str());
    let strategy = created(&api, ADMIN_KEY, "/v1/strategies", named).await;
    let listed = ok(
        send(
            &api,
            "GET",
            ADMIN_KEY,
            &format!("/v1/strategies?tenant={tenant}"),
            None,
        )
        .await,
        200,
    )
    .await;

    assert!(
        unnamed["detail"].as_str().unwrap().contains("name one"),
        "{unnamed}"
    );
    assert_eq!(strategy["tenant_id"], tenant.as_str());
    assert_eq!(listed["strategies"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_input_is_a_422_that_says_what_to_fix() {
    let (pool, url) = fresh_database_with_url().await;
    let (_, key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let strategy = created(&api, &key, "/v1/strategies", breakout()).await;

    for (body, expect) in [
        (json!({"resolution": "7m"}), "1m 3m 5m"),
        (json!({"symbol": "btc usdt"}), "A-Z"),
        (
            json!({"kind": "macd"}),
            "use one of sma_crossover, rsi, donchian",
        ),
        (json!({"parameters": {"period": 0}}), "period from 1 to 500"),
    ] {
        let mut bad = breakout();
        bad.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let p = problem(
            send(&api, "POST", &key, "/v1/strategies", Some(bad)).await,
            422,
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains(expect), "{p}");
    }
    let mut risky = settings(&strategy);
    risky["risk_pct"] = json!(150);
    let p = problem(
        send(&api, "POST", &key, "/v1/subscriptions", Some(risky)).await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("risk_pct"), "{p}");
}

#[tokio::test]
async fn a_subscription_pauses_resumes_and_cancels() {
    let (pool, url) = fresh_database_with_url().await;
    let (_, key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let strategy = created(&api, &key, "/v1/strategies", breakout()).await;
    let sub = created(&api, &key, "/v1/subscriptions", settings(&strategy)).await;
    let path = format!("/v1/subscriptions/{}", sub["id"]);

    let paused = ok(
        send(&api, "POST", &key, &format!("{path}/pause"), None).await,
        200,
    )
    .await;
    let resumed = ok(
        send(&api, "POST", &key, &format!("{path}/resume"), None).await,
        200,
    )
    .await;
    let resized = ok(
        send(&api, "PATCH", &key, &path, Some(json!({"capital": 20000}))).await,
        200,
    )
    .await;
    let cancelled = ok(send(&api, "DELETE", &key, &path, None).await, 200).await;
    let after = problem(
        send(&api, "POST", &key, &format!("{path}/resume"), None).await,
        422,
    )
    .await;
    let again = created(&api, &key, "/v1/subscriptions", settings(&strategy)).await;

    assert_eq!(paused["status"], "paused");
    assert_eq!(resumed["status"], "active");
    assert_eq!(resized["capital"], 20000.0);
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        after["detail"].as_str().unwrap().contains("cancelled"),
        "{after}"
    );
    assert_ne!(
        again["id"], sub["id"],
        "a cancelled user may subscribe again"
    );
}

#[tokio::test]
async fn executions_and_stats_show_what_the_strategy_did() {
    let (pool, url) = fresh_database_with_url().await;
    let (tenant, key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    let sub = created(
        &api,
        &key,
        "/v1/subscriptions",
        json!({"strategy_id": s, "user_id": "u", "capital": 10000, "risk_pct": 1, "leverage": 10}),
    )
    .await;
    breakout_history(&pool).await;
    candle(&pool, 4, 11.3, 10.95, 11.1).await;
    for n in [3, 4] {
        let run = RunContext {
            tenant: tenant.to_string(),
            worker: "w".into(),
            started_ms: interval(n).end_ms(),
            pause: None,
        };
        execute(&pool, &CandleJob::new(s, btc(), interval(n)), &run)
            .await
            .unwrap();
    }

    let history = ok(
        send(
            &api,
            "GET",
            &key,
            &format!("/v1/executions?strategy_id={s}"),
            None,
        )
        .await,
        200,
    )
    .await;
    let stats = ok(
        send(
            &api,
            "GET",
            &key,
            &format!("/v1/subscriptions/{}/stats", sub["id"]),
            None,
        )
        .await,
        200,
    )
    .await;

    let runs = history["executions"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["status"].as_str(), runs[0]["closed"].as_i64()),
        (Some("no_signal"), Some(1))
    );
    assert_eq!(
        (runs[1]["status"].as_str(), runs[1]["trades"].as_i64()),
        (Some("success"), Some(1))
    );
    assert_eq!(
        (stats["trades"].clone(), stats["wins"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        (stats["realized_pnl"].as_f64().unwrap() - 200.0).abs() < 1e-6,
        "{stats}"
    );
}

fn candle_body(close_ms: i64) -> Value {
    json!({"symbol": "BTCUSDT", "resolution": "5m", "open": 10, "high": 11, "low": 9, "close": 10.5, "volume": 3, "close_time": close_ms})
}

fn last_close_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    five().floor(now)
}

#[tokio::test]
async fn a_posted_candle_is_stored_and_enqueues_each_strategy_once() {
    let (pool, url) = fresh_database_with_url().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let ns = fresh_namespace();
    let api = Api::start_with_database(&ns, &url).await;
    strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    strategy(&pool, tenant.as_str(), "rsi", json!({"period": 14})).await;

    let close = last_close_ms();
    let first = ok(
        send(
            &api,
            "POST",
            ADMIN_KEY,
            "/v1/candles",
            Some(candle_body(close)),
        )
        .await,
        202,
    )
    .await;
    // The feed retries, with the close time a millisecond early this time.
    let retry = ok(
        send(
            &api,
            "POST",
            ADMIN_KEY,
            "/v1/candles",
            Some(candle_body(close - 1)),
        )
        .await,
        202,
    )
    .await;

    assert_eq!(
        (first["stored"].clone(), first["enqueued"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(
        (
            retry["stored"].clone(),
            retry["enqueued"].clone(),
            retry["duplicates"].clone()
        ),
        (json!(false), json!(0), json!(2))
    );
    assert_eq!(first["interval"], retry["interval"]);
    assert_eq!(candles_queue(&ns).await.depth().await.unwrap().pending, 2);
}

#[tokio::test]
async fn a_candle_older_than_the_horizon_is_refused_and_a_late_one_is_accepted() {
    let (_, url) = fresh_database_with_url().await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let close = last_close_ms();

    let stale = problem(
        send(
            &api,
            "POST",
            ADMIN_KEY,
            "/v1/candles",
            Some(candle_body(close - 2 * 3_600_000)),
        )
        .await,
        422,
    )
    .await;
    let late = ok(
        send(
            &api,
            "POST",
            ADMIN_KEY,
            "/v1/candles",
            Some(candle_body(close - 600_000)),
        )
        .await,
        202,
    )
    .await;
    let future = problem(
        send(
            &api,
            "POST",
            ADMIN_KEY,
            "/v1/candles",
            Some(candle_body(close + 600_000)),
        )
        .await,
        422,
    )
    .await;

    assert!(
        stale["detail"]
            .as_str()
            .unwrap()
            .contains("FLOTILLA_CANDLE_HORIZON"),
        "{stale}"
    );
    assert!(late["late_ms"].as_i64().unwrap() >= 600_000, "{late}");
    assert!(
        future["detail"]
            .as_str()
            .unwrap()
            .contains("once it has closed"),
        "{future}"
    );
}

#[tokio::test]
async fn only_the_admin_key_feeds_candles_and_bad_candles_say_why() {
    let (pool, url) = fresh_database_with_url().await;
    let (_, key) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let api = Api::start_with_database(&fresh_namespace(), &url).await;
    let close = last_close_ms();

    problem(
        send(&api, "POST", &key, "/v1/candles", Some(candle_body(close))).await,
        403,
    )
    .await;
    let mut inverted = candle_body(close);
    inverted["low"] = json!(12);
    let p = problem(
        send(&api, "POST", ADMIN_KEY, "/v1/candles", Some(inverted)).await,
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("high is below low"),
        "{p}"
    );
}

#[tokio::test]
async fn the_cli_prints_what_a_tenants_strategies_did() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (other, _) = tenant_with_key(&pool, "globex", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 2, "active").await;
    breakout_history(&pool).await;
    let run = RunContext {
        tenant: tenant.to_string(),
        worker: "w".into(),
        started_ms: interval(3).end_ms(),
        pause: None,
    };
    execute(&pool, &CandleJob::new(s, btc(), interval(3)), &run)
        .await
        .unwrap();
    let cli = |args: &[&str]| {
        flotilla_tests::producer::cli_with_env(&ns, args, None, &[("DATABASE_URL", url.as_str())])
    };

    let runs = cli(&["candles", "executions", "--tenant", tenant.as_str()])
        .ok()
        .json();
    let subs = cli(&["candles", "subscriptions", "--tenant", tenant.as_str()])
        .ok()
        .json();
    let first = subs[0]["id"].to_string();
    let stats = cli(&["candles", "stats", &first, "--tenant", tenant.as_str()])
        .ok()
        .json();
    let theirs = cli(&["candles", "stats", &first, "--tenant", other.as_str()]);

    assert_eq!(
        (runs[0]["status"].as_str(), runs[0]["trades"].as_i64()),
        (Some("success"), Some(2))
    );
    assert_eq!(
        (stats["trades"].clone(), stats["open"].clone()),
        (json!(1), json!(1))
    );
    assert!(!theirs.status.success());
    assert!(
        theirs.stderr.contains("has no subscription"),
        "{}",
        theirs.stderr
    );
}

#[tokio::test]
async fn the_cli_manages_strategies_and_subscriptions_through_the_apis_rules() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (other, _) = tenant_with_key(&pool, "globex", "pro", "active").await;
    let cli = |args: &[&str]| {
        flotilla_tests::producer::cli_with_env(&ns, args, None, &[("DATABASE_URL", url.as_str())])
    };
    let t = tenant.as_str();

    let strategy = cli(&[
        "strategies",
        "register",
        "--tenant",
        t,
        "--name",
        "BTC breakout",
        "--kind",
        "donchian",
        "--symbol",
        "BTCUSDT",
        "--resolution",
        "5m",
        "--parameters",
        r#"{"period": 3}"#,
    ])
    .ok()
    .json();
    let id = strategy["id"].to_string();
    let updated = cli(&[
        "strategies",
        "update",
        &id,
        "--tenant",
        t,
        "--parameters",
        r#"{"period": 5}"#,
    ])
    .ok()
    .json();
    assert_eq!(
        updated["version"], 2,
        "new parameters bump the version: {updated}"
    );

    let sub = cli(&[
        "subscriptions",
        "create",
        "--tenant",
        t,
        "--strategy",
        &id,
        "--user",
        "u-42",
        "--capital",
        "10000",
        "--risk-pct",
        "1",
        "--leverage",
        "3",
        "--credential-ref",
        "vault:brokers/u-42",
    ])
    .ok()
    .json();
    let sub_id = sub["id"].to_string();
    let paused = cli(&["subscriptions", "pause", &sub_id, "--tenant", t])
        .ok()
        .json();
    assert_eq!(paused["status"], "paused");
    let resumed = cli(&["subscriptions", "resume", &sub_id, "--tenant", t])
        .ok()
        .json();
    assert_eq!(resumed["status"], "active");
    let changed = cli(&[
        "subscriptions",
        "update",
        &sub_id,
        "--tenant",
        t,
        "--risk-pct",
        "0.5",
    ])
    .ok()
    .json();
    assert_eq!(changed["risk_pct"], 0.5);
    let cancelled = cli(&["subscriptions", "cancel", &sub_id, "--tenant", t])
        .ok()
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    let gone = cli(&["strategies", "deactivate", &id, "--tenant", t])
        .ok()
        .json();
    assert_eq!(gone["active"], false);

    let theirs = cli(&[
        "subscriptions",
        "pause",
        &sub_id,
        "--tenant",
        other.as_str(),
    ]);
    assert!(
        !theirs.status.success(),
        "another tenant's subscription is not found"
    );
    let bad = cli(&[
        "strategies",
        "register",
        "--tenant",
        t,
        "--name",
        "x",
        "--kind",
        "donchian",
        "--symbol",
        "BTCUSDT",
        "--resolution",
        "7m",
    ]);
    assert!(!bad.status.success());
    assert_eq!(
        bad.stderr.trim().lines().count(),
        1,
        "one line: {}",
        bad.stderr
    );
    assert!(bad.stderr.contains("422"), "{}", bad.stderr);
}
