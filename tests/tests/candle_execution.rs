//! The candle job's effects, run in-process against a real PostgreSQL:
//! one execution per (strategy, interval), one trade per active subscriber,
//! trades closed at their stop or target with PnL, tenants kept apart.

use flotilla::candles::execute::{Outcome, Report, RunContext, Status, execute, record_failure};
use flotilla::kinds::candles::CandleJob;
use flotilla_tests::candles::*;
use flotilla_tests::{fresh_database, tenant_with_key};
use serde_json::json;

fn job(strategy: i64, n: i64) -> CandleJob {
    CandleJob::new(strategy, btc(), interval(n))
}

fn run(tenant: &str, n: i64, late_ms: i64) -> RunContext {
    RunContext {
        tenant: tenant.to_owned(),
        worker: "test-worker".into(),
        started_ms: interval(n).end_ms() + late_ms,
        pause: None,
    }
}

fn executed(outcome: Outcome) -> Report {
    match outcome {
        Outcome::Executed(report) => report,
        Outcome::AlreadyDone => panic!("expected an execution, got AlreadyDone"),
    }
}

#[tokio::test]
async fn a_breakout_opens_one_trade_per_active_subscriber() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 3, "active").await;
    subscribers(&pool, tenant.as_str(), s, 2, "paused").await;
    breakout_history(&pool).await;

    let report = executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 250))
            .await
            .unwrap(),
    );

    assert_eq!(report.status, Status::Success);
    assert_eq!(
        (report.subscribers, report.trades, report.drift),
        (3, 3, 250)
    );
    let (side, entry, stop, size): (String, f64, f64, f64) = sqlx::query_as(
        "SELECT DISTINCT side, entry, stop, size FROM strategy_trades WHERE strategy_id = $1",
    )
    .bind(s)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((side.as_str(), entry), ("long", 11.0));
    // Risk 10,000 × 1 % = 100 over a stop distance of 0.11.
    assert!(
        (stop - 10.89).abs() < 1e-9 && (size - 100.0 / 0.11).abs() < 1e-6,
        "{stop} {size}"
    );
    let row: (String, i32, i64, String) = sqlx::query_as(
        "SELECT status, trades, drift_ms, interval_key FROM executions WHERE strategy_id = $1",
    )
    .bind(s)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        ("success".into(), 3, 250, "5m:2026-11-22T10:15Z".into())
    );
}

#[tokio::test]
async fn running_an_interval_twice_writes_nothing_the_second_time() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 4, "active").await;
    breakout_history(&pool).await;

    executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 0))
            .await
            .unwrap(),
    );
    let again = execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 9_000))
        .await
        .unwrap();

    assert_eq!(again, Outcome::AlreadyDone);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM strategy_trades").await,
        4
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM executions").await, 1);
}

#[tokio::test]
async fn a_candle_through_the_stop_closes_the_open_trades_with_their_loss() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 2, "active").await;
    breakout_history(&pool).await;
    executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 0))
            .await
            .unwrap(),
    );
    // Low 10.8 crosses the stop at 10.89; the close stays inside the channel.
    candle(&pool, 4, 11.0, 10.8, 10.85).await;

    let report = executed(
        execute(&pool, &job(s, 4), &run(tenant.as_str(), 4, 0))
            .await
            .unwrap(),
    );

    assert_eq!(
        (report.status, report.closed, report.trades),
        (Status::NoSignal, 2, 0)
    );
    let closed: Vec<(String, String, f64, f64)> = sqlx::query_as(
        "SELECT status, exit_reason, exit_price, pnl FROM strategy_trades ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (status, reason, exit, pnl) in closed {
        assert_eq!((status.as_str(), reason.as_str()), ("closed", "stop"));
        // A stopped-out trade loses exactly the risk: 1 % of 10,000.
        assert!(
            (exit - 10.89).abs() < 1e-9 && (pnl + 100.0).abs() < 1e-6,
            "{exit} {pnl}"
        );
    }
}

#[tokio::test]
async fn a_candle_through_the_target_closes_with_the_profit() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 1, "active").await;
    breakout_history(&pool).await;
    executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 0))
            .await
            .unwrap(),
    );
    candle(&pool, 4, 11.3, 10.95, 11.1).await;

    executed(
        execute(&pool, &job(s, 4), &run(tenant.as_str(), 4, 0))
            .await
            .unwrap(),
    );

    let (reason, pnl): (String, f64) =
        sqlx::query_as("SELECT exit_reason, pnl FROM strategy_trades")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Target 11.22: (11.22 − 11) × 909.09 = 200, twice the risk.
    assert_eq!(reason, "target");
    assert!((pnl - 200.0).abs() < 1e-6, "{pnl}");
}

#[tokio::test]
async fn too_few_candles_is_a_skipped_execution_with_the_reason() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 20})).await;
    breakout_history(&pool).await;

    let report = executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 0))
            .await
            .unwrap(),
    );

    assert_eq!(report.status, Status::Skipped);
    assert_eq!(
        report.reason.as_deref(),
        Some("not enough candles: have 4, the strategy needs 21")
    );
}

#[tokio::test]
async fn a_tenant_cannot_run_another_tenants_strategy() {
    let pool = fresh_database().await;
    let (owner, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (other, _) = tenant_with_key(&pool, "globex", "pro", "active").await;
    let s = strategy(&pool, owner.as_str(), "donchian", json!({"period": 3})).await;
    breakout_history(&pool).await;

    let err = execute(&pool, &job(s, 3), &run(other.as_str(), 3, 0))
        .await
        .unwrap_err();

    assert!(err.to_string().contains("has no strategy"), "{err}");
    assert_eq!(count(&pool, "SELECT count(*) FROM executions").await, 0);
}

#[tokio::test]
async fn a_tenant_scope_sees_and_writes_only_its_own_candle_rows() {
    let pool = fresh_database().await;
    let (owner, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (other, _) = tenant_with_key(&pool, "globex", "pro", "active").await;
    let s = strategy(&pool, owner.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, owner.as_str(), s, 2, "active").await;
    breakout_history(&pool).await;
    executed(
        execute(&pool, &job(s, 3), &run(owner.as_str(), 3, 0))
            .await
            .unwrap(),
    );

    let mut tx = flotilla::db::tenant_transaction(&pool, other.as_str())
        .await
        .unwrap();
    for table in [
        "strategies",
        "subscriptions",
        "executions",
        "strategy_trades",
    ] {
        let seen: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, 0, "{table}");
    }
    // Market data is shared: every tenant reads it.
    let candles: i64 = sqlx::query_scalar("SELECT count(*) FROM candles")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(candles, 4);
    let forged = sqlx::query(
        "INSERT INTO subscriptions (tenant_id, strategy_id, user_id, capital, risk_pct, leverage) \
         VALUES ($1, $2, 'mallory', 1, 1, 1)",
    )
    .bind(owner.as_str())
    .bind(s)
    .execute(&mut *tx)
    .await;
    assert!(forged.is_err(), "a row of another tenant is refused");
}

#[tokio::test]
async fn the_next_interval_runs_the_updated_parameters_and_records_their_version() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    breakout_history(&pool).await;
    candle(&pool, 4, 11.0, 10.8, 10.85).await;
    executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 0))
            .await
            .unwrap(),
    );

    // What PATCH /v1/strategies/{id} does with new parameters.
    let mut tx = flotilla::db::tenant_transaction(&pool, tenant.as_str())
        .await
        .unwrap();
    sqlx::query("UPDATE strategies SET parameters = '{\"period\": 20}', version = version + 1 WHERE id = $1")
        .bind(s)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let report = executed(
        execute(&pool, &job(s, 4), &run(tenant.as_str(), 4, 0))
            .await
            .unwrap(),
    );

    // Period 20 needs 21 candles: the new parameters were used.
    assert_eq!(report.status, Status::Skipped);
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT strategy_version FROM executions ORDER BY scheduled_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2]);
}

#[tokio::test]
async fn an_interval_that_failed_for_good_is_recorded_and_a_replay_runs_it() {
    let pool = fresh_database().await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 2, "active").await;
    breakout_history(&pool).await;

    record_failure(
        &pool,
        &job(s, 3),
        &run(tenant.as_str(), 3, 0),
        "broker down",
    )
    .await
    .unwrap();
    let failed: (String, Option<String>) =
        sqlx::query_as("SELECT status, reason FROM executions WHERE strategy_id = $1")
            .bind(s)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(failed, ("failed".into(), Some("broker down".into())));

    let report = executed(
        execute(&pool, &job(s, 3), &run(tenant.as_str(), 3, 900))
            .await
            .unwrap(),
    );
    assert_eq!((report.status, report.trades), (Status::Success, 2));
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT status FROM executions WHERE strategy_id = $1")
            .bind(s)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, ["success"], "the same row, now a success");
    record_failure(&pool, &job(s, 3), &run(tenant.as_str(), 3, 0), "late")
        .await
        .unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM executions WHERE strategy_id = $1")
        .bind(s)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        status, "success",
        "a failure never overwrites a finished run"
    );
}
