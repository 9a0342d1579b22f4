//! Session hosts as the fleet knows them: registered with an endpoint, a
//! capacity and a region; live while they heartbeat; drained on request.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use super::{Endpoint, HostStatus, millis};
use crate::ids::{HostId, Region};

/// What a host says about itself when it registers.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Its id, stable across restarts.
    pub id: HostId,
    /// Where it takes `/connect` and `/disconnect`.
    pub endpoint: Endpoint,
    /// The most users it holds.
    pub capacity: u32,
    /// Where it runs.
    pub region: Region,
}

/// The most users one host may declare.
pub const MAX_CAPACITY: u32 = 1_000_000;

impl Registration {
    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(format!(
                "capacity {} is out of range; a host holds 1 to {MAX_CAPACITY} users",
                self.capacity
            ));
        }
        Ok(())
    }
}

/// A host as stored, with what follows from its heartbeat.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Host {
    /// Its id.
    pub id: String,
    /// Its base URL.
    pub endpoint: String,
    /// Where it runs.
    pub region: String,
    /// The most users it holds.
    pub capacity: i32,
    /// Users holding a place on it now.
    pub load: i32,
    /// As stored: live, draining or offline.
    pub status: HostStatus,
    /// Whether it takes new users now: live and heartbeating.
    pub accepting: bool,
    /// Whether its heartbeat is younger than the timeout.
    pub heartbeating: bool,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
    /// Last heartbeat, RFC 3339.
    pub last_heartbeat: String,
}

const HOST_COLUMNS: &str = "id, endpoint, region, capacity, load, status, \
    (status = 'live' AND last_heartbeat > now() - $1 * interval '1 millisecond') AS accepting, \
    (last_heartbeat > now() - $1 * interval '1 millisecond') AS heartbeating, \
    (extract(epoch FROM now() - last_heartbeat) * 1000)::bigint AS heartbeat_age_ms, \
    to_char(last_heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS last_heartbeat";

/// Registers a host, or updates it when it registers again (a restart or a
/// redeploy): it is live from now, with the new endpoint and capacity. A
/// registration also ends a drain: the host is a fresh process.
pub async fn register(
    pool: &PgPool,
    host: &Registration,
    timeout: Duration,
) -> Result<Host, sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_hosts (id, endpoint, region, capacity) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET endpoint = EXCLUDED.endpoint, region = EXCLUDED.region, \
         capacity = EXCLUDED.capacity, status = 'live', last_heartbeat = now()",
    )
    .bind(host.id.as_str())
    .bind(host.endpoint.as_str())
    .bind(host.region.as_str())
    .bind(host.capacity as i32)
    .execute(pool)
    .await?;
    Ok(find(pool, &host.id, timeout)
        .await?
        .expect("the host was just written"))
}

/// Records a heartbeat; an offline host is live again. `None`: unknown host.
pub async fn heartbeat(
    pool: &PgPool,
    id: &HostId,
    timeout: Duration,
) -> Result<Option<Host>, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE session_hosts SET last_heartbeat = now(), \
         status = CASE status WHEN 'offline' THEN 'live'::session_host_status ELSE status END \
         WHERE id = $1",
    )
    .bind(id.as_str())
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    find(pool, id, timeout).await
}

/// Marks a host draining: no new users; the sweep (and the caller, see
/// [`super::sweep::enqueue_moves`]) moves its users off. `None`: unknown host.
pub async fn drain(
    pool: &PgPool,
    id: &HostId,
    timeout: Duration,
) -> Result<Option<Host>, sqlx::Error> {
    sqlx::query(
        "UPDATE session_hosts SET status = 'draining', epoch = epoch + 1 \
         WHERE id = $1 AND status <> 'draining'",
    )
    .bind(id.as_str())
    .execute(pool)
    .await?;
    find(pool, id, timeout).await
}

/// One host.
pub async fn find(
    pool: &PgPool,
    id: &HostId,
    timeout: Duration,
) -> Result<Option<Host>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOST_COLUMNS} FROM session_hosts WHERE id = $2"
    ))
    .bind(millis(timeout))
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
}

/// Every host, by id.
pub async fn list(pool: &PgPool, timeout: Duration) -> Result<Vec<Host>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOST_COLUMNS} FROM session_hosts ORDER BY id"
    ))
    .bind(millis(timeout))
    .fetch_all(pool)
    .await
}
