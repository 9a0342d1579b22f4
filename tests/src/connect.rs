//! Session hosts for the user-connect tests: simulators (real HTTP servers
//! on loopback, [`flotilla::connect::sim`]) registered in a test database,
//! heartbeating until a test lets one die, and a worker on `connect`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla::connect::hosts::{self, Registration};
use flotilla::connect::sim::SimHost;
use flotilla::connect::users;
use flotilla::ids::{HostId, JobId, Namespace, Region, TenantId, UserId};
use flotilla::queue::FairQueue;
use sqlx::PgPool;

use crate::processes::WorkerSpec;

/// The secret the tests' workers sign with and their hosts verify.
pub const SECRET: &str = "test-host-secret";

/// The heartbeat timeout of the tests' workers.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// A worker on `connect` with short heartbeat and sweep periods.
pub fn connect_worker(ns: &Namespace, db_url: &str, name: &str) -> WorkerSpec {
    WorkerSpec::new(&crate::redis_url(), ns, name)
        .env("QUEUES", "connect")
        .env("DATABASE_URL", db_url)
        .env("FLOTILLA_HOST_SECRET", SECRET)
        .env("FLOTILLA_HOST_HEARTBEAT_TIMEOUT", "2s")
        .env("FLOTILLA_CONNECT_SWEEP_EVERY", "200ms")
        .env("FLOTILLA_HOST_CALL_TIMEOUT", "2s")
}

/// The `connect` queue of namespace `ns`.
pub async fn connect_queue(ns: &Namespace) -> FairQueue {
    crate::queue_in(ns, "connect").await
}

/// Running simulated hosts, registered, heartbeating every 200 ms until
/// [`Fleet::kill`] or [`Fleet::silence`].
pub struct Fleet {
    /// The simulators, by index (`host-0`, `host-1`, ...).
    pub sims: Vec<Option<SimHost>>,
    ids: Vec<String>,
    beating: Arc<Mutex<HashSet<String>>>,
    heart: tokio::task::JoinHandle<()>,
}

impl Fleet {
    /// `n` hosts of capacity `capacity`, registered in `pool` as `host-0`...
    pub async fn start(pool: &PgPool, n: usize, capacity: u32) -> Fleet {
        Self::start_named(pool, "host", n, capacity).await
    }

    /// [`Fleet::start`], the hosts named `<prefix>-0`...
    pub async fn start_named(pool: &PgPool, prefix: &str, n: usize, capacity: u32) -> Fleet {
        let mut sims = Vec::new();
        let mut ids = Vec::new();
        let beating = Arc::new(Mutex::new(HashSet::new()));
        for i in 0..n {
            let sim = SimHost::start(Some(SECRET.into()))
                .await
                .expect("a simulated host starts");
            let id = format!("{prefix}-{i}");
            ids.push(id.clone());
            hosts::register(
                pool,
                &Registration {
                    id: HostId::parse(&id).unwrap(),
                    endpoint: sim.endpoint(),
                    capacity,
                    region: Region::parse("test").unwrap(),
                },
                HEARTBEAT_TIMEOUT,
            )
            .await
            .expect("register a host");
            beating.lock().unwrap().insert(id);
            sims.push(Some(sim));
        }
        let heart = tokio::spawn({
            let (pool, beating) = (pool.clone(), beating.clone());
            async move {
                loop {
                    let ids: Vec<String> = beating.lock().unwrap().iter().cloned().collect();
                    for id in ids {
                        let _ = hosts::heartbeat(
                            &pool,
                            &HostId::parse(&id).unwrap(),
                            HEARTBEAT_TIMEOUT,
                        )
                        .await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        Fleet {
            sims,
            ids,
            beating,
            heart,
        }
    }

    /// Simulator `i`.
    pub fn sim(&self, i: usize) -> &SimHost {
        self.sims[i].as_ref().expect("the host is alive")
    }

    /// Host `i` stops heartbeating (and keeps answering).
    pub fn silence(&self, i: usize) {
        self.beating.lock().unwrap().remove(&self.ids[i]);
    }

    /// Host `i` dies: no more heartbeats, connections refused.
    pub async fn kill(&mut self, i: usize) {
        self.silence(i);
        if let Some(sim) = self.sims[i].take() {
            sim.stop().await;
        }
    }

    /// Users every live simulator holds, in total.
    pub fn held(&self) -> usize {
        self.sims.iter().flatten().map(SimHost::held).sum()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.heart.abort();
    }
}

/// User `u-<i>`.
pub fn user(i: usize) -> UserId {
    UserId::parse(&format!("u-{i}")).unwrap()
}

/// Asks for users `0..n` of `tenant` to connect, as the API does; their jobs.
pub async fn request_connects(
    pool: &PgPool,
    queue: &FairQueue,
    tenant: &TenantId,
    n: usize,
) -> Vec<JobId> {
    let mut jobs = Vec::new();
    for i in 0..n {
        let done = users::connect(pool, queue, tenant, &user(i))
            .await
            .expect("a connect request");
        jobs.push(done.job.expect("a new request enqueues a job"));
    }
    jobs
}

/// A count from `sql` (one bigint).
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("a count")
}

/// Waits up to `limit` until exactly `n` users are connected; panics with
/// `log()` (the worker's log) otherwise.
pub async fn wait_connected(pool: &PgPool, n: i64, limit: Duration, log: impl Fn() -> String) {
    crate::processes::wait_for(limit, &format!("{n} users connected"), log, || async {
        (count(
            pool,
            "SELECT count(*) FROM user_connections WHERE state = 'connected'",
        )
        .await
            == n)
            .then_some(())
    })
    .await;
}

/// Users connected, by host id.
pub async fn connected_by_host(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT host_id, count(*) FROM user_connections WHERE state = 'connected' GROUP BY host_id ORDER BY host_id",
    )
    .fetch_all(pool)
    .await
    .expect("counts by host")
}

/// Each host's stored load, by id.
pub async fn loads(pool: &PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT id, load FROM session_hosts ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("host loads")
}
