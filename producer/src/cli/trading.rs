//! `strategies` and `subscriptions`: manage a tenant's candle strategies and
//! its users' subscriptions from the command line. Each verb sends its
//! request through the API's own routes in-process (see
//! [`crate::http::InProcess`]), so the CLI validates, scopes and writes
//! exactly as `/v1/strategies` and `/v1/subscriptions` do; `--tenant` names
//! the tenant acted for. Errors print the API's problem detail on one line.

use anyhow::bail;
use axum::http::Method;
use serde_json::{Map, Value, json};

use super::print_json;
use crate::http::InProcess;

/// The tenant acted for.
#[derive(Debug, Clone, clap::Args)]
pub struct TenantArg {
    /// The tenant's id (a lowercase ULID, as `tenants list` shows it).
    #[arg(long)]
    pub tenant: String,
}

/// `strategies` verbs.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "\
Examples:
  flotilla-producer strategies register --tenant 01j... --name 'BTC breakout' \\
      --kind donchian --symbol BTCUSDT --resolution 5m --parameters '{\"period\": 20}'
  flotilla-producer strategies update 7 --tenant 01j... --parameters '{\"period\": 30}'
  flotilla-producer strategies deactivate 7 --tenant 01j...")]
pub enum StrategiesCommand {
    /// Register a strategy (kinds: sma_crossover, rsi, donchian).
    Register {
        #[command(flatten)]
        tenant: TenantArg,
        /// A name for people.
        #[arg(long)]
        name: String,
        /// sma_crossover, rsi or donchian.
        #[arg(long)]
        kind: String,
        /// e.g. BTCUSDT.
        #[arg(long)]
        symbol: String,
        /// 1m 3m 5m 10m 15m 30m 1h 2h 4h 6h 12h 1D.
        #[arg(long)]
        resolution: String,
        /// The kind's parameters as a JSON object (defaults otherwise).
        #[arg(long)]
        parameters: Option<String>,
    },
    /// Rename it or change its parameters (bumps its version: the next
    /// interval runs the new one).
    Update {
        /// The strategy's id.
        id: i64,
        #[command(flatten)]
        tenant: TenantArg,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// New parameters as a JSON object.
        #[arg(long)]
        parameters: Option<String>,
    },
    /// Stop running it (its history stays).
    Deactivate {
        /// The strategy's id.
        id: i64,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// The settings of a subscription.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Capital the user trades with.
    #[arg(long)]
    pub capital: Option<f64>,
    /// Percent of the capital risked per trade (e.g. 1).
    #[arg(long)]
    pub risk_pct: Option<f64>,
    /// Most leverage allowed.
    #[arg(long)]
    pub leverage: Option<f64>,
    /// Where the broker credential is kept (a reference, never the secret).
    #[arg(long)]
    pub credential_ref: Option<String>,
}

/// `subscriptions` verbs.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "\
Examples:
  flotilla-producer subscriptions create --tenant 01j... --strategy 7 --user u-42 \\
      --capital 10000 --risk-pct 1 --leverage 3 --credential-ref vault:brokers/u-42
  flotilla-producer subscriptions update 12 --tenant 01j... --risk-pct 0.5
  flotilla-producer subscriptions pause 12 --tenant 01j...")]
pub enum SubscriptionsCommand {
    /// Subscribe a user to a strategy.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// The strategy's id.
        #[arg(long)]
        strategy: i64,
        /// The user's id in the tenant's system.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Change a subscription's settings.
    Update {
        /// The subscription's id.
        id: i64,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Stop opening trades for it until resumed.
    Pause {
        /// The subscription's id.
        id: i64,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Open trades for it again.
    Resume {
        /// The subscription's id.
        id: i64,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// End it for good (its trades stay).
    Cancel {
        /// The subscription's id.
        id: i64,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

fn json_object(flag: &str, text: &str) -> anyhow::Result<Value> {
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => bail!("{flag} must be a JSON object, e.g. '{{\"period\": 20}}'"),
        Err(e) => bail!("{flag} is not valid JSON: {e}"),
    }
}

fn settings(s: &SettingsArgs) -> Map<String, Value> {
    let mut body = Map::new();
    for (key, value) in [
        ("capital", s.capital.map(Value::from)),
        ("risk_pct", s.risk_pct.map(Value::from)),
        ("leverage", s.leverage.map(Value::from)),
        (
            "broker_credential_ref",
            s.credential_ref.clone().map(Value::from),
        ),
    ] {
        if let Some(v) = value {
            body.insert(key.to_owned(), v);
        }
    }
    body
}

/// Sends the request and prints the answer, or fails with its detail.
pub(super) async fn send(
    api: &InProcess,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
    let (status, answer) = api.call(method, path, body).await?;
    if !status.is_success() {
        let detail = answer["detail"].as_str().unwrap_or("the request failed");
        bail!("{detail} ({status})");
    }
    print_json(&answer)
}

/// Runs a `strategies` verb.
pub async fn strategies(api: &InProcess, cmd: StrategiesCommand) -> anyhow::Result<()> {
    match cmd {
        StrategiesCommand::Register {
            tenant,
            name,
            kind,
            symbol,
            resolution,
            parameters,
        } => {
            let mut body = json!({
                "tenant": tenant.tenant, "name": name, "kind": kind,
                "symbol": symbol, "resolution": resolution,
            });
            if let Some(p) = parameters {
                body["parameters"] = json_object("--parameters", &p)?;
            }
            send(api, Method::POST, "/v1/strategies", Some(body)).await
        }
        StrategiesCommand::Update {
            id,
            tenant,
            name,
            parameters,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), name.into());
            }
            if let Some(p) = parameters {
                body.insert("parameters".into(), json_object("--parameters", &p)?);
            }
            if body.is_empty() {
                bail!("nothing to change: give --name or --parameters");
            }
            let path = format!("/v1/strategies/{id}?tenant={}", tenant.tenant);
            send(api, Method::PATCH, &path, Some(Value::Object(body))).await
        }
        StrategiesCommand::Deactivate { id, tenant } => {
            let path = format!("/v1/strategies/{id}?tenant={}", tenant.tenant);
            send(api, Method::DELETE, &path, None).await
        }
    }
}

/// Runs a `subscriptions` verb.
pub async fn subscriptions(api: &InProcess, cmd: SubscriptionsCommand) -> anyhow::Result<()> {
    match cmd {
        SubscriptionsCommand::Create {
            tenant,
            strategy,
            user,
            settings: s,
        } => {
            let mut body = settings(&s);
            body.insert("tenant".into(), tenant.tenant.into());
            body.insert("strategy_id".into(), strategy.into());
            body.insert("user_id".into(), user.into());
            send(
                api,
                Method::POST,
                "/v1/subscriptions",
                Some(Value::Object(body)),
            )
            .await
        }
        SubscriptionsCommand::Update {
            id,
            tenant,
            settings: s,
        } => {
            let body = settings(&s);
            if body.is_empty() {
                bail!(
                    "nothing to change: give --capital, --risk-pct, --leverage or --credential-ref"
                );
            }
            let path = format!("/v1/subscriptions/{id}?tenant={}", tenant.tenant);
            send(api, Method::PATCH, &path, Some(Value::Object(body))).await
        }
        SubscriptionsCommand::Pause { id, tenant } => {
            let path = format!("/v1/subscriptions/{id}/pause?tenant={}", tenant.tenant);
            send(api, Method::POST, &path, None).await
        }
        SubscriptionsCommand::Resume { id, tenant } => {
            let path = format!("/v1/subscriptions/{id}/resume?tenant={}", tenant.tenant);
            send(api, Method::POST, &path, None).await
        }
        SubscriptionsCommand::Cancel { id, tenant } => {
            let path = format!("/v1/subscriptions/{id}?tenant={}", tenant.tenant);
            send(api, Method::DELETE, &path, None).await
        }
    }
}
