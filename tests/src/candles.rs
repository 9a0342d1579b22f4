//! Fixtures for the candle-execution tests: strategies, subscribers and
//! candle histories written straight to a test database, and the `candles`
//! queue in a fresh namespace.

use flotilla::candles::{Candle, Interval, Resolution, Symbol};
use flotilla::ids::{Namespace, QueueName};
use flotilla::queue::{FairQueue, QueueSettings};

/// 2026-11-22T10:00Z, a 5m boundary.
pub const BASE_MS: i64 = 1_795_341_600_000;

/// `BTCUSDT`.
pub fn btc() -> Symbol {
    Symbol::parse("BTCUSDT").unwrap()
}

/// 5m.
pub fn five() -> Resolution {
    Resolution::parse("5m").unwrap()
}

/// The `n`th 5m interval after [`BASE_MS`].
pub fn interval(n: i64) -> Interval {
    five().interval_at(BASE_MS + n * five().millis())
}

/// A strategy of `tenant`, created long before the test's candles, written
/// through the tenant's own scope.
pub async fn strategy(
    pool: &sqlx::PgPool,
    tenant: &str,
    kind: &str,
    parameters: serde_json::Value,
) -> i64 {
    let mut tx = flotilla::db::tenant_transaction(pool, tenant)
        .await
        .unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO strategies (tenant_id, name, kind, symbol, resolution, parameters, created_at) \
         VALUES ($1, 'test', $2, 'BTCUSDT', '5m', $3, '2026-01-01Z') RETURNING id",
    )
    .bind(tenant)
    .bind(kind)
    .bind(parameters)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// `n` subscriptions with `status` (capital 10,000, risk 1 %, leverage 10).
pub async fn subscribers(pool: &sqlx::PgPool, tenant: &str, strategy: i64, n: i64, status: &str) {
    let mut tx = flotilla::db::tenant_transaction(pool, tenant)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (tenant_id, strategy_id, user_id, capital, risk_pct, leverage, status) \
         SELECT $1, $2, $4 || '-' || g, 10000, 1, 10, $4 FROM generate_series(1, $3) g",
    )
    .bind(tenant)
    .bind(strategy)
    .bind(n)
    .bind(status)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Stores the candle of interval `n`.
pub async fn candle(pool: &sqlx::PgPool, n: i64, high: f64, low: f64, close: f64) {
    let i = interval(n);
    let bar = Candle {
        close_ms: i.end_ms(),
        open: close.clamp(low, high),
        high,
        low,
        close,
        volume: 1.0,
    };
    flotilla::candles::store::insert_candle(pool, &btc(), i, &bar)
        .await
        .unwrap();
}

/// Three flat candles (high 10.5, low 9.5) then, at interval 3, a close of
/// 11 above the channel: a 3-period Donchian strategy goes long at 11 with
/// its stop at 10.89 and target at 11.22.
pub async fn breakout_history(pool: &sqlx::PgPool) {
    for n in 0..3 {
        candle(pool, n, 10.5, 9.5, 10.0).await;
    }
    candle(pool, 3, 11.2, 10.0, 11.0).await;
}

/// The `candles` queue in `namespace`.
pub async fn candles_queue(namespace: &Namespace) -> FairQueue {
    FairQueue::new(
        crate::redis().await,
        namespace,
        QueueName::parse("candles").unwrap(),
        QueueSettings::default(),
    )
}

/// Counts rows of `table` of every tenant (the superuser bypasses RLS).
pub async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
