//! `flotilla-producer clock`: ticks at every boundary of the resolutions in
//! use (a little after it, so feeds get there first) and runs
//! [`flotilla::candles::clock::Clock::tick`]: the fallback trigger and the
//! reconciler. Any number of replicas is safe: every job has its natural
//! idempotency key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use flotilla::candles::clock::Clock;
use flotilla::config::{DatabaseArgs, QueueArgs, RedisArgs, parse_duration};
use flotilla::kinds::JobKind;
use flotilla::kinds::candles::Candles;
use tracing::{info, warn};

use super::CandleArgs;
use crate::queues::Queues;

/// Arguments of `clock`.
#[derive(Debug, clap::Args)]
pub struct ClockArgs {
    #[command(flatten)]
    candles: CandleArgs,
    /// How long after a boundary to tick, so the feed's candle is stored first.
    #[arg(long, env = "FLOTILLA_CLOCK_GRACE", default_value = "2s", value_parser = parse_duration)]
    grace: Duration,
    /// Tick once, print what it did as JSON, and exit (for scripts and cron).
    #[arg(long)]
    once: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs the clock until SIGTERM or Ctrl-C.
pub async fn run(
    redis: &RedisArgs,
    queue: &QueueArgs,
    database: &DatabaseArgs,
    args: ClockArgs,
) -> anyhow::Result<()> {
    let queues = Queues::open(redis, queue).await?;
    let queue = queues.get(Candles::QUEUE)?.clone();
    let db = flotilla::db::connect(&database.database_url).await?;
    let mut clock = Clock::new(args.candles.candle_horizon);
    if args.once {
        let tick = clock
            .tick(&db, &queue, now_ms())
            .await
            .context("the clock's tick failed")?;
        println!("{}", serde_json::to_string_pretty(&tick)?);
        return Ok(());
    }
    eprintln!("flotilla-producer: clock running");
    let stop = crate::http::stop_signal();
    tokio::pin!(stop);
    loop {
        let now = now_ms();
        match clock.tick(&db, &queue, now).await {
            Ok(tick) => info!(?tick, "clock tick"),
            // PostgreSQL or Redis is down: the next tick tries again.
            Err(e) => warn!(error = %e, "clock tick failed; retrying at the next boundary"),
        }
        let next = clock
            .next_tick_ms(&db, now)
            .await
            .unwrap_or(now + 60_000)
            .max(now + 1);
        let wait = Duration::from_millis((next - now_ms()).max(0) as u64) + args.grace;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = &mut stop => break,
        }
    }
    eprintln!("flotilla-producer: clock stopped");
    Ok(())
}
