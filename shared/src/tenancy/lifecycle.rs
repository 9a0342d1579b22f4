//! What an operator asks of a tenant (create, change tier, suspend,
//! reactivate, configure, delete), shared by `/v1/tenants` and
//! `flotilla-producer tenants`. Each request writes the wanted state to
//! PostgreSQL, then enqueues a `provisioning` job with a natural
//! idempotency key, so a retried request enqueues nothing new. The
//! [`Lifecycle::reconcile`] pass re-enqueues tenants whose job was lost.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde_json::{Map, Value};
use sqlx::PgPool;

use super::keys::TenantKeys;
use super::settings::{self, InvalidOverride};
use super::store::{self, Created, NewTenant, Tenant};
use super::{TenantStatus, Tier};
use crate::db::DbError;
use crate::ids::{IdempotencyKey, JobId, TenantId};
use crate::job::NewJob;
use crate::kinds::JobKind;
use crate::kinds::provisioning::{Provisioning, TenantAction, TenantJob};
use crate::queue::enqueue::Enqueued;
use crate::queue::{FairQueue, QueueError};

/// Why a request about a tenant cannot be done. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No such tenant.
    #[error("no tenant {0:?}; `flotilla-producer tenants list` shows them")]
    NotFound(String),
    /// The slug is taken by a tenant created with other settings.
    #[error(
        "slug {slug:?} belongs to tenant {id}, created with another name, tier or config; choose another slug"
    )]
    SlugTaken {
        /// The slug.
        slug: String,
        /// Its tenant.
        id: String,
    },
    /// The change does not apply to the tenant's status.
    #[error("tenant {id} is {status}; {what}")]
    WrongStatus {
        /// The tenant.
        id: String,
        /// Its status.
        status: TenantStatus,
        /// What can be done instead.
        what: &'static str,
    },
    /// Bad config overrides.
    #[error(transparent)]
    Override(#[from] InvalidOverride),
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Redis failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for LifecycleError {
    fn from(e: sqlx::Error) -> Self {
        LifecycleError::Db(DbError::Query(e))
    }
}

/// A change to an existing tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Move to another tier (upgrade or downgrade).
    Tier(Tier),
    /// Refuse its enqueues; reads still work.
    Suspend,
    /// Active again after a suspension.
    Reactivate,
    /// Replace its config overrides.
    Overrides(Map<String, Value>),
}

/// The answer to a request: the tenant as stored now, and its job.
#[derive(Debug, Clone)]
pub struct Requested {
    /// The tenant.
    pub tenant: Tenant,
    /// The provisioning job that applies the request.
    pub job: Option<JobId>,
    /// False when the request repeated an earlier one (nothing new enqueued).
    pub new: bool,
}

/// Tenant requests over a database and the provisioning queue.
#[derive(Clone)]
pub struct Lifecycle {
    db: PgPool,
    queue: FairQueue,
    redis: ConnectionManager,
    keys: TenantKeys,
    /// How long a deleted tenant's data is kept before its purge.
    pub retention: Duration,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// Requests on `db`, enqueuing on `provisioning` (the `provisioning` queue).
    pub fn new(db: PgPool, provisioning: FairQueue, keys: TenantKeys, retention: Duration) -> Self {
        let redis = provisioning.connection();
        Self {
            db,
            queue: provisioning,
            redis,
            keys,
            retention,
        }
    }

    /// The database.
    pub fn db(&self) -> &PgPool {
        &self.db
    }

    /// Creates a tenant (or finds the one an identical request made) and
    /// enqueues its provisioning.
    pub async fn create(&self, new: &NewTenant) -> Result<Requested, LifecycleError> {
        settings::check_overrides(&new.overrides)?;
        let (tenant, new_row) = match store::create(&self.db, new).await? {
            Created::New(t) => (t, true),
            Created::Existing(t) => (t, false),
            Created::SlugTaken(t) => {
                return Err(LifecycleError::SlugTaken {
                    slug: t.slug,
                    id: t.id,
                });
            }
        };
        // The natural key: one provisioning job per tenant, however many
        // times the request is repeated.
        let key = format!("tenant:{}:provision", tenant.id);
        let job = match tenant.status {
            TenantStatus::Pending | TenantStatus::Provisioning => Some(
                self.enqueue(&tenant, TenantAction::Provision, &key, None)
                    .await?,
            ),
            _ => None,
        };
        Ok(Requested {
            tenant,
            job,
            new: new_row,
        })
    }

    /// Applies `change` to the tenant `id_or_slug`.
    pub async fn change(
        &self,
        id_or_slug: &str,
        change: Change,
    ) -> Result<Requested, LifecycleError> {
        let before = self.find(id_or_slug).await?;
        let id = before.id.clone();
        let wrong = |what| LifecycleError::WrongStatus {
            id: id.clone(),
            status: before.status,
            what,
        };
        let (sql, action, detail): (&str, TenantAction, Value) = match &change {
            Change::Tier(tier) => {
                if matches!(before.status, TenantStatus::Deleted) {
                    return Err(wrong("a deleted tenant cannot change tier"));
                }
                (
                    "UPDATE tenants SET tier = $2::tenant_tier, updated_at = now() WHERE id = $1 AND tier <> $2::tenant_tier",
                    TenantAction::ChangeTier,
                    serde_json::json!({"from": before.tier, "to": tier}),
                )
            }
            Change::Suspend => {
                if !matches!(
                    before.status,
                    TenantStatus::Active | TenantStatus::Suspended
                ) {
                    return Err(wrong("only an active tenant can be suspended"));
                }
                (
                    "UPDATE tenants SET status = 'suspended', suspended_at = now(), updated_at = now() WHERE id = $1 AND status = 'active' AND $2::text IS NOT NULL",
                    TenantAction::Suspend,
                    Value::Null,
                )
            }
            Change::Reactivate => {
                if !matches!(
                    before.status,
                    TenantStatus::Active | TenantStatus::Suspended
                ) {
                    return Err(wrong(
                        "only a suspended tenant can be reactivated (a failed one: replay its dead provisioning job)",
                    ));
                }
                (
                    "UPDATE tenants SET status = 'active', suspended_at = NULL, updated_at = now() WHERE id = $1 AND status = 'suspended' AND $2::text IS NOT NULL",
                    TenantAction::Reactivate,
                    Value::Null,
                )
            }
            Change::Overrides(overrides) => {
                settings::check_overrides(overrides)?;
                if matches!(before.status, TenantStatus::Deleted) {
                    return Err(wrong("a deleted tenant cannot be configured"));
                }
                (
                    "UPDATE tenant_configs SET overrides = $2::jsonb, updated_at = now() WHERE tenant_id = $1 AND overrides <> $2::jsonb",
                    TenantAction::Configure,
                    Value::Object(overrides.clone()),
                )
            }
        };
        let bound = match &change {
            Change::Tier(tier) => tier.as_str().to_owned(),
            Change::Overrides(o) => Value::Object(o.clone()).to_string(),
            Change::Suspend | Change::Reactivate => "-".to_owned(),
        };
        let mut tx = self.db.begin().await?;
        let changed = sqlx::query(sql)
            .bind(&id)
            .bind(&bound)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if changed {
            if matches!(change, Change::Overrides(_)) {
                sqlx::query("UPDATE tenants SET updated_at = now() WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
            store::event(&mut tx, &id, action.as_str(), detail).await?;
        }
        tx.commit().await?;
        let tenant = self.find(&id).await?;
        // A repeat of a change already made enqueues nothing; a change is
        // keyed by the tenant's version (updated_at), so a retried request
        // finds the same key and the next change a new one.
        let job = if changed {
            let key = format!(
                "tenant:{id}:{}:{}",
                action.as_str(),
                tenant.updated_at.timestamp_micros()
            );
            Some(self.enqueue(&tenant, action, &key, None).await?)
        } else {
            None
        };
        Ok(Requested {
            tenant,
            job,
            new: changed,
        })
    }

    /// Soft-deletes a tenant: its keys stop working at once; its data is
    /// purged after the retention by a scheduled job.
    pub async fn delete(&self, id_or_slug: &str) -> Result<Requested, LifecycleError> {
        let before = self.find(id_or_slug).await?;
        let mut tx = self.db.begin().await?;
        let changed = sqlx::query(
            "UPDATE tenants SET status = 'deleted', deleted_at = now(), updated_at = now(),
                    purge_after = now() + make_interval(secs => $2)
              WHERE id = $1 AND status <> 'deleted'",
        )
        .bind(&before.id)
        .bind(self.retention.as_secs_f64())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            store::event(&mut tx, &before.id, "deleted", Value::Null).await?;
        }
        tx.commit().await?;
        let tenant = self.find(&before.id).await?;
        let mut job = None;
        if changed {
            let key = format!("tenant:{}:delete", tenant.id);
            job = Some(
                self.enqueue(&tenant, TenantAction::Delete, &key, None)
                    .await?,
            );
            let purge_at = tenant
                .purge_after
                .map(|at| at.timestamp_millis().max(0) as u64);
            let key = format!("tenant:{}:purge", tenant.id);
            self.enqueue(&tenant, TenantAction::Purge, &key, purge_at)
                .await?;
        }
        Ok(Requested {
            tenant,
            job,
            new: changed,
        })
    }

    /// Finds a tenant by id or slug.
    pub async fn find(&self, id_or_slug: &str) -> Result<Tenant, LifecycleError> {
        store::find(&self.db, id_or_slug)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(id_or_slug.chars().take(64).collect()))
    }

    /// The tenant's new API key, once: the first call after provisioning
    /// issued it returns it and forgets it.
    pub async fn take_new_key(&self, tenant: &TenantId) -> Result<Option<String>, LifecycleError> {
        let mut conn = self.redis.clone();
        let key: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.new_key(tenant))
            .query_async(&mut conn)
            .await
            .map_err(|source| QueueError::Redis {
                action: "take the new API key",
                source,
            })?;
        Ok(key)
    }

    /// Re-enqueues provisioning for tenants stuck in pending or
    /// provisioning for longer than `stuck_for` (their job was lost with
    /// Redis, or never enqueued because the producer died between the
    /// insert and the enqueue). Returns the tenants re-enqueued. Safe to run
    /// from many replicas: the job's key is the same natural key.
    pub async fn reconcile(&self, stuck_for: Duration) -> Result<Vec<TenantId>, LifecycleError> {
        let stuck: Vec<Tenant> = sqlx::query_as(&format!(
            "SELECT {} FROM tenants
              WHERE status IN ('pending', 'provisioning')
                AND updated_at < now() - make_interval(secs => $1)
              ORDER BY updated_at LIMIT 1000",
            store::COLUMNS
        ))
        .bind(stuck_for.as_secs_f64())
        .fetch_all(&self.db)
        .await?;
        let mut requeued = Vec::new();
        for tenant in stuck {
            let key = format!("tenant:{}:provision", tenant.id);
            let fresh = self
                .enqueue_fresh(&tenant, TenantAction::Provision, &key)
                .await?;
            if fresh {
                requeued.push(tenant.tenant_id());
            }
        }
        Ok(requeued)
    }

    async fn enqueue(
        &self,
        tenant: &Tenant,
        action: TenantAction,
        key: &str,
        run_at_ms: Option<u64>,
    ) -> Result<JobId, LifecycleError> {
        let (id, _) = self.enqueue_with(tenant, action, key, run_at_ms).await?;
        Ok(id)
    }

    /// Enqueues; true when a job will run (a new one, or the earlier one
    /// under the same key replayed from the dead letter, where a worker
    /// that died on the last attempt left it without marking the tenant).
    async fn enqueue_fresh(
        &self,
        tenant: &Tenant,
        action: TenantAction,
        key: &str,
    ) -> Result<bool, LifecycleError> {
        let (id, new) = self.enqueue_with(tenant, action, key, None).await?;
        if new {
            return Ok(true);
        }
        let dead = self
            .queue
            .job(id)
            .await?
            .is_some_and(|job| job.state == crate::job::JobState::Dead);
        Ok(dead && self.queue.replay(&[id]).await?.first() == Some(&true))
    }

    async fn enqueue_with(
        &self,
        tenant: &Tenant,
        action: TenantAction,
        key: &str,
        run_at_ms: Option<u64>,
    ) -> Result<(JobId, bool), LifecycleError> {
        let payload = TenantJob {
            tenant: tenant.tenant_id(),
            action,
        };
        let payload = serde_json::to_string(&payload).expect("a tenant job serializes");
        let key = IdempotencyKey::parse(key).expect("natural keys are valid idempotency keys");
        let mut job = NewJob::new(
            tenant.tenant_id(),
            payload,
            Provisioning::retry_policy().max_attempts,
        )
        .idempotency_key(key);
        if let Some(at) = run_at_ms {
            job = job.run_at_ms(at);
        }
        Ok(match self.queue.enqueue(job).await? {
            Enqueued::New(id) => (id, true),
            Enqueued::Duplicate(id) | Enqueued::Conflict(id) => (id, false),
        })
    }
}
