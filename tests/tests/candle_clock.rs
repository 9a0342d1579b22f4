//! The clock's tick with time as an argument: the boundary fallback and the
//! reconciler that re-enqueues intervals Redis lost. No sleeps: each test
//! names the instants it ticks at.

use std::time::Duration;

use flotilla::candles::clock::Clock;
use flotilla::candles::execute::{RunContext, execute};
use flotilla::kinds::candles::CandleJob;
use flotilla_tests::candles::*;
use flotilla_tests::{fresh_database, fresh_namespace, redis, tenant_with_key};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);
const FIVE_MIN: i64 = 300_000;

#[tokio::test]
async fn a_tick_enqueues_the_candle_that_just_closed_once_per_boundary() {
    let pool = fresh_database().await;
    let queue = candles_queue(&fresh_namespace()).await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    candle(&pool, 3, 11.2, 10.0, 11.0).await;
    let close = interval(3).end_ms();
    let mut clock = Clock::new(HOUR);

    let first = clock.tick(&pool, &queue, close + 1_000).await.unwrap();
    let same_interval = clock.tick(&pool, &queue, close + 2_000).await.unwrap();
    let replica = Clock::new(HOUR)
        .tick(&pool, &queue, close + 2_000)
        .await
        .unwrap();

    assert_eq!((first.markets, first.fallback.enqueued), (1, 1));
    assert_eq!(same_interval.markets, 0, "no boundary since the last tick");
    // Another clock replica enqueues the same key: nothing new.
    assert_eq!(
        (replica.fallback.enqueued, replica.fallback.duplicates),
        (0, 1)
    );
    assert_eq!(queue.depth().await.unwrap().pending, 1);
}

#[tokio::test]
async fn a_market_whose_feed_missed_the_boundary_gets_no_fallback_job() {
    let pool = fresh_database().await;
    let queue = candles_queue(&fresh_namespace()).await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    candle(&pool, 3, 11.2, 10.0, 11.0).await;

    // One interval later the latest candle is still interval 3's.
    let tick = Clock::new(HOUR)
        .tick(&pool, &queue, interval(4).end_ms() + 1_000)
        .await
        .unwrap();

    assert_eq!(tick.markets, 0);
    // The reconciler takes the unexecuted interval 3 instead.
    assert_eq!(tick.reconciled.enqueued, 1);
}

#[tokio::test]
async fn the_reconciler_re_enqueues_an_interval_redis_lost_within_one_interval() {
    let pool = fresh_database().await;
    let ns = fresh_namespace();
    let queue = candles_queue(&ns).await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    let s = strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    candle(&pool, 3, 11.2, 10.0, 11.0).await;
    let close = interval(3).end_ms();
    let mut clock = Clock::new(HOUR);
    assert_eq!(
        clock
            .tick(&pool, &queue, close + 1_000)
            .await
            .unwrap()
            .fallback
            .enqueued,
        1
    );

    // Redis loses the job and its idempotency key (a failover, a FLUSHALL).
    let mut conn = redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{ns}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    redis::cmd("UNLINK")
        .arg(keys)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let too_soon = clock.tick(&pool, &queue, close + 2_000).await.unwrap();
    let next_interval = clock
        .tick(&pool, &queue, close + FIVE_MIN + 1_000)
        .await
        .unwrap();

    assert_eq!(
        too_soon.reconciled.strategies, 0,
        "not yet one interval overdue"
    );
    assert_eq!(next_interval.reconciled.enqueued, 1);
    assert_eq!(queue.depth().await.unwrap().pending, 1);

    // Once executed, the interval is no longer missing.
    let run = RunContext {
        tenant: tenant.to_string(),
        worker: "test".into(),
        started_ms: close + FIVE_MIN,
        pause: None,
    };
    execute(&pool, &CandleJob::new(s, btc(), interval(3)), &run)
        .await
        .unwrap();
    let later = clock
        .tick(&pool, &queue, close + 2 * FIVE_MIN + 1_000)
        .await
        .unwrap();
    assert_eq!(later.reconciled.strategies, 0);
}

#[tokio::test]
async fn candles_beyond_the_horizon_are_left_alone() {
    let pool = fresh_database().await;
    let queue = candles_queue(&fresh_namespace()).await;
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;
    candle(&pool, 3, 11.2, 10.0, 11.0).await;

    let tick = Clock::new(Duration::from_secs(600))
        .tick(&pool, &queue, interval(3).end_ms() + 3_600_000)
        .await
        .unwrap();

    assert_eq!((tick.markets, tick.reconciled.strategies), (0, 0));
}

#[tokio::test]
async fn the_clock_verb_ticks_once_and_prints_what_it_did() {
    let (pool, url) = flotilla_tests::fresh_database_with_url().await;
    let ns = fresh_namespace();
    let (tenant, _) = tenant_with_key(&pool, "acme", "pro", "active").await;
    strategy(&pool, tenant.as_str(), "donchian", json!({"period": 3})).await;

    let run = flotilla_tests::producer::cli_with_env(
        &ns,
        &["clock", "--once"],
        None,
        &[("DATABASE_URL", url.as_str())],
    )
    .ok();

    // No candle is stored yet: nothing to enqueue, nothing missing.
    let tick = run.json();
    assert_eq!(tick["markets"], 0, "{tick}");
    assert_eq!(tick["reconciled"]["strategies"], 0, "{tick}");
}
