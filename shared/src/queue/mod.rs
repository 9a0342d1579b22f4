//! The fair, durable Redis queue.
//!
//! `FairQueue` is a handle on one named queue: cheap to clone, it shares one
//! multiplexed, self-reconnecting Redis connection. Every state change is one
//! Lua script in `shared/lua/` (see [`scripts`]); reads are plain commands.
//!
//! - [`enqueue`]: single and batch enqueue with idempotency keys and delays
//! - [`lease`]: the fair batch claim, lease extension and settling outcomes
//! - [`inspect`]: job status by id and queue depth
//! - [`dead`]: the dead letter: list, replay, purge
//! - [`tenants`]: per-tenant weight and in-flight cap
//! - [`workers`]: the registry of live workers

pub mod dead;
pub mod enqueue;
pub mod inspect;
pub mod keys;
pub mod lease;
mod scripts;
pub mod tenants;
pub mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Script, ScriptInvocation, Value};
use thiserror::Error;

use crate::ids::{Namespace, QueueName};
pub use keys::QueueKeys;

/// What can go wrong talking to the queue.
#[derive(Debug, Error)]
pub enum QueueError {
    /// Redis could not be reached or answered with an error. Transient:
    /// callers retry, the connection reconnects by itself.
    #[error("Redis {action} failed: {source} (is REDIS_URL right and Redis up?)")]
    Redis {
        /// What the queue was doing.
        action: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A script answered in a shape this build does not expect: a bug, or a
    /// fleet running two incompatible versions.
    #[error("unexpected reply from the {script} script: {detail}")]
    Protocol {
        /// The script.
        script: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl QueueError {
    /// True when retrying later may succeed (every Redis error is; a protocol
    /// mismatch is not).
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Redis { .. })
    }
}

pub(crate) fn redis_err(action: &'static str) -> impl FnOnce(redis::RedisError) -> QueueError {
    move |source| QueueError::Redis { action, source }
}

/// Where scripts take "now" from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The Redis server's clock: one clock for the whole fleet, whatever the
    /// workers' clocks say.
    #[default]
    Redis,
    /// A clock the caller moves (tests of backoff, leases and retention).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start_ms`.
    pub fn manual(start_ms: u64) -> Self {
        Clock::Manual(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves a manual clock forward; no effect on the Redis clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(now) = self {
            now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }

    fn arg(&self) -> String {
        match self {
            Clock::Redis => String::new(),
            Clock::Manual(now) => now.load(Ordering::SeqCst).to_string(),
        }
    }
}

/// Tunables of a queue. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// How long a claimed job is leased before another worker may take it;
    /// running jobs extend it every third of this.
    pub lease: Duration,
    /// How long finished jobs stay readable by id.
    pub finished_ttl: Duration,
    /// Dead-letter retention: at most this many jobs...
    pub dead_max: u64,
    /// ...and none older than this.
    pub dead_ttl: Duration,
    /// How long an idempotency key remembers its first job.
    pub idempotency_ttl: Duration,
    /// Most scheduled jobs promoted, or expired leases reaped, per script call.
    pub upkeep_batch: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            finished_ttl: Duration::from_secs(3600),
            dead_max: 100_000,
            dead_ttl: Duration::from_secs(7 * 24 * 3600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            upkeep_batch: 100,
        }
    }
}

/// A handle on one queue.
#[derive(Clone)]
pub struct FairQueue {
    conn: ConnectionManager,
    name: QueueName,
    keys: QueueKeys,
    settings: Arc<QueueSettings>,
    clock: Clock,
}

impl std::fmt::Debug for FairQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairQueue")
            .field("prefix", &self.keys.prefix())
            .finish()
    }
}

impl FairQueue {
    /// A handle on `queue` under `namespace`, over `conn`.
    pub fn new(
        conn: ConnectionManager,
        namespace: &Namespace,
        queue: QueueName,
        settings: QueueSettings,
    ) -> Self {
        Self {
            conn,
            keys: QueueKeys::new(namespace, &queue),
            name: queue,
            settings: Arc::new(settings),
            clock: Clock::Redis,
        }
    }

    /// The same queue, with "now" taken from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &QueueName {
        &self.name
    }

    /// The queue's key names.
    pub fn keys(&self) -> &QueueKeys {
        &self.keys
    }

    /// The queue's tunables.
    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// The clock the queue's scripts use.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A connection handle (a clone of the shared multiplexed connection).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Starts a script call with the header every script expects (see
    /// `shared/lua/prelude.lua`).
    fn invocation<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let s = &self.settings;
        let mut inv = script.key(self.keys.meta());
        inv.arg(self.keys.prefix())
            .arg(self.clock.arg())
            .arg(s.lease.as_millis() as u64)
            .arg(s.finished_ttl.as_millis() as u64)
            .arg(s.dead_max)
            .arg(s.dead_ttl.as_millis() as u64);
        inv
    }

    async fn run<T: FromRedisValue>(
        &self,
        action: &'static str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        inv.invoke_async(&mut conn).await.map_err(redis_err(action))
    }

    /// The current time on the queue's clock, in ms.
    pub async fn now_ms(&self) -> Result<u64, QueueError> {
        match &self.clock {
            Clock::Manual(now) => Ok(now.load(Ordering::SeqCst)),
            Clock::Redis => {
                let mut conn = self.conn.clone();
                let (secs, micros): (u64, u64) = redis::cmd("TIME")
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err("TIME"))?;
                Ok(secs * 1000 + micros / 1000)
            }
        }
    }
}

/// Reads a script's flat array reply.
fn array(script: &'static str, v: Value) -> Result<Vec<Value>, QueueError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(QueueError::Protocol {
            script,
            detail: format!("expected an array, got {other:?}"),
        }),
    }
}

fn as_string(script: &'static str, v: &Value) -> Result<String, QueueError> {
    String::from_redis_value_ref(v).map_err(|e| QueueError::Protocol {
        script,
        detail: format!("expected a string: {e}"),
    })
}

fn as_i64(script: &'static str, v: &Value) -> Result<i64, QueueError> {
    i64::from_redis_value_ref(v).map_err(|e| QueueError::Protocol {
        script,
        detail: format!("expected an integer: {e}"),
    })
}
