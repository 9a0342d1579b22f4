//! `/v1/strategies`: register (`POST`), list, show, update (`PATCH`: name,
//! parameters (bumps `version`; the next interval runs it), active) and
//! deactivate (`DELETE`; history stays). Kind, symbol and resolution are
//! fixed: a different market is a new strategy.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flotilla::candles::strategy::StrategySpec;
use flotilla::candles::{Resolution, Symbol};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::{TenantQuery, db_problem, not_found, one, read_json, read_query, scoped, tenant_for};

const EXAMPLE: &str = r#"{"name": "BTC breakout", "kind": "donchian", "symbol": "BTCUSDT", "resolution": "5m", "parameters": {"period": 20}}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStrategy {
    tenant: Option<String>,
    name: String,
    kind: String,
    symbol: Symbol,
    resolution: Resolution,
    #[serde(default)]
    parameters: Option<Value>,
}

fn spec(kind: &str, parameters: Option<Value>) -> Result<StrategySpec, Problem> {
    StrategySpec::parse(kind, &parameters.unwrap_or_else(|| json!({})))
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

/// `POST /v1/strategies`: 201 with the strategy.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require_writable()?;
    let body: NewStrategy = read_json(&headers, body, EXAMPLE)?;
    let tenant = tenant_for(&caller, body.tenant.as_deref())?;
    let spec = spec(&body.kind, body.parameters)?;
    let mut tx = scoped(&state, &tenant).await?;
    let row: Value = sqlx::query_scalar(
        "INSERT INTO strategies (tenant_id, name, kind, symbol, resolution, parameters) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING to_jsonb(strategies.*)",
    )
    .bind(&tenant)
    .bind(&body.name)
    .bind(spec.kind())
    .bind(body.symbol.as_str())
    .bind(body.resolution.to_string())
    .bind(spec.parameters())
    .fetch_one(&mut *tx)
    .await
    .map_err(db_problem)?;
    tx.commit().await.map_err(db_problem)?;
    let mut response = (StatusCode::CREATED, Json(&row)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/strategies/{}", row["id"])) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/strategies`: the tenant's strategies, oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let query = read_query(query)?;
    let tenant = tenant_for(&caller, query.tenant.as_deref())?;
    let mut tx = scoped(&state, &tenant).await?;
    let all = flotilla::candles::views::strategies(&mut tx)
        .await
        .map_err(db_problem)?;
    Ok(Json(json!({ "strategies": all })))
}

/// `GET /v1/strategies/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let (id, mut tx) = one(&state, &caller, "strategy", &id, query).await?;
    sqlx::query_scalar("SELECT to_jsonb(s) FROM strategies s WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_problem)?
        .map(Json)
        .ok_or_else(|| not_found("strategy", id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyUpdate {
    name: Option<String>,
    parameters: Option<Value>,
    active: Option<bool>,
}

/// `PATCH /v1/strategies/{id}`: new parameters bump the version.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require_writable()?;
    let body: StrategyUpdate = read_json(
        &headers,
        body,
        r#"{"parameters": {"period": 30}} (name, parameters, active; a new market is a new strategy)"#,
    )?;
    let (id, mut tx) = one(&state, &caller, "strategy", &id, query).await?;
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM strategies WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_problem)?;
    let kind = kind.ok_or_else(|| not_found("strategy", id))?;
    let parameters = match body.parameters {
        Some(p) => Some(spec(&kind, Some(p))?.parameters()),
        None => None,
    };
    let row: Value = sqlx::query_scalar(
        "UPDATE strategies SET name = coalesce($2, name), parameters = coalesce($3, parameters), \
             version = version + $4, active = coalesce($5, active), updated_at = now() \
         WHERE id = $1 RETURNING to_jsonb(strategies.*)",
    )
    .bind(id)
    .bind(&body.name)
    .bind(&parameters)
    .bind(i32::from(parameters.is_some()))
    .bind(body.active)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_problem)?;
    tx.commit().await.map_err(db_problem)?;
    Ok(Json(row))
}

/// `DELETE /v1/strategies/{id}`: deactivates; executions and trades stay.
pub async fn deactivate(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require_writable()?;
    let (id, mut tx) = one(&state, &caller, "strategy", &id, query).await?;
    let row: Option<Value> = sqlx::query_scalar(
        "UPDATE strategies SET active = false, updated_at = now() WHERE id = $1 \
         RETURNING to_jsonb(strategies.*)",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_problem)?;
    let row = row.ok_or_else(|| not_found("strategy", id))?;
    tx.commit().await.map_err(db_problem)?;
    Ok(Json(row))
}
