//! Tenants as the rest of the system sees them: their tier and status (the
//! database enums), and the API keys that identify them. PostgreSQL is the
//! system of record; these types are how rows are read into Rust.

pub mod api_key;

use serde::{Deserialize, Serialize};

/// A tenant's plan: decides its queue weight, in-flight cap, daily enqueue
/// limit and whether it gets its own schema.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, clap::ValueEnum,
)]
#[sqlx(type_name = "tenant_tier", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Shared tables, weight 1.
    Starter,
    /// Shared tables, weight 2.
    Pro,
    /// Its own schema, weight 4.
    Enterprise,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 3] = [Tier::Starter, Tier::Pro, Tier::Enterprise];

    /// The tier's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a tenant is in its life: pending → provisioning → active
/// (→ suspended → deleted), or failed once provisioning ran out of retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "tenant_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Created; its provisioning job has not started.
    Pending,
    /// Its provisioning job is running (or will resume).
    Provisioning,
    /// Ready: may enqueue and read.
    Active,
    /// May read, may not enqueue.
    Suspended,
    /// Soft-deleted: its keys no longer work; purged after the retention.
    Deleted,
    /// Provisioning ran out of retries; replaying its dead job resumes it.
    Failed,
}

impl TenantStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Pending => "pending",
            TenantStatus::Provisioning => "provisioning",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
            TenantStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
