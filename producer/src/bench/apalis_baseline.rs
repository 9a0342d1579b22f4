//! Baseline for `flotilla-producer bench queue`: measures the no-op job
//! throughput of the reference crate apalis-redis 1.0 (driven by apalis 1.0)
//! against the same Redis, so Flotilla's own queue can be compared with it in
//! one run.
//!
//! A run deletes every key apalis-redis keeps for the queue, pre-fills it with
//! `jobs` no-op jobs (not timed), then times one apalis worker from its start
//! until the last handler has run, checks that every job ran exactly once and
//! was acknowledged, and deletes the queue's keys again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, BoxDynError, Data, TaskSink, WorkerBuilder, WorkerContext};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Upper bound for the timed worker phase; a stalled apalis worker fails the
/// run instead of hanging it.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Upper bound for pre-filling and for cleaning the queue.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Measures apalis-redis 1.0 no-op throughput at its best settings.
#[derive(Debug, Clone)]
pub struct ApalisBaseline {
    /// Jobs pre-filled and executed.
    pub jobs: usize,
    /// Worker concurrency (`WorkerBuilder::concurrency`).
    pub concurrency: usize,
    /// Jobs fetched per fetch (`Config::batch_size`).
    pub batch_size: usize,
    /// Interval at which the idle worker re-polls (`poll_with_interval`).
    pub poll_interval: Duration,
    /// Jobs per push while pre-filling.
    pub prefill_chunk: usize,
}

impl Default for ApalisBaseline {
    fn default() -> Self {
        Self {
            jobs: 50_000,
            concurrency: 16,
            batch_size: 50,
            poll_interval: Duration::from_millis(10),
            prefill_chunk: 5_000,
        }
    }
}

/// Outcome of one measured run.
#[derive(Debug, Clone)]
pub struct ApalisResult {
    /// From worker start to the last handler completed.
    pub elapsed: Duration,
    /// `jobs / elapsed`.
    pub jobs_per_s: f64,
    /// What Redis spent on the run.
    pub server: super::server::Spent,
}

/// The no-op job payload.
#[derive(Debug, Serialize, Deserialize)]
struct NoopJob {
    n: u64,
}

/// Shared by all handler invocations of one run.
struct Progress {
    target: usize,
    executed: AtomicUsize,
    /// `seen[n]` is set when job `n` runs, to catch duplicates.
    seen: Vec<AtomicBool>,
    duplicates: AtomicUsize,
    finished_at: OnceLock<Instant>,
}

/// Storage settings of one run.
struct Settings {
    config: Config,
    /// `None` leaves the storage without a poll strategy, as apalis-redis does
    /// by default.
    poll_interval: Option<Duration>,
}

async fn noop(
    job: NoopJob,
    progress: Data<Arc<Progress>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let first_run = usize::try_from(job.n)
        .ok()
        .and_then(|n| progress.seen.get(n))
        .is_some_and(|seen| !seen.swap(true, Ordering::Relaxed));
    if !first_run {
        progress.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    if progress.executed.fetch_add(1, Ordering::AcqRel) + 1 == progress.target {
        let _ = progress.finished_at.set(Instant::now());
        worker.stop()?;
    }
    Ok(())
}

impl ApalisBaseline {
    /// Runs the benchmark at the best settings we found for apalis-redis:
    /// `batch_size`, `poll_interval` and `concurrency` from `self`, task locking off.
    pub async fn run(&self, redis_url: &str, queue_name: &str) -> anyhow::Result<ApalisResult> {
        // `lock_tasks(false)`: with locking on, every job costs an extra
        // acquire_leases script whose `LREM` scans the whole active list (O(queue length)).
        // Fetching already moves jobs atomically from the active list into
        // this worker's inflight set, so no job is handed out twice without it.
        //
        // `persist_results(true)` (the default) is kept on purpose: in
        // apalis-redis 1.0 it IS the ack. The persist layer only sends a
        // `Complete` event when it is on, and only that event runs
        // handle_results.lua, which removes the job from the worker's inflight
        // set and marks it Done. With it off, jobs are never acked: they stay in
        // the inflight set and are re-enqueued once the worker counts as dead.
        let config = Config::default()
            .queue(queue_name)
            .batch_size(self.batch_size)
            .lock_tasks(false)
            .persist_results(true);
        self.measure(
            redis_url,
            Settings {
                config,
                poll_interval: Some(self.poll_interval),
            },
        )
        .await
    }

    async fn measure(&self, redis_url: &str, settings: Settings) -> anyhow::Result<ApalisResult> {
        ensure!(self.jobs > 0, "jobs must be > 0");
        ensure!(self.concurrency > 0, "concurrency must be > 0");
        ensure!(self.prefill_chunk > 0, "prefill_chunk must be > 0");
        let conn = apalis_redis::connect(redis_url)
            .await
            .with_context(|| format!("connecting to {redis_url}"))?;
        let outcome = self
            .prepare_and_run(
                conn.clone(),
                settings.config.clone(),
                settings.poll_interval,
            )
            .await;
        let cleanup = tokio::time::timeout(SETUP_TIMEOUT, delete_queue(conn, &settings.config))
            .await
            .map_err(|_| anyhow!("deleting the queue's keys timed out"))
            .and_then(|r| r);
        let result = outcome?;
        cleanup.context("deleting the queue's keys after the run")?;
        Ok(result)
    }

    async fn prepare_and_run(
        &self,
        conn: ConnectionManager,
        config: Config,
        poll_interval: Option<Duration>,
    ) -> anyhow::Result<ApalisResult> {
        let queue = config.queue.to_string();
        let mut storage = RedisStorage::<NoopJob>::new(conn.clone()).with_config(config.clone());
        tokio::time::timeout(SETUP_TIMEOUT, async {
            delete_queue(conn.clone(), &config).await?;
            self.prefill(&mut storage, conn.clone()).await
        })
        .await
        .map_err(|_| anyhow!("preparing queue {queue} timed out after {SETUP_TIMEOUT:?}"))??;

        let progress = Arc::new(Progress {
            target: self.jobs,
            executed: AtomicUsize::new(0),
            seen: (0..self.jobs).map(|_| AtomicBool::new(false)).collect(),
            duplicates: AtomicUsize::new(0),
            finished_at: OnceLock::new(),
        });
        let worker_name = format!("apalis-baseline-{queue}");
        let worker: BoxFuture<'static, Result<(), apalis::prelude::WorkerError>> =
            match poll_interval {
                Some(interval) => WorkerBuilder::new(worker_name.as_str())
                    .backend(storage.poll_with_interval(interval))
                    .data(progress.clone())
                    .concurrency(self.concurrency)
                    .build(noop)
                    .run()
                    .boxed(),
                None => WorkerBuilder::new(worker_name.as_str())
                    .backend(storage)
                    .data(progress.clone())
                    .concurrency(self.concurrency)
                    .build(noop)
                    .run()
                    .boxed(),
            };

        let mark = super::server::settle(&conn).await?;
        let started = Instant::now();
        let run = tokio::time::timeout(RUN_TIMEOUT, worker).await;
        let executed = progress.executed.load(Ordering::Acquire);
        let jobs = self.jobs;
        match run {
            Err(_) => bail!(
                "apalis worker timed out after {RUN_TIMEOUT:?} with {executed}/{jobs} jobs executed"
            ),
            Ok(Err(e)) => bail!("apalis worker failed with {executed}/{jobs} jobs executed: {e}"),
            Ok(Ok(())) => {}
        }
        let Some(finished_at) = progress.finished_at.get() else {
            bail!("apalis worker stopped early with {executed}/{jobs} jobs executed");
        };
        let duplicates = progress.duplicates.load(Ordering::Acquire);
        ensure!(
            executed == jobs && duplicates == 0,
            "apalis worker executed {executed} handlers for {jobs} jobs ({duplicates} duplicate or unknown)"
        );
        let acked = done_count(conn.clone(), &config).await?;
        ensure!(
            acked == jobs,
            "only {acked}/{jobs} jobs were acked as Done in Redis"
        );

        let server = super::server::spent_since(&conn, mark).await?;
        let elapsed = finished_at.duration_since(started);
        Ok(ApalisResult {
            elapsed,
            jobs_per_s: jobs as f64 / elapsed.as_secs_f64(),
            server,
        })
    }

    /// Pushes `jobs` no-op jobs, `prefill_chunk` per `push_bulk` (one
    /// batch_push.lua call each), promoting each chunk to the active list.
    ///
    /// apalis-redis 1.0 clamps every job's `run_at` to "now", so batch_push.lua
    /// puts every pushed job into the scheduled zset, never straight into the
    /// active list. fetch_next.lua then moves *all* due scheduled jobs in one
    /// `RPUSH active unpack(ids)`, which fails with "too many results to
    /// unpack" once more than ~8,000 are due; chunking the pushes alone does
    /// not help, since all chunks are due by the time the worker starts. So
    /// each chunk is moved to the active list right after it is pushed, as
    /// fetch_next.lua's promotion step would do. This one-off O(jobs) step
    /// is left out of the timing in both cases.
    async fn prefill(
        &self,
        storage: &mut RedisStorage<NoopJob>,
        mut conn: ConnectionManager,
    ) -> anyhow::Result<()> {
        let config = storage.get_config().clone();
        let mut next = 0;
        while next < self.jobs {
            let end = (next + self.prefill_chunk).min(self.jobs);
            let chunk = (next..end).map(|n| NoopJob { n: n as u64 }).collect();
            storage
                .push_bulk(chunk)
                .await
                .with_context(|| format!("pushing jobs {next}..{end}"))?;
            let scheduled: Vec<(String, f64)> = redis::cmd("ZPOPMIN")
                .arg(config.scheduled_jobs_set())
                .arg(end - next)
                .query_async(&mut conn)
                .await
                .context("taking pushed jobs from the scheduled set")?;
            ensure!(
                scheduled.len() == end - next,
                "pushed jobs {next}..{end} but {} were scheduled",
                scheduled.len()
            );
            redis::cmd("RPUSH")
                .arg(config.active_jobs_list())
                .arg(scheduled.iter().map(|(id, _)| id).collect::<Vec<_>>())
                .query_async::<()>(&mut conn)
                .await
                .context("moving pushed jobs to the active list")?;
            next = end;
        }
        Ok(())
    }
}

async fn done_count(mut conn: ConnectionManager, config: &Config) -> anyhow::Result<usize> {
    let count: usize = redis::cmd("SCARD")
        .arg(config.done_jobs_set())
        .query_async(&mut conn)
        .await
        .context("counting acked jobs")?;
    Ok(count)
}

/// Deletes every key apalis-redis 1.0 keeps for `config.queue`: the fixed
/// keys of `Config`'s key builders, the per-task meta hashes
/// (`{queue}:meta:{id}`), per-worker inflight sets and metadata, idempotency
/// keys, and the queue's entry in apalis' global queue list.
async fn delete_queue(mut conn: ConnectionManager, config: &Config) -> anyhow::Result<()> {
    let fixed: HashSet<String> = [
        config.active_jobs_list(),
        config.workers_set(),
        config.dead_jobs_set(),
        config.done_jobs_set(),
        config.failed_jobs_set(),
        config.inflight_jobs_set(),
        config.job_data_hash(),
        config.job_meta_hash(),
        config.scheduled_jobs_set(),
        config.signal_list(),
        config.idempotency_key_set(),
    ]
    .into();
    let prefixes = [
        format!("{}:", config.job_meta_hash()),
        format!("{}:", config.inflight_jobs_set()),
        format!("{}:metadata:", config.workers_set()),
        format!("{}:", config.idempotency_key_set()),
    ];
    let pattern = format!("{}:*", glob_escape(config.queue.as_ref()));
    super::unlink_matching(&mut conn, &pattern, |k| {
        fixed.contains(k) || prefixes.iter().any(|p| k.starts_with(p.as_str()))
    })
    .await
    .context("deleting the queue's keys")?;
    redis::cmd("ZREM")
        .arg("core:apalis:queues:list")
        .arg(config.workers_set())
        .query_async::<()>(&mut conn)
        .await
        .context("removing the queue from apalis' queue list")?;
    Ok(())
}

/// Escapes Redis glob metacharacters so the queue name matches literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
