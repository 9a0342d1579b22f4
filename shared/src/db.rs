//! PostgreSQL, the system of record: the pool, the embedded migrations, and
//! transactions scoped to one tenant.
//!
//! Row-level security on the shared trading tables keys on
//! `app.tenant_id`. It is set with `set_config(.., true)` inside a
//! transaction, so it ends with the transaction: a plain `SET` would stay on
//! the pooled connection and leak to its next user. The transaction also
//! runs as the role `flotilla_tenant`, because superusers (and roles with
//! BYPASSRLS) are not bound by row-level security even when it is FORCEd.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::ids::InvalidId;

/// Why the database could not be used. Each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Cannot connect.
    #[error(
        "cannot connect to PostgreSQL at {url} (is DATABASE_URL right and the server up? `deploy/local/services up` starts one)"
    )]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migrating the database failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] sqlx::Error),
    /// A tenant id that cannot be in scope.
    #[error(transparent)]
    Tenant(#[from] InvalidId),
}

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Hides the password in a PostgreSQL URL for messages.
pub fn redact(url: &str) -> String {
    crate::redis_conn::redact(url)
}

/// A pool on `url`; connections time out instead of hanging.
pub async fn connect(url: &str) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            url: redact(url),
            source,
        })
}

/// A pool of up to `max_connections` on `url` that connects on first use, so a process that may never
/// touch PostgreSQL (a worker on the bench queue) starts without it. A URL
/// that cannot be parsed is refused at once.
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(url)
        .map_err(|source| DbError::Connect {
            url: redact(url),
            source,
        })
}

/// Applies every migration not applied yet (a no-op when up to date).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    // Roles are cluster-wide, while the migrator locks one database: two
    // databases of one server migrated at once (parallel test binaries,
    // benchmarks' scratch databases) would race to create the migrations'
    // role. Create it here first, tolerating that race.
    sqlx::query(
        "DO $$ BEGIN
             IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flotilla_tenant') THEN
                 CREATE ROLE flotilla_tenant NOLOGIN NOBYPASSRLS;
             END IF;
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
         END $$",
    )
    .execute(pool)
    .await?;
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Begins a transaction that sees and writes only `tenant`'s rows of the
/// shared tables. The scope ends with the transaction, commit or rollback.
pub async fn tenant_transaction(
    pool: &PgPool,
    tenant: &str,
) -> Result<Transaction<'static, Postgres>, DbError> {
    // Tenant ids are lowercase ULIDs (see migrations); anything else is refused
    // before it reaches the database.
    if tenant.len() != 26
        || !tenant
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return Err(InvalidId::new(
            "tenant id",
            tenant,
            "a tenant id is a lowercase ULID of 26 characters",
        )
        .into());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL ROLE flotilla_tenant")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Begins a transaction scoped to an enterprise tenant's own schema: it
/// runs as the schema's role (which can reach nothing else a tenant owns)
/// with the schema first on the search path.
pub async fn schema_transaction(
    pool: &PgPool,
    schema: &crate::tenancy::SchemaName,
) -> Result<Transaction<'static, Postgres>, DbError> {
    let mut tx = pool.begin().await?;
    // SchemaName's alphabet is [t_0-9a-z]: quoting is belt and braces.
    let name = schema.as_str();
    sqlx::query(&format!("SET LOCAL ROLE \"{name}\""))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("SET LOCAL search_path TO \"{name}\""))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
