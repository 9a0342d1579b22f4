//! The `candles` queue end to end: real `flotilla-worker` processes, real
//! Redis and PostgreSQL. A strategy runs once per interval however many
//! triggers there are, and a worker killed mid-job leaves nothing that the
//! next worker would write twice.

use std::time::Duration;

use flotilla::candles::trigger;
use flotilla::job::{JobState, NewJob};
use flotilla::kinds::JobKind;
use flotilla::kinds::candles::{CandleJob, Candles};
use flotilla_tests::candles::*;
use flotilla_tests::processes::{WorkerSpec, http_get, wait_for, wait_state};
use flotilla_tests::{fresh_database_with_url, fresh_namespace, redis_url, tenant_with_key};
use serde_json::json;

fn candle_worker(ns: &flotilla::ids::Namespace, db_url: &str, name: &str) -> WorkerSpec {
    WorkerSpec::new(&redis_url(), ns, name)
        .env("QUEUES", "candles")
        .env("DATABASE_URL", db_url)
        // A killed worker's job goes to the next one after this long.
        .env("FLOTILLA_LEASE", "2s")
        .env("FLOTILLA_TEST_HOOKS", "1")
}

#[tokio::test]
async fn every_trigger_of_one_interval_runs_each_strategy_once() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = candles_queue(&ns).await;
    let (acme, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let (globex, _) = tenant_with_key(&pool, "globex", "starter", "active").await;
    let a = strategy(&pool, acme.as_str(), "donchian", json!({"period": 3})).await;
    let g = strategy(&pool, globex.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, acme.as_str(), a, 5, "active").await;
    subscribers(&pool, globex.as_str(), g, 7, "active").await;
    breakout_history(&pool).await;

    // A feed, its retry and the clock all trigger the same interval.
    let first = trigger::enqueue_interval(&pool, &queue, &btc(), interval(3))
        .await
        .unwrap();
    let again = trigger::enqueue_interval(&pool, &queue, &btc(), interval(3))
        .await
        .unwrap();
    assert_eq!(
        (first.enqueued, again.enqueued, again.duplicates),
        (2, 0, 2)
    );
    let worker = candle_worker(&ns, &url, "w1").spawn();
    wait_for(
        Duration::from_secs(30),
        "both executions",
        worker.log_fn(),
        || async {
            (count(
                &pool,
                "SELECT count(*) FROM executions WHERE status = 'success'",
            )
            .await
                == 2)
                .then_some(())
        },
    )
    .await;

    assert_eq!(
        count(&pool, "SELECT count(*) FROM strategy_trades").await,
        12
    );
    let owners: Vec<(i64, String)> =
        sqlx::query_as("SELECT strategy_id, tenant_id FROM executions ORDER BY strategy_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(owners, vec![(a, acme.to_string()), (g, globex.to_string())]);
    // Fan-out sizes 5 and 7 land in the (1, 10] bucket.
    let (_, metrics) = http_get(worker.port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("flotilla_candle_fanout_size_bucket{le=\"10\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flotilla_candle_drift_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_job_leaves_nothing_and_the_next_one_writes_each_trade_once() {
    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let queue = candles_queue(&ns).await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 2_000, "active").await;
    breakout_history(&pool).await;
    let mut payload = CandleJob::new(s, btc(), interval(3));
    // The first attempt holds its transaction open after writing the trades.
    payload.pause_before_commit_ms = Some(120_000);
    let job = NewJob::new(
        tenant.clone(),
        serde_json::to_string(&payload).unwrap(),
        Candles::retry_policy().max_attempts,
    )
    .idempotency_key(payload.idempotency_key());
    let id = queue.enqueue(job).await.unwrap().id();

    let mut doomed = candle_worker(&ns, &url, "doomed").spawn();
    // Mid-job: the trades are written but not committed.
    wait_for(
        Duration::from_secs(30),
        "the first attempt to hold its transaction",
        doomed.log_fn(),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND state = 'idle in transaction' \
               AND query LIKE 'INSERT INTO strategy_trades%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (waiting == 1).then_some(())
        },
    )
    .await;
    doomed.signal("KILL");
    doomed.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        count(&pool, "SELECT count(*) FROM strategy_trades").await,
        0
    );

    let survivor = candle_worker(&ns, &url, "survivor").spawn();
    let status = wait_state(
        &queue,
        id,
        JobState::Done,
        Duration::from_secs(60),
        survivor.log_fn(),
    )
    .await;

    assert_eq!(status.attempts, 2);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM strategy_trades").await,
        2_000
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(DISTINCT subscription_id) FROM strategy_trades"
        )
        .await,
        2_000
    );
    let (worker, trades): (String, i32) = sqlx::query_as("SELECT worker, trades FROM executions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((worker.as_str(), trades), ("survivor", 2_000));
}

#[tokio::test]
async fn a_late_candle_posted_by_the_feed_runs_with_its_drift_recorded() {
    use flotilla::candles::{Candle, store};
    use flotilla_tests::producer::{ADMIN_KEY, Api};

    let (pool, url) = fresh_database_with_url().await;
    let ns = fresh_namespace();
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    subscribers(&pool, tenant.as_str(), s, 3, "active").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // The candle closed two intervals ago: ten minutes late, within the 1h horizon.
    let close = five().floor(now) - 2 * five().millis();
    for k in 1..=3 {
        let i = five().interval_closing_at(close - k * five().millis());
        let flat = Candle {
            close_ms: i.end_ms(),
            open: 10.0,
            high: 10.5,
            low: 9.5,
            close: 10.0,
            volume: 1.0,
        };
        store::insert_candle(&pool, &btc(), i, &flat).await.unwrap();
    }
    let api = Api::start_with_database(&ns, &url).await;
    let worker = candle_worker(&ns, &url, "w1").spawn();

    let posted = api
        .http
        .post(api.url("/v1/candles"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"symbol": "BTCUSDT", "resolution": "5m", "open": 10, "high": 11.2, "low": 10, "close": 11, "volume": 5, "close_time": close}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 202);
    let (status, trades, drift_ms): (String, i32, i64) = wait_for(
        Duration::from_secs(30),
        "the execution",
        worker.log_fn(),
        || async {
            sqlx::query_as("SELECT status, trades, drift_ms FROM executions")
                .fetch_optional(&pool)
                .await
                .unwrap()
        },
    )
    .await;

    assert_eq!((status.as_str(), trades), ("success", 3));
    assert!(
        drift_ms >= 2 * five().millis() - 1_000 && drift_ms < 3 * five().millis(),
        "{drift_ms}"
    );
}
