//! `serve`: the HTTP API. Producers elsewhere enqueue with
//! `POST /v1/jobs/{queue}` and follow jobs with `GET /v1/jobs/{id}`;
//! operators scrape `/metrics` and probe `/healthz` and `/readyz`.
//!
//! - [`jobs`]: enqueue and job status; [`queues`]: queue depths
//! - [`body`]: reading and checking an enqueue body; [`problem`]: RFC 9457 errors
//! - [`ops`]: probes and metrics
//!
//! The API lives under `/v1` in a router of its own ([`api`]): the API-key
//! check ([`auth`]) is one `route_layer` there, and leaves the probes and
//! `/metrics` open.

pub mod auth;
mod body;
mod candles;
mod connect;
mod jobs;
mod ops;
mod problem;
mod queues;
mod tenants;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use flotilla::config::{DatabaseArgs, QueueArgs, RedisArgs};
use flotilla::kinds::known_queues;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing::info;

use crate::queues::Queues;
use flotilla::kinds::JobKind as _;
use flotilla::kinds::provisioning::Provisioning;
use flotilla::tenancy::keys::TenantKeys;
use flotilla::tenancy::lifecycle::Lifecycle;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Routes:
  POST /v1/jobs/{queue}   {\"tenant\": \"acme\", \"payload\": {...}, \"delay_ms\"?: n, \"run_at\"?: RFC 3339 or ms}
                          optional Idempotency-Key header; 202 {\"id\", \"queue\", \"tenant\", \"state\", \"duplicate\"}
  GET  /v1/jobs/{id}      the job's status, or 404
  GET  /v1/queues         depth of every queue by state
  POST /v1/hosts          a session host registers {\"id\", \"endpoint\", \"capacity\", \"region\"} (admin key)
  GET  /v1/hosts          hosts with their load; POST /v1/hosts/{id}/heartbeat, /v1/hosts/{id}/drain
  POST /v1/users/{id}/connect, /v1/users/{id}/disconnect; GET /v1/users/{id}/connection
  GET  /healthz /readyz /metrics
Errors are application/problem+json (RFC 9457).")]
pub struct ServeArgs {
    /// Port to listen on (platforms set PORT).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on: 0.0.0.0 (all interfaces, what platforms need) or
    /// 127.0.0.1 (this machine only).
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: String,
    /// The operator's API key: manages tenants and may act for any tenant.
    /// At least 24 characters (e.g. `openssl rand -hex 32`).
    #[arg(long, env = "FLOTILLA_ADMIN_KEY", hide_env_values = true, value_parser = parse_admin_key)]
    pub admin_key: String,
    /// How often this process looks for tenants stuck in pending or
    /// provisioning (their job lost with Redis) and re-enqueues them.
    #[arg(long, env = "FLOTILLA_RECONCILE_EVERY", default_value = "30s", value_parser = flotilla::config::parse_duration)]
    pub reconcile_every: std::time::Duration,
    /// A tenant pending or provisioning for longer than this is stuck.
    #[arg(long, env = "FLOTILLA_RECONCILE_AFTER", default_value = "2m", value_parser = flotilla::config::parse_duration)]
    pub reconcile_after: std::time::Duration,
    #[command(flatten)]
    pub candles: crate::candles::CandleArgs,
}

fn parse_admin_key(key: &str) -> Result<String, String> {
    if key.trim().len() < 24 || key.trim() != key {
        return Err(
            "FLOTILLA_ADMIN_KEY must be at least 24 characters without surrounding spaces; generate one with `openssl rand -hex 32`"
                .to_owned(),
        );
    }
    Ok(key.to_owned())
}

/// What every handler shares.
pub struct AppState {
    pub(crate) queues: Queues,
    /// PostgreSQL: API keys, tenants and everything they own.
    pub(crate) db: sqlx::PgPool,
    /// Tenant requests (create, change, delete) and their jobs.
    pub(crate) lifecycle: Lifecycle,
    /// Per-tenant Redis keys (daily enqueue counters).
    pub(crate) tenant_keys: TenantKeys,
    admin_key: String,
    metrics: PrometheusHandle,
    /// The candle feed's horizon.
    pub(crate) candles: crate::candles::CandleArgs,
    /// Session hosts' heartbeat timeout (which hosts are live).
    pub(crate) connect: flotilla::connect::ConnectArgs,
}

/// The versioned API: everything a client (and later, its API key) uses.
fn api(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        // One pattern for both: POST names a queue, GET a job id.
        .route("/jobs/{name}", post(jobs::enqueue).get(jobs::status))
        .route("/queues", get(queues::depths))
        .route("/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/tenants/{id}",
            get(tenants::show)
                .patch(tenants::change)
                .delete(tenants::delete),
        )
        .merge(candles::routes())
        .merge(connect::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_key,
        ))
}

/// All routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .nest("/v1", api(state.clone()))
        .merge(ops::router())
        .fallback(|| async {
            problem::Problem::new(
                StatusCode::NOT_FOUND,
                "no such route; the API is POST /v1/jobs/{queue} and GET /v1/jobs/{id}",
            )
        })
        .layer(DefaultBodyLimit::max(body::DRAIN_BODY_BYTES))
        .with_state(state)
}

/// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
pub async fn serve(
    redis: &RedisArgs,
    queue: &QueueArgs,
    database: &DatabaseArgs,
    tenancy: &crate::TenantArgs,
    connect: &flotilla::connect::ConnectArgs,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let metrics = flotilla::telemetry::install_metrics()?;
    // Every queue's counter exists from the start, so rate() has a baseline.
    for q in known_queues() {
        metrics::counter!(flotilla::telemetry::names::JOBS_ENQUEUED, "queue" => q).absolute(0);
    }
    for tier in flotilla::tenancy::Tier::ALL {
        metrics::counter!(flotilla::telemetry::names::RATE_LIMITED, "tier" => tier.as_str())
            .absolute(0);
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
    let db = flotilla::db::connect(&database.database_url).await?;
    let tenant_keys = TenantKeys::new(&redis.namespace);
    let lifecycle = Lifecycle::new(
        db.clone(),
        queues.get(Provisioning::QUEUE)?.clone(),
        tenant_keys.clone(),
        tenancy.tenant_retention,
    );
    tokio::spawn(reconcile_loop(
        lifecycle.clone(),
        args.reconcile_every,
        args.reconcile_after,
    ));
    let state = Arc::new(AppState {
        queues,
        db,
        lifecycle,
        tenant_keys,
        admin_key: args.admin_key,
        metrics,
        candles: args.candles,
        connect: connect.clone(),
    });
    let listener = TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (is the port taken? set PORT or --port)",
                args.bind, args.port
            )
        })?;
    let addr = listener.local_addr()?;
    info!(%addr, "serving the API");
    eprintln!("flotilla-producer: serving on http://{addr}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop_signal())
        .await?;
    eprintln!("flotilla-producer: stopped");
    Ok(())
}

/// The API without a listener: the CLI's management verbs send their
/// requests through the same routes (validation, scoping, SQL) as HTTP
/// clients, acting with an admin key made for the process.
pub struct InProcess {
    router: Router,
    admin_key: String,
}

impl InProcess {
    /// The API over these connections.
    pub async fn open(
        redis: &RedisArgs,
        queue: &QueueArgs,
        database: &DatabaseArgs,
        tenancy: &crate::TenantArgs,
        candles: crate::candles::CandleArgs,
        connect: &flotilla::connect::ConnectArgs,
    ) -> anyhow::Result<Self> {
        let queues = Queues::open(redis, queue).await?;
        let db = flotilla::db::connect(&database.database_url).await?;
        let tenant_keys = TenantKeys::new(&redis.namespace);
        let lifecycle = Lifecycle::new(
            db.clone(),
            queues.get(Provisioning::QUEUE)?.clone(),
            tenant_keys.clone(),
            tenancy.tenant_retention,
        );
        let admin_key = flotilla::tenancy::api_key::ApiKey::generate()
            .reveal()
            .to_owned();
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let state = Arc::new(AppState {
            queues,
            db,
            lifecycle,
            tenant_keys,
            admin_key: admin_key.clone(),
            metrics,
            candles,
            connect: connect.clone(),
        });
        Ok(Self {
            router: router(state),
            admin_key,
        })
    }

    /// Sends one request; the answer's status and JSON body.
    pub async fn call(
        &self,
        method: axum::http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(StatusCode, serde_json::Value)> {
        use tower::ServiceExt as _;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.admin_key));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map_or_else(String::new, |b| b.to_string());
        let response = self
            .router
            .clone()
            .oneshot(request.body(axum::body::Body::from(body))?)
            .await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await?;
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .context("the API answered with something other than JSON")?
        };
        Ok((status, json))
    }
}

/// Re-enqueues stuck tenants every `every` (PostgreSQL is the source of
/// truth: a tenant whose job was lost with Redis still gets provisioned).
async fn reconcile_loop(
    lifecycle: Lifecycle,
    every: std::time::Duration,
    after: std::time::Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        match lifecycle.reconcile(after).await {
            Ok(requeued) if !requeued.is_empty() => {
                info!(
                    count = requeued.len(),
                    "re-enqueued the provisioning of stuck tenants"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconciling tenants failed; retrying next round"),
        }
    }
}

/// Resolves on the first SIGTERM (platforms stopping the process) or Ctrl-C.
pub(crate) async fn stop_signal() {
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
    info!("stop signal: finishing in-flight requests");
}
