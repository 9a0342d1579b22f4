//! What a tenant reads about its candle execution, as JSON documents: the
//! HTTP API and the CLI answer with the same shapes. Each takes a
//! transaction already scoped to the tenant
//! ([`crate::db::tenant_transaction`]), so row-level security decides what
//! exists.

use serde_json::Value;
use sqlx::{Postgres, Transaction};

type Tx = Transaction<'static, Postgres>;

/// The tenant's strategies, oldest first.
pub async fn strategies(tx: &mut Tx) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.id), '[]') FROM strategies s",
    )
    .fetch_one(&mut **tx)
    .await
}

/// The tenant's subscriptions, of one strategy or all, oldest first.
pub async fn subscriptions(tx: &mut Tx, strategy_id: Option<i64>) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.id), '[]') FROM subscriptions s \
         WHERE $1::bigint IS NULL OR strategy_id = $1",
    )
    .bind(strategy_id)
    .fetch_one(&mut **tx)
    .await
}

/// The tenant's latest `limit` executions, of one strategy or all, newest first.
pub async fn executions(
    tx: &mut Tx,
    strategy_id: Option<i64>,
    limit: i64,
) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.scheduled_at DESC, e.id DESC), '[]') \
         FROM (SELECT * FROM executions WHERE $1::bigint IS NULL OR strategy_id = $1 \
               ORDER BY scheduled_at DESC, id DESC LIMIT $2) e",
    )
    .bind(strategy_id)
    .bind(limit)
    .fetch_one(&mut **tx)
    .await
}

/// A subscription's trades and PnL; `None` when the tenant has no such
/// subscription.
pub async fn stats(tx: &mut Tx, subscription_id: i64) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object( \
             'subscription_id', s.id, \
             'trades', count(t.id), \
             'open', count(t.id) FILTER (WHERE t.status = 'open'), \
             'closed', count(t.id) FILTER (WHERE t.status = 'closed'), \
             'wins', count(t.id) FILTER (WHERE t.pnl > 0), \
             'losses', count(t.id) FILTER (WHERE t.pnl < 0), \
             'realized_pnl', coalesce(sum(t.pnl), 0)) \
         FROM subscriptions s LEFT JOIN strategy_trades t ON t.subscription_id = s.id \
         WHERE s.id = $1 GROUP BY s.id",
    )
    .bind(subscription_id)
    .fetch_optional(&mut **tx)
    .await
}
