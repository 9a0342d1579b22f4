//! `flotilla-producer demo`: the whole fleet on a demo workload, for a
//! newcomer's first run. Two real worker processes share the `bench` queue;
//! many small tenants and one noisy tenant enqueue at once; a few jobs fail
//! on purpose and reach the dead letter. The queue's depth is printed live,
//! and when the workload has drained (or on Ctrl-C) a per-tenant summary shows
//! that the quiet tenants did not wait behind the noisy one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla::ids::{JobId, Namespace, QueueName, TenantId};
use flotilla::job::{JobState, NewJob};
use flotilla::kinds::JobKind;
use flotilla::kinds::bench::{Bench, BenchJob, Failure};
use flotilla::queue::{FairQueue, QueueSettings};

use crate::bench::fleet::{WorkerProcess, WorkerSpec, worker_binary};
use crate::bench::stats::Percentiles;

/// Arguments of `flotilla-producer demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The flotilla-worker binary (default: next to this one).
    #[arg(long, env = "FLOTILLA_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
    /// Worker processes to start.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Concurrency of each worker.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Quiet tenants (each enqueues a few jobs).
    #[arg(long, default_value_t = 30)]
    pub tenants: usize,
    /// Jobs the noisy tenant enqueues, all at once, before everyone else.
    #[arg(long, default_value_t = 2_000)]
    pub noisy_jobs: usize,
}

/// Runs the demo until the workload drains or Ctrl-C.
/// The demo uses a namespace of its own on `redis_url`.
pub async fn run(redis_url: &str, args: DemoArgs) -> anyhow::Result<()> {
    let binary = worker_binary(args.worker_bin.as_deref())?;
    let (_, conn) = flotilla::redis_conn::connect(redis_url).await?;
    let namespace = Namespace::parse(&format!(
        "demo-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))?;
    let queue = FairQueue::new(
        conn,
        &namespace,
        QueueName::parse(Bench::QUEUE)?,
        QueueSettings::default(),
    );

    println!(
        "demo: namespace {namespace} on {}",
        flotilla::redis_conn::redact(redis_url)
    );
    // The workers' logs (JSON) would drown the live depth: they go to a file.
    let log = std::env::temp_dir().join(format!("flotilla-{namespace}-workers.log"));
    let spec = WorkerSpec {
        binary: &binary,
        redis_url,
        namespace: &namespace,
        concurrency: args.concurrency,
        log_file: Some(log.clone()),
        prefetch: None,
        env: Vec::new(),
    };
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        workers.push(
            WorkerProcess::start(&spec, &queue)
                .await
                .context("starting a worker")?,
        );
    }
    println!(
        "demo: {} workers up (concurrency {} each); their logs: {}",
        workers.len(),
        args.concurrency,
        log.display()
    );

    let tracked = enqueue_workload(&queue, &args).await?;
    println!(
        "demo: enqueued {} jobs: noisy tenant {} jobs first, then {} quiet tenants, and 3 jobs that fail on purpose",
        tracked.len(),
        args.noisy_jobs,
        args.tenants
    );

    let started = Instant::now();
    let interrupted = tokio::select! {
        r = watch_until_drained(&queue) => { r?; false }
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        println!("\ndemo: Ctrl-C: stopping the workers (they hand unfinished jobs back)");
    }
    for w in workers {
        w.stop().await?;
    }
    summarize(&queue, &tracked, started.elapsed()).await?;
    println!(
        "demo: inspect it with\n  flotilla-producer --namespace {namespace} queues\n  flotilla-producer --namespace {namespace} dlq list"
    );
    Ok(())
}

/// The demo's jobs, with the tenant each belongs to.
async fn enqueue_workload(
    queue: &FairQueue,
    args: &DemoArgs,
) -> anyhow::Result<Vec<(TenantId, JobId)>> {
    let attempts = Bench::retry_policy().max_attempts;
    let mut jobs: Vec<NewJob> = Vec::new();
    let noisy = TenantId::parse("noisy")?;
    let quick = serde_json::to_string(&BenchJob {
        sleep_ms: 25,
        ..BenchJob::default()
    })?;
    jobs.extend((0..args.noisy_jobs).map(|_| NewJob::new(noisy.clone(), quick.clone(), attempts)));
    for i in 0..args.tenants {
        let t = TenantId::parse(&format!("tenant-{i:02}"))?;
        for n in 0..10u64 {
            let job = BenchJob {
                sleep_ms: 20 + (n * 7 + i as u64 * 3) % 60,
                seq: Some(n),
                ..BenchJob::default()
            };
            jobs.push(NewJob::new(
                t.clone(),
                serde_json::to_string(&job)?,
                attempts,
            ));
        }
    }
    let failing = TenantId::parse("tenant-00")?;
    for fail in [Failure::Transient, Failure::Permanent, Failure::Panic] {
        let job = BenchJob {
            fail: Some(fail),
            ..BenchJob::default()
        };
        jobs.push(NewJob::new(
            failing.clone(),
            serde_json::to_string(&job)?,
            attempts,
        ));
    }
    let mut tracked = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(1_000) {
        let out = queue.enqueue_batch(chunk).await?;
        tracked.extend(
            chunk
                .iter()
                .zip(out)
                .map(|(j, e)| (j.tenant.clone(), e.id())),
        );
    }
    Ok(tracked)
}

/// Prints the depth twice a second until nothing is pending, scheduled or running.
async fn watch_until_drained(queue: &FairQueue) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let d = queue.depth().await?;
        println!(
            "  pending {:>5}  scheduled {:>3}  running {:>3}  done {:>5}  dead {:>2}  oldest pending {:>5} ms  tenants ready {:>3}",
            d.pending,
            d.scheduled,
            d.running,
            d.totals.completed,
            d.dead,
            d.oldest_pending_ms,
            d.tenants_ready
        );
        if d.pending + d.scheduled + d.running == 0 {
            return Ok(());
        }
    }
}

/// Per-tenant outcome and wait times.
async fn summarize(
    queue: &FairQueue,
    tracked: &[(TenantId, JobId)],
    elapsed: Duration,
) -> anyhow::Result<()> {
    #[derive(Default)]
    struct Row {
        done: usize,
        dead: usize,
        other: usize,
        waits: Vec<f64>,
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let ids: Vec<JobId> = tracked.iter().map(|(_, id)| *id).collect();
    for (chunk_ids, chunk) in ids.chunks(1_000).zip(tracked.chunks(1_000)) {
        for ((tenant, _), status) in chunk.iter().zip(queue.jobs(chunk_ids).await?) {
            let row = rows.entry(tenant.to_string()).or_default();
            match status {
                Some(s) if s.state == JobState::Done => {
                    row.done += 1;
                    if let Some(started) = s.started_at {
                        row.waits.push(started.saturating_sub(s.enqueued_at) as f64);
                    }
                }
                Some(s) if s.state == JobState::Dead => row.dead += 1,
                _ => row.other += 1,
            }
        }
    }
    println!("\ndemo: finished in {elapsed:.1?}");
    println!(
        "{:<12} {:>6} {:>5} {:>11} {:>13} {:>13}",
        "tenant", "done", "dead", "unfinished", "wait p50 ms", "wait p99 ms"
    );
    let mut quiet_waits = Vec::new();
    for (tenant, row) in &rows {
        if tenant != "noisy" {
            quiet_waits.extend(row.waits.iter().copied());
        }
        let p = Percentiles::of(row.waits.clone());
        println!(
            "{tenant:<12} {:>6} {:>5} {:>11} {:>13.0} {:>13.0}",
            row.done, row.dead, row.other, p.p50, p.p99
        );
    }
    let quiet = Percentiles::of(quiet_waits);
    let noisy = rows.get("noisy").map(|r| Percentiles::of(r.waits.clone()));
    println!(
        "quiet tenants together: wait p50 {:.0} ms, p99 {:.0} ms{}",
        quiet.p50,
        quiet.p99,
        noisy.map_or(String::new(), |n| format!(
            "; the noisy tenant's own backlog waited up to {:.0} ms",
            n.max
        ))
    );
    for s in queue.dead_jobs(None, 0, 10).await? {
        println!(
            "dead letter: job {} ({}): {}",
            s.id,
            s.tenant,
            s.last_error.unwrap_or_default()
        );
    }
    Ok(())
}
