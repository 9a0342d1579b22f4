//! `enqueue`: one job from flags, or many from JSON lines. A file is checked
//! line by line before anything is enqueued, so a bad line (reported with its
//! number) leaves the queue untouched.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use flotilla::config::{QueueArgs, RedisArgs, parse_duration};
use flotilla::job::NewJob;
use flotilla::queue::enqueue::Enqueued;
use metrics::counter;
use serde::Serialize;

use super::{print_json, progress};
use crate::queues::Queues;
use crate::request::{JobRequest, RunAt};

/// Jobs per enqueue call when reading a file.
const BATCH: usize = 1_000;
/// Bad lines reported before giving up on listing them.
const MAX_REPORTED: usize = 20;

/// Arguments of `enqueue`.
#[derive(Debug, clap::Args)]
#[command(after_help = "JSON lines: one object per line, \
{\"tenant\": \"acme\", \"payload\": {...}, \"idempotency_key\": \"k\", \"delay_ms\": 0, \"run_at\": \"RFC 3339 or ms\"}; \
only payload-less fields are optional, and --tenant fills a missing tenant.\n\
Examples:\n  flotilla-producer enqueue bench --tenant acme --payload '{\"sleep_ms\": 10}'\n  \
flotilla-producer enqueue bench --file jobs.jsonl\n  cat jobs.jsonl | flotilla-producer enqueue bench --file -")]
pub struct EnqueueArgs {
    /// The queue (e.g. bench).
    pub queue: String,
    /// The tenant the job belongs to (for a file: the default for lines without one).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The job's payload, as JSON (default {}).
    #[arg(long, conflicts_with = "file")]
    pub payload: Option<String>,
    /// Read jobs from this JSON-lines file; `-` reads stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Makes the enqueue safe to repeat: the same tenant and key within 24 h return the first job.
    #[arg(long, conflicts_with = "file")]
    pub idempotency_key: Option<String>,
    /// Run no sooner than this from now (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["file", "run_at"])]
    pub delay: Option<Duration>,
    /// Run no sooner than this instant (RFC 3339, e.g. 2026-11-22T18:00:00Z).
    #[arg(long, conflicts_with = "file")]
    pub run_at: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `enqueue` did.
#[derive(Debug, Default, Serialize)]
struct Summary {
    enqueued: usize,
    duplicates: usize,
    conflicts: usize,
    ids: Vec<String>,
}

/// Runs `enqueue`.
pub async fn run(redis: &RedisArgs, queue: &QueueArgs, args: EnqueueArgs) -> anyhow::Result<()> {
    let jobs = match &args.file {
        Some(path) => read_lines(path, &args)?,
        None => vec![single(&args)?],
    };
    let queues = Queues::open(redis, queue).await?;
    let q = queues.get(&args.queue)?;
    let bar = progress(
        jobs.len() as u64,
        "enqueueing",
        args.json || jobs.len() < BATCH,
    );
    let mut summary = Summary::default();
    let mut conflicts = Vec::new();
    for (chunk_no, chunk) in jobs.chunks(BATCH).enumerate() {
        let results = q.enqueue_batch(chunk).await?;
        for (i, r) in results.iter().enumerate() {
            summary.ids.push(r.id().to_string());
            match r {
                Enqueued::New(_) => summary.enqueued += 1,
                Enqueued::Duplicate(_) => summary.duplicates += 1,
                Enqueued::Conflict(first) => {
                    summary.conflicts += 1;
                    conflicts.push((chunk_no * BATCH + i + 1, *first));
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    counter!(flotilla::telemetry::names::JOBS_ENQUEUED, "queue" => args.queue.clone())
        .increment(summary.enqueued as u64);

    if args.json {
        print_json(&summary)?;
    } else if jobs.len() == 1 {
        match (&summary, conflicts.first()) {
            (_, Some(_)) => {}
            (s, None) if s.duplicates == 1 => {
                println!(
                    "already enqueued with this idempotency key: job {} (nothing new enqueued)",
                    s.ids[0]
                )
            }
            (s, None) => println!("enqueued job {} on {}", s.ids[0], args.queue),
        }
    } else {
        println!(
            "enqueued {} job(s) on {}; {} duplicate(s) skipped; {} conflict(s)",
            summary.enqueued, args.queue, summary.duplicates, summary.conflicts
        );
    }
    if let Some((line, first)) = conflicts.first() {
        let at = if jobs.len() == 1 {
            String::new()
        } else {
            format!("line {line}: ")
        };
        bail!(
            "{at}idempotency key already used with a different payload by job {first}; use a new key for a different job ({} conflict(s) in all)",
            conflicts.len()
        );
    }
    Ok(())
}

fn single(args: &EnqueueArgs) -> anyhow::Result<NewJob> {
    let payload = match &args.payload {
        Some(text) => Some(serde_json::from_str(text).context("--payload is not valid JSON")?),
        None => None,
    };
    let request = JobRequest {
        tenant: args.tenant.clone(),
        payload,
        idempotency_key: args.idempotency_key.clone(),
        delay_ms: args.delay.map(|d| d.as_millis() as u64),
        run_at: args.run_at.clone().map(RunAt::Text),
    };
    if request.tenant.is_none() {
        bail!("--tenant is required: every job belongs to a tenant (e.g. --tenant acme)");
    }
    Ok(request.into_job(&args.queue, None)?)
}

/// Reads and validates every line; fails listing the bad ones, enqueuing nothing.
fn read_lines(path: &PathBuf, args: &EnqueueArgs) -> anyhow::Result<Vec<NewJob>> {
    let reader: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<JobRequest>(&line)
            .map_err(anyhow::Error::from)
            .and_then(|r| Ok(r.into_job(&args.queue, args.tenant.as_deref())?));
        match parsed {
            Ok(job) => jobs.push(job),
            Err(e) => errors.push(format!("line {}: {e}", n + 1)),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors
            .iter()
            .take(MAX_REPORTED)
            .map(String::as_str)
            .collect();
        bail!(
            "{} bad line(s), nothing enqueued: {}",
            errors.len(),
            shown.join("; ")
        );
    }
    if jobs.is_empty() {
        bail!(
            "{} holds no jobs (one JSON object per line)",
            path.display()
        );
    }
    Ok(jobs)
}
