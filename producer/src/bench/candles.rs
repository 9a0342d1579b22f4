//! `bench candles`: candle execution on a real worker, PostgreSQL and Redis.
//!
//! - `fanout_10k`: one strategy with 10,000 subscribers; from the candle's
//!   ingest (what `POST /v1/candles` does: store, enqueue) to the execution
//!   row committed, which is the moment every trade is committed (one
//!   transaction). Three runs on three markets; the median is reported.
//! - `strategies_1k`: 1,000 strategies (10 tenants) on one market, one
//!   candle; executions per second from the ingest to the last commit.
//!
//! The benchmark makes a database of its own on the server and drops it,
//! and uses a namespace of its own in Redis and deletes it.

use std::time::{Duration, Instant};

use anyhow::bail;
use flotilla::candles::feed::{self, Closed};
use flotilla::candles::{Candle, Resolution, Symbol};
use flotilla::ids::Namespace;
use flotilla::kinds::JobKind;
use flotilla::kinds::candles::Candles;
use flotilla::queue::FairQueue;
use serde::Serialize;
use sqlx::PgPool;

use super::fleet::{WorkerProcess, WorkerSpec};
use super::scratch::Scratch;

/// Sizes and settings of the run.
pub struct CandleBench {
    pub redis_url: String,
    pub database_url: String,
    pub worker_bin: std::path::PathBuf,
    pub concurrency: usize,
    pub subscribers: usize,
    pub strategies: usize,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct Report {
    pub fanout_10k: Fanout,
    pub strategies_1k: Many,
}

/// One strategy, many subscribers.
#[derive(Debug, Serialize)]
pub struct Fanout {
    pub subscribers: usize,
    /// Median of the runs: candle ingest to all trades committed.
    pub candle_to_trades_ms: f64,
    pub runs_ms: Vec<f64>,
    /// Trades written per run (must equal the subscribers).
    pub trades: Vec<i64>,
}

/// Many strategies, one candle.
#[derive(Debug, Serialize)]
pub struct Many {
    pub strategies: usize,
    pub elapsed_ms: f64,
    pub executions_per_s: f64,
}

const HORIZON: Duration = Duration::from_secs(3600);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A tenant row; its id.
pub(super) async fn tenant(pool: &PgPool, slug: &str) -> anyhow::Result<String> {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, tier, status) VALUES ($1, $2, $2, 'pro', 'active')",
    )
    .bind(&id)
    .bind(slug)
    .execute(pool)
    .await?;
    Ok(id)
}

/// `n` strategies of `tenant` on `symbol` (5m, Donchian 3), each with
/// `subs` subscribers; their ids.
async fn strategies(
    pool: &PgPool,
    tenant: &str,
    symbol: &str,
    n: usize,
    subs: usize,
) -> anyhow::Result<Vec<i64>> {
    let mut tx = flotilla::db::tenant_transaction(pool, tenant).await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO strategies (tenant_id, name, kind, symbol, resolution, parameters, created_at) \
         SELECT $1, 'bench ' || g, 'donchian', $2, '5m', '{\"period\": 3}', '2020-01-01Z' \
         FROM generate_series(1, $3) g RETURNING id",
    )
    .bind(tenant)
    .bind(symbol)
    .bind(n as i64)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO subscriptions (tenant_id, strategy_id, user_id, capital, risk_pct, leverage) \
         SELECT $1, s, 'user-' || g, 10000, 1, 10 FROM unnest($2::bigint[]) s, generate_series(1, $3) g",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(subs as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids)
}

fn bar(close_ms: i64, high: f64, low: f64, close: f64) -> Candle {
    Candle {
        close_ms,
        open: close,
        high,
        low,
        close,
        volume: 1.0,
    }
}

/// Three flat candles before `close_ms` (a Donchian-3 channel of 9.5-10.5)
/// stored directly; the breakout candle closing at `close_ms` is returned
/// for the timed ingest.
async fn history(pool: &PgPool, symbol: &Symbol, close_ms: i64) -> anyhow::Result<Closed> {
    let five = Resolution::parse("5m").expect("5m is supported");
    for k in 1..=3 {
        let at = close_ms - k * five.millis();
        let flat = Closed::new(symbol.clone(), five, at, bar(at, 10.5, 9.5, 10.0));
        flotilla::candles::store::insert_candle(pool, symbol, flat.interval, &flat.candle).await?;
    }
    Ok(Closed::new(
        symbol.clone(),
        five,
        close_ms,
        bar(close_ms, 11.2, 10.0, 11.0),
    ))
}

/// Polls until `sql` (a count) reaches `want`; the time since `started`.
async fn wait_count(
    pool: &PgPool,
    sql: &str,
    ids: &[i64],
    want: i64,
    started: Instant,
) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(300);
    loop {
        let n: i64 = sqlx::query_scalar(sql).bind(ids).fetch_one(pool).await?;
        if n >= want {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("only {n} of {want} executions after 5 minutes; is the worker running?");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

const EXECUTED: &str = "SELECT count(*) FROM executions WHERE strategy_id = ANY($1)";

impl CandleBench {
    /// Runs both scenarios and cleans up.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let scratch = Scratch::open(&self.database_url, &self.redis_url, "candles").await?;
        let queue = scratch.queue(Candles::QUEUE)?;
        let result = self
            .scenarios(&scratch.pool, &scratch.url, &scratch.namespace, &queue)
            .await;
        scratch.close().await?;
        result
    }

    async fn scenarios(
        &self,
        pool: &PgPool,
        url: &str,
        namespace: &Namespace,
        queue: &FairQueue,
    ) -> anyhow::Result<Report> {
        let spec = WorkerSpec {
            binary: &self.worker_bin,
            redis_url: &self.redis_url,
            namespace,
            concurrency: self.concurrency,
            log_file: None,
            prefetch: None,
            env: vec![
                ("QUEUES", Candles::QUEUE.into()),
                ("DATABASE_URL", url.into()),
            ],
        };
        let worker = WorkerProcess::start(&spec, queue).await?;
        let close = Resolution::parse("5m")?.floor(now_ms());
        let acme = tenant(pool, "fanout").await?;

        // Warm-up: the worker's pool connects on first use.
        let warm = Symbol::parse("WARMUP")?;
        let ids = strategies(pool, &acme, warm.as_str(), 1, 1).await?;
        let candle = history(pool, &warm, close).await?;
        let started = Instant::now();
        feed::ingest(pool, queue, &candle, HORIZON, now_ms()).await?;
        wait_count(pool, EXECUTED, &ids, 1, started).await?;

        let mut runs_ms = Vec::new();
        let mut trades = Vec::new();
        for run in 1..=3 {
            let symbol = Symbol::parse(&format!("FANOUT{run}"))?;
            let ids = strategies(pool, &acme, symbol.as_str(), 1, self.subscribers).await?;
            let candle = history(pool, &symbol, close).await?;
            sqlx::query("VACUUM ANALYZE subscriptions")
                .execute(pool)
                .await?;
            let started = Instant::now();
            feed::ingest(pool, queue, &candle, HORIZON, now_ms()).await?;
            let took = wait_count(pool, EXECUTED, &ids, 1, started).await?;
            runs_ms.push(took.as_secs_f64() * 1000.0);
            trades.push(
                sqlx::query_scalar("SELECT count(*) FROM strategy_trades WHERE strategy_id = $1")
                    .bind(ids[0])
                    .fetch_one(pool)
                    .await?,
            );
        }
        let mut sorted = runs_ms.clone();
        sorted.sort_by(f64::total_cmp);

        let symbol = Symbol::parse("MANY")?;
        let mut ids = Vec::new();
        let per_tenant = self.strategies.div_ceil(10);
        for t in 0..10 {
            let owner = tenant(pool, &format!("many-{t}")).await?;
            ids.extend(strategies(pool, &owner, symbol.as_str(), per_tenant, 1).await?);
        }
        let candle = history(pool, &symbol, close).await?;
        let started = Instant::now();
        feed::ingest(pool, queue, &candle, HORIZON, now_ms()).await?;
        let took = wait_count(pool, EXECUTED, &ids, ids.len() as i64, started).await?;
        worker.stop().await?;
        Ok(Report {
            fanout_10k: Fanout {
                subscribers: self.subscribers,
                candle_to_trades_ms: sorted[sorted.len() / 2],
                runs_ms,
                trades,
            },
            strategies_1k: Many {
                strategies: ids.len(),
                elapsed_ms: took.as_secs_f64() * 1000.0,
                executions_per_s: ids.len() as f64 / took.as_secs_f64(),
            },
        })
    }
}

/// The table.
pub fn print_table(r: &Report) {
    println!("candle execution (one worker)");
    println!(
        "  fan-out: 1 strategy, {} subscribers: candle to all trades committed {:.1} ms (median of {:?} ms; trades {:?})",
        r.fanout_10k.subscribers,
        r.fanout_10k.candle_to_trades_ms,
        r.fanout_10k
            .runs_ms
            .iter()
            .map(|m| m.round())
            .collect::<Vec<_>>(),
        r.fanout_10k.trades
    );
    println!(
        "  {} strategies on one candle: {:.0} executions/s ({:.0} ms)",
        r.strategies_1k.strategies, r.strategies_1k.executions_per_s, r.strategies_1k.elapsed_ms
    );
}
