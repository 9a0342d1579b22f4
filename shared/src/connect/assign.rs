//! The pick: a user goes to the live, non-draining host with free capacity
//! that is least loaded (by the share of its capacity in use), in one
//! statement that also moves the user's place (the load trigger keeps
//! `session_hosts.load` in step).
//!
//! Why a transaction-scoped advisory lock around it: without one, two
//! concurrent picks read the same loads and choose the same host (the
//! balance drifts), and row locks with SKIP LOCKED make a pick fail while
//! others hold every host. Serialising the picks costs one short statement
//! each (about 2 ms), far below what a call to a host takes, and makes both
//! the capacity and the balance exact.

use std::time::Duration;

use sqlx::{Postgres, Transaction};

use super::{Endpoint, millis};
use crate::ids::{HostId, TenantId, UserId};

/// The advisory lock every pick takes ("flotilla" in ASCII).
const PICK_LOCK: i64 = 0x666c_6f74_696c_6c61;

/// Where a user was placed.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The host.
    pub host: HostId,
    /// Its base URL.
    pub endpoint: Endpoint,
}

/// Moves `user` of `tenant` (whose row the transaction holds) to the least
/// loaded host that takes users, other than `avoid`. `None`: no host has
/// free capacity (the user keeps its place, if any).
pub async fn place(
    tx: &mut Transaction<'static, Postgres>,
    tenant: &TenantId,
    user: &UserId,
    avoid: Option<&HostId>,
    heartbeat_timeout: Duration,
) -> Result<Option<Placed>, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PICK_LOCK)
        .execute(&mut **tx)
        .await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "WITH pick AS ( \
             SELECT id, endpoint FROM session_hosts \
             WHERE status = 'live' AND last_heartbeat > now() - $3 * interval '1 millisecond' \
               AND load < capacity AND id IS DISTINCT FROM $4 \
             ORDER BY load::float8 / capacity, load, id LIMIT 1) \
         UPDATE user_connections u SET host_id = pick.id, state = 'assigning', \
                reason = NULL, updated_at = now() \
         FROM pick WHERE u.tenant_id = $1 AND u.user_id = $2 \
         RETURNING pick.id, pick.endpoint",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(millis(heartbeat_timeout))
    .bind(avoid.map(HostId::as_str))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(host, endpoint)| Placed {
        host: HostId::parse(&host).expect("stored host ids passed the same check"),
        endpoint: Endpoint::parse(&endpoint).expect("stored endpoints passed the same check"),
    }))
}
