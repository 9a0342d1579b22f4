//! `bench queue`: the fair queue's speed, fairness, latency and memory,
//! measured side by side in one run against the Redis in `REDIS_URL`.
//!
//! Every scenario runs in a namespace of its own (deleted afterwards), with
//! real `flotilla-worker` processes on the `bench` queue. Waits and pickup
//! latencies come from the jobs' own timestamps, taken from the Redis clock,
//! so producer and worker clocks never mix.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use flotilla::ids::{JobId, Namespace, QueueName, TenantId};
use flotilla::job::{JobState, NewJob};
use flotilla::kinds::JobKind;
use flotilla::kinds::bench::{Bench, BenchJob};
use flotilla::queue::tenants::TenantPolicy;
use flotilla::queue::{FairQueue, QueueSettings};
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::apalis_baseline::{ApalisBaseline, ApalisResult};
use super::fleet::{WorkerProcess, WorkerSpec};
use super::server::{self, Spent};
use super::stats::{Percentiles, median, ratio};

/// `WORKER_PREFETCH` for the no-op throughput runs: with concurrency 16 a
/// claim takes up to 64 jobs, comparable to apalis-redis' `batch_size` 50.
const THROUGHPUT_PREFETCH: usize = 48;

/// Sizes of the `bench queue` scenarios. The defaults are the issue's; a
/// smaller `--scale` makes a quick smoke run.
#[derive(Debug, Clone)]
pub struct QueueBench {
    /// Redis.
    pub redis_url: String,
    /// `flotilla-worker`.
    pub worker_bin: PathBuf,
    /// Jobs pre-filled for the throughput runs.
    pub jobs: usize,
    /// Worker concurrency.
    pub concurrency: usize,
    /// The noisy tenant's backlog.
    pub noisy_jobs: usize,
    /// Quiet tenants, and jobs each.
    pub quiet_tenants: usize,
    /// Jobs per quiet tenant.
    pub quiet_jobs: usize,
    /// Jobs per saturated tenant in the weights run.
    pub share_jobs: usize,
    /// Steady enqueue rate for pickup latency.
    pub pickup_rate: u32,
    /// How long the steady rate is held.
    pub pickup_duration: Duration,
    /// Skip the apalis-redis baseline.
    pub skip_apalis: bool,
    /// Throughput rounds (medians are reported).
    pub rounds: usize,
}

/// Everything `bench queue` measured; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct QueueReport {
    /// No-op throughput of Flotilla and apalis-redis.
    pub throughput: Throughput,
    /// Quiet tenants behind a noisy one, and weighted shares.
    pub fairness: Fairness,
    /// Enqueue-to-start latency at a steady rate.
    pub pickup: Pickup,
    /// Worker memory.
    pub rss: Rss,
}

/// No-op throughput, one worker process each.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Jobs pre-filled.
    pub jobs: usize,
    /// Worker concurrency.
    pub concurrency: usize,
    /// Throughput rounds; the rates below are the medians over them.
    pub rounds: usize,
    /// Flotilla, one tenant (a single FIFO, like apalis-redis), from
    /// spawning the worker process to the last ack; `WORKER_PREFETCH` 48.
    pub flotilla_jobs_per_s: f64,
    /// Flotilla, the same jobs spread over 16 tenants (fair scheduling at work).
    pub flotilla_16_tenants_jobs_per_s: f64,
    /// apalis-redis 1.0 at batch_size 50, 10 ms poll, lock_tasks off.
    pub apalis_redis_jobs_per_s: Option<f64>,
    /// Flotilla / apalis-redis (of the medians).
    pub ratio: Option<f64>,
    /// Flotilla's rate in each round, in order.
    pub flotilla_rounds_jobs_per_s: Vec<f64>,
    /// apalis-redis' rate in each round, in order.
    pub apalis_redis_rounds_jobs_per_s: Vec<f64>,
    /// What the Redis server spent per job in the one-tenant runs.
    pub redis_cost: RedisCost,
}

/// Redis' own cost per job (medians over the rounds): the server is what
/// every queue on it shares, and its CPU time per job is steadier than
/// wall-clock rates on a busy machine.
#[derive(Debug, Serialize)]
pub struct RedisCost {
    /// Redis CPU time per Flotilla job (µs).
    pub flotilla_cpu_us_per_job: f64,
    /// Redis CPU time per apalis-redis job (µs).
    pub apalis_redis_cpu_us_per_job: Option<f64>,
    /// apalis-redis' CPU per job / Flotilla's: how many times more jobs the
    /// same Redis serves with Flotilla.
    pub cpu_ratio: Option<f64>,
    /// Bytes appended to the append-only file per Flotilla job (`None`: no
    /// append-only file, or Redis rewrote it mid-run).
    pub flotilla_aof_bytes_per_job: Option<f64>,
    /// The same for apalis-redis.
    pub apalis_redis_aof_bytes_per_job: Option<f64>,
}

impl RedisCost {
    fn of(jobs: usize, flotilla: &[Spent], apalis: &[Spent]) -> Self {
        let jobs = jobs.max(1) as f64;
        // The median over the runs that have the figure, per job.
        let per_job = |runs: &[Spent], figure: fn(&Spent) -> Option<f64>| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|s| Some(figure(s)? / jobs))
                .collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let cpu = |runs: &[Spent]| per_job(runs, |s| Some(s.cpu.as_secs_f64() * 1e6));
        let aof = |runs: &[Spent]| per_job(runs, |s| s.aof_bytes.map(|b| b as f64));
        let flotilla_cpu = cpu(flotilla).unwrap_or(0.0);
        let apalis_cpu = cpu(apalis);
        Self {
            flotilla_cpu_us_per_job: flotilla_cpu,
            apalis_redis_cpu_us_per_job: apalis_cpu,
            cpu_ratio: apalis_cpu.map(|a| ratio(a, flotilla_cpu)),
            flotilla_aof_bytes_per_job: aof(flotilla),
            apalis_redis_aof_bytes_per_job: aof(apalis),
        }
    }
}

/// One Flotilla throughput run.
struct ThroughputRun {
    /// Jobs per second, from spawning the worker to the last ack.
    rate: f64,
    /// The worker's highest resident memory during the run (MiB).
    load_mb: Option<f64>,
    /// What Redis spent on the run.
    server: Spent,
}

/// Fairness figures.
#[derive(Debug, Serialize)]
pub struct Fairness {
    /// Quiet tenants' wait p50 with the noisy backlog queued first (ms).
    pub quiet_p50_ms_loaded: f64,
    /// ...p99 (ms).
    pub quiet_p99_ms_loaded: f64,
    /// Quiet tenants' wait p50 on their own (ms).
    pub quiet_p50_ms_unloaded: f64,
    /// ...p99 (ms).
    pub quiet_p99_ms_unloaded: f64,
    /// loaded p99 / unloaded p99 (target ≤ 1.5).
    pub quiet_p99_ratio: f64,
    /// Weight → share of claims among three saturated tenants.
    pub shares: BTreeMap<String, f64>,
    /// Largest relative gap between a share and its weight's fair share (%).
    pub shares_max_error_pct: f64,
}

/// Pickup latency.
#[derive(Debug, Serialize)]
pub struct Pickup {
    /// Offered rate (jobs/s).
    pub rate_per_s: u32,
    /// Jobs measured.
    pub jobs: usize,
    /// Enqueue to handler start, p50 (ms, Redis clock, 1 ms resolution).
    pub p50_ms: f64,
    /// ...p99.
    pub p99_ms: f64,
    /// ...max.
    pub max_ms: f64,
}

/// Worker resident memory.
#[derive(Debug, Serialize)]
pub struct Rss {
    /// Registered and idle (MiB).
    pub idle_mb: Option<f64>,
    /// Highest sample during the throughput run (MiB).
    pub load_mb: Option<f64>,
}

/// A namespace for one scenario, its queue, and cleanup.
struct Scenario {
    namespace: Namespace,
    queue: FairQueue,
    conn: ConnectionManager,
}

impl Scenario {
    async fn new(conn: &ConnectionManager) -> anyhow::Result<Self> {
        let namespace = Namespace::parse(&format!(
            "bench-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ))?;
        let queue = FairQueue::new(
            conn.clone(),
            &namespace,
            QueueName::parse(Bench::QUEUE)?,
            QueueSettings::default(),
        );
        Ok(Scenario {
            namespace,
            queue,
            conn: conn.clone(),
        })
    }

    /// Deletes every key of the scenario's namespace.
    async fn cleanup(mut self) -> anyhow::Result<()> {
        let pattern = format!("{}*", self.queue.keys().prefix());
        super::unlink_matching(&mut self.conn, &pattern, |_| true).await
    }

    /// Enqueues `n` jobs per tenant, round robin, in batches.
    async fn fill(
        &self,
        tenants: &[TenantId],
        per_tenant: usize,
        job: &BenchJob,
    ) -> anyhow::Result<Vec<JobId>> {
        let payload = serde_json::to_string(job)?;
        let attempts = Bench::retry_policy().max_attempts;
        let all: Vec<NewJob> = (0..per_tenant)
            .flat_map(|_| {
                tenants
                    .iter()
                    .map(|t| NewJob::new(t.clone(), payload.clone(), attempts))
            })
            .collect();
        let mut ids = Vec::with_capacity(all.len());
        for chunk in all.chunks(2_000) {
            ids.extend(
                self.queue
                    .enqueue_batch(chunk)
                    .await?
                    .iter()
                    .map(|e| e.id()),
            );
        }
        Ok(ids)
    }

    async fn completed(&self) -> anyhow::Result<u64> {
        let mut conn = self.conn.clone();
        let n: Option<u64> = redis::cmd("HGET")
            .arg(self.queue.keys().meta())
            .arg("completed")
            .query_async(&mut conn)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// From the first claim to the last job recorded done, read from the
    /// jobs' own records (lease start, finish time; Redis clock, ms): the
    /// queue's throughput without the worker process's spawn and start-up,
    /// which an in-process baseline does not pay.
    async fn claim_to_settle(&self) -> anyhow::Result<Duration> {
        let mut conn = self.conn.clone();
        let keys = self.queue.keys();
        let leases: Vec<String> = redis::cmd("HVALS")
            .arg(keys.job_field("lease"))
            .query_async(&mut conn)
            .await?;
        let finished: Vec<u64> = redis::cmd("HVALS")
            .arg(keys.job_field("finished_at"))
            .query_async(&mut conn)
            .await?;
        // A lease is `<token>:<started_at>:<worker>`.
        let first = leases
            .iter()
            .filter_map(|l| l.split(':').nth(1)?.parse::<u64>().ok())
            .min()
            .context("no job was claimed")?;
        let last = finished.into_iter().max().context("no job finished")?;
        Ok(Duration::from_millis(last.saturating_sub(first).max(1)))
    }

    /// Waits until `target` jobs are done, or fails after `limit`.
    async fn wait_completed(
        &self,
        target: u64,
        limit: Duration,
        mut tick: impl FnMut(),
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if self.completed().await? >= target {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {target} jobs finished within {limit:?}",
                    self.completed().await?
                );
            }
            tick();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Enqueue-to-start waits (ms) of finished jobs.
    async fn waits_ms(&self, ids: &[JobId]) -> anyhow::Result<Vec<f64>> {
        let mut waits = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(2_000) {
            for status in self.queue.jobs(chunk).await?.into_iter().flatten() {
                if status.state == JobState::Done
                    && let Some(started) = status.started_at
                {
                    waits.push(started.saturating_sub(status.enqueued_at) as f64);
                }
            }
        }
        if waits.len() != ids.len() {
            bail!(
                "{} of {} jobs finished; expected all",
                waits.len(),
                ids.len()
            );
        }
        Ok(waits)
    }
}

fn tenants(prefix: &str, n: usize) -> anyhow::Result<Vec<TenantId>> {
    (0..n)
        .map(|i| TenantId::parse(&format!("{prefix}-{i}")).map_err(Into::into))
        .collect()
}

impl QueueBench {
    fn spec<'a>(&'a self, namespace: &'a Namespace) -> WorkerSpec<'a> {
        WorkerSpec {
            binary: &self.worker_bin,
            redis_url: &self.redis_url,
            namespace,
            concurrency: self.concurrency,
            log_file: None,
            prefetch: None,
            env: Vec::new(),
        }
    }

    /// Runs every scenario, reporting progress on stderr.
    pub async fn run(&self) -> anyhow::Result<QueueReport> {
        let (_, conn) = flotilla::redis_conn::connect(&self.redis_url).await?;

        let idle_mb = self
            .idle_rss_mb(&conn)
            .await
            .context("idle worker memory")?;
        // Flotilla and apalis-redis take turns, so a slow spell on the
        // machine lands on both sides of the ratio rather than on one.
        let mut flotilla_runs: Vec<ThroughputRun> = Vec::new();
        let mut apalis_runs: Vec<ApalisResult> = Vec::new();
        for round in 1..=self.rounds {
            eprintln!(
                "bench queue: throughput round {round}/{}, {} no-op jobs, concurrency {}",
                self.rounds, self.jobs, self.concurrency
            );
            flotilla_runs.push(
                self.flotilla_throughput(&conn, 1)
                    .await
                    .context("flotilla throughput")?,
            );
            if !self.skip_apalis {
                apalis_runs.push(self.apalis_throughput().await?);
            }
        }
        let sixteen = self
            .flotilla_throughput(&conn, 16)
            .await
            .context("flotilla throughput, 16 tenants")?;
        let flotilla_rounds: Vec<f64> = flotilla_runs.iter().map(|r| r.rate).collect();
        let apalis_rounds: Vec<f64> = apalis_runs.iter().map(|r| r.jobs_per_s).collect();
        let flotilla_rate = median(&flotilla_rounds);
        let apalis_rate = (!apalis_rounds.is_empty()).then(|| median(&apalis_rounds));
        let redis_cost = RedisCost::of(
            self.jobs,
            &flotilla_runs.iter().map(|r| r.server).collect::<Vec<_>>(),
            &apalis_runs.iter().map(|r| r.server).collect::<Vec<_>>(),
        );
        let rss = Rss {
            idle_mb,
            load_mb: flotilla_runs
                .first()
                .context("no throughput round ran")?
                .load_mb,
        };

        eprintln!(
            "bench queue: fairness, {} quiet tenants x {} jobs behind {} noisy jobs",
            self.quiet_tenants, self.quiet_jobs, self.noisy_jobs
        );
        let unloaded = self
            .quiet_waits(&conn, false)
            .await
            .context("fairness, unloaded")?;
        let loaded = self
            .quiet_waits(&conn, true)
            .await
            .context("fairness, loaded")?;
        eprintln!("bench queue: shares of three saturated tenants with weights 1:2:4");
        let shares = self.shares(&conn).await.context("weighted shares")?;
        let shares_max_error_pct = shares
            .iter()
            .map(|(w, share)| {
                let fair = w.parse::<f64>().unwrap_or(0.0) / 7.0;
                (share - fair).abs() / fair * 100.0
            })
            .fold(0.0, f64::max);

        eprintln!(
            "bench queue: pickup latency at {} jobs/s for {:?}",
            self.pickup_rate, self.pickup_duration
        );
        let pickup = self.pickup(&conn).await.context("pickup latency")?;

        Ok(QueueReport {
            throughput: Throughput {
                jobs: self.jobs,
                concurrency: self.concurrency,
                rounds: self.rounds,
                flotilla_jobs_per_s: flotilla_rate,
                flotilla_16_tenants_jobs_per_s: sixteen.rate,
                apalis_redis_jobs_per_s: apalis_rate,
                ratio: apalis_rate.map(|a| ratio(flotilla_rate, a)),
                flotilla_rounds_jobs_per_s: flotilla_rounds,
                apalis_redis_rounds_jobs_per_s: apalis_rounds,
                redis_cost,
            },
            fairness: Fairness {
                quiet_p50_ms_loaded: loaded.p50,
                quiet_p99_ms_loaded: loaded.p99,
                quiet_p50_ms_unloaded: unloaded.p50,
                quiet_p99_ms_unloaded: unloaded.p99,
                quiet_p99_ratio: ratio(loaded.p99, unloaded.p99),
                shares,
                shares_max_error_pct,
            },
            pickup,
            rss,
        })
    }

    /// One apalis-redis run on the same Redis, at its best settings.
    async fn apalis_throughput(&self) -> anyhow::Result<ApalisResult> {
        let baseline = ApalisBaseline {
            jobs: self.jobs,
            concurrency: self.concurrency,
            ..ApalisBaseline::default()
        };
        let queue = format!("flotilla-bench-apalis-{}", std::process::id());
        let result = baseline
            .run(&self.redis_url, &queue)
            .await
            .context("apalis-redis throughput")?;
        eprintln!(
            "bench queue: apalis-redis ran {} jobs in {:.2?}",
            self.jobs, result.elapsed
        );
        Ok(result)
    }

    /// A worker's resident memory once registered and idle, on an empty queue.
    async fn idle_rss_mb(&self, conn: &ConnectionManager) -> anyhow::Result<Option<f64>> {
        let s = Scenario::new(conn).await?;
        let result = async {
            let worker = WorkerProcess::start(&self.spec(&s.namespace), &s.queue).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let idle_mb = worker.rss_mb();
            worker.stop().await?;
            anyhow::Ok(idle_mb)
        }
        .await;
        s.cleanup().await?;
        result
    }

    /// Pre-fills no-op jobs over `tenant_count` tenants, then times one worker
    /// process from its spawn to the last ack; samples its memory meanwhile.
    async fn flotilla_throughput(
        &self,
        conn: &ConnectionManager,
        tenant_count: usize,
    ) -> anyhow::Result<ThroughputRun> {
        let s = Scenario::new(conn).await?;
        let result = async {
            let per_tenant = self.jobs.div_ceil(tenant_count);
            s.fill(&tenants("tenant", tenant_count)?, per_tenant, &BenchJob::default()).await?;
            let total = per_tenant * tenant_count;
            let mark = server::settle(conn).await?;
            let started = Instant::now();
            // Claims of up to 64 jobs, like apalis-redis' batch of 50: the
            // same batching for both (the default prefetch suits long jobs).
            let spec = WorkerSpec { prefetch: Some(THROUGHPUT_PREFETCH), ..self.spec(&s.namespace) };
            let worker = WorkerProcess::start(&spec, &s.queue).await?;
            let mut load_mb: Option<f64> = None;
            let finished = s
                .wait_completed(total as u64, Duration::from_secs(300), || {
                    if let Some(mb) = worker.rss_mb() {
                        load_mb = Some(load_mb.map_or(mb, |m: f64| m.max(mb)));
                    }
                })
                .await?;
            // A small run can finish before the first poll samples memory;
            // the worker after the run still holds what the run grew to.
            if let Some(mb) = worker.rss_mb() {
                load_mb = Some(load_mb.map_or(mb, |m: f64| m.max(mb)));
            }
            worker.stop().await?;
            let spent = server::spent_since(conn, mark).await?;
            let elapsed = finished.duration_since(started);
            let inner = s.claim_to_settle().await?;
            eprintln!("bench queue: flotilla ran {total} jobs of {tenant_count} tenant(s) in {elapsed:.2?} (first claim to last settle {inner:.2?})");
            anyhow::Ok(ThroughputRun {
                rate: total as f64 / elapsed.as_secs_f64(),
                load_mb,
                server: spent,
            })
        }
        .await;
        s.cleanup().await?;
        result
    }

    /// Quiet tenants' waits, with or without a noisy tenant's backlog queued first.
    async fn quiet_waits(
        &self,
        conn: &ConnectionManager,
        noisy: bool,
    ) -> anyhow::Result<Percentiles> {
        let s = Scenario::new(conn).await?;
        let result = async {
            server::settle(conn).await?;
            let worker = WorkerProcess::start(&self.spec(&s.namespace), &s.queue).await?;
            let one_ms = BenchJob {
                sleep_ms: 1,
                ..BenchJob::default()
            };
            if noisy {
                s.fill(&tenants("noisy", 1)?, self.noisy_jobs, &one_ms)
                    .await?;
            }
            let quiet = s
                .fill(
                    &tenants("quiet", self.quiet_tenants)?,
                    self.quiet_jobs,
                    &one_ms,
                )
                .await?;
            // Done when every quiet job is; the noisy backlog may still be running.
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let statuses = s.queue.jobs(&quiet).await?;
                if statuses.iter().flatten().all(|j| j.state == JobState::Done) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("quiet jobs did not finish within 300 s");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            worker.stop().await?;
            Ok(Percentiles::of(s.waits_ms(&quiet).await?))
        }
        .await;
        s.cleanup().await?;
        result
    }

    /// Three saturated tenants with weights 1, 2 and 4: their shares of the
    /// first jobs claimed.
    async fn shares(&self, conn: &ConnectionManager) -> anyhow::Result<BTreeMap<String, f64>> {
        let s = Scenario::new(conn).await?;
        let result = async {
            let weighted: Vec<(TenantId, f64)> = vec![
                (TenantId::parse("weight-1")?, 1.0),
                (TenantId::parse("weight-2")?, 2.0),
                (TenantId::parse("weight-4")?, 4.0),
            ];
            let one_ms = BenchJob {
                sleep_ms: 1,
                ..BenchJob::default()
            };
            for (t, w) in &weighted {
                s.queue
                    .set_tenant_policy(t, TenantPolicy { weight: *w, cap: 0 })
                    .await?;
                s.fill(std::slice::from_ref(t), self.share_jobs, &one_ms)
                    .await?;
            }
            let worker = WorkerProcess::start(&self.spec(&s.namespace), &s.queue).await?;
            // Measure while all three still have work: the heaviest gets 4/7 of
            // the claims, so stop well before it could run dry.
            let target = (self.share_jobs * 3 / 4) as u64;
            s.wait_completed(target, Duration::from_secs(300), || {})
                .await?;
            let mut conn = s.conn.clone();
            let mut pipe = redis::pipe();
            for (t, _) in &weighted {
                pipe.llen(s.queue.keys().tenant_queue(t));
            }
            let left: Vec<usize> = pipe.query_async(&mut conn).await?;
            worker.stop().await?;
            let claimed: Vec<f64> = left.iter().map(|l| (self.share_jobs - l) as f64).collect();
            let sum: f64 = claimed.iter().sum();
            Ok(weighted
                .iter()
                .zip(claimed)
                .map(|((_, w), c)| (format!("{w}"), c / sum))
                .collect())
        }
        .await;
        s.cleanup().await?;
        result
    }

    /// Enqueues one no-op job at a time at a steady rate to an idle worker.
    async fn pickup(&self, conn: &ConnectionManager) -> anyhow::Result<Pickup> {
        let s = Scenario::new(conn).await?;
        let result = async {
            let worker = WorkerProcess::start(&self.spec(&s.namespace), &s.queue).await?;
            let tenants = tenants("steady", 10)?;
            let payload = serde_json::to_string(&BenchJob::default())?;
            let total = (f64::from(self.pickup_rate) * self.pickup_duration.as_secs_f64()) as usize;
            let mut ticker =
                tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(self.pickup_rate)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ids = Vec::with_capacity(total);
            // A fork for an append-only-file rewrite, or the previous
            // scenario's keys being freed, would show up as latency here.
            server::settle(conn).await?;
            for i in 0..total {
                ticker.tick().await;
                let job = NewJob::new(tenants[i % tenants.len()].clone(), payload.clone(), 1);
                ids.push(s.queue.enqueue(job).await?.id());
            }
            s.wait_completed(total as u64, Duration::from_secs(60), || {})
                .await?;
            worker.stop().await?;
            let p = Percentiles::of(s.waits_ms(&ids).await?);
            Ok(Pickup {
                rate_per_s: self.pickup_rate,
                jobs: total,
                p50_ms: p.p50,
                p99_ms: p.p99,
                max_ms: p.max,
            })
        }
        .await;
        s.cleanup().await?;
        result
    }
}

/// Prints the report as a table, with each target next to its figure.
pub fn print_table(r: &QueueReport) {
    let t = &r.throughput;
    let f = &r.fairness;
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.1}{unit}"));
    println!("{:<56} {:>14}   target", "flotilla bench queue", "measured");
    println!("{}", "-".repeat(90));
    println!(
        "{:<56} {:>14.0}",
        format!(
            "throughput, flotilla (jobs/s, {} jobs, c={}, prefetch {THROUGHPUT_PREFETCH})",
            t.jobs, t.concurrency
        ),
        t.flotilla_jobs_per_s
    );
    println!(
        "{:<56} {:>14.0}",
        "throughput, flotilla over 16 tenants (jobs/s)", t.flotilla_16_tenants_jobs_per_s
    );
    println!(
        "{:<56} {:>14}",
        "throughput, apalis-redis 1.0 (batch 50, 10 ms poll)",
        opt(t.apalis_redis_jobs_per_s, "")
    );
    println!(
        "{:<56} {:>14}   >= 1.5x",
        format!(
            "throughput ratio flotilla / apalis-redis (median of {})",
            t.rounds
        ),
        opt(t.ratio, "x")
    );
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  rounds, flotilla (jobs/s): {}",
        rounds(&t.flotilla_rounds_jobs_per_s)
    );
    if !t.apalis_redis_rounds_jobs_per_s.is_empty() {
        println!(
            "  rounds, apalis-redis (jobs/s): {}",
            rounds(&t.apalis_redis_rounds_jobs_per_s)
        );
    }
    let c = &t.redis_cost;
    for (label, value, unit) in [
        (
            "Redis CPU per job, flotilla (µs)",
            Some(c.flotilla_cpu_us_per_job),
            "",
        ),
        (
            "Redis CPU per job, apalis-redis (µs)",
            c.apalis_redis_cpu_us_per_job,
            "",
        ),
        ("Redis CPU ratio apalis-redis / flotilla", c.cpu_ratio, "x"),
        (
            "append-only file written per job, flotilla (bytes)",
            c.flotilla_aof_bytes_per_job,
            "",
        ),
        (
            "append-only file written per job, apalis-redis (bytes)",
            c.apalis_redis_aof_bytes_per_job,
            "",
        ),
    ] {
        println!("{label:<56} {:>14}", opt(value, unit));
    }
    println!(
        "{:<56} {:>14.1}",
        "quiet tenants' wait p50, unloaded (ms)", f.quiet_p50_ms_unloaded
    );
    println!(
        "{:<56} {:>14.1}",
        "quiet tenants' wait p99, unloaded (ms)", f.quiet_p99_ms_unloaded
    );
    println!(
        "{:<56} {:>14.1}",
        "quiet tenants' wait p50, noisy backlog (ms)", f.quiet_p50_ms_loaded
    );
    println!(
        "{:<56} {:>14.1}",
        "quiet tenants' wait p99, noisy backlog (ms)", f.quiet_p99_ms_loaded
    );
    println!(
        "{:<56} {:>14.2}   <= 1.5x",
        "quiet p99 ratio loaded / unloaded", f.quiet_p99_ratio
    );
    for (w, share) in &f.shares {
        let fair = w.parse::<f64>().unwrap_or(0.0) / 7.0;
        println!(
            "{:<56} {:>14.3}   {fair:.3}",
            format!("share of weight-{w} tenant"),
            share
        );
    }
    println!(
        "{:<56} {:>14.1}   <= 10 %",
        "largest share error (%)", f.shares_max_error_pct
    );
    println!(
        "{:<56} {:>14.1}",
        format!("pickup p50 at {}/s (ms)", r.pickup.rate_per_s),
        r.pickup.p50_ms
    );
    println!(
        "{:<56} {:>14.1}   <= 5 ms",
        format!("pickup p99 at {}/s (ms)", r.pickup.rate_per_s),
        r.pickup.p99_ms
    );
    println!(
        "{:<56} {:>14}   < 30 MB",
        "worker RSS idle (MiB)",
        opt(r.rss.idle_mb, "")
    );
    println!(
        "{:<56} {:>14}",
        "worker RSS under load (MiB)",
        opt(r.rss.load_mb, "")
    );
}
