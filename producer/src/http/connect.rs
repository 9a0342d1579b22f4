//! User connect over HTTP: session hosts register, heartbeat and are
//! drained (admin key: hosts are the operator's processes); a tenant
//! connects and disconnects its users and reads their state (tenant key, or
//! the admin key with `?tenant=`). Requests are stored, then their job is
//! enqueued (see `flotilla::connect::users`): 202 with the job; 200 when
//! nothing had to change.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flotilla::connect::hosts::{self, Host, Registration};
use flotilla::connect::sweep::enqueue_moves;
use flotilla::connect::users::{self, RequestError, Requested};
use flotilla::ids::{HostId, TenantId, UserId};
use flotilla::kinds::JobKind as _;
use flotilla::kinds::connect::Connect;
use flotilla::queue::FairQueue;
use flotilla::tenancy::TenantStatus;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::candles::{TenantQuery, db_problem, read_json, read_query, tenant_for};
use super::problem::Problem;

/// The routes, to merge into `/v1` (behind the API-key check).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/hosts", post(register).get(list))
        .route("/hosts/{id}/heartbeat", post(heartbeat))
        .route("/hosts/{id}/drain", post(drain))
        .route("/users/{id}/connect", post(connect))
        .route("/users/{id}/disconnect", post(disconnect))
        .route("/users/{id}/connection", get(connection))
}

const EXAMPLE: &str =
    r#"{"id": "host-1", "endpoint": "http://10.0.0.5:8080", "capacity": 500, "region": "eu-west"}"#;

fn host_id(raw: &str) -> Result<HostId, Problem> {
    HostId::parse(raw)
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, format!("no such host: {e}")))
}

fn unknown_host(id: &HostId) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no session host {id}; a host registers first with POST /v1/hosts"),
    )
}

fn connect_queue(state: &AppState) -> Result<&FairQueue, Problem> {
    state
        .queues
        .get(Connect::QUEUE)
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `POST /v1/hosts`: a host registers (again after a restart).
async fn register(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Host>, Problem> {
    caller.require_admin()?;
    let registration: Registration = read_json(&headers, body, EXAMPLE)?;
    registration
        .check()
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let host = hosts::register(&state.db, &registration, state.connect.heartbeat_timeout)
        .await
        .map_err(db_problem)?;
    tracing::info!(host = %registration.id, capacity = registration.capacity, "session host registered");
    Ok(Json(host))
}

/// `GET /v1/hosts`: every host with its load.
async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require_admin()?;
    let hosts = hosts::list(&state.db, state.connect.heartbeat_timeout)
        .await
        .map_err(db_problem)?;
    Ok(Json(json!({
        "heartbeat_timeout_ms": state.connect.heartbeat_timeout.as_millis() as u64,
        "hosts": hosts,
    })))
}

/// `POST /v1/hosts/{id}/heartbeat`.
async fn heartbeat(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Host>, Problem> {
    caller.require_admin()?;
    let id = host_id(&id)?;
    hosts::heartbeat(&state.db, &id, state.connect.heartbeat_timeout)
        .await
        .map_err(db_problem)?
        .map(Json)
        .ok_or_else(|| unknown_host(&id))
}

/// `POST /v1/hosts/{id}/drain`: no new users; its users move off now.
async fn drain(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let id = host_id(&id)?;
    let host = hosts::drain(&state.db, &id, state.connect.heartbeat_timeout)
        .await
        .map_err(db_problem)?
        .ok_or_else(|| unknown_host(&id))?;
    // The sweep would find them too; enqueueing here starts the moves now.
    let moves = enqueue_moves(&state.db, connect_queue(&state)?, Some(&id))
        .await
        .map_err(Problem::unavailable)?;
    tracing::info!(host = %id, moves, "session host draining");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"host": host, "moves": moves})),
    )
        .into_response())
}

/// The tenant and user a user route acts for; writes need a writable,
/// active tenant.
async fn target(
    state: &AppState,
    caller: &Caller,
    user: &str,
    query: Result<Query<TenantQuery>, QueryRejection>,
    write: bool,
) -> Result<(TenantId, UserId), Problem> {
    let user = UserId::parse(user)
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, format!("no such user: {e}")))?;
    let named = read_query(query)?;
    let tenant = tenant_for(caller, named.tenant.as_deref())?;
    let tenant = TenantId::parse(&tenant)
        .map_err(|e| Problem::new(StatusCode::NOT_FOUND, format!("no such tenant: {e}")))?;
    if write {
        caller.require_writable()?;
    }
    let status = flotilla::tenancy::store::get(&state.db, &tenant)
        .await
        .map_err(db_problem)?
        .map(|t| t.status);
    match status {
        None | Some(TenantStatus::Deleted) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no tenant {tenant}; list tenants with GET /v1/tenants"),
        )),
        Some(TenantStatus::Active) => Ok((tenant, user)),
        Some(other) if write => Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("tenant {tenant} is {other}: its users cannot connect until it is active"),
        )),
        Some(_) => Ok((tenant, user)),
    }
}

fn answer(requested: Requested) -> Response {
    let status = if requested.job.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let status_url = format!("/v1/users/{}/connection", requested.connection.user);
    (
        status,
        Json(json!({
            "connection": requested.connection,
            "job": requested.job.map(|j| j.to_string()),
            "status_url": status_url,
        })),
    )
        .into_response()
}

fn request_problem(e: RequestError) -> Problem {
    match e {
        RequestError::Db(e) => db_problem(e),
        RequestError::Queue(_) => Problem::unavailable(e),
    }
}

/// `POST /v1/users/{id}/connect`.
async fn connect(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let (tenant, user) = target(&state, &caller, &user, query, true).await?;
    users::connect(&state.db, connect_queue(&state)?, &tenant, &user)
        .await
        .map(answer)
        .map_err(request_problem)
}

/// `POST /v1/users/{id}/disconnect`.
async fn disconnect(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let (tenant, user) = target(&state, &caller, &user, query, true).await?;
    users::disconnect(&state.db, connect_queue(&state)?, &tenant, &user)
        .await
        .map_err(request_problem)?
        .map(answer)
        .ok_or_else(|| never_connected(&user))
}

fn never_connected(user: &UserId) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("user {user} has never asked to connect; POST /v1/users/{user}/connect first"),
    )
}

/// `GET /v1/users/{id}/connection`.
async fn connection(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Json<users::Connection>, Problem> {
    let (tenant, user) = target(&state, &caller, &user, query, false).await?;
    users::find(&state.db, &tenant, &user)
        .await
        .map_err(db_problem)?
        .map(Json)
        .ok_or_else(|| never_connected(&user))
}
