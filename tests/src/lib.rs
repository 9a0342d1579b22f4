//! Helpers shared by the end-to-end tests: real Redis (from `REDIS_URL`,
//! started by `deploy/local/test`), a fresh key namespace per test so tests
//! run in parallel without sharing state.

use flotilla::ids::{Namespace, QueueName, TenantId};
use flotilla::queue::{Clock, FairQueue, QueueSettings};

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| {
        panic!("REDIS_URL is not set: run the tests with deploy/local/test, which starts Redis and PostgreSQL")
    })
}

/// A namespace no other test uses.
pub fn fresh_namespace() -> Namespace {
    Namespace::parse(&format!(
        "t{}",
        ulid::Ulid::new().to_string().to_lowercase()
    ))
    .unwrap()
}

/// A tenant id from a literal.
pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// A connection to the test Redis.
pub async fn redis() -> redis::aio::ConnectionManager {
    flotilla::redis_conn::connect(&redis_url())
        .await
        .expect("test Redis is reachable")
        .1
}

/// A queue in a fresh namespace, with a manual clock starting at 1,000,000 ms.
pub async fn manual_queue(settings: QueueSettings) -> (FairQueue, Clock) {
    let clock = Clock::manual(1_000_000);
    let queue = FairQueue::new(
        redis().await,
        &fresh_namespace(),
        QueueName::parse("bench").unwrap(),
        settings,
    )
    .with_clock(clock.clone());
    (queue, clock)
}

/// A queue in a fresh namespace on the Redis clock.
pub async fn live_queue(settings: QueueSettings) -> FairQueue {
    FairQueue::new(
        redis().await,
        &fresh_namespace(),
        QueueName::parse("bench").unwrap(),
        settings,
    )
}

/// Real `flotilla-worker` and private `redis-server` processes, with HTTP
/// probes and job-state waits (used by `tests/worker_process.rs`).
pub mod processes;

/// The PostgreSQL server the tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with deploy/local/test, which starts Redis and PostgreSQL")
    })
}

/// A new, empty database of its own on the test server, migrated, so tests
/// run in parallel without sharing rows.
pub async fn fresh_database() -> sqlx::PgPool {
    let server = database_url();
    let admin = flotilla::db::connect(&server)
        .await
        .expect("test PostgreSQL is reachable");
    drop_stale_test_databases(&admin).await;
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    let pool = flotilla::db::connect(&format!("{base}/{name}"))
        .await
        .expect("connect to the test database");
    flotilla::db::migrate(&pool)
        .await
        .expect("migrations apply");
    pool
}

/// Test databases are named after a ULID; those over an hour old belong to
/// finished runs and are dropped, so a developer's server does not fill up.
async fn drop_stale_test_databases(admin: &sqlx::PgPool) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 't\\_%'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for name in names {
        let stale = name
            .strip_prefix("t_")
            .and_then(|id| ulid::Ulid::from_string(&id.to_uppercase()).ok())
            .is_some_and(|id| id.datetime() < hour_ago);
        if stale {
            // Another test binary may race to drop the same one: ignore errors.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(admin)
                .await;
        }
    }
}
