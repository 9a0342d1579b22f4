//! One apalis worker per queue, each over its own [`FairBackend`].
//!
//! A queue gets its own worker (not one worker for all kinds) so each kind
//! has its own concurrency, its own payload type and its own backend that
//! claims only what that worker can start. Adding a job kind is one line in
//! [`start`]; everything else (middleware, shutdown, health) is shared.
//!
//! The middleware, outermost first (apalis warns about other orders):
//! the backend's settle layer (records outcomes), concurrency limit,
//! timeout, apalis' tracing, catch-panic. apalis' tracing logs failures at
//! debug, not error: the settle layer already logs each failed attempt once,
//! with what happens next (retry in N ms, or dead-lettered). A caught panic becomes a transient error,
//! not apalis' default `AbortError`, which Flotilla reads as permanent:
//! a panic is a bug that a redeploy may fix, so the job keeps its retries.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use anyhow::bail;
use apalis::layers::WorkerBuilderExt;
use apalis::layers::catch_panic::{CatchPanicLayer, PanicError};
use apalis::layers::tracing::{DefaultOnFailure, TraceLayer};
use apalis::prelude::{WorkerBuilder, WorkerError};
use flotilla::backend::{BackendHandle, BackendOptions, FairBackend, JobContext, JobError};
use flotilla::connect::run::Connector;
use flotilla::kinds::JobKind;
use flotilla::kinds::bench::Bench;
use flotilla::kinds::candles::Candles;
use flotilla::kinds::connect::Connect;
use flotilla::kinds::provisioning::Provisioning;
use flotilla::queue::FairQueue;
use flotilla::tenancy::provision::Provisioner;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use crate::handlers;

/// What every consumer of this process shares.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The worker's name (registry, leases, logs).
    pub worker: String,
    /// PostgreSQL, the system of record (connects on first use).
    pub db: sqlx::PgPool,
    /// Runs provisioning jobs (database, every queue's tenant policies).
    pub provisioner: Provisioner,
    /// Runs connect jobs (database, session hosts).
    pub connector: Connector,
    /// Jobs each queue runs at once.
    pub concurrency: usize,
    /// Jobs claimed beyond the free slots (`None`: the backend's default).
    pub prefetch: Option<usize>,
    /// Longest a job attempt may run.
    pub job_timeout: Duration,
    /// Facts for the worker registry.
    pub details: Vec<(&'static str, String)>,
    /// Cancelled to stop claiming (shutdown).
    pub stop: CancellationToken,
}

/// A running apalis worker on one queue.
#[derive(Debug)]
pub struct Consumer {
    /// Its queue.
    pub queue: FairQueue,
    /// Its backend, for health checks and the shutdown hand-back.
    pub handle: BackendHandle,
    /// The apalis worker; ends once stopped and drained.
    pub task: JoinHandle<Result<(), WorkerError>>,
}

/// Starts the consumer of `queue`: the one place that maps a queue to its
/// job kind and handler.
pub fn start(
    queue: FairQueue,
    wake: watch::Receiver<u64>,
    setup: &Setup,
) -> anyhow::Result<Consumer> {
    match queue.name().as_str() {
        Bench::QUEUE => Ok(run::<Bench, _, _>(
            queue,
            wake,
            setup,
            handlers::bench::handle,
        )),
        Provisioning::QUEUE => {
            let provisioner = setup.provisioner.clone();
            Ok(run::<Provisioning, _, _>(
                queue,
                wake,
                setup,
                move |job, ctx| handlers::provisioning::handle(provisioner.clone(), job, ctx),
            ))
        }
        Candles::QUEUE => Ok(run::<Candles, _, _>(queue, wake, setup, {
            let (db, worker) = (setup.db.clone(), setup.worker.clone());
            move |p, ctx| handlers::candles::handle(db.clone(), worker.clone(), p, ctx)
        })),
        Connect::QUEUE => Ok(run::<Connect, _, _>(queue, wake, setup, {
            let connector = setup.connector.clone();
            move |p, ctx| handlers::connect::handle(connector.clone(), p, ctx)
        })),
        other => bail!(
            "queue {other:?} is known to this build but flotilla-worker has no handler for it; \
             add one line for it in worker/src/consumers.rs"
        ),
    }
}

/// Builds and spawns the apalis worker for job kind `K`.
fn run<K, H, Fut>(
    queue: FairQueue,
    wake: watch::Receiver<u64>,
    setup: &Setup,
    handler: H,
) -> Consumer
where
    K: JobKind,
    H: Fn(K::Payload, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    let defaults = BackendOptions::new(setup.worker.clone(), setup.concurrency);
    let options = BackendOptions {
        details: setup.details.clone(),
        prefetch: setup.prefetch.unwrap_or(defaults.prefetch),
        ..defaults
    };
    let backend = FairBackend::<K>::new(queue.clone(), wake, options);
    let handle = backend.handle();
    let worker = WorkerBuilder::new(format!("{}/{}", setup.worker, K::QUEUE))
        .backend(backend)
        .concurrency(setup.concurrency)
        .timeout(setup.job_timeout)
        .layer(TraceLayer::new().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .layer(CatchPanicLayer::with_panic_handler(
            panic_error as fn(&Box<dyn Any + Send>) -> PanicError,
        ))
        .build(handler);
    let stop = setup.stop.clone();
    let task = tokio::spawn(worker.run_until(async move {
        stop.cancelled().await;
        Ok::<(), WorkerError>(())
    }));
    Consumer {
        queue,
        handle,
        task,
    }
}

/// A panic's message as a (transient) error.
fn panic_error(panic: &Box<dyn Any + Send>) -> PanicError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    PanicError(format!("the handler panicked: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_known_queue_has_a_handler() {
        let url = std::env::var("REDIS_URL").expect("REDIS_URL is set (deploy/local/test sets it)");
        let (_, conn) = flotilla::redis_conn::connect(&url).await.unwrap();
        let ns = flotilla::ids::Namespace::parse("worker-unit").unwrap();
        let db = flotilla::db::connect_lazy("postgres://127.0.0.1:1/unused", 1).unwrap();
        let setup = Setup {
            worker: "unit".into(),
            provisioner: Provisioner::new(
                db.clone(),
                vec![],
                conn.clone(),
                flotilla::tenancy::keys::TenantKeys::new(&ns),
            ),
            connector: Connector::new(
                db.clone(),
                flotilla::connect::host_client::HostClient::new(Duration::from_secs(1), None),
                Duration::from_secs(30),
            ),
            db,
            concurrency: 1,
            prefetch: None,
            job_timeout: Duration::from_secs(1),
            details: vec![],
            stop: CancellationToken::new(),
        };
        for name in flotilla::kinds::known_queues() {
            let queue =
                FairQueue::new(conn.clone(), &ns, name.parse().unwrap(), Default::default());
            let (_tx, rx) = watch::channel(0);
            let consumer = start(queue, rx, &setup).unwrap_or_else(|e| panic!("{name}: {e}"));
            consumer.task.abort();
        }
    }

    #[test]
    fn a_panic_message_is_kept_in_the_error() {
        let payload: Box<dyn Any + Send> = Box::new("boom");
        assert_eq!(panic_error(&payload).0, "the handler panicked: boom");
        let payload: Box<dyn Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_error(&payload).0, "the handler panicked: bang");
    }
}
