//! `bench provisioning`: how long a tenant takes from its create request to
//! active, per tier, one tenant at a time and 100 at once, through the real
//! path (the lifecycle writes the row and enqueues; `flotilla-worker`
//! processes run the job). Each tenant's time is measured by PostgreSQL
//! (`activated_at - created_at`), so polling adds nothing to it.
//!
//! The run uses a database of its own on the server (created, migrated,
//! dropped with every tenant schema and role it made) and a namespace of
//! its own in Redis.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use flotilla::ids::{Namespace, QueueName};
use flotilla::kinds::JobKind as _;
use flotilla::kinds::provisioning::Provisioning;
use flotilla::queue::FairQueue;
use flotilla::tenancy::keys::TenantKeys;
use flotilla::tenancy::lifecycle::Lifecycle;
use flotilla::tenancy::store::NewTenant;
use flotilla::tenancy::{Slug, TenantName, Tier};
use serde::Serialize;
use sqlx::PgPool;

use super::fleet::{WorkerProcess, WorkerSpec};
use super::stats::Percentiles;

/// What the benchmark needs.
pub struct ProvisioningBench {
    /// Redis.
    pub redis_url: String,
    /// The PostgreSQL server (its database is only used to create the run's own).
    pub database_url: String,
    /// The worker binary.
    pub worker_bin: std::path::PathBuf,
    /// Tenants per tier one by one, and tenants at once.
    pub tenants: usize,
    /// Worker processes.
    pub workers: usize,
    /// Concurrency of each.
    pub concurrency: usize,
}

/// p50 and p99 in milliseconds.
#[derive(Debug, Serialize)]
pub struct Timing {
    /// Tenants measured.
    pub tenants: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Timing {
    fn of(ms: Vec<f64>) -> Self {
        let tenants = ms.len();
        let p = Percentiles::of(ms);
        Timing {
            tenants,
            p50_ms: round(p.p50),
            p99_ms: round(p.p99),
            max_ms: round(p.max),
        }
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Per-tier timings, one tenant at a time.
#[derive(Debug, Serialize)]
pub struct PerTier {
    starter: Timing,
    pro: Timing,
    enterprise: Timing,
}

/// The report (`--json` prints it).
#[derive(Debug, Serialize)]
pub struct Report {
    /// One tenant at a time, per tier.
    pub per_tier: PerTier,
    /// `tenants` at once, tiers mixed evenly.
    pub concurrent_100: Timing,
    /// The same batch, per tier.
    pub concurrent_per_tier: PerTier,
    /// Worker processes × concurrency.
    pub workers: String,
    /// Wall time of the concurrent batch (s).
    pub concurrent_wall_s: f64,
}

impl ProvisioningBench {
    /// Runs both scenarios.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let (db, db_name) = scratch_database(&self.database_url).await?;
        let result = self.measure(&db, &db_name).await;
        drop_scratch(&self.database_url, db, &db_name).await;
        result
    }

    async fn measure(&self, db: &PgPool, db_name: &str) -> anyhow::Result<Report> {
        let ns = Namespace::parse(&format!("bench-prov-{}", &db_name[6..18]))?;
        let (_, conn) = flotilla::redis_conn::connect(&self.redis_url).await?;
        let queue = FairQueue::new(
            conn.clone(),
            &ns,
            QueueName::parse(Provisioning::QUEUE)?,
            Default::default(),
        );
        let lifecycle = Lifecycle::new(
            db.clone(),
            queue.clone(),
            TenantKeys::new(&ns),
            Duration::from_secs(86_400),
        );
        let url = database_url_for(&self.database_url, db_name);
        let spec = WorkerSpec {
            binary: &self.worker_bin,
            redis_url: &self.redis_url,
            namespace: &ns,
            concurrency: self.concurrency,
            log_file: None,
            prefetch: Some(0),
            env: vec![("QUEUES", "provisioning".into()), ("DATABASE_URL", url)],
        };
        let mut workers = Vec::new();
        for _ in 0..self.workers {
            workers.push(WorkerProcess::start(&spec, &queue).await?);
        }
        let outcome = async {
            let mut per_tier = Vec::new();
            for tier in Tier::ALL {
                eprintln!(
                    "provisioning {} {tier} tenants one by one ...",
                    self.tenants
                );
                let mut times = Vec::new();
                for i in 0..self.tenants {
                    let id = create(&lifecycle, &format!("seq-{tier}-{i}"), tier).await?;
                    times.push(wait_active(db, &[id]).await?[0]);
                }
                per_tier.push(Timing::of(times));
            }
            eprintln!("provisioning {} tenants at once ...", self.tenants);
            let started = Instant::now();
            let creates = (0..self.tenants).map(|i| {
                let tier = Tier::ALL[i % 3];
                let lifecycle = lifecycle.clone();
                async move { create(&lifecycle, &format!("burst-{i}"), tier).await }
            });
            let ids = futures::future::try_join_all(creates).await?;
            let times = wait_active(db, &ids).await?;
            let batch_tier = |tier: Tier| {
                Timing::of(
                    times
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| Tier::ALL[i % 3] == tier)
                        .map(|(_, ms)| *ms)
                        .collect(),
                )
            };
            let concurrent_per_tier = PerTier {
                starter: batch_tier(Tier::Starter),
                pro: batch_tier(Tier::Pro),
                enterprise: batch_tier(Tier::Enterprise),
            };
            let wall = started.elapsed().as_secs_f64();
            let mut per_tier = per_tier.into_iter();
            Ok::<_, anyhow::Error>(Report {
                per_tier: PerTier {
                    starter: per_tier.next().expect("three tiers"),
                    pro: per_tier.next().expect("three tiers"),
                    enterprise: per_tier.next().expect("three tiers"),
                },
                concurrent_100: Timing::of(times),
                concurrent_per_tier,
                workers: format!("{} × {}", self.workers, self.concurrency),
                concurrent_wall_s: round(wall),
            })
        }
        .await;
        for w in workers {
            w.stop().await?;
        }
        let mut conn = conn;
        super::unlink_matching(&mut conn, &format!("*{}*", ns.as_str()), |_| true).await?;
        outcome
    }
}

async fn create(lifecycle: &Lifecycle, slug: &str, tier: Tier) -> anyhow::Result<String> {
    let requested = lifecycle
        .create(&NewTenant {
            slug: Slug::parse(slug)?,
            name: TenantName::parse(slug)?,
            tier,
            overrides: Default::default(),
        })
        .await?;
    Ok(requested.tenant.id)
}

/// Waits until every tenant in `ids` is active; their times in ms.
async fn wait_active(db: &PgPool, ids: &[String]) -> anyhow::Result<Vec<f64>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // In the order of `ids`, so callers can match times to tenants.
        let rows: Vec<(String, Option<f64>)> = sqlx::query_as(
            "SELECT t.status::text, extract(epoch FROM (t.activated_at - t.created_at))::float8 * 1000
               FROM unnest($1::text[]) WITH ORDINALITY AS i (id, n)
               JOIN tenants t ON t.id = i.id ORDER BY i.n",
        )
        .bind(ids)
        .fetch_all(db)
        .await?;
        if let Some((status, _)) = rows.iter().find(|(s, _)| s == "failed") {
            bail!("a tenant's provisioning {status}; see the worker log above");
        }
        if rows.len() == ids.len() && rows.iter().all(|(s, _)| s == "active") {
            return Ok(rows.into_iter().filter_map(|(_, ms)| ms).collect());
        }
        if Instant::now() > deadline {
            bail!("tenants not active within 120 s: are the workers running?");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn database_url_for(server: &str, name: &str) -> String {
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    format!("{base}/{name}")
}

async fn scratch_database(server: &str) -> anyhow::Result<(PgPool, String)> {
    let admin = flotilla::db::connect(server).await?;
    let name = format!("bench_{}", ulid::Ulid::new().to_string().to_lowercase());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .context("creating the benchmark's database (needs CREATEDB)")?;
    admin.close().await;
    let db = flotilla::db::connect(&database_url_for(server, &name)).await?;
    flotilla::db::migrate(&db).await?;
    Ok((db, name))
}

/// Drops the run's schemas and roles (roles outlive databases), then the database.
async fn drop_scratch(server: &str, db: PgPool, name: &str) {
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT schema_name FROM tenants WHERE schema_name IS NOT NULL")
            .fetch_all(&db)
            .await
            .unwrap_or_default();
    for schema in schemas {
        let _ = sqlx::query("SELECT drop_tenant_schema($1)")
            .bind(schema)
            .execute(&db)
            .await;
    }
    db.close().await;
    if let Ok(admin) = flotilla::db::connect(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

/// The report as a table.
pub fn print_table(r: &Report) {
    println!(
        "tenant provisioning: create request → active ({} workers)",
        r.workers
    );
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10}",
        "", "tenants", "p50 ms", "p99 ms", "max ms"
    );
    for (name, t) in [
        ("starter, one by one", &r.per_tier.starter),
        ("pro, one by one", &r.per_tier.pro),
        ("enterprise, one by one", &r.per_tier.enterprise),
        ("all at once (mixed tiers)", &r.concurrent_100),
        ("  of which starter", &r.concurrent_per_tier.starter),
        ("  of which pro", &r.concurrent_per_tier.pro),
        ("  of which enterprise", &r.concurrent_per_tier.enterprise),
    ] {
        println!(
            "{name:<28} {:>8} {:>10.1} {:>10.1} {:>10.1}",
            t.tenants, t.p50_ms, t.p99_ms, t.max_ms
        );
    }
    println!("batch wall time: {:.1} s", r.concurrent_wall_s);
    println!("targets: p99 < 1000 ms starter/pro, < 3000 ms enterprise");
}
