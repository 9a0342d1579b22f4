//! A user's connection as the API sees it: a request (connect, disconnect)
//! is stored first, then its job is enqueued. If the enqueue fails (Redis
//! down), the stored request is still there and the sweep re-enqueues it
//! ([`super::sweep`]), so a request is never lost.

use serde::Serialize;
use sqlx::PgPool;

use super::ConnectionState;
use crate::ids::{IdempotencyKey, JobId, TenantId, UserId};
use crate::job::NewJob;
use crate::kinds::JobKind;
use crate::kinds::connect::{Connect, ConnectAction, ConnectJob};
use crate::queue::{FairQueue, QueueError};

/// A user's connection.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Connection {
    /// The tenant.
    pub tenant: String,
    /// The user.
    pub user: String,
    /// What the user asked for last: `connected` or `disconnected`.
    pub want: String,
    /// Where it stands.
    pub state: ConnectionState,
    /// The host holding (or about to hold) the user.
    pub host: Option<String>,
    /// Why it failed, or what a retrying job last saw.
    pub reason: Option<String>,
    /// Host calls made for the current request.
    pub attempts: i32,
    /// Last change, RFC 3339.
    pub updated_at: String,
    /// When the host accepted the user, RFC 3339.
    pub connected_at: Option<String>,
}

const CONNECTION_COLUMNS: &str = "tenant_id AS tenant, user_id AS \"user\", want, state, host_id AS host, reason, attempts, \
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS updated_at, \
    to_char(connected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS connected_at";

/// What a request did.
#[derive(Debug, Clone, Serialize)]
pub struct Requested {
    /// The connection after the request.
    pub connection: Connection,
    /// The job enqueued for it; `None` when nothing had to change (already
    /// connected or connecting; already disconnected).
    pub job: Option<JobId>,
}

/// Why a request could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The database failed.
    #[error("the database failed: {0}")]
    Db(#[from] sqlx::Error),
    /// The request is stored but its job could not be enqueued; the sweep
    /// enqueues it within FLOTILLA_CONNECT_STUCK_AFTER.
    #[error(
        "the request is stored but its job could not be enqueued ({0}); it will be retried automatically"
    )]
    Queue(#[from] QueueError),
}

/// One connection.
pub async fn find(
    pool: &PgPool,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Option<Connection>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM user_connections WHERE tenant_id = $1 AND user_id = $2"
    ))
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await
}

/// Asks for `user` to be connected: stores the request and enqueues its
/// job, unless the user is connected or connecting already.
pub async fn connect(
    pool: &PgPool,
    queue: &FairQueue,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Requested, RequestError> {
    let changed: Option<i64> = sqlx::query_scalar(
        "INSERT INTO user_connections (tenant_id, user_id, want, state) \
         VALUES ($1, $2, 'connected', 'assigning') \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET want = 'connected', \
             state = CASE WHEN user_connections.state = 'connected' THEN 'connected'::connection_state \
                          ELSE 'assigning'::connection_state END, \
             reason = NULL, attempts = 0, requested_at = now(), updated_at = now() \
         WHERE user_connections.want <> 'connected' \
            OR user_connections.state NOT IN ('connected', 'assigning') \
         RETURNING (extract(epoch FROM requested_at) * 1000000)::bigint",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await?;
    let job = match changed {
        Some(at) => Some(enqueue(queue, tenant, user, ConnectAction::Connect, at).await?),
        None => None,
    };
    let connection = find(pool, tenant, user)
        .await?
        .expect("the row was just written");
    Ok(Requested { connection, job })
}

/// Asks for `user` to be disconnected. `None`: the user was never connected.
pub async fn disconnect(
    pool: &PgPool,
    queue: &FairQueue,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Option<Requested>, RequestError> {
    // A user without a place is disconnected at once; one with a place
    // waits for the job that tells its host.
    let changed: Option<(ConnectionState, i64)> = sqlx::query_as(
        "UPDATE user_connections SET want = 'disconnected', reason = NULL, attempts = 0, \
             state = CASE WHEN host_id IS NULL THEN 'disconnected'::connection_state \
                          ELSE 'disconnecting'::connection_state END, \
             requested_at = now(), updated_at = now() \
         WHERE tenant_id = $1 AND user_id = $2 \
           AND (want <> 'disconnected' OR state NOT IN ('disconnected', 'disconnecting')) \
         RETURNING state, (extract(epoch FROM requested_at) * 1000000)::bigint",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await?;
    let job = match changed {
        Some((ConnectionState::Disconnecting, at)) => {
            Some(enqueue(queue, tenant, user, ConnectAction::Disconnect, at).await?)
        }
        _ => None,
    };
    Ok(find(pool, tenant, user)
        .await?
        .map(|connection| Requested { connection, job }))
}

/// Enqueues the job of `user`'s request made at `at` (see [`enqueue_many`]).
async fn enqueue(
    queue: &FairQueue,
    tenant: &TenantId,
    user: &UserId,
    action: ConnectAction,
    at: i64,
) -> Result<JobId, QueueError> {
    Ok(
        enqueue_many(queue, &[(tenant.clone(), user.clone(), action, None, at)])
            .await?
            .remove(0),
    )
}

/// One request to enqueue: tenant, user, action, the host left (moves), the key's instant.
pub type JobRequest = (
    TenantId,
    UserId,
    ConnectAction,
    Option<crate::ids::HostId>,
    i64,
);

/// Enqueues many jobs in batches, each keyed by its request (`at`,
/// microseconds; for moves, the host's epoch) so the API, the drain and any
/// number of sweeping replicas enqueue a request's job once.
pub async fn enqueue_many(
    queue: &FairQueue,
    requests: &[JobRequest],
) -> Result<Vec<JobId>, QueueError> {
    let jobs: Vec<NewJob> = requests
        .iter()
        .map(|(tenant, user, action, from, at)| {
            let payload = ConnectJob {
                action: *action,
                user: user.clone(),
                from: from.clone(),
            };
            let key = match from {
                Some(host) => format!("{}:{user}:{host}:{at}", action.as_str()),
                None => format!("{}:{user}:{at}", action.as_str()),
            };
            NewJob::new(
                tenant.clone(),
                serde_json::to_string(&payload).expect("connect jobs serialize"),
                Connect::retry_policy().max_attempts,
            )
            .idempotency_key(
                IdempotencyKey::parse(&key).expect("user and host ids are printable ASCII"),
            )
        })
        .collect();
    let out = queue.enqueue_batch(&jobs).await?;
    metrics::counter!(crate::telemetry::names::JOBS_ENQUEUED, "queue" => Connect::QUEUE).increment(
        out.iter()
            .filter(|e| matches!(e, crate::queue::enqueue::Enqueued::New(_)))
            .count() as u64,
    );
    Ok(out.iter().map(|e| e.id()).collect())
}
