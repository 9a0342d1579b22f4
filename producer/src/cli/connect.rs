//! `hosts` and `users`: user connect from the command line, through the
//! API's own routes in-process (see [`crate::http::InProcess`]): the
//! operator lists session hosts with their load and drains one; connects,
//! disconnects and looks at a tenant's user.

use anyhow::Context as _;
use axum::http::Method;
use flotilla::ids::{HostId, TenantId, UserId};

use super::trading::send;
use crate::http::InProcess;

/// `hosts` verbs.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "\
Hosts register and heartbeat themselves over HTTP (POST /v1/hosts,
POST /v1/hosts/{id}/heartbeat); these verbs are the operator's.")]
pub enum HostsCommand {
    /// Every session host: status, load, capacity, heartbeat age (JSON).
    List,
    /// Stop giving a host new users and move its users to other hosts
    /// (before a host is shut down). Registering again undoes it.
    Drain {
        /// The host's id.
        id: String,
    },
}

/// `users` verbs.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "\
Examples:
  flotilla-producer users connect u-42 --tenant 01j...
  flotilla-producer users show u-42 --tenant 01j...
  flotilla-producer users disconnect u-42 --tenant 01j...")]
pub enum UsersCommand {
    /// Put the user on the least-loaded live session host (nothing if connected).
    Connect(UserArgs),
    /// Take the user off their session host.
    Disconnect(UserArgs),
    /// The user's connection: state, host, reason (JSON).
    Show(UserArgs),
}

/// A tenant's user.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// The user's id as the tenant names it (A-Z a-z 0-9 . _ : @ -).
    pub user: String,
    /// The tenant's id (a lowercase ULID, as `tenants list` shows it).
    #[arg(long)]
    pub tenant: String,
}

impl UserArgs {
    /// `/v1/users/<user>/<what>?tenant=<tenant>`, from checked ids only.
    fn path(&self, what: &str) -> anyhow::Result<String> {
        let user = UserId::parse(&self.user).context("the user id")?;
        let tenant = TenantId::parse(&self.tenant).context("--tenant")?;
        Ok(format!("/v1/users/{user}/{what}?tenant={tenant}"))
    }
}

/// Runs a `hosts` verb.
pub async fn hosts(api: &InProcess, cmd: HostsCommand) -> anyhow::Result<()> {
    match cmd {
        HostsCommand::List => send(api, Method::GET, "/v1/hosts", None).await,
        HostsCommand::Drain { id } => {
            let id = HostId::parse(&id).context("the host id")?;
            send(api, Method::POST, &format!("/v1/hosts/{id}/drain"), None).await
        }
    }
}

/// Runs a `users` verb.
pub async fn users(api: &InProcess, cmd: UsersCommand) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Connect(u) => send(api, Method::POST, &u.path("connect")?, None).await,
        UsersCommand::Disconnect(u) => send(api, Method::POST, &u.path("disconnect")?, None).await,
        UsersCommand::Show(u) => send(api, Method::GET, &u.path("connection")?, None).await,
    }
}
