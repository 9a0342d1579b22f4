//! Tenants as the rest of the system sees them: their tier and status (the
//! database enums), and the API keys that identify them. PostgreSQL is the
//! system of record; these types are how rows are read into Rust.

pub mod api_key;
pub mod keys;
pub mod lifecycle;
pub mod provision;
pub mod quota;
pub mod settings;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::ids::{InvalidId, TenantId};

/// A tenant's slug: unique, chosen by the operator, ASCII only (so no
/// lookalike of another slug can exist), safe in URLs and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug: 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit.
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let ok = !input.is_empty()
            && input.len() <= 64
            && input
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidId::new(
                "slug",
                input,
                "use 1 to 64 characters from a-z, 0-9, '-' and '_', starting with a letter or digit",
            ))
        }
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's display name: any text a person would write (unicode is
/// fine, it is only ever bound as a parameter), 1 to 200 characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// Parses a display name; surrounding whitespace is trimmed.
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let name = input.trim();
        let length = name.chars().count();
        if length == 0 || length > 200 || name.chars().any(char::is_control) {
            return Err(InvalidId::new(
                "tenant name",
                input,
                "use 1 to 200 characters without control characters (newlines, tabs, NUL)",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An enterprise tenant's schema (and role): "t_" + the tenant's id. It is
/// derived, never taken from user text, and its alphabet needs no quoting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SchemaName(String);

impl SchemaName {
    /// The schema of `tenant`, whose id must be a lowercase ULID (all
    /// provisioned tenants' ids are).
    pub fn for_tenant(tenant: &TenantId) -> Result<Self, InvalidId> {
        let id = tenant.as_str();
        let ulid_like = id.len() == 26
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        if !ulid_like {
            return Err(InvalidId::new(
                "tenant id",
                id,
                "a provisioned tenant's id is a lowercase ULID of 26 characters",
            ));
        }
        Ok(Self(format!("t_{id}")))
    }

    /// The name, safe to use as an identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
    /// Every status.
    pub const ALL: [TenantStatus; 6] = [
        TenantStatus::Pending,
        TenantStatus::Provisioning,
        TenantStatus::Active,
        TenantStatus::Suspended,
        TenantStatus::Deleted,
        TenantStatus::Failed,
    ];

    /// Parses a status name; the error lists the names.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown status {:?}; use pending, provisioning, active, suspended, deleted or failed",
                    text.chars().take(40).collect::<String>()
                )
            })
    }

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
