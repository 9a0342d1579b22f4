//! `serve`: the HTTP API. Producers elsewhere enqueue with
//! `POST /v1/jobs/{queue}` and follow jobs with `GET /v1/jobs/{id}`;
//! operators scrape `/metrics` and probe `/healthz` and `/readyz`.
//!
//! Authentication (tenant and admin API keys) is a layer on `/v1` added with
//! tenant provisioning.

mod jobs;
mod problem;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use flotilla::config::{QueueArgs, RedisArgs};
use flotilla::kinds::known_queues;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing::info;

use crate::queues::Queues;

/// Largest request body: a 64 KiB payload plus its envelope. Larger bodies
/// get 413.
pub const MAX_BODY_BYTES: usize = flotilla::job::MAX_PAYLOAD_BYTES + 16 * 1024;

/// Bodies up to this size are read in full even when over [`MAX_BODY_BYTES`],
/// so the client reliably gets its 413: answering before the body is read
/// makes the connection close with unread data, and the client may see a
/// reset instead of the answer. Beyond this the connection is cut.
const DRAIN_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (platforms set PORT).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on (127.0.0.1 for local only).
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: String,
}

/// What every handler shares.
pub struct AppState {
    pub(crate) queues: Queues,
    metrics: PrometheusHandle,
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        // One pattern for both: POST names a queue, GET a job id.
        .route("/v1/jobs/{name}", post(jobs::enqueue).get(jobs::status))
        .route("/v1/queues", get(jobs::queues))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            problem::Problem::new(
                StatusCode::NOT_FOUND,
                "no such route; see the README for the API",
            )
        })
        .layer(DefaultBodyLimit::max(DRAIN_BODY_BYTES))
        .with_state(state)
}

/// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
pub async fn serve(redis: &RedisArgs, queue: &QueueArgs, args: ServeArgs) -> anyhow::Result<()> {
    let metrics = flotilla::telemetry::install_metrics()?;
    for q in known_queues() {
        metrics::counter!(flotilla::telemetry::names::JOBS_ENQUEUED, "queue" => q).absolute(0);
    }
    let queues = Queues::open(redis, queue).await?;
    // The exporter's histograms and idle series need a periodic upkeep.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let state = Arc::new(AppState { queues, metrics });
    let listener = TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (is the port taken? set PORT)",
                args.bind, args.port
            )
        })?;
    let addr = listener.local_addr()?;
    info!(%addr, "serving the API");
    eprintln!("flotilla-producer: serving on http://{addr}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop_signal())
        .await?;
    Ok(())
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.queues.all()[0].now_ms().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => problem::Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Redis is unreachable: {e}"),
        )
        .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
