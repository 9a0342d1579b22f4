//! The routes platforms and operators call: `/healthz` (the process
//! answers), `/readyz` (and can reach Redis: a load balancer should route
//! elsewhere until it can), `/metrics` (Prometheus text). They stay outside
//! `/v1`, so the API's authentication never locks out a probe or a scraper.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::problem::Problem;

/// The probe and metrics routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.queues.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Redis is unreachable: {e}"),
        )
        .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
