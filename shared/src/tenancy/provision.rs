//! Bringing a tenant to the state PostgreSQL stores for it. The API writes
//! the wanted state (a new pending tenant, a tier, suspended, deleted) and
//! enqueues a `provisioning` job; the job runs [`Provisioner::converge`].
//!
//! Provisioning a new tenant is a sequence of steps, each idempotent, so a
//! crash after any step and the retry finish the same tenant:
//! 1. `started`: pending (or failed, on a replay) → provisioning;
//! 2. `storage`: starter/pro get their rows in the shared tables (under
//!    row-level security); enterprise gets its schema and role, built from
//!    the template and named after its id;
//! 3. `config`: default → tier → overrides, stored resolved;
//! 4. `queue`: its weight and in-flight cap on every queue, its Redis record;
//! 5. `api_key`: one key, issued only if it has none; the key waits in Redis
//!    to be shown once;
//! 6. `smoke_test`: write and read back in the tenant's own space, rolled back;
//! 7. `active`, with an event.
//!
//! Later changes re-run the same steps that apply (storage for a tier
//! change, config and queue for everything), so a repeated or late job
//! changes nothing more.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

use super::keys::TenantKeys;
use super::settings::{self, TenantSettings};
use super::store::{self, Tenant};
use super::{SchemaName, TenantStatus, Tier, api_key};
use crate::db::{self, DbError};
use crate::ids::TenantId;
use crate::kinds::provisioning::TenantAction;
use crate::queue::tenants::TenantPolicy;
use crate::queue::{FairQueue, QueueError};

/// The name of each provisioning step, in order, as recorded in
/// `tenants.provisioned_step` and the event log (`step:<name>`).
pub const STEPS: [&str; 7] = [
    "started",
    "storage",
    "config",
    "queue",
    "api_key",
    "smoke_test",
    "active",
];

/// How long a freshly issued key waits in Redis to be shown.
const NEW_KEY_TTL: Duration = Duration::from_secs(7 * 86_400);

/// Why a step failed. `Gone` and `Refused` are permanent (no retry can fix
/// them); the rest are transient.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The tenant row does not exist.
    #[error("tenant {0} does not exist (deleted by hand?); nothing to provision")]
    Gone(TenantId),
    /// The tenant is in a state this action cannot apply to.
    #[error("tenant {tenant} is {status}: {why}")]
    Refused {
        /// The tenant.
        tenant: TenantId,
        /// Its status.
        status: TenantStatus,
        /// What it means.
        why: &'static str,
    },
    /// PostgreSQL failed.
    #[error("step {step}: {source}")]
    Db {
        /// The step.
        step: &'static str,
        /// Why.
        #[source]
        source: DbError,
    },
    /// Redis failed.
    #[error("step {step}: {source}")]
    Redis {
        /// The step.
        step: &'static str,
        /// Why.
        #[source]
        source: QueueError,
    },
    /// Too early (a purge before the retention is over): retried later.
    #[error("{0}")]
    NotYet(String),
    /// The smoke test read back something else than it wrote.
    #[error("smoke test in the tenant's space failed: {0}")]
    Smoke(String),
}

impl ProvisionError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProvisionError::Gone(_) | ProvisionError::Refused { .. }
        )
    }
}

fn db_err(step: &'static str) -> impl Fn(DbError) -> ProvisionError {
    move |source| ProvisionError::Db { step, source }
}

fn sql_err(step: &'static str) -> impl Fn(sqlx::Error) -> ProvisionError {
    move |e| ProvisionError::Db {
        step,
        source: DbError::Query(e),
    }
}

fn redis_err(step: &'static str) -> impl Fn(redis::RedisError) -> ProvisionError {
    move |e| ProvisionError::Redis {
        step,
        source: QueueError::Redis {
            action: "tenant record",
            source: e,
        },
    }
}

/// What a converge did.
#[derive(Debug, Clone, PartialEq)]
pub struct Converged {
    /// The tenant's status afterwards.
    pub status: TenantStatus,
    /// Its tier.
    pub tier: Tier,
    /// Time from the tenant's creation to active, when this run activated it.
    pub provisioned_in: Option<Duration>,
}

/// Runs provisioning jobs: the database, and the queues whose weights and
/// caps it sets.
#[derive(Clone)]
pub struct Provisioner {
    db: PgPool,
    queues: Vec<FairQueue>,
    redis: ConnectionManager,
    keys: TenantKeys,
    /// Pause after each step (tests use it to crash a worker mid-way).
    step_pause: Duration,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("queues", &self.queues.len())
            .finish_non_exhaustive()
    }
}

impl Provisioner {
    /// A provisioner over `db` that sets tenant policies on every queue in
    /// `queues` (all the deployment's queues, not only those this worker
    /// consumes). Redis keys go under the queues' namespace.
    pub fn new(
        db: PgPool,
        queues: Vec<FairQueue>,
        redis: ConnectionManager,
        keys: TenantKeys,
    ) -> Self {
        Self {
            db,
            queues,
            redis,
            keys,
            step_pause: Duration::ZERO,
        }
    }

    /// Pauses after each provisioning step. For crash tests and demos: it
    /// widens the window in which a worker can die mid-provisioning.
    pub fn with_step_pause(mut self, pause: Duration) -> Self {
        self.step_pause = pause;
        self
    }

    /// Brings `tenant` to its stored state (see the module doc).
    pub async fn converge(
        &self,
        tenant: &TenantId,
        action: TenantAction,
    ) -> Result<Converged, ProvisionError> {
        let row = store::get(&self.db, tenant)
            .await
            .map_err(db_err("load"))?
            .ok_or_else(|| ProvisionError::Gone(tenant.clone()))?;
        match (action, row.status) {
            (TenantAction::Purge, TenantStatus::Deleted) => self.purge(&row).await,
            (TenantAction::Purge, status) => Ok(Converged {
                status,
                tier: row.tier,
                provisioned_in: None,
            }),
            (_, TenantStatus::Pending | TenantStatus::Provisioning | TenantStatus::Failed) => {
                self.provision(row).await
            }
            (_, TenantStatus::Deleted) => self.delete(&row).await,
            (_, TenantStatus::Active | TenantStatus::Suspended) => self.apply(&row).await,
        }
    }

    /// Every step, from wherever the last run stopped.
    async fn provision(&self, row: Tenant) -> Result<Converged, ProvisionError> {
        let tenant = row.tenant_id();
        let row = self.start(&tenant).await?;
        self.step_done(&tenant, "started").await?;
        self.storage(&row).await?;
        self.step_done(&tenant, "storage").await?;
        let settings = self.config(&row).await?;
        self.step_done(&tenant, "config").await?;
        self.queue(&row, &settings).await?;
        self.step_done(&tenant, "queue").await?;
        self.api_key(&tenant).await?;
        self.step_done(&tenant, "api_key").await?;
        self.smoke_test(&row).await?;
        self.step_done(&tenant, "smoke_test").await?;
        let provisioned_in = self.activate(&row).await?;
        Ok(Converged {
            status: TenantStatus::Active,
            tier: row.tier,
            provisioned_in,
        })
    }

    async fn start(&self, tenant: &TenantId) -> Result<Tenant, ProvisionError> {
        const STEP: &str = "started";
        let mut tx = self.db.begin().await.map_err(sql_err(STEP))?;
        let moved = sqlx::query(
            "UPDATE tenants SET status = 'provisioning', failure_reason = NULL, updated_at = now()
              WHERE id = $1 AND status IN ('pending', 'failed')",
        )
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await
        .map_err(sql_err(STEP))?;
        if moved.rows_affected() == 1 {
            store::event(
                &mut tx,
                tenant.as_str(),
                "provisioning",
                serde_json::json!({}),
            )
            .await
            .map_err(db_err(STEP))?;
        }
        tx.commit().await.map_err(sql_err(STEP))?;
        store::get(&self.db, tenant)
            .await
            .map_err(db_err(STEP))?
            .ok_or_else(|| ProvisionError::Gone(tenant.clone()))
    }

    async fn step_done(&self, tenant: &TenantId, step: &'static str) -> Result<(), ProvisionError> {
        let mut tx = self.db.begin().await.map_err(sql_err(step))?;
        sqlx::query("UPDATE tenants SET provisioned_step = $2 WHERE id = $1")
            .bind(tenant.as_str())
            .bind(step)
            .execute(&mut *tx)
            .await
            .map_err(sql_err(step))?;
        store::event(
            &mut tx,
            tenant.as_str(),
            &format!("step:{step}"),
            serde_json::json!({}),
        )
        .await
        .map_err(db_err(step))?;
        tx.commit().await.map_err(sql_err(step))?;
        if !self.step_pause.is_zero() {
            tokio::time::sleep(self.step_pause).await;
        }
        Ok(())
    }

    /// Starter/pro: the tenant's default portfolio in the shared tables.
    /// Enterprise: its schema, role and default portfolio; a tenant that
    /// changed tier has its rows moved to where its tier keeps them.
    async fn storage(&self, row: &Tenant) -> Result<(), ProvisionError> {
        const STEP: &str = "storage";
        let tenant = row.tenant_id();
        let schema = row.schema();
        match row.tier {
            Tier::Enterprise => {
                sqlx::query("SELECT provision_tenant_schema($1)")
                    .bind(schema.as_str())
                    .execute(&self.db)
                    .await
                    .map_err(sql_err(STEP))?;
                let mut tx = self.db.begin().await.map_err(sql_err(STEP))?;
                move_rows(&mut tx, &tenant, &schema, Direction::IntoSchema)
                    .await
                    .map_err(sql_err(STEP))?;
                sqlx::query("UPDATE tenants SET schema_name = $2 WHERE id = $1")
                    .bind(tenant.as_str())
                    .bind(schema.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(sql_err(STEP))?;
                tx.commit().await.map_err(sql_err(STEP))?;
                let mut tx = db::schema_transaction(&self.db, &schema)
                    .await
                    .map_err(db_err(STEP))?;
                sqlx::query(
                    "INSERT INTO portfolios (user_id, name)
                     SELECT '_tenant', 'default'
                      WHERE NOT EXISTS (SELECT 1 FROM portfolios WHERE user_id = '_tenant' AND name = 'default')",
                )
                .execute(&mut *tx)
                .await
                .map_err(sql_err(STEP))?;
                tx.commit().await.map_err(sql_err(STEP))?;
            }
            Tier::Starter | Tier::Pro => {
                if row.schema_name.is_some() {
                    let mut tx = self.db.begin().await.map_err(sql_err(STEP))?;
                    move_rows(&mut tx, &tenant, &schema, Direction::OutOfSchema)
                        .await
                        .map_err(sql_err(STEP))?;
                    sqlx::query("UPDATE tenants SET schema_name = NULL WHERE id = $1")
                        .bind(tenant.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(sql_err(STEP))?;
                    tx.commit().await.map_err(sql_err(STEP))?;
                    sqlx::query("SELECT drop_tenant_schema($1)")
                        .bind(schema.as_str())
                        .execute(&self.db)
                        .await
                        .map_err(sql_err(STEP))?;
                }
                let mut tx = db::tenant_transaction(&self.db, tenant.as_str())
                    .await
                    .map_err(db_err(STEP))?;
                sqlx::query(
                    "INSERT INTO portfolios (tenant_id, user_id, name)
                     SELECT $1, '_tenant', 'default'
                      WHERE NOT EXISTS (SELECT 1 FROM portfolios WHERE user_id = '_tenant' AND name = 'default')",
                )
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await
                .map_err(sql_err(STEP))?;
                tx.commit().await.map_err(sql_err(STEP))?;
            }
        }
        Ok(())
    }

    /// Resolves default → tier → overrides and stores the result.
    async fn config(&self, row: &Tenant) -> Result<TenantSettings, ProvisionError> {
        const STEP: &str = "config";
        let (tier, overrides): (serde_json::Value, serde_json::Value) = sqlx::query_as(
            "SELECT t.settings, c.overrides FROM tier_configs t, tenant_configs c
              WHERE t.tier = $1 AND c.tenant_id = $2",
        )
        .bind(row.tier)
        .bind(&row.id)
        .fetch_one(&self.db)
        .await
        .map_err(sql_err(STEP))?;
        let resolved = settings::resolve(&tier, &overrides);
        sqlx::query(
            "UPDATE tenant_configs SET resolved = $2, version = version + 1, updated_at = now()
              WHERE tenant_id = $1 AND resolved IS DISTINCT FROM $2",
        )
        .bind(&row.id)
        .bind(&resolved)
        .execute(&self.db)
        .await
        .map_err(sql_err(STEP))?;
        Ok(TenantSettings::from_resolved(&resolved))
    }

    /// The tenant's weight and cap on every queue, and its Redis record.
    async fn queue(&self, row: &Tenant, settings: &TenantSettings) -> Result<(), ProvisionError> {
        const STEP: &str = "queue";
        let tenant = row.tenant_id();
        let policy = TenantPolicy {
            weight: settings.queue_weight,
            cap: settings.max_in_flight,
        };
        for queue in &self.queues {
            queue
                .set_tenant_policy(&tenant, policy)
                .await
                .map_err(|source| ProvisionError::Redis { step: STEP, source })?;
        }
        let limit = settings
            .daily_enqueue_limit
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
        let mut conn = self.redis.clone();
        let _: () = redis::cmd("HSET")
            .arg(self.keys.record(&tenant))
            .arg("tier")
            .arg(row.tier.as_str())
            .arg("status")
            .arg(row.status.as_str())
            .arg("queue_weight")
            .arg(settings.queue_weight)
            .arg("max_in_flight")
            .arg(settings.max_in_flight)
            .arg("daily_enqueue_limit")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(redis_err(STEP))?;
        Ok(())
    }

    /// One API key per tenant. The secret goes to Redis (to be shown once)
    /// before its hash is committed, so a crash in between leaves no key
    /// that nobody can ever see: the retry issues one and overwrites it.
    async fn api_key(&self, tenant: &TenantId) -> Result<(), ProvisionError> {
        const STEP: &str = "api_key";
        let mut tx = self.db.begin().await.map_err(sql_err(STEP))?;
        // Serialises concurrent runs for this tenant (a stale lease's
        // worker still running while the retry starts).
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(sql_err(STEP))?;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_err(STEP))?;
        if live > 0 {
            return Ok(());
        }
        let key = api_key::ApiKey::generate();
        let mut conn = self.redis.clone();
        let _: () = redis::cmd("SET")
            .arg(self.keys.new_key(tenant))
            .arg(key.reveal())
            .arg("PX")
            .arg(NEW_KEY_TTL.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(redis_err(STEP))?;
        api_key::store(&mut tx, tenant, &key)
            .await
            .map_err(db_err(STEP))?;
        store::event(
            &mut tx,
            tenant.as_str(),
            "api_key_issued",
            serde_json::json!({"prefix": key.prefix()}),
        )
        .await
        .map_err(db_err(STEP))?;
        tx.commit().await.map_err(sql_err(STEP))?;
        Ok(())
    }

    /// Writes, reads back and rolls back a row in the tenant's own space,
    /// through the same scoping its requests will use.
    async fn smoke_test(&self, row: &Tenant) -> Result<(), ProvisionError> {
        const STEP: &str = "smoke_test";
        let tenant = row.tenant_id();
        let mut tx = match row.tier {
            Tier::Enterprise => db::schema_transaction(&self.db, &row.schema()).await,
            Tier::Starter | Tier::Pro => db::tenant_transaction(&self.db, tenant.as_str()).await,
        }
        .map_err(db_err(STEP))?;
        let insert = match row.tier {
            Tier::Enterprise => {
                "INSERT INTO portfolios (user_id, name) VALUES ('_smoke', $2) RETURNING id"
            }
            Tier::Starter | Tier::Pro => {
                "INSERT INTO portfolios (tenant_id, user_id, name) VALUES ($1, '_smoke', $2) RETURNING id"
            }
        };
        let marker = ulid::Ulid::new().to_string();
        let id: uuid::Uuid = sqlx::query_scalar(insert)
            .bind(tenant.as_str())
            .bind(&marker)
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_err(STEP))?;
        let read: Option<String> = sqlx::query_scalar("SELECT name FROM portfolios WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(sql_err(STEP))?;
        tx.rollback().await.map_err(sql_err(STEP))?;
        if read.as_deref() != Some(marker.as_str()) {
            return Err(ProvisionError::Smoke(format!(
                "wrote {marker}, read back {read:?}"
            )));
        }
        Ok(())
    }

    async fn activate(&self, row: &Tenant) -> Result<Option<Duration>, ProvisionError> {
        const STEP: &str = "active";
        let mut tx = self.db.begin().await.map_err(sql_err(STEP))?;
        let activated: Option<f64> = sqlx::query_scalar(
            "UPDATE tenants SET status = 'active', provisioned_step = 'active', updated_at = now(),
                    activated_at = coalesce(activated_at, now())
              WHERE id = $1 AND status = 'provisioning'
             RETURNING extract(epoch FROM (now() - created_at))::float8",
        )
        .bind(&row.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(sql_err(STEP))?;
        if let Some(seconds) = activated {
            store::event(
                &mut tx,
                &row.id,
                "activated",
                serde_json::json!({"tier": row.tier, "seconds": seconds}),
            )
            .await
            .map_err(db_err(STEP))?;
        }
        tx.commit().await.map_err(sql_err(STEP))?;
        self.set_record_status(&row.tenant_id(), TenantStatus::Active)
            .await?;
        Ok(activated.map(Duration::from_secs_f64))
    }

    async fn set_record_status(
        &self,
        tenant: &TenantId,
        status: TenantStatus,
    ) -> Result<(), ProvisionError> {
        let mut conn = self.redis.clone();
        let _: () = redis::cmd("HSET")
            .arg(self.keys.record(tenant))
            .arg("status")
            .arg(status.as_str())
            .query_async(&mut conn)
            .await
            .map_err(redis_err("record"))?;
        Ok(())
    }

    /// An active or suspended tenant: storage for its tier, its settings
    /// and its queue policy, as stored now.
    async fn apply(&self, row: &Tenant) -> Result<Converged, ProvisionError> {
        self.storage(row).await?;
        let settings = self.config(row).await?;
        self.queue(row, &settings).await?;
        Ok(Converged {
            status: row.status,
            tier: row.tier,
            provisioned_in: None,
        })
    }

    /// A soft-deleted tenant: its keys revoked and its record marked; the
    /// purge job (scheduled by the API) drops its data later.
    async fn delete(&self, row: &Tenant) -> Result<Converged, ProvisionError> {
        let tenant = row.tenant_id();
        api_key::revoke_all(&self.db, &tenant)
            .await
            .map_err(db_err("delete"))?;
        self.set_record_status(&tenant, TenantStatus::Deleted)
            .await?;
        Ok(Converged {
            status: TenantStatus::Deleted,
            tier: row.tier,
            provisioned_in: None,
        })
    }

    /// Drops a deleted tenant's data once its retention is over; early, it
    /// is a transient error, so the queue retries it later.
    async fn purge(&self, row: &Tenant) -> Result<Converged, ProvisionError> {
        const STEP: &str = "purge";
        let tenant = row.tenant_id();
        let due = row.purge_after.is_none_or(|at| at <= chrono::Utc::now());
        if !due {
            return Err(ProvisionError::NotYet(format!(
                "tenant {tenant}'s retention runs until {:?}; the purge retries later",
                row.purge_after
            )));
        }
        if row.schema_name.is_some() {
            sqlx::query("SELECT drop_tenant_schema($1)")
                .bind(row.schema().as_str())
                .execute(&self.db)
                .await
                .map_err(sql_err(STEP))?;
        }
        let mut tx = self.db.begin().await.map_err(sql_err(STEP))?;
        for table in ["trades", "positions", "market_data", "portfolios"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await
                .map_err(sql_err(STEP))?;
        }
        sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(sql_err(STEP))?;
        sqlx::query("UPDATE tenants SET schema_name = NULL, updated_at = now() WHERE id = $1")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(sql_err(STEP))?;
        store::event(&mut tx, tenant.as_str(), "purged", serde_json::json!({}))
            .await
            .map_err(db_err(STEP))?;
        tx.commit().await.map_err(sql_err(STEP))?;
        let mut conn = self.redis.clone();
        let _: () = redis::cmd("DEL")
            .arg(self.keys.record(&tenant))
            .arg(self.keys.new_key(&tenant))
            .query_async(&mut conn)
            .await
            .map_err(redis_err(STEP))?;
        Ok(Converged {
            status: TenantStatus::Deleted,
            tier: row.tier,
            provisioned_in: None,
        })
    }

    /// Records a failed provisioning after its last attempt: the tenant is
    /// `failed` with the reason (a replay of the dead job resumes it).
    pub async fn mark_failed(&self, tenant: &TenantId, reason: &str) -> Result<(), DbError> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE tenants SET status = 'failed', failure_reason = $2, updated_at = now()
              WHERE id = $1 AND status IN ('pending', 'provisioning')",
        )
        .bind(tenant.as_str())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 1 {
            store::event(
                &mut tx,
                tenant.as_str(),
                "failed",
                serde_json::json!({"reason": reason}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Which way a tier change moves a tenant's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Shared tables → its schema (upgrade to enterprise).
    IntoSchema,
    /// Its schema → shared tables (downgrade from enterprise).
    OutOfSchema,
}

/// Moves every trading row of `tenant` between the shared tables and its
/// schema, in one transaction (so a crash moves all or nothing), parents
/// before children on insert and children before parents on delete.
async fn move_rows(
    tx: &mut sqlx::PgConnection,
    tenant: &TenantId,
    schema: &SchemaName,
    direction: Direction,
) -> Result<(), sqlx::Error> {
    // (table, columns besides tenant_id)
    const TABLES: [(&str, &str); 4] = [
        (
            "portfolios",
            "id, user_id, name, description, is_active, created_at, updated_at",
        ),
        (
            "positions",
            "id, portfolio_id, symbol, quantity, avg_price, current_price, created_at, updated_at",
        ),
        (
            "trades",
            "id, portfolio_id, symbol, side, quantity, price, executed_at, created_at",
        ),
        ("market_data", "symbol, at, open, high, low, close, volume"),
    ];
    let s = schema.as_str();
    for (table, cols) in TABLES {
        let sql = match direction {
            Direction::IntoSchema => format!(
                "INSERT INTO \"{s}\".{table} ({cols}) SELECT {cols} FROM public.{table} WHERE tenant_id = $1"
            ),
            Direction::OutOfSchema => format!(
                "INSERT INTO public.{table} (tenant_id, {cols}) SELECT $1, {cols} FROM \"{s}\".{table}"
            ),
        };
        sqlx::query(&sql)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
    }
    for (table, _) in TABLES.iter().rev() {
        let sql = match direction {
            Direction::IntoSchema => format!("DELETE FROM public.{table} WHERE tenant_id = $1"),
            Direction::OutOfSchema => {
                format!("DELETE FROM \"{s}\".{table} WHERE $1::text IS NOT NULL")
            }
        };
        sqlx::query(&sql)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
