//! The candle-execution API: the market-data feed (`POST /v1/candles`),
//! strategies, subscriptions, execution history and PnL.
//!
//! - [`feed`]: a closed candle in, one job per strategy out (admin key)
//! - [`strategies`], [`subscriptions`], [`executions`]: tenant resources
//! - here: what they share: the tenant a request acts for, JSON bodies,
//!   and database errors as problems
//!
//! Scope: a tenant key acts for its own tenant; the admin key must name the
//! tenant (`"tenant"` in the body, `?tenant=` in the query). Every read and
//! write runs in [`flotilla::db::tenant_transaction`], so row-level security
//! makes another tenant's rows absent: 404, never 403.

mod executions;
mod feed;
mod strategies;
mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use flotilla::db::DbError;
use serde::de::DeserializeOwned;
use sqlx::{Postgres, Transaction};

use super::AppState;
use super::auth::Caller;
use super::problem::Problem;

/// The routes, to merge into `/v1` (behind the API-key check).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/candles", post(feed::post))
        .route(
            "/strategies",
            post(strategies::create).get(strategies::list),
        )
        .route(
            "/strategies/{id}",
            get(strategies::show)
                .patch(strategies::update)
                .delete(strategies::deactivate),
        )
        .route(
            "/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::show)
                .patch(subscriptions::update)
                .delete(subscriptions::cancel),
        )
        .route("/subscriptions/{id}/pause", post(subscriptions::pause))
        .route("/subscriptions/{id}/resume", post(subscriptions::resume))
        .route("/subscriptions/{id}/stats", get(subscriptions::stats))
        .route("/executions", get(executions::list))
}

/// The tenant a request acts for: a tenant key's own (naming another is as
/// absent as a missing one: 404); the admin key must name one.
pub(super) fn tenant_for(caller: &Caller, named: Option<&str>) -> Result<String, Problem> {
    match (caller.tenant(), named) {
        (Some(own), None) => Ok(own.to_string()),
        (Some(own), Some(named)) if named == own.as_str() => Ok(named.to_owned()),
        (Some(_), Some(_)) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no such tenant; a tenant key acts only for its own tenant (leave `tenant` out)",
        )),
        (None, Some(named)) => Ok(named.to_owned()),
        (None, None) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the admin key acts for any tenant, so name one: \"tenant\": \"<tenant id>\" in the body, or ?tenant=<tenant id>",
        )),
    }
}

/// A transaction scoped to `tenant`.
async fn scoped(state: &AppState, tenant: &str) -> Result<Transaction<'static, Postgres>, Problem> {
    flotilla::db::tenant_transaction(&state.db, tenant)
        .await
        .map_err(db_problem)
}

/// A database failure as a problem: constraint violations are the
/// client's to fix (422, 409); anything else is ours, and retryable (503).
pub(super) fn db_problem(e: impl Into<DbError>) -> Problem {
    let e = e.into();
    if let DbError::Tenant(invalid) = &e {
        return Problem::new(StatusCode::UNPROCESSABLE_ENTITY, invalid.to_string());
    }
    if let DbError::Query(sqlx::Error::Database(db)) = &e {
        let constraint = db.constraint().unwrap_or("a constraint");
        match db.code().as_deref() {
            Some("23505") => {
                return Problem::new(
                    StatusCode::CONFLICT,
                    format!(
                        "this already exists ({constraint}); a user subscribes to a strategy once (cancel first to subscribe again)"
                    ),
                );
            }
            Some("23503") => {
                return Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the tenant does not exist; name an existing tenant id",
                );
            }
            Some("23514") => {
                return Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "a value is out of range ({constraint}); see the README for each field's range"
                    ),
                );
            }
            _ => {}
        }
    }
    tracing::error!(error = %flotilla::backend::error_chain(&e), "database error");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the database failed; retry later",
    )
}

/// A JSON body of type `T`: 415 when not JSON, 400 when malformed, 422 with
/// serde's words (the field and what it expected) when the shape is wrong.
pub(super) fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    example: &str,
) -> Result<T, Problem> {
    let body = body.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON with Content-Type: application/json",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    serde_json::from_value(value).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{e}; send e.g. {example}"),
        )
    })
}

/// Query parameters, or a 422 naming the bad one.
pub(super) fn read_query<T>(
    query: Result<axum::extract::Query<T>, QueryRejection>,
) -> Result<T, Problem> {
    query.map(|q| q.0).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{}; fix the query string", e.body_text()),
        )
    })
}

/// A numeric id from the path; anything else names nothing (404).
fn parse_id(what: &str, raw: &str) -> Result<i64, Problem> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "no {what} {:?}; ids are positive integers",
                raw.chars().take(40).collect::<String>()
            ),
        )
    })
}

fn not_found(what: &str, id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no {what} {id} for this tenant; list them with GET /v1/{what}s"),
    )
}

/// For a route on one resource: its id from the path, and a transaction
/// of the tenant the request acts for (`?tenant=` for the admin key).
async fn one(
    state: &AppState,
    caller: &Caller,
    what: &str,
    id: &str,
    query: Result<axum::extract::Query<TenantQuery>, QueryRejection>,
) -> Result<(i64, Transaction<'static, Postgres>), Problem> {
    let id = parse_id(what, id)?;
    let query = read_query(query)?;
    let tenant = tenant_for(caller, query.tenant.as_deref())?;
    Ok((id, scoped(state, &tenant).await?))
}

/// `?tenant=` for routes that take nothing else.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantQuery {
    pub(super) tenant: Option<String>,
}
