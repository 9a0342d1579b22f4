//! Tenant rows: creating one (idempotently, by slug), reading, listing,
//! moving its status, and its event log. Every write that changes a
//! tenant's status also records an event in the same transaction.

use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::{SchemaName, Slug, TenantName, TenantStatus, Tier};
use crate::db::DbError;
use crate::ids::TenantId;

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Tenant {
    /// Lowercase ULID; ids, schema names and Redis keys derive from it.
    pub id: String,
    /// Unique, user-chosen, URL-safe.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub tier: Tier,
    /// Lifecycle state.
    pub status: TenantStatus,
    /// Enterprise only: its schema.
    pub schema_name: Option<String>,
    /// Why provisioning failed, when it did.
    pub failure_reason: Option<String>,
    /// The last provisioning step done.
    pub provisioned_step: Option<String>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When it became active (first time).
    pub activated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was soft-deleted.
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When a soft-deleted tenant's data goes.
    pub purge_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl Tenant {
    /// The id, parsed.
    pub fn tenant_id(&self) -> TenantId {
        TenantId::parse(&self.id).expect("tenant ids are checked by the database")
    }

    /// The schema an enterprise tenant has (or will have).
    pub fn schema(&self) -> SchemaName {
        SchemaName::for_tenant(&self.tenant_id()).expect("tenant ids are lowercase ULIDs")
    }
}

/// The columns of [`Tenant`], for queries that read whole rows.
pub const COLUMNS: &str = "id, slug, name, tier, status, schema_name, failure_reason, \
     provisioned_step, created_at, updated_at, activated_at, deleted_at, purge_after";

/// What a create request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// Unique slug.
    pub slug: Slug,
    /// Display name.
    pub name: TenantName,
    /// Plan.
    pub tier: Tier,
    /// Config overrides over the tier's defaults (a JSON object).
    pub overrides: serde_json::Map<String, serde_json::Value>,
}

/// The outcome of [`create`].
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new tenant, pending.
    New(Tenant),
    /// The same request again: the tenant it made the first time.
    Existing(Tenant),
    /// The slug belongs to a tenant made with different settings.
    SlugTaken(Tenant),
}

/// Creates a pending tenant, or finds the one an identical earlier request
/// made: the slug is the natural key, so a retried request never makes a
/// second tenant.
pub async fn create(pool: &PgPool, new: &NewTenant) -> Result<Created, DbError> {
    let mut tx = pool.begin().await?;
    let id = ulid::Ulid::new().to_string().to_lowercase();
    let inserted: Option<Tenant> = sqlx::query_as(&format!(
        "INSERT INTO tenants (id, slug, name, tier) VALUES ($1, $2, $3, $4)
         ON CONFLICT (slug) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&id)
    .bind(new.slug.as_str())
    .bind(new.name.as_str())
    .bind(new.tier)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(tenant) = inserted {
        sqlx::query(
            "INSERT INTO tenant_configs (tenant_id, overrides, resolved) VALUES ($1, $2, '{}')",
        )
        .bind(&tenant.id)
        .bind(serde_json::Value::Object(new.overrides.clone()))
        .execute(&mut *tx)
        .await?;
        event(
            &mut tx,
            &tenant.id,
            "created",
            serde_json::json!({"tier": new.tier}),
        )
        .await?;
        tx.commit().await?;
        return Ok(Created::New(tenant));
    }
    tx.rollback().await?;
    let existing: Tenant =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
            .bind(new.slug.as_str())
            .fetch_one(pool)
            .await?;
    let overrides: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT overrides FROM tenant_configs WHERE tenant_id = $1")
            .bind(&existing.id)
            .fetch_optional(pool)
            .await?;
    let same = existing.name == new.name.as_str()
        && existing.tier == new.tier
        && overrides == Some(serde_json::Value::Object(new.overrides.clone()));
    Ok(if same {
        Created::Existing(existing)
    } else {
        Created::SlugTaken(existing)
    })
}

/// One tenant by id.
pub async fn get(pool: &PgPool, id: &TenantId) -> Result<Option<Tenant>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?,
    )
}

/// One tenant by id or slug (what operators type).
pub async fn find(pool: &PgPool, id_or_slug: &str) -> Result<Option<Tenant>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1 OR slug = $1"
    ))
    .bind(id_or_slug)
    .fetch_optional(pool)
    .await?)
}

/// Tenants, oldest first, optionally only those in `status`; `after` is the
/// last id of the previous page.
pub async fn list(
    pool: &PgPool,
    status: Option<TenantStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Tenant>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants
          WHERE ($1::tenant_status IS NULL OR status = $1) AND ($2::text IS NULL OR id > $2)
          ORDER BY id LIMIT $3"
    ))
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Appends to the tenant's event log.
pub async fn event(
    conn: &mut PgConnection,
    tenant: &str,
    kind: &str,
    detail: serde_json::Value,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO tenant_events (tenant_id, kind, detail) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(kind)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// A tenant's events, oldest first.
pub async fn events(
    pool: &PgPool,
    tenant: &TenantId,
) -> Result<Vec<(String, serde_json::Value, chrono::DateTime<chrono::Utc>)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT kind, detail, at FROM tenant_events WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?)
}
