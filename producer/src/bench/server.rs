//! The Redis server around a timed run: settled before it, measured across it.
//!
//! With an append-only file, Redis rewrites it in a forked child each time it
//! has doubled (past 64 MB). On a 2-core machine that child takes a core for
//! about a second, and whichever timed run it lands in loses a third of its
//! rate: a throughput ratio measured across two runs then says more about
//! where the rewrite fell than about either queue. So each timed run starts
//! once Redis has no background work left (a rewrite of the file as it is
//! after the fill, memory freed by the previous run's cleanup).
//!
//! Across the run, the server's own CPU time and the bytes appended to its
//! file are measured: Redis is the resource every queue on it shares, and
//! CPU time per job barely moves when other processes slow the machine down,
//! so it backs up the wall-clock rates.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// How long to wait for background work before timing a run anyway.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// The server's counters when a timed run started.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    cpu_s: f64,
    /// Size of the append-only file and rewrites so far; `None` without one.
    aof: Option<(u64, u64)>,
}

/// What the server spent on a run.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    /// Redis' CPU time (user and system, all its threads).
    pub cpu: Duration,
    /// Bytes appended to the append-only file; `None` without one, or when a
    /// rewrite in between made the sizes incomparable.
    pub aof_bytes: Option<u64>,
}

/// Waits until Redis has no background work left, rewriting the append-only
/// file first (if it keeps one), and marks its counters.
pub async fn settle(conn: &ConnectionManager) -> anyhow::Result<Mark> {
    let mut conn = conn.clone();
    let deadline = Instant::now() + SETTLE_LIMIT;
    if info(&mut conn)
        .await?
        .get("aof_enabled")
        .map(String::as_str)
        == Some("1")
    {
        // Redis refuses a rewrite while one runs: let that one finish first
        // (the fill may have started it), then rewrite the file as it is now.
        wait_idle(&mut conn, deadline).await?;
        // Some hosted Redis disable the command: measure without the rewrite then.
        if let Err(e) = redis::cmd("BGREWRITEAOF")
            .query_async::<redis::Value>(&mut conn)
            .await
        {
            eprintln!(
                "bench: could not have Redis rewrite its append-only file ({e}); timing the run without"
            );
        }
    }
    wait_idle(&mut conn, deadline).await?;
    mark(&mut conn).await
}

/// What the server spent since `start`.
pub async fn spent_since(conn: &ConnectionManager, start: Mark) -> anyhow::Result<Spent> {
    let mut conn = conn.clone();
    let end = mark(&mut conn).await?;
    let aof_bytes = match (start.aof, end.aof) {
        (Some((size0, rewrites0)), Some((size1, rewrites1))) if rewrites0 == rewrites1 => {
            Some(size1.saturating_sub(size0))
        }
        _ => None,
    };
    Ok(Spent {
        cpu: Duration::from_secs_f64((end.cpu_s - start.cpu_s).max(0.0)),
        aof_bytes,
    })
}

async fn mark(conn: &mut ConnectionManager) -> anyhow::Result<Mark> {
    let info = info(conn).await?;
    let seconds = |k: &str| {
        info.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let aof = (info.get("aof_enabled").map(String::as_str) == Some("1")).then(|| {
        (
            number(&info, "aof_current_size"),
            number(&info, "aof_rewrites"),
        )
    });
    Ok(Mark {
        cpu_s: seconds("used_cpu_user") + seconds("used_cpu_sys"),
        aof,
    })
}

/// Waits until no rewrite or snapshot runs or is scheduled and no freed
/// memory is pending; past `deadline` it says so and goes on.
async fn wait_idle(conn: &mut ConnectionManager, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let info = info(conn).await?;
        let busy = [
            "aof_rewrite_in_progress",
            "aof_rewrite_scheduled",
            "rdb_bgsave_in_progress",
        ]
        .iter()
        .any(|k| info.get(*k).map(String::as_str) == Some("1"))
            || number(&info, "lazyfree_pending_objects") > 0;
        if !busy {
            return Ok(());
        }
        if Instant::now() > deadline {
            eprintln!(
                "bench: Redis is still busy in the background (rewriting its append-only file or freeing memory) after {SETTLE_LIMIT:?}; timing the run anyway"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `INFO` (its default sections: cpu, memory and persistence among them) as
/// field → value, one round trip for every figure used here.
async fn info(conn: &mut ConnectionManager) -> anyhow::Result<HashMap<String, String>> {
    let text: String = redis::cmd("INFO").query_async(conn).await?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect())
}

fn number(info: &HashMap<String, String>, key: &str) -> u64 {
    info.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}
