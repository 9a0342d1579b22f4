//! `flotilla-producer bench`: the benchmarks the project ships. Figures are
//! compared as ratios measured side by side in one run, never as absolute
//! timings in tests: the machines are shared and noisy.

mod apalis_baseline;
mod candles;
mod connect;
pub mod fleet;
mod provisioning;
mod queue;
mod scratch;
mod server;
pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

use flotilla::config::parse_duration;

/// Which benchmark to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Scenario {
    /// The fair queue: throughput vs apalis-redis, fairness under a noisy
    /// tenant, weighted shares, pickup latency, worker memory.
    Queue,
    /// Tenant provisioning: create request to active, per tier, one by one
    /// and 100 at once (uses a scratch database on DATABASE_URL's server).
    Provisioning,
    /// Candle execution: fan-out to 10,000 subscribers, 1,000 strategies on
    /// one candle (needs PostgreSQL: DATABASE_URL).
    Candles,
    /// User connect: 10,000 users over 20 simulated session hosts;
    /// connects per second and the host balance (needs DATABASE_URL).
    Connect,
}

/// Arguments of `flotilla-producer bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The flotilla-worker binary (default: next to this one).
    #[arg(long, env = "FLOTILLA_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,
    /// Multiplies every job count (1.0 is the sizes; 0.05 is a smoke run).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Worker concurrency.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Steady enqueue rate for the pickup-latency run (jobs/s).
    #[arg(long, default_value_t = 500)]
    pub pickup_rate: u32,
    /// How long the pickup-latency run lasts.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub pickup_duration: Duration,
    /// Leave out the apalis-redis baseline.
    #[arg(long)]
    pub skip_apalis: bool,
    /// Throughput rounds (queue): each runs Flotilla then apalis-redis, and
    /// the figures are the medians, so a burst of load from elsewhere on the
    /// machine does not decide the ratio.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Worker processes (provisioning, connect).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// Deletes the keys matching a SCAN `pattern` that `keep` selects, a page
/// at a time (benchmarks clean up after themselves).
pub async fn unlink_matching(
    conn: &mut redis::aio::ConnectionManager,
    pattern: &str,
    keep: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(2_000)
            .query_async(conn)
            .await?;
        let ours: Vec<&String> = keys.iter().filter(|k| keep(k)).collect();
        if !ours.is_empty() {
            redis::cmd("UNLINK")
                .arg(ours)
                .query_async::<()>(conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Runs a benchmark and prints its report.
/// The benchmark uses namespaces of its own on `redis_url` and deletes them.
pub async fn run(redis_url: &str, database_url: &str, args: BenchArgs) -> anyhow::Result<()> {
    if !(args.scale > 0.0 && args.scale <= 10.0) {
        anyhow::bail!("--scale must be in (0, 10]; 1.0 runs the documented sizes");
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; for real figures run `cargo run --release -p flotilla-producer -- bench ...`"
        );
    }
    let scaled = |n: usize| ((n as f64 * args.scale).round() as usize).max(1);
    match args.scenario {
        Scenario::Queue => {
            let bench = queue::QueueBench {
                redis_url: redis_url.to_owned(),
                worker_bin: fleet::worker_binary(args.worker_bin.as_deref())?,
                jobs: scaled(50_000),
                concurrency: args.concurrency,
                noisy_jobs: scaled(20_000),
                quiet_tenants: 50,
                quiet_jobs: scaled(20),
                share_jobs: scaled(3_000),
                pickup_rate: args.pickup_rate,
                pickup_duration: args.pickup_duration,
                skip_apalis: args.skip_apalis,
                rounds: args.rounds as usize,
            };
            let report = bench.run().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                queue::print_table(&report);
            }
        }
        Scenario::Provisioning => {
            let bench = provisioning::ProvisioningBench {
                redis_url: redis_url.to_owned(),
                database_url: database_url.to_owned(),
                worker_bin: fleet::worker_binary(args.worker_bin.as_deref())?,
                tenants: scaled(100),
                workers: args.workers.max(1),
                concurrency: args.concurrency,
            };
            let report = bench.run().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                provisioning::print_table(&report);
            }
        }
        Scenario::Candles => {
            let bench = candles::CandleBench {
                redis_url: redis_url.to_owned(),
                database_url: database_url.to_owned(),
                worker_bin: fleet::worker_binary(args.worker_bin.as_deref())?,
                concurrency: args.concurrency,
                subscribers: scaled(10_000),
                strategies: scaled(1_000),
            };
            let report = bench.run().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                candles::print_table(&report);
            }
        }
        Scenario::Connect => {
            let bench = connect::ConnectBench {
                redis_url: redis_url.to_owned(),
                database_url: database_url.to_owned(),
                worker_bin: fleet::worker_binary(args.worker_bin.as_deref())?,
                concurrency: args.concurrency,
                workers: args.workers.max(1),
                users: scaled(10_000),
                hosts: 20,
            };
            let report = bench.run().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                connect::print_table(&report);
            }
        }
    }
    Ok(())
}
