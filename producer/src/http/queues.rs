//! `GET /v1/queues`: every queue's depth by state, as `queues --json` prints it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Caller;
use super::problem::Problem;

/// `GET /v1/queues`.
pub async fn depths(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Err(p) = caller.require_admin() {
        return p.into_response();
    }
    let mut depths = Vec::new();
    for q in state.queues.all() {
        match q.depth().await {
            Ok(d) => depths.push(d),
            Err(e) => return Problem::unavailable(e).into_response(),
        }
    }
    Json(depths).into_response()
}
