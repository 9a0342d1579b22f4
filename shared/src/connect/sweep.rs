//! Failover, run periodically by every worker on the `connect` queue. Each
//! step is safe to run on many replicas at once: marking hosts offline is
//! one UPDATE (each host is claimed by one replica), and the jobs enqueued
//! carry keys of the event they answer (the host's epoch, the request's
//! time), so a repeated sweep enqueues nothing new.
//!
//! 1. Hosts whose heartbeat expired are marked offline.
//! 2. Users on offline or draining hosts get a move job.
//! 3. Users assigning or disconnecting with no progress for
//!    `stuck_after` (their job was lost) get their job again.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use super::users::{JobRequest, enqueue_many};
use super::{ConnectionState, millis};
use crate::ids::{HostId, TenantId, UserId};
use crate::kinds::connect::ConnectAction;
use crate::queue::FairQueue;

/// What one sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Swept {
    /// Hosts marked offline now.
    pub offline: Vec<String>,
    /// Move jobs enqueued (or already queued).
    pub moves: usize,
    /// Jobs re-enqueued for stuck users.
    pub requeued: usize,
}

/// Why a sweep failed (the next one tries again).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The database failed.
    #[error("the database failed: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis failed.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

/// Runs the three steps once.
pub async fn sweep(
    pool: &PgPool,
    queue: &FairQueue,
    heartbeat_timeout: Duration,
    stuck_after: Duration,
) -> Result<Swept, SweepError> {
    let offline: Vec<String> = sqlx::query_scalar(
        "UPDATE session_hosts SET status = 'offline', epoch = epoch + 1 \
         WHERE status <> 'offline' AND last_heartbeat <= now() - $1 * interval '1 millisecond' \
         RETURNING id",
    )
    .bind(millis(heartbeat_timeout))
    .fetch_all(pool)
    .await?;
    for host in &offline {
        tracing::warn!(
            host,
            "session host missed its heartbeat; marked offline, moving its users"
        );
    }
    let moves = enqueue_moves(pool, queue, None).await?;
    let requeued = requeue_stuck(pool, queue, stuck_after).await?;
    Ok(Swept {
        offline,
        moves,
        requeued,
    })
}

/// Enqueues a move for every user wanting a connection on an offline or
/// draining host (only `host`'s, if given); how many.
pub async fn enqueue_moves(
    pool: &PgPool,
    queue: &FairQueue,
    host: Option<&HostId>,
) -> Result<usize, SweepError> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT u.tenant_id, u.user_id, h.id, h.epoch FROM user_connections u \
         JOIN session_hosts h ON h.id = u.host_id \
         WHERE h.status <> 'live' AND u.want = 'connected' AND ($1::text IS NULL OR h.id = $1)",
    )
    .bind(host.map(HostId::as_str))
    .fetch_all(pool)
    .await?;
    let requests: Vec<JobRequest> = rows
        .into_iter()
        .filter_map(|(tenant, user, host, epoch)| {
            Some((
                TenantId::parse(&tenant).ok()?,
                UserId::parse(&user).ok()?,
                ConnectAction::Move,
                Some(HostId::parse(&host).ok()?),
                epoch,
            ))
        })
        .collect();
    enqueue_many(queue, &requests).await?;
    Ok(requests.len())
}

/// Re-enqueues the job of every user stuck assigning or disconnecting.
async fn requeue_stuck(
    pool: &PgPool,
    queue: &FairQueue,
    stuck_after: Duration,
) -> Result<usize, SweepError> {
    let rows: Vec<(String, String, ConnectionState, i64)> = sqlx::query_as(
        "SELECT tenant_id, user_id, state, (extract(epoch FROM updated_at) * 1000000)::bigint \
         FROM user_connections \
         WHERE state IN ('assigning', 'disconnecting') \
           AND updated_at <= now() - $1 * interval '1 millisecond' \
         LIMIT 10000",
    )
    .bind(millis(stuck_after))
    .fetch_all(pool)
    .await?;
    let requests: Vec<JobRequest> = rows
        .into_iter()
        .filter_map(|(tenant, user, state, at)| {
            let action = if state == ConnectionState::Disconnecting {
                ConnectAction::Disconnect
            } else {
                ConnectAction::Connect
            };
            Some((
                TenantId::parse(&tenant).ok()?,
                UserId::parse(&user).ok()?,
                action,
                None,
                at,
            ))
        })
        .collect();
    if !requests.is_empty() {
        tracing::warn!(
            count = requests.len(),
            "users stuck without progress; re-enqueued their jobs"
        );
    }
    enqueue_many(queue, &requests).await?;
    Ok(requests.len())
}

/// The fleet's connect figures, for gauges.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// Hosts by stored status (offline includes expired ones not yet swept).
    pub hosts: Vec<(&'static str, i64)>,
    /// Free places on hosts that take users.
    pub free: i64,
    /// Users by state.
    pub users: Vec<(ConnectionState, i64)>,
}

/// Counts hosts, free capacity and users.
pub async fn census(pool: &PgPool, heartbeat_timeout: Duration) -> Result<Census, sqlx::Error> {
    let (live, draining, offline, free): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'live' AND fresh), \
                count(*) FILTER (WHERE status = 'draining'), \
                count(*) FILTER (WHERE status = 'offline' OR (status = 'live' AND NOT fresh)), \
                coalesce(sum(greatest(capacity - load, 0)) FILTER (WHERE status = 'live' AND fresh), 0)::bigint \
         FROM (SELECT *, last_heartbeat > now() - $1 * interval '1 millisecond' AS fresh FROM session_hosts) h",
    )
    .bind(millis(heartbeat_timeout))
    .fetch_one(pool)
    .await?;
    let counted: Vec<(ConnectionState, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM user_connections GROUP BY state")
            .fetch_all(pool)
            .await?;
    let users = ConnectionState::ALL
        .iter()
        .map(|s| {
            (
                *s,
                counted.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n),
            )
        })
        .collect();
    Ok(Census {
        hosts: vec![("live", live), ("draining", draining), ("offline", offline)],
        free,
        users,
    })
}
