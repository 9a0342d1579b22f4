//! The per-tier daily enqueue limit: a counter per tenant and UTC day in
//! Redis, taken atomically before a job is enqueued (a refused request
//! takes nothing). Counters expire a day after their day ends.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::keys::TenantKeys;
use crate::ids::TenantId;

const DAY_MS: u64 = 86_400_000;

/// Increments by ARGV[1] unless that would pass the limit ARGV[2].
static TAKE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if used + n > limit then return {0, used} end
used = redis.call('INCRBY', KEYS[1], n)
if used == n then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, used}
",
    )
});

/// The answer to [`take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Taken; `used` enqueues today including these.
    Allowed {
        /// Used today.
        used: u64,
    },
    /// Over the limit: nothing taken.
    Exceeded {
        /// The daily limit.
        limit: u64,
        /// Until the next UTC midnight, when the count starts again.
        retry_after: Duration,
    },
}

/// Takes `n` enqueues from `tenant`'s allowance for the UTC day of `now_ms`;
/// `limit` `None` is unlimited (nothing is counted).
pub async fn take(
    conn: &mut ConnectionManager,
    keys: &TenantKeys,
    tenant: &TenantId,
    limit: Option<u64>,
    n: u64,
    now_ms: u64,
) -> Result<Quota, redis::RedisError> {
    let Some(limit) = limit else {
        return Ok(Quota::Allowed { used: 0 });
    };
    let day = now_ms / DAY_MS;
    let next_midnight = (day + 1) * DAY_MS;
    let (taken, used): (u8, u64) = TAKE
        .key(keys.enqueued(tenant, day))
        .arg(n)
        .arg(limit)
        .arg(next_midnight - now_ms + DAY_MS)
        .invoke_async(conn)
        .await?;
    Ok(if taken == 1 {
        Quota::Allowed { used }
    } else {
        Quota::Exceeded {
            limit,
            // Rounded up: a client waiting this long is never early.
            retry_after: Duration::from_secs((next_midnight - now_ms).div_ceil(1000)),
        }
    })
}

/// Returns `n` enqueues taken for a request that enqueued nothing new (an
/// idempotent replay), so a retried request costs its tenant nothing.
pub async fn give_back(
    conn: &mut ConnectionManager,
    keys: &TenantKeys,
    tenant: &TenantId,
    n: u64,
    now_ms: u64,
) -> Result<(), redis::RedisError> {
    let _: i64 = redis::cmd("DECRBY")
        .arg(keys.enqueued(tenant, now_ms / DAY_MS))
        .arg(n)
        .query_async(conn)
        .await?;
    Ok(())
}
