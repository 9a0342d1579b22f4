//! `flotilla-producer`: everything that puts work into Flotilla or looks at
//! it: the HTTP API (`serve`), the CLI verbs (`enqueue`, `queues`, `job`,
//! `dlq`), the demo and the benchmarks. Errors end the process with one line
//! on stderr and a non-zero exit.
//!
//! # Layout
//! - [`request`]: one job to enqueue, validated the same way for CLI and HTTP
//! - [`queues`]: opening the known queues
//! - [`cli`]: the CLI verbs
//! - [`http`]: the HTTP API
//! - [`candles`]: the candle clock and the candle triggers' settings
//! - [`demo`], [`bench`]: the fleet on a demo workload; benchmarks

mod bench;
mod candles;
mod cli;
mod demo;
mod http;
mod queues;
mod request;

use clap::{Parser, Subcommand};
use flotilla::config::{DatabaseArgs, LogArgs, QueueArgs, RedisArgs};

/// Puts work into Flotilla and looks at it: HTTP API, CLI, demo, benchmarks.
///
/// Every flag can also be set from the environment variable shown. Global
/// flags (Redis, namespace, queue tunables) go before the verb.
#[derive(Debug, Parser)]
#[command(name = "flotilla-producer", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    queue: QueueArgs,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    tenancy: TenantArgs,
    #[command(flatten)]
    connect: flotilla::connect::ConnectArgs,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

/// Tenant lifecycle settings.
#[derive(Debug, Clone, clap::Args)]
struct TenantArgs {
    /// How long a deleted tenant's data is kept before it is purged.
    #[arg(long, env = "FLOTILLA_TENANT_RETENTION", default_value = "30d", value_parser = flotilla::config::parse_duration)]
    tenant_retention: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enqueue one job, or many from a JSON-lines file or stdin.
    Enqueue(cli::enqueue::EnqueueArgs),
    /// Depth of every queue by state, oldest pending age, tenants waiting.
    Queues(cli::Output),
    /// One job's state, attempts, timestamps and errors.
    Job(cli::job::JobArgs),
    /// The dead letter: list, show, replay and purge dead jobs.
    #[command(subcommand)]
    Dlq(cli::dlq::DlqCommand),
    /// Serve the HTTP API: POST /v1/jobs/{queue}, GET /v1/jobs/{id}, /metrics.
    Serve(http::ServeArgs),
    /// Run the fleet on a demo workload: two workers, many tenants, one noisy.
    Demo(demo::DemoArgs),
    /// Run a benchmark and print its figures (use a release build).
    Bench(bench::BenchArgs),
    /// A tenant's candle strategies: register, update, deactivate.
    #[command(subcommand)]
    Strategies(cli::trading::StrategiesCommand),
    /// Users' subscriptions to strategies: create, update, pause, resume, cancel.
    #[command(subcommand)]
    Subscriptions(cli::trading::SubscriptionsCommand),
    /// Session hosts: list them with their load, drain one.
    #[command(subcommand)]
    Hosts(cli::connect::HostsCommand),
    /// A tenant's users on session hosts: connect, disconnect, show.
    #[command(subcommand)]
    Users(cli::connect::UsersCommand),
    /// Tenants: create, show, list, upgrade, suspend, reactivate, delete.
    #[command(subcommand)]
    Tenants(cli::tenants::TenantsCommand),
    /// What a tenant's candle strategies did: strategies, subscriptions, stats, executions (JSON).
    #[command(subcommand)]
    Candles(cli::candles::CandlesCommand),
    /// Trigger candle strategies at every boundary and re-enqueue missed intervals.
    Clock(candles::clock::ClockArgs),
    /// Apply the database migrations (the Procfile's release phase); a no-op when up to date.
    Migrate,
}

/// The API in-process, for the CLI's management verbs. The candle feed's
/// horizon is the default: these verbs never post candles.
async fn in_process(
    redis: &RedisArgs,
    queue: &QueueArgs,
    database: &DatabaseArgs,
    tenancy: &TenantArgs,
    connect: &flotilla::connect::ConnectArgs,
) -> anyhow::Result<http::InProcess> {
    let candles = candles::CandleArgs {
        candle_horizon: std::time::Duration::from_secs(3600),
    };
    http::InProcess::open(redis, queue, database, tenancy, candles, connect).await
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    flotilla::telemetry::init_tracing(cli.log.log_format, "warn");
    // The management verbs go through the API's routes in-process.
    let api = || {
        in_process(
            &cli.redis,
            &cli.queue,
            &cli.database,
            &cli.tenancy,
            &cli.connect,
        )
    };
    let result = match cli.command {
        Command::Enqueue(args) => cli::enqueue::run(&cli.redis, &cli.queue, args).await,
        Command::Queues(out) => cli::queues::run(&cli.redis, &cli.queue, out).await,
        Command::Job(args) => cli::job::run(&cli.redis, &cli.queue, args).await,
        Command::Dlq(cmd) => cli::dlq::run(&cli.redis, &cli.queue, cmd).await,
        Command::Serve(args) => {
            http::serve(
                &cli.redis,
                &cli.queue,
                &cli.database,
                &cli.tenancy,
                &cli.connect,
                args,
            )
            .await
        }
        Command::Demo(args) => demo::run(&cli.redis.redis_url, args).await,
        Command::Bench(args) => {
            bench::run(&cli.redis.redis_url, &cli.database.database_url, args).await
        }
        Command::Tenants(cmd) => {
            cli::tenants::run(&cli.redis, &cli.queue, &cli.database, &cli.tenancy, cmd).await
        }
        Command::Candles(cmd) => cli::candles::run(&cli.database, cmd).await,
        Command::Clock(args) => {
            candles::clock::run(&cli.redis, &cli.queue, &cli.database, args).await
        }
        Command::Strategies(cmd) => {
            async { cli::trading::strategies(&api().await?, cmd).await }.await
        }
        Command::Subscriptions(cmd) => {
            async { cli::trading::subscriptions(&api().await?, cmd).await }.await
        }
        Command::Hosts(cmd) => async { cli::connect::hosts(&api().await?, cmd).await }.await,
        Command::Users(cmd) => async { cli::connect::users(&api().await?, cmd).await }.await,
        Command::Migrate => cli::migrate::run(&cli.database).await,
    };
    if let Err(e) = result {
        eprintln!("error: {}", flotilla::backend::error_chain(e.as_ref()));
        std::process::exit(1);
    }
}
