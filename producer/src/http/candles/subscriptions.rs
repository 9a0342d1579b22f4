//! `/v1/subscriptions`: a user of the tenant follows a strategy with their
//! capital, risk % and leverage, and a broker-credential *reference* (never
//! the secret). Subscribe (`POST`), list (`?strategy_id=`), show, update
//! settings (`PATCH`), pause, resume, cancel (`DELETE`), and PnL stats.
//! Open trades of a paused or cancelled subscription still close at their
//! stop or target.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::{TenantQuery, db_problem, not_found, read_json, read_query, scoped, tenant_for};

const EXAMPLE: &str = r#"{"strategy_id": 1, "user_id": "u-42", "capital": 10000, "risk_pct": 1, "leverage": 3, "broker_credential_ref": "vault:brokers/u-42"}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubscription {
    tenant: Option<String>,
    strategy_id: i64,
    user_id: String,
    capital: f64,
    risk_pct: f64,
    leverage: f64,
    broker_credential_ref: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    capital: Option<f64>,
    risk_pct: Option<f64>,
    leverage: Option<f64>,
    broker_credential_ref: Option<String>,
}

fn unprocessable(detail: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

/// Checks settings with the words a user needs (the table's checks are the
/// backstop).
fn check(s: &Settings) -> Result<(), Problem> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if s.capital.is_some_and(|v| !positive(v)) {
        return Err(unprocessable("capital must be a number above 0"));
    }
    if s.risk_pct.is_some_and(|v| !(positive(v) && v <= 100.0)) {
        return Err(unprocessable(
            "risk_pct must be above 0 and at most 100 (percent of the capital risked per trade)",
        ));
    }
    if s.leverage.is_some_and(|v| !(positive(v) && v <= 1000.0)) {
        return Err(unprocessable("leverage must be above 0 and at most 1000"));
    }
    if let Some(r) = &s.broker_credential_ref
        && (r.is_empty() || r.len() > 200 || r.chars().any(char::is_control))
    {
        return Err(unprocessable(
            "broker_credential_ref is a reference to a credential stored elsewhere (1 to 200 characters), never the secret itself",
        ));
    }
    Ok(())
}

/// `POST /v1/subscriptions`: 201 with the subscription.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require_writable()?;
    let body: NewSubscription = read_json(&headers, body, EXAMPLE)?;
    let tenant = tenant_for(&caller, body.tenant.as_deref())?;
    check(&Settings {
        capital: Some(body.capital),
        risk_pct: Some(body.risk_pct),
        leverage: Some(body.leverage),
        broker_credential_ref: body.broker_credential_ref.clone(),
    })?;
    if body.user_id.is_empty()
        || body.user_id.len() > 200
        || body.user_id.chars().any(char::is_control)
    {
        return Err(unprocessable(
            "user_id must be 1 to 200 printable characters",
        ));
    }
    let mut tx = scoped(&state, &tenant).await?;
    let active: Option<bool> = sqlx::query_scalar("SELECT active FROM strategies WHERE id = $1")
        .bind(body.strategy_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_problem)?;
    match active {
        None => return Err(not_found("strategy", body.strategy_id)),
        Some(false) => {
            return Err(unprocessable(
                "the strategy is inactive; reactivate it (PATCH {\"active\": true}) before subscribing",
            ));
        }
        Some(true) => {}
    }
    let row: Value = sqlx::query_scalar(
        "INSERT INTO subscriptions (tenant_id, strategy_id, user_id, capital, risk_pct, leverage, broker_credential_ref) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING to_jsonb(subscriptions.*)",
    )
    .bind(&tenant)
    .bind(body.strategy_id)
    .bind(&body.user_id)
    .bind(body.capital)
    .bind(body.risk_pct)
    .bind(body.leverage)
    .bind(&body.broker_credential_ref)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_problem)?;
    tx.commit().await.map_err(db_problem)?;
    let mut response = (StatusCode::CREATED, Json(&row)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/subscriptions/{}", row["id"])) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    tenant: Option<String>,
    strategy_id: Option<i64>,
}

/// `GET /v1/subscriptions`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let query = read_query(query)?;
    let tenant = tenant_for(&caller, query.tenant.as_deref())?;
    let mut tx = scoped(&state, &tenant).await?;
    let rows = flotilla::candles::views::subscriptions(&mut tx, query.strategy_id)
        .await
        .map_err(db_problem)?;
    Ok(Json(json!({ "subscriptions": rows })))
}

/// The subscription as JSON, or 404.
async fn fetch(tx: &mut Transaction<'static, Postgres>, id: i64) -> Result<Value, Problem> {
    sqlx::query_scalar("SELECT to_jsonb(s) FROM subscriptions s WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_problem)?
        .ok_or_else(|| not_found("subscription", id))
}

/// The subscription's id and its tenant's transaction.
async fn open(
    state: &AppState,
    caller: &Caller,
    id: &str,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<(i64, Transaction<'static, Postgres>), Problem> {
    super::one(state, caller, "subscription", id, query).await
}

/// `GET /v1/subscriptions/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let (id, mut tx) = open(&state, &caller, &id, query).await?;
    fetch(&mut tx, id).await.map(Json)
}

/// `PATCH /v1/subscriptions/{id}`: capital, risk %, leverage, credential
/// reference; the next execution sizes with them.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require_writable()?;
    let body: Settings = read_json(&headers, body, r#"{"capital": 20000, "risk_pct": 0.5}"#)?;
    check(&body)?;
    let (id, mut tx) = open(&state, &caller, &id, query).await?;
    let current = fetch(&mut tx, id).await?;
    if current["status"] == "cancelled" {
        return Err(unprocessable(
            "the subscription is cancelled; subscribe again instead",
        ));
    }
    let row: Value = sqlx::query_scalar(
        "UPDATE subscriptions SET capital = coalesce($2, capital), risk_pct = coalesce($3, risk_pct), \
             leverage = coalesce($4, leverage), \
             broker_credential_ref = coalesce($5, broker_credential_ref), updated_at = now() \
         WHERE id = $1 RETURNING to_jsonb(subscriptions.*)",
    )
    .bind(id)
    .bind(body.capital)
    .bind(body.risk_pct)
    .bind(body.leverage)
    .bind(&body.broker_credential_ref)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_problem)?;
    tx.commit().await.map_err(db_problem)?;
    Ok(Json(row))
}

/// Moves a subscription from one of `from` to `to`; already in `to` is a
/// no-op (so retries are safe); anything else is 422.
async fn transition(
    state: &AppState,
    caller: &Caller,
    id: &str,
    query: Result<Query<TenantQuery>, QueryRejection>,
    from: &[&str],
    to: &str,
) -> Result<Json<Value>, Problem> {
    caller.require_writable()?;
    let (id, mut tx) = open(state, caller, id, query).await?;
    let current = fetch(&mut tx, id).await?;
    let status = current["status"].as_str().unwrap_or_default().to_owned();
    if status == to {
        return Ok(Json(current));
    }
    if !from.contains(&status.as_str()) {
        return Err(unprocessable(&format!(
            "the subscription is {status}; only a subscription that is {} can become {to}",
            from.join(" or ")
        )));
    }
    let row: Value = sqlx::query_scalar(
        "UPDATE subscriptions SET status = $2, updated_at = now() WHERE id = $1 \
         RETURNING to_jsonb(subscriptions.*)",
    )
    .bind(id)
    .bind(to)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_problem)?;
    tx.commit().await.map_err(db_problem)?;
    Ok(Json(row))
}

/// `POST /v1/subscriptions/{id}/pause`: no new trades until resumed.
pub async fn pause(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    transition(&state, &caller, &id, query, &["active"], "paused").await
}

/// `POST /v1/subscriptions/{id}/resume`.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    transition(&state, &caller, &id, query, &["paused"], "active").await
}

/// `DELETE /v1/subscriptions/{id}`: cancels for good.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    transition(
        &state,
        &caller,
        &id,
        query,
        &["active", "paused"],
        "cancelled",
    )
    .await
}

/// `GET /v1/subscriptions/{id}/stats`: trades, open and closed, wins and
/// losses, realized PnL.
pub async fn stats(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let (id, mut tx) = open(&state, &caller, &id, query).await?;
    let stats = flotilla::candles::views::stats(&mut tx, id)
        .await
        .map_err(db_problem)?
        .ok_or_else(|| not_found("subscription", id))?;
    Ok(Json(stats))
}
