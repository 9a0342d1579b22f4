//! The worker's life: refuse an unsafe Redis, serve HTTP, run one consumer
//! per queue until asked to stop, then drain and say what happened.

use flotilla::connect::host_client::HostClient;
use flotilla::connect::run::Connector;
use flotilla::kinds::JobKind as _;
use flotilla::kinds::connect::Connect;
use flotilla::tenancy::keys::TenantKeys;
use flotilla::tenancy::provision::Provisioner;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use flotilla::queue::FairQueue;
use flotilla::redis_conn::{check_safety, connect, redact};
use flotilla::wake::Wakeups;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::consumers::{self, Setup};
use crate::health::Health;
use crate::shutdown::{self, StopRequests, Summary};
use crate::{connect_sweep, gauges, http};

/// How often the metrics recorder drains histogram samples.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the worker until the first stop request, then drains. Returns what
/// the shutdown did; an error means the worker could not start.
pub async fn run(config: Config, mut stop: StopRequests) -> anyhow::Result<Summary> {
    let worker = config.worker_name();
    let url = redact(&config.redis.redis_url);
    let (client, mut conn) = connect(&config.redis.redis_url).await?;
    let report = check_safety(&mut conn)
        .await
        .map_err(|e| anyhow!("refusing to start: {e}"))?;
    for warning in &report.warnings {
        warn!("{warning}");
    }

    let metrics = flotilla::telemetry::install_metrics()?;
    tokio::spawn({
        let metrics = metrics.clone();
        async move {
            loop {
                tokio::time::sleep(METRICS_UPKEEP_EVERY).await;
                metrics.run_upkeep();
            }
        }
    });
    metrics::gauge!(flotilla::telemetry::names::REDIS_UP).set(1.0);

    let listener = TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (BIND, PORT): is another process using the port?",
                config.bind, config.port
            )
        })?;
    let http_addr = listener
        .local_addr()
        .context("reading the HTTP listener's address")?;
    let health = Arc::new(Health::new(conn.clone()));
    let routes = http::router(health.clone(), metrics);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, routes).await {
            warn!(error = %e, "the HTTP server stopped; /healthz, /readyz and /metrics are gone");
        }
    });

    let settings = config.queue.settings();
    let queues: Vec<FairQueue> = config
        .queues()
        .into_iter()
        .map(|name| {
            FairQueue::new(
                conn.clone(),
                &config.redis.namespace,
                name,
                settings.clone(),
            )
        })
        .collect();
    gauges::zero_counters(&queues);
    let wakeups = Wakeups::listen(client, &queues);
    // Connects on first use: a worker on the bench queue never needs it.
    // A connection per running job, so handlers never queue for one.
    let db = flotilla::db::connect_lazy(
        &config.database.database_url,
        (config.concurrency * queues.len()).clamp(4, 64) as u32,
    )?;
    // Provisioning sets tenant policies on every queue of the deployment,
    // not only on those this worker consumes.
    let every_queue = flotilla::kinds::known_queues()
        .into_iter()
        .map(|name| {
            FairQueue::new(
                conn.clone(),
                &config.redis.namespace,
                name.parse().expect("known queue names are valid"),
                settings.clone(),
            )
        })
        .collect();
    let provisioner = Provisioner::new(
        db.clone(),
        every_queue,
        conn.clone(),
        TenantKeys::new(&config.redis.namespace),
    )
    .with_step_pause(config.provision_step_pause);
    let connect = &config.connect;
    let connector = Connector::new(
        db.clone(),
        HostClient::new(connect.host_call_timeout, connect.host_secret.clone()),
        connect.heartbeat_timeout,
    );
    if let Some(queue) = queues.iter().find(|q| q.name().as_str() == Connect::QUEUE) {
        if connect.host_secret.is_none() {
            warn!(
                "FLOTILLA_HOST_SECRET is not set: calls to session hosts go unsigned, and hosts cannot tell them from anyone's"
            );
        }
        tokio::spawn(connect_sweep::run(
            db.clone(),
            queue.clone(),
            connect.clone(),
        ));
    }
    let setup = Setup {
        worker: worker.clone(),
        provisioner,
        connector,
        db,
        concurrency: config.concurrency,
        prefetch: config.prefetch,
        job_timeout: config.job_timeout,
        details: vec![
            (
                "host",
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            ),
            ("pid", std::process::id().to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ],
        stop: CancellationToken::new(),
    };
    let mut consumers = queues
        .iter()
        .map(|q| consumers::start(q.clone(), wakeups.for_queue(q), &setup))
        .collect::<anyhow::Result<Vec<_>>>()?;
    tokio::spawn(gauges::run(
        queues.clone(),
        TenantKeys::new(&config.redis.namespace),
    ));

    let names: Vec<&str> = queues.iter().map(|q| q.name().as_str()).collect();
    info!(
        worker = %worker,
        queues = %names.join(","),
        concurrency = config.concurrency,
        redis = %url,
        namespace = %config.redis.namespace,
        http_addr = %http_addr,
        "worker started"
    );

    // Run until asked to stop, or until a consumer ends by itself (a bug:
    // then exit non-zero so the platform restarts the worker rather than
    // leave it up and ready but not consuming that queue).
    let ended = {
        let tasks = futures::future::select_all(consumers.iter_mut().map(|c| &mut c.task));
        tokio::select! {
            reason = stop.next() => Ok(reason),
            (result, index, _) = tasks => Err((index, result)),
        }
    };
    let (reason, failure) = match ended {
        Ok(reason) => (reason, None),
        Err((index, result)) => {
            let queue = consumers[index].queue.name().to_string();
            let why = match result {
                Ok(Ok(())) => "it stopped".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            error!(queue, error = %why, "a queue consumer ended unexpectedly; stopping the worker");
            (
                "consumer failure",
                Some(anyhow!(
                    "the {queue} consumer ended unexpectedly ({why}); exiting so the worker is restarted"
                )),
            )
        }
    };
    info!(signal = reason, "stop requested");
    health.begin_shutdown();
    setup.stop.cancel();
    let consumers = consumers
        .into_iter()
        .filter(|c| !c.task.is_finished())
        .collect();
    let summary = shutdown::drain(consumers, &worker, config.shutdown_grace, &mut stop).await;
    info!(
        worker = %worker,
        signal = reason,
        running_at_stop = summary.running_at_stop,
        handed_back = summary.handed_back,
        drained = summary.drained,
        took_ms = summary.took.as_millis() as u64,
        "worker stopped"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
