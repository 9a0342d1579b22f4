//! The `provisioning` queue: brings a tenant to the state stored for it in
//! PostgreSQL (provision a new one, apply a tier change, suspension,
//! reactivation or deletion), and purges deleted tenants after their
//! retention. Jobs come from `/v1/tenants` and `flotilla-producer tenants`,
//! never from `/v1/jobs`: the payload names a tenant to act on.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobKind;
use crate::ids::TenantId;
use crate::retry::RetryPolicy;

/// Tenant provisioning and lifecycle changes.
#[derive(Debug, Clone, Copy)]
pub struct Provisioning;

/// Why the job was enqueued. Every action except `purge` converges the
/// tenant to its stored state, so a late or repeated job is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantAction {
    /// A new tenant: run every provisioning step, then activate it.
    Provision,
    /// Its tier changed: move its storage, settings and queue weight.
    ChangeTier,
    /// Suspended: enqueues are refused from now on.
    Suspend,
    /// Active again.
    Reactivate,
    /// Soft-deleted: keys stop working; a purge is scheduled.
    Delete,
    /// The retention after deletion is over: drop its data.
    Purge,
    /// Its config overrides changed.
    Configure,
}

impl TenantAction {
    /// The action's name as stored in events and idempotency keys.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantAction::Provision => "provision",
            TenantAction::ChangeTier => "change_tier",
            TenantAction::Suspend => "suspend",
            TenantAction::Reactivate => "reactivate",
            TenantAction::Delete => "delete",
            TenantAction::Purge => "purge",
            TenantAction::Configure => "configure",
        }
    }
}

/// One provisioning job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantJob {
    /// The tenant acted on (also the job's owner in the fair queue).
    pub tenant: TenantId,
    /// Why.
    pub action: TenantAction,
}

impl JobKind for Provisioning {
    const QUEUE: &'static str = "provisioning";
    const ENQUEUED_BY_API: bool = false;
    type Payload = TenantJob;

    fn retry_policy() -> RetryPolicy {
        // A database blip or a failover passes in seconds; eight attempts
        // over about a minute before the tenant is marked failed.
        RetryPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(15),
            max_attempts: 8,
        }
    }
}
