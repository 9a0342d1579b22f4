//! A benchmark's own PostgreSQL database (migrated) and Redis namespace,
//! both removed when the run ends, so a benchmark never touches real data.

use anyhow::Context as _;
use flotilla::ids::{Namespace, QueueName};
use flotilla::queue::{FairQueue, QueueSettings};
use redis::aio::ConnectionManager;
use sqlx::PgPool;

/// The run's database and namespace.
pub struct Scratch {
    admin: PgPool,
    name: String,
    conn: ConnectionManager,
    /// The run's database.
    pub pool: PgPool,
    /// Its URL, for the worker processes.
    pub url: String,
    /// The run's Redis namespace.
    pub namespace: Namespace,
}

impl Scratch {
    /// A new database on `database_url`'s server and a namespace on
    /// `redis_url`, both named `bench-<what>-<ulid>`.
    pub async fn open(database_url: &str, redis_url: &str, what: &str) -> anyhow::Result<Self> {
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let admin = flotilla::db::connect(database_url).await?;
        let name = format!("bench_{id}");
        // The name is ours (a ULID), never input.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .context(
                "creating the benchmark's database (does DATABASE_URL's user have CREATEDB?)",
            )?;
        let base = database_url
            .rsplit_once('/')
            .map_or(database_url, |(base, _)| base);
        let url = format!("{base}/{name}");
        let pool = flotilla::db::connect(&url).await?;
        flotilla::db::migrate(&pool).await?;
        let namespace = Namespace::parse(&format!("bench-{what}-{id}"))?;
        let (_, conn) = flotilla::redis_conn::connect(redis_url).await?;
        Ok(Self {
            admin,
            name,
            conn,
            pool,
            url,
            namespace,
        })
    }

    /// Queue `name` in the run's namespace.
    pub fn queue(&self, name: &str) -> anyhow::Result<FairQueue> {
        Ok(FairQueue::new(
            self.conn.clone(),
            &self.namespace,
            QueueName::parse(name)?,
            QueueSettings::default(),
        ))
    }

    /// Drops the database and deletes the namespace's keys.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await;
        let mut conn = self.conn;
        super::unlink_matching(&mut conn, &format!("{{{}:*", self.namespace), |_| true).await
    }
}
