//! What a `connect` job does. Each action re-reads the user's row (locked
//! while it decides), so a job that is stale (the user asked for something
//! else since), repeated or late does nothing; the host is called outside
//! any transaction, and the outcome is recorded only if the row still
//! points at that host.

use std::time::Duration;

use sqlx::PgPool;

use super::assign::{Placed, place};
use super::host_client::{Answer, Call, HostClient};
use super::{ConnectionState, Endpoint, HostStatus, millis};
use crate::ids::{HostId, TenantId, UserId};

/// What a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The host accepted the user.
    Connected {
        /// The host.
        host: HostId,
        /// The host the user left (a move).
        left: Option<HostId>,
    },
    /// The user was connected already: nothing changed.
    AlreadyConnected(HostId),
    /// The host let the user go (or was gone already).
    Disconnected,
    /// The user asked for something else since, or is elsewhere already.
    Stale(&'static str),
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No live host has free capacity: retried later.
    #[error("no live session host has free capacity; register hosts or raise their capacity")]
    NoCapacity,
    /// The host failed in a way worth retrying (5xx, timeout, unreachable).
    #[error("session host {host}: {detail}")]
    Host {
        /// The host.
        host: HostId,
        /// What happened.
        detail: String,
    },
    /// The host refused with a 4xx: final.
    #[error("session host {host} refused with {status}: {message}")]
    Refused {
        /// The host.
        host: HostId,
        /// Its status code.
        status: u16,
        /// Its answer.
        message: String,
    },
    /// The database failed: retried.
    #[error("the database failed: {0}")]
    Db(#[from] sqlx::Error),
}

impl RunError {
    /// Whether no retry can help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RunError::Refused { .. })
    }
}

/// Runs connect jobs: the database, the host client, the heartbeat timeout.
#[derive(Debug, Clone)]
pub struct Connector {
    db: PgPool,
    hosts: HostClient,
    heartbeat_timeout: Duration,
}

/// The user's row and their host, as a job sees them under the row lock.
#[derive(Debug, sqlx::FromRow)]
struct Current {
    want: String,
    state: ConnectionState,
    host_id: Option<String>,
    endpoint: Option<String>,
    host_status: Option<HostStatus>,
    heartbeating: Option<bool>,
}

impl Current {
    fn host(&self) -> Option<HostId> {
        self.host_id
            .as_deref()
            .map(|h| HostId::parse(h).expect("stored host ids are valid"))
    }

    fn endpoint(&self) -> Option<Endpoint> {
        self.endpoint
            .as_deref()
            .map(|e| Endpoint::parse(e).expect("stored endpoints are valid"))
    }

    /// Whether the user may stay on its current host: it is up, and not
    /// the one a move leaves.
    fn host_usable(&self, avoid: Option<&HostId>) -> bool {
        self.host_id.is_some()
            && self.host_status != Some(HostStatus::Offline)
            && self.heartbeating == Some(true)
            && avoid.is_none_or(|a| self.host_id.as_deref() != Some(a.as_str()))
    }
}

impl Connector {
    /// A connector over `db`, calling hosts with `hosts`.
    pub fn new(db: PgPool, hosts: HostClient, heartbeat_timeout: Duration) -> Self {
        Self {
            db,
            hosts,
            heartbeat_timeout,
        }
    }

    async fn lock(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Current>, sqlx::Error> {
        sqlx::query_as(
            "SELECT u.want, u.state, u.host_id, h.endpoint, h.status AS host_status, \
                    (h.last_heartbeat > now() - $3 * interval '1 millisecond') AS heartbeating \
             FROM user_connections u LEFT JOIN session_hosts h ON h.id = u.host_id \
             WHERE u.tenant_id = $1 AND u.user_id = $2 FOR UPDATE OF u",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(millis(self.heartbeat_timeout))
        .fetch_optional(&mut **tx)
        .await
    }

    /// Puts the user on a host, or keeps them where they are if that host
    /// is up; `avoid` is the host a move leaves.
    pub async fn connect(
        &self,
        tenant: &TenantId,
        user: &UserId,
        avoid: Option<&HostId>,
    ) -> Result<Done, RunError> {
        let mut tx = self.db.begin().await?;
        let Some(current) = self.lock(&mut tx, tenant, user).await? else {
            return Ok(Done::Stale("no connect request is stored for this user"));
        };
        if current.want != "connected" {
            return Ok(Done::Stale("the user asked to disconnect since"));
        }
        let usable = current.host_usable(avoid);
        if current.state == ConnectionState::Connected && usable {
            let host = current.host().expect("a usable host is set");
            return Ok(if avoid.is_some() {
                Done::Stale("the user was moved already")
            } else {
                Done::AlreadyConnected(host)
            });
        }
        let left = current.host().filter(|_| !usable);
        let left_draining = left.is_some()
            && current.host_status == Some(HostStatus::Draining)
            && current.heartbeating == Some(true);
        let left_endpoint = current.endpoint();
        let placed = if usable {
            Placed {
                host: current.host().expect("a usable host is set"),
                endpoint: current.endpoint().expect("a usable host has an endpoint"),
            }
        } else {
            // A move never goes back to the host it leaves, even if that
            // host heartbeats again meanwhile.
            let avoid = avoid.or(left.as_ref());
            match place(&mut tx, tenant, user, avoid, self.heartbeat_timeout).await? {
                Some(placed) => placed,
                None => {
                    // A user still held by a draining host stays connected
                    // there until a place frees up elsewhere.
                    let held = current.state == ConnectionState::Connected && left_draining;
                    sqlx::query(
                        "UPDATE user_connections SET reason = $3, updated_at = now(), \
                             state = CASE WHEN $4 THEN state ELSE 'assigning'::connection_state END \
                         WHERE tenant_id = $1 AND user_id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .bind(RunError::NoCapacity.to_string())
                    .bind(held)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Err(RunError::NoCapacity);
                }
            }
        };
        sqlx::query("UPDATE user_connections SET attempts = attempts + 1 WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;

        match self
            .hosts
            .call(&placed.endpoint, Call::Connect, tenant, user)
            .await
        {
            Answer::Done => {
                let recorded = sqlx::query(
                    "UPDATE user_connections SET state = 'connected', reason = NULL, \
                         connected_at = now(), updated_at = now() \
                     WHERE tenant_id = $1 AND user_id = $2 AND host_id = $3 AND want = 'connected'",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(placed.host.as_str())
                .execute(&self.db)
                .await?;
                if recorded.rows_affected() == 0 {
                    // Disconnected or moved while the host was answering:
                    // the host must not keep a session nobody tracks.
                    let _ = self
                        .hosts
                        .call(&placed.endpoint, Call::Disconnect, tenant, user)
                        .await;
                    return Ok(Done::Stale(
                        "the user was disconnected or moved during the call",
                    ));
                }
                if let (true, Some(endpoint)) = (left_draining, left_endpoint) {
                    // Make before break: the draining host lets the user go
                    // once the new one holds them; if it cannot, it is
                    // going away anyway.
                    if let Answer::Retry(e) | Answer::Refused(_, e) = self
                        .hosts
                        .call(&endpoint, Call::Disconnect, tenant, user)
                        .await
                    {
                        tracing::warn!(%tenant, %user, error = %e, "the draining host did not take the disconnect");
                    }
                }
                Ok(Done::Connected {
                    host: placed.host,
                    left,
                })
            }
            Answer::Retry(detail) => {
                self.note(tenant, user, &detail).await?;
                Err(RunError::Host {
                    host: placed.host,
                    detail,
                })
            }
            Answer::Refused(status, message) => {
                let e = RunError::Refused {
                    host: placed.host,
                    status,
                    message,
                };
                self.fail(tenant, user, &e.to_string()).await?;
                Err(e)
            }
        }
    }

    /// Takes the user off their host. A host that is offline is not called:
    /// its sessions went with it.
    pub async fn disconnect(&self, tenant: &TenantId, user: &UserId) -> Result<Done, RunError> {
        let mut tx = self.db.begin().await?;
        let Some(current) = self.lock(&mut tx, tenant, user).await? else {
            return Ok(Done::Stale("no such user"));
        };
        if current.want != "disconnected" {
            return Ok(Done::Stale("the user asked to connect since"));
        }
        let (Some(host), Some(endpoint)) = (current.host(), current.endpoint()) else {
            sqlx::query(
                "UPDATE user_connections SET state = 'disconnected', updated_at = now() \
                 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Done::Disconnected);
        };
        let reachable =
            current.host_status != Some(HostStatus::Offline) && current.heartbeating == Some(true);
        tx.commit().await?;
        if reachable {
            match self
                .hosts
                .call(&endpoint, Call::Disconnect, tenant, user)
                .await
            {
                // 404: the host does not hold the user: as good as done.
                Answer::Done | Answer::Refused(404, _) => {}
                Answer::Retry(detail) => {
                    self.note(tenant, user, &detail).await?;
                    return Err(RunError::Host { host, detail });
                }
                Answer::Refused(status, message) => {
                    let e = RunError::Refused {
                        host,
                        status,
                        message,
                    };
                    self.fail(tenant, user, &e.to_string()).await?;
                    return Err(e);
                }
            }
        }
        sqlx::query(
            "UPDATE user_connections SET state = 'disconnected', host_id = NULL, reason = NULL, \
                 connected_at = NULL, updated_at = now() \
             WHERE tenant_id = $1 AND user_id = $2 AND host_id = $3 AND want = 'disconnected'",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(host.as_str())
        .execute(&self.db)
        .await?;
        Ok(Done::Disconnected)
    }

    /// Records what a retrying job last saw (and that it is alive).
    async fn note(
        &self,
        tenant: &TenantId,
        user: &UserId,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE user_connections SET reason = $3, updated_at = now() WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(reason)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The job gives up: the user is failed, with why, and holds no place.
    pub async fn fail(
        &self,
        tenant: &TenantId,
        user: &UserId,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE user_connections SET state = 'failed', host_id = NULL, reason = $3, \
                 connected_at = NULL, updated_at = now() \
             WHERE tenant_id = $1 AND user_id = $2 AND state IN ('assigning', 'disconnecting')",
        )
        .bind(tenant.as_str())
        .bind(user.as_str())
        .bind(reason)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}
