//! `tenants create|show|list|upgrade|suspend|reactivate|delete|reconcile`:
//! the operator's side of `/v1/tenants`, straight against PostgreSQL and
//! the provisioning queue (no API server needed). Requests write the wanted
//! state and enqueue a provisioning job; workers do the rest.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use flotilla::config::{DatabaseArgs, QueueArgs, RedisArgs};
use flotilla::kinds::JobKind as _;
use flotilla::kinds::provisioning::Provisioning;
use flotilla::tenancy::keys::TenantKeys;
use flotilla::tenancy::lifecycle::{Change, Lifecycle, Requested};
use flotilla::tenancy::store::{self, NewTenant, Tenant};
use flotilla::tenancy::{Slug, TenantName, TenantStatus, Tier};

use super::{Output, print_json};
use crate::TenantArgs;
use crate::queues::Queues;

/// The tenant verbs.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  flotilla-producer tenants create acme --name 'Acme Capital' --tier pro --wait
  flotilla-producer tenants show acme             # the first show after provisioning prints the API key once
  flotilla-producer tenants list --status active
  flotilla-producer tenants upgrade acme enterprise
  flotilla-producer tenants suspend acme
  flotilla-producer tenants delete acme --yes")]
pub enum TenantsCommand {
    /// Create a tenant and enqueue its provisioning (repeating it is safe).
    Create(CreateArgs),
    /// One tenant: status, tier, config, and its new API key once.
    Show(TenantRef),
    /// Tenants, oldest first.
    List(ListArgs),
    /// Move a tenant to another tier (upgrade or downgrade).
    #[command(alias = "downgrade")]
    Upgrade(TierArgs),
    /// Refuse a tenant's enqueues (reads still work).
    Suspend(TenantRef),
    /// Let a suspended tenant enqueue again.
    Reactivate(TenantRef),
    /// Soft-delete a tenant: its keys stop at once, its data is purged
    /// after FLOTILLA_TENANT_RETENTION.
    Delete(DeleteArgs),
    /// Re-enqueue tenants stuck in pending or provisioning (`serve` does it
    /// periodically too).
    Reconcile(ReconcileArgs),
}

/// Which tenant.
#[derive(Debug, clap::Args)]
pub struct TenantRef {
    /// The tenant's id or slug.
    pub tenant: String,
    #[command(flatten)]
    pub out: Output,
}

/// Arguments of `tenants create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A unique slug: a-z, 0-9, '-' and '_' (e.g. acme).
    pub slug: String,
    /// Display name (default: the slug).
    #[arg(long)]
    pub name: Option<String>,
    /// The plan.
    #[arg(long, value_enum)]
    pub tier: Tier,
    /// Config overrides as a JSON object, e.g. '{"max_in_flight": 8}'.
    #[arg(long)]
    pub config: Option<String>,
    /// Wait until the tenant is active (or failed) and print its API key.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_parser = flotilla::config::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub out: Output,
}

/// Arguments of `tenants list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only tenants in this status (pending, provisioning, active, suspended, deleted, failed).
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    #[command(flatten)]
    pub out: Output,
}

/// Arguments of `tenants upgrade`.
#[derive(Debug, clap::Args)]
pub struct TierArgs {
    /// The tenant's id or slug.
    pub tenant: String,
    /// The new tier.
    #[arg(value_enum)]
    pub tier: Tier,
    #[command(flatten)]
    pub out: Output,
}

/// Arguments of `tenants delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The tenant's id or slug.
    pub tenant: String,
    /// Confirm: deleting stops the tenant's keys at once.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub out: Output,
}

/// Arguments of `tenants reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// A tenant pending or provisioning for longer than this is stuck.
    #[arg(long, default_value = "2m", value_parser = flotilla::config::parse_duration)]
    pub after: Duration,
    #[command(flatten)]
    pub out: Output,
}

/// Runs a tenant verb.
pub async fn run(
    redis: &RedisArgs,
    queue: &QueueArgs,
    database: &DatabaseArgs,
    tenancy: &TenantArgs,
    cmd: TenantsCommand,
) -> anyhow::Result<()> {
    let db = flotilla::db::connect(&database.database_url).await?;
    let queues = Queues::open(redis, queue).await?;
    let lifecycle = Lifecycle::new(
        db,
        queues.get(Provisioning::QUEUE)?.clone(),
        TenantKeys::new(&redis.namespace),
        tenancy.tenant_retention,
    );
    match cmd {
        TenantsCommand::Create(args) => create(&lifecycle, args).await,
        TenantsCommand::Show(r) => {
            let tenant = lifecycle.find(&r.tenant).await?;
            let key = lifecycle.take_new_key(&tenant.tenant_id()).await?;
            print_tenant(&tenant, key.as_deref(), r.out.json)
        }
        TenantsCommand::List(args) => list(&lifecycle, args).await,
        TenantsCommand::Upgrade(args) => {
            let done = lifecycle
                .change(&args.tenant, Change::Tier(args.tier))
                .await?;
            print_requested(&done, args.out.json)
        }
        TenantsCommand::Suspend(r) => {
            let done = lifecycle.change(&r.tenant, Change::Suspend).await?;
            print_requested(&done, r.out.json)
        }
        TenantsCommand::Reactivate(r) => {
            let done = lifecycle.change(&r.tenant, Change::Reactivate).await?;
            print_requested(&done, r.out.json)
        }
        TenantsCommand::Delete(args) => {
            if !args.yes {
                bail!(
                    "deleting tenant {} stops its API keys at once and purges its data later; add --yes to confirm",
                    args.tenant
                );
            }
            let done = lifecycle.delete(&args.tenant).await?;
            print_requested(&done, args.out.json)
        }
        TenantsCommand::Reconcile(args) => {
            let requeued = lifecycle.reconcile(args.after).await?;
            if args.out.json {
                return print_json(&serde_json::json!({ "requeued": requeued }));
            }
            println!("re-enqueued {} stuck tenant(s)", requeued.len());
            for t in requeued {
                println!("  {t}");
            }
            Ok(())
        }
    }
}

async fn create(lifecycle: &Lifecycle, args: CreateArgs) -> anyhow::Result<()> {
    let slug = Slug::parse(&args.slug)?;
    let name = TenantName::parse(args.name.as_deref().unwrap_or(slug.as_str()))?;
    let overrides = match &args.config {
        None => Default::default(),
        Some(text) => match serde_json::from_str(text).context("--config is not valid JSON")? {
            serde_json::Value::Object(map) => map,
            _ => bail!("--config must be a JSON object, e.g. '{{\"max_in_flight\": 8}}'"),
        },
    };
    let requested = lifecycle
        .create(&NewTenant {
            slug,
            name,
            tier: args.tier,
            overrides,
        })
        .await?;
    if !args.wait {
        return print_requested(&requested, args.out.json);
    }
    let id = requested.tenant.tenant_id();
    let started = Instant::now();
    let tenant = loop {
        let tenant = store::get(lifecycle.db(), &id)
            .await?
            .context("the tenant disappeared while waiting")?;
        match tenant.status {
            TenantStatus::Active | TenantStatus::Failed => break tenant,
            _ if started.elapsed() > args.timeout => bail!(
                "tenant {id} is still {} after {:?}: are workers running on the provisioning queue? `flotilla-producer tenants show {id}` follows it",
                tenant.status,
                args.timeout
            ),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let key = lifecycle.take_new_key(&id).await?;
    print_tenant(&tenant, key.as_deref(), args.out.json)?;
    if tenant.status == TenantStatus::Failed {
        bail!(
            "provisioning tenant {id} failed: {}; fix the cause and replay its dead job (`flotilla-producer dlq replay --tenant {id}`)",
            tenant
                .failure_reason
                .as_deref()
                .unwrap_or("no reason recorded")
        );
    }
    Ok(())
}

async fn list(lifecycle: &Lifecycle, args: ListArgs) -> anyhow::Result<()> {
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(TenantStatus::parse(s).map_err(anyhow::Error::msg)?),
    };
    let tenants = store::list(lifecycle.db(), status, None, args.limit.clamp(1, 10_000)).await?;
    if args.out.json {
        return print_json(&tenants);
    }
    println!(
        "{:<26}  {:<24}  {:<10}  {:<12}  created",
        "id", "slug", "tier", "status"
    );
    for t in &tenants {
        println!(
            "{:<26}  {:<24}  {:<10}  {:<12}  {}",
            t.id,
            t.slug,
            t.tier,
            t.status,
            t.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(())
}

fn print_requested(requested: &Requested, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&serde_json::json!({
            "tenant": requested.tenant,
            "job": requested.job.map(|j| j.to_string()),
            "new": requested.new,
        }));
    }
    let t = &requested.tenant;
    match (requested.new, requested.job) {
        (true, Some(job)) => println!(
            "tenant {} ({}): {}, job {job} enqueued",
            t.id, t.slug, t.status
        ),
        (_, _) if !requested.new => println!(
            "tenant {} ({}): {}, nothing to change",
            t.id, t.slug, t.status
        ),
        _ => println!("tenant {} ({}): {}", t.id, t.slug, t.status),
    }
    Ok(())
}

fn print_tenant(t: &Tenant, key: Option<&str>, json: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(t)?;
        if let Some(key) = key {
            value["api_key"] = key.into();
        }
        return print_json(&value);
    }
    println!("tenant       {}", t.id);
    println!("slug         {}", t.slug);
    println!("name         {}", t.name);
    println!("tier         {}", t.tier);
    println!("status       {}", t.status);
    if let Some(s) = &t.schema_name {
        println!("schema       {s}");
    }
    if let Some(step) = &t.provisioned_step {
        println!("last step    {step}");
    }
    if let Some(r) = &t.failure_reason {
        println!("failed       {r}");
    }
    println!("created      {}", t.created_at.to_rfc3339());
    if let Some(at) = t.activated_at {
        println!("activated    {}", at.to_rfc3339());
    }
    if let Some(at) = t.purge_after {
        println!("purge after  {}", at.to_rfc3339());
    }
    if let Some(key) = key {
        println!("api key      {key}");
        println!("             (shown once: store it now)");
    }
    Ok(())
}
