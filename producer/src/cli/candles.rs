//! `candles`: what a tenant's strategies did, from the database, as JSON
//! (the same documents the HTTP API answers with). Read-only; strategies and
//! subscriptions are managed over HTTP (`/v1/strategies`, `/v1/subscriptions`).

use anyhow::{Context as _, bail};
use flotilla::candles::views;
use flotilla::config::DatabaseArgs;

use super::print_json;

/// The tenant whose rows to read.
#[derive(Debug, Clone, clap::Args)]
pub struct TenantArg {
    /// The tenant's id (a lowercase ULID, as `tenants` lists it).
    #[arg(long)]
    tenant: String,
}

/// `candles` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CandlesCommand {
    /// The tenant's strategies.
    Strategies(TenantArg),
    /// The tenant's subscriptions.
    Subscriptions {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only this strategy's.
        #[arg(long)]
        strategy: Option<i64>,
    },
    /// Trades, wins, losses and realized PnL of one subscription.
    Stats {
        /// The subscription's id.
        subscription: i64,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Executions, newest first.
    Executions {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only this strategy's.
        #[arg(long)]
        strategy: Option<i64>,
        /// How many (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
    },
}

/// Runs a `candles` subcommand and prints its JSON.
pub async fn run(database: &DatabaseArgs, command: CandlesCommand) -> anyhow::Result<()> {
    let pool = flotilla::db::connect(&database.database_url).await?;
    let tenant = match &command {
        CandlesCommand::Strategies(t)
        | CandlesCommand::Subscriptions { tenant: t, .. }
        | CandlesCommand::Stats { tenant: t, .. }
        | CandlesCommand::Executions { tenant: t, .. } => t.tenant.clone(),
    };
    let mut tx = flotilla::db::tenant_transaction(&pool, &tenant).await?;
    let doc = match command {
        CandlesCommand::Strategies(_) => views::strategies(&mut tx).await?,
        CandlesCommand::Subscriptions { strategy, .. } => {
            views::subscriptions(&mut tx, strategy).await?
        }
        CandlesCommand::Executions {
            strategy, limit, ..
        } => views::executions(&mut tx, strategy, limit).await?,
        CandlesCommand::Stats { subscription, .. } => {
            match views::stats(&mut tx, subscription)
                .await
                .context("reading the subscription")?
            {
                Some(stats) => stats,
                None => bail!(
                    "tenant {tenant} has no subscription {subscription}; list them with `flotilla-producer candles subscriptions --tenant {tenant}`"
                ),
            }
        }
    };
    print_json(&doc)
}
