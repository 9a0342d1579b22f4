//! `bench connect`: 10,000 users over 20 session hosts. The hosts are
//! simulators ([`flotilla::connect::sim`]) on loopback in this process,
//! real HTTP servers that verify each call's signature; the users' connect
//! jobs run on real `flotilla-worker` processes against a scratch database.
//!
//! - `connects_per_s`: users connected (host answered, row recorded) per
//!   second, from the enqueue of the first job to the last recorded.
//! - `load_max_over_min`: the most loaded host's users over the least
//!   loaded's after assignment (1.0 is a perfect balance).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use flotilla::connect::hosts::{self, Registration};
use flotilla::connect::sim::SimHost;
use flotilla::connect::users::{JobRequest, enqueue_many};
use flotilla::ids::{HostId, Namespace, Region, TenantId, UserId};
use flotilla::kinds::JobKind;
use flotilla::kinds::connect::{Connect, ConnectAction};
use flotilla::queue::FairQueue;
use serde::Serialize;
use sqlx::PgPool;

use super::candles::tenant;
use super::fleet::{WorkerProcess, WorkerSpec};
use super::scratch::Scratch;

/// Sizes and settings of the run.
pub struct ConnectBench {
    pub redis_url: String,
    pub database_url: String,
    pub worker_bin: std::path::PathBuf,
    pub concurrency: usize,
    pub workers: usize,
    pub users: usize,
    pub hosts: usize,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct Report {
    pub users: usize,
    pub hosts: usize,
    pub workers: usize,
    pub concurrency: usize,
    pub capacity_per_host: u32,
    pub elapsed_ms: f64,
    pub connects_per_s: f64,
    pub load_min: i64,
    pub load_max: i64,
    pub load_max_over_min: f64,
    /// Users the simulators hold (must equal `users`).
    pub held_by_hosts: usize,
    /// Calls a host refused for a bad signature (must be 0).
    pub bad_signatures: u64,
}

/// Tenants the users are spread over.
const TENANTS: usize = 10;

const SECRET_BYTES: usize = 32;

impl ConnectBench {
    /// Runs the benchmark and cleans up.
    pub async fn run(&self) -> anyhow::Result<Report> {
        ensure!(
            self.hosts > 0 && self.users > 0,
            "need at least one host and one user"
        );
        let scratch = Scratch::open(&self.database_url, &self.redis_url, "connect").await?;
        let queue = scratch.queue(Connect::QUEUE)?;
        let result = self
            .measure(&scratch.pool, &scratch.url, &scratch.namespace, &queue)
            .await;
        scratch.close().await?;
        result
    }

    async fn measure(
        &self,
        pool: &PgPool,
        url: &str,
        namespace: &Namespace,
        queue: &FairQueue,
    ) -> anyhow::Result<Report> {
        let secret = hex::encode(rand::random::<[u8; SECRET_BYTES]>());
        // Room for every user plus a fifth, as an operator would provision.
        let capacity = (self.users * 6 / 5).div_ceil(self.hosts).max(1) as u32;
        let timeout = Duration::from_secs(30);
        let mut sims = Vec::with_capacity(self.hosts);
        for i in 0..self.hosts {
            let sim = SimHost::start(Some(secret.clone())).await?;
            hosts::register(
                pool,
                &Registration {
                    id: HostId::parse(&format!("bench-host-{i:02}"))?,
                    endpoint: sim.endpoint(),
                    capacity,
                    region: Region::parse("bench")?,
                },
                timeout,
            )
            .await?;
            sims.push(sim);
        }
        let tenants = {
            let mut ids = Vec::with_capacity(TENANTS);
            for t in 0..TENANTS {
                ids.push(TenantId::parse(
                    &tenant(pool, &format!("connect-{t}")).await?,
                )?);
            }
            ids
        };
        let requests: Vec<JobRequest> = (0..self.users)
            .map(|u| {
                Ok((
                    tenants[u % TENANTS].clone(),
                    UserId::parse(&format!("user-{u}"))?,
                    ConnectAction::Connect,
                    None,
                    0,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        for t in &tenants {
            let users: Vec<String> = requests
                .iter()
                .filter(|r| &r.0 == t)
                .map(|r| r.1.to_string())
                .collect();
            sqlx::query(
                "INSERT INTO user_connections (tenant_id, user_id, want, state) \
                 SELECT $1, u, 'connected', 'assigning' FROM unnest($2::text[]) u",
            )
            .bind(t.as_str())
            .bind(&users)
            .execute(pool)
            .await?;
        }

        let spec = WorkerSpec {
            binary: &self.worker_bin,
            redis_url: &self.redis_url,
            namespace,
            concurrency: self.concurrency,
            log_file: None,
            prefetch: None,
            env: vec![
                ("QUEUES", Connect::QUEUE.into()),
                ("DATABASE_URL", url.into()),
                ("FLOTILLA_HOST_SECRET", secret.clone()),
            ],
        };
        let mut workers = Vec::with_capacity(self.workers);
        for _ in 0..self.workers {
            workers.push(WorkerProcess::start(&spec, queue).await?);
        }
        let started = Instant::now();
        enqueue_many(queue, &requests).await?;
        let waited = wait_connected(pool, self.users as i64, started).await;
        for worker in workers {
            worker.stop().await?;
        }
        let elapsed = waited?;

        let loads: Vec<i64> =
            sqlx::query_scalar("SELECT load::bigint FROM session_hosts ORDER BY id")
                .fetch_all(pool)
                .await?;
        let (min, max) = (
            loads.iter().copied().min().unwrap_or(0),
            loads.iter().copied().max().unwrap_or(0),
        );
        let held_by_hosts = sims.iter().map(SimHost::held).sum();
        let bad_signatures = sims.iter().map(SimHost::bad_signatures).sum();
        for sim in sims {
            sim.stop().await;
        }
        Ok(Report {
            users: self.users,
            hosts: self.hosts,
            workers: self.workers,
            concurrency: self.concurrency,
            capacity_per_host: capacity,
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
            connects_per_s: self.users as f64 / elapsed.as_secs_f64(),
            load_min: min,
            load_max: max,
            load_max_over_min: if min > 0 {
                max as f64 / min as f64
            } else {
                f64::INFINITY
            },
            held_by_hosts,
            bad_signatures,
        })
    }
}

/// Polls until `want` users are connected; the time since `started`.
async fn wait_connected(pool: &PgPool, want: i64, started: Instant) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(600);
    let mut last = (0, Instant::now());
    loop {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM user_connections WHERE state = 'connected'")
                .fetch_one(pool)
                .await
                .context("counting connected users")?;
        if n >= want {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("only {n} of {want} users connected after 10 minutes; see the worker log above");
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            bail!("stuck at {n} of {want} users connected for a minute; see the worker log above");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prints the figures.
pub fn print_table(r: &Report) {
    println!(
        "user connect ({} worker(s) x {} jobs at once, {} hosts of capacity {})",
        r.workers, r.concurrency, r.hosts, r.capacity_per_host
    );
    println!(
        "  {} users connected in {:.0} ms: {:.0} connects/s",
        r.users, r.elapsed_ms, r.connects_per_s
    );
    println!(
        "  host load after assignment: min {} max {} (max/min {:.3}); hosts hold {} users; bad signatures {}",
        r.load_min, r.load_max, r.load_max_over_min, r.held_by_hosts, r.bad_signatures
    );
}
