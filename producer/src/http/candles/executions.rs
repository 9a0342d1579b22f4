//! `GET /v1/executions`: the tenant's execution history, newest first:
//! `?strategy_id=` narrows it, `?limit=` (default 50, at most 500).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::{db_problem, read_query, scoped, tenant_for};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionQuery {
    tenant: Option<String>,
    strategy_id: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/executions`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ExecutionQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let query = read_query(query)?;
    let tenant = tenant_for(&caller, query.tenant.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be from 1 to 500",
        ));
    }
    let mut tx = scoped(&state, &tenant).await?;
    let rows = flotilla::candles::views::executions(&mut tx, query.strategy_id, limit)
        .await
        .map_err(db_problem)?;
    Ok(Json(json!({ "executions": rows })))
}
