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
