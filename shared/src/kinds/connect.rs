//! The `connect` queue: put a tenant's user on a session host, take them
//! off, or move them to another host. The payload names the user; the job's
//! tenant is the user's. Jobs come from `/v1/users/{id}/connect|disconnect`,
//! host drains and the failover sweep, never from `/v1/jobs`: the job acts
//! on the request stored in `user_connections`, which it re-reads.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobKind;
use crate::ids::{HostId, UserId};
use crate::retry::RetryPolicy;

/// User connect.
#[derive(Debug, Clone, Copy)]
pub struct Connect;

/// What the job does for its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectAction {
    /// Put the user on a host (nothing if already connected).
    Connect,
    /// Take the user off their host.
    Disconnect,
    /// Put the user on another host than `from` (offline or draining).
    Move,
}

impl ConnectAction {
    /// The action's name, as in idempotency keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectAction::Connect => "connect",
            ConnectAction::Disconnect => "disconnect",
            ConnectAction::Move => "move",
        }
    }
}

/// One connect job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectJob {
    /// What to do.
    pub action: ConnectAction,
    /// Whom for.
    pub user: UserId,
    /// For a move: the host the user leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<HostId>,
}

impl JobKind for Connect {
    const QUEUE: &'static str = "connect";
    // Fed by the users' and hosts' routes and the sweep, which know the user's state.
    const ENQUEUED_BY_API: bool = false;
    type Payload = ConnectJob;

    fn retry_policy() -> RetryPolicy {
        // A host restarting or a fleet without free capacity recovers in
        // minutes: twelve attempts over about eight minutes, then the user
        // shows as failed with the reason (a new request starts over).
        RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_attempts: 12,
        }
    }

    fn validate(job: &ConnectJob) -> Result<(), String> {
        match (job.action, &job.from) {
            (ConnectAction::Move, None) => {
                Err("a move names the host the user leaves: \"from\"".into())
            }
            (ConnectAction::Connect | ConnectAction::Disconnect, Some(_)) => {
                Err("only a move names a \"from\" host".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kinds::validate_payload;
    use serde_json::json;

    #[test]
    fn a_move_must_name_the_host_it_leaves() {
        let err =
            validate_payload("connect", &json!({"action": "move", "user": "u1"})).unwrap_err();
        assert!(err.to_string().contains("from"), "{err}");
        validate_payload(
            "connect",
            &json!({"action": "move", "user": "u1", "from": "host-a"}),
        )
        .unwrap();
    }

    #[test]
    fn a_hostile_user_id_is_refused() {
        let err = validate_payload("connect", &json!({"action": "connect", "user": "a b/../c"}))
            .unwrap_err();
        assert!(err.to_string().contains("user id"), "{err}");
    }
}
