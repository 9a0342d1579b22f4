//! The Redis key layout of one queue. Every key starts with the hash tag
//! `{<namespace>:<queue>}`, so all of a queue's keys live in one Redis
//! Cluster slot and each Lua script touches one slot. The table is in
//! ARCHITECTURE.md; the Lua side builds the same names from the prefix.

use crate::ids::{Namespace, QueueName, TenantId};

/// The fields of a job, each kept in its own hash ([`QueueKeys::job_field`]);
/// the same list as `FIELDS` in `shared/lua/prelude.lua`.
pub const JOB_FIELDS: [&str; 13] = [
    "tenant",
    "state",
    "attempts",
    "max_attempts",
    "enqueued_at",
    "ready_at",
    "run_at",
    "lease",
    "finished_at",
    "last_error",
    "idem",
    "replays",
    "replayed_at",
];

/// Key names for one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    prefix: String,
}

impl QueueKeys {
    /// The member of `leases` that is not a job (see `shared/lua/prelude.lua`:
    /// it keeps the set skiplist-encoded); readers of `leases` skip it.
    pub const LEASES_PIN: &'static str =
        "~pin: not a job; keeps this sorted set a skiplist, which is faster at this size~";

    /// The keys of `queue` under `namespace`.
    pub fn new(namespace: &Namespace, queue: &QueueName) -> Self {
        Self {
            prefix: format!("{{{namespace}:{queue}}}:"),
        }
    }

    /// `{ns:queue}:`, the prefix of every key of the queue.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Hash: the virtual clock, the fencing-token counter and lifetime counters.
    pub fn meta(&self) -> String {
        self.key("meta")
    }
    /// Hash: job id → one field of the job (`tenant`, `state`, `attempts`,
    /// `lease` = `<token>:<started_at>:<worker>`, ...; see [`JOB_FIELDS`]). One hash per field lets a script
    /// read or write a field of a whole batch of jobs with one call.
    pub fn job_field(&self, field: &str) -> String {
        self.key(&format!("job:{field}"))
    }
    /// Hash: job id → payload.
    pub fn payloads(&self) -> String {
        self.key("payloads")
    }
    /// Hash: job id → error history (JSON array, the last 20 failures).
    pub fn history(&self) -> String {
        self.key("history")
    }
    /// List: one entry per settle, `<expires ms> <id> <id> ...`: done jobs
    /// by when their records may be deleted, oldest first.
    pub fn done_batches(&self) -> String {
        self.key("done_batches")
    }
    /// List: a tenant's pending job ids, FIFO.
    pub fn tenant_queue(&self, tenant: &TenantId) -> String {
        self.key(&format!("tq:{tenant}"))
    }
    /// Hash: a tenant's weight, cap, in-flight count and parked virtual time.
    pub fn tenant(&self, tenant: &TenantId) -> String {
        self.key(&format!("tenant:{tenant}"))
    }
    /// Sorted set: claimable tenants by virtual time.
    pub fn ready(&self) -> String {
        self.key("ready")
    }
    /// Set: tenants with pending work at their in-flight cap.
    pub fn blocked(&self) -> String {
        self.key("blocked")
    }
    /// Sorted set: running job ids by lease deadline, plus
    /// [`QueueKeys::LEASES_PIN`] at +inf.
    pub fn leases(&self) -> String {
        self.key("leases")
    }
    /// Sorted set: delayed and retrying job ids by due time.
    pub fn scheduled(&self) -> String {
        self.key("scheduled")
    }
    /// Sorted set: dead job ids by the time they died.
    pub fn dead(&self) -> String {
        self.key("dead")
    }
    /// Sorted set: workers consuming the queue by last heartbeat.
    pub fn workers(&self) -> String {
        self.key("workers")
    }
    /// Hash: what a worker said about itself at its last heartbeat.
    pub fn worker(&self, name: &str) -> String {
        self.key(&format!("worker:{name}"))
    }
    /// Pub/sub channel: published when work becomes claimable.
    pub fn wake_channel(&self) -> String {
        self.key("wake")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_queue_hash_tag() {
        let keys = QueueKeys::new(
            &Namespace::parse("flotilla").unwrap(),
            &QueueName::parse("bench").unwrap(),
        );
        let tenant = TenantId::parse("acme").unwrap();
        for key in [
            keys.meta(),
            keys.job_field("state"),
            keys.payloads(),
            keys.tenant_queue(&tenant),
            keys.dead(),
            keys.wake_channel(),
        ] {
            assert!(key.starts_with("{flotilla:bench}:"), "{key}");
        }
    }

    #[test]
    fn the_leases_pin_is_the_scripts_and_long_enough_to_force_a_skiplist() {
        let prelude = include_str!("../../lua/prelude.lua");
        assert!(prelude.contains(&format!("local LEASES_PIN = '{}'", QueueKeys::LEASES_PIN)));
        // Redis keeps a sorted set with a member over 64 bytes (the default
        // zset-max-listpack-value) as a skiplist.
        assert!(QueueKeys::LEASES_PIN.len() > 64);
    }
}
