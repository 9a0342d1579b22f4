//! `queues`: how much work each queue holds, by state.

use flotilla::config::{QueueArgs, RedisArgs};

use super::{Output, print_json};
use crate::queues::Queues;

/// Prints the depth of every known queue.
pub async fn run(redis: &RedisArgs, queue: &QueueArgs, out: Output) -> anyhow::Result<()> {
    let queues = Queues::open(redis, queue).await?;
    let mut depths = Vec::new();
    for q in queues.all() {
        depths.push(q.depth().await?);
    }
    if out.json {
        return print_json(&depths);
    }
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>12} {:>8} {:>8} {:>10} {:>10}",
        "queue",
        "pending",
        "scheduled",
        "running",
        "dead",
        "oldest (s)",
        "ready",
        "capped",
        "done",
        "enqueued"
    );
    for d in depths {
        println!(
            "{:<14} {:>9} {:>9} {:>9} {:>9} {:>12.1} {:>8} {:>8} {:>10} {:>10}",
            d.queue,
            d.pending,
            d.scheduled,
            d.running,
            d.dead,
            d.oldest_pending_ms as f64 / 1000.0,
            d.tenants_ready,
            d.tenants_blocked,
            d.totals.completed,
            d.totals.enqueued
        );
    }
    Ok(())
}
