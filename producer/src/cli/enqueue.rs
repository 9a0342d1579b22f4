//! `enqueue`: one job from flags, or many from JSON lines. Every line is
//! checked before anything is enqueued, so a bad line (reported with its
//! number) leaves the queue untouched; then the jobs go out in batches of
//! [`MAX_SCRIPT_BATCH`], one atomic script call each.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use flotilla::config::{QueueArgs, RedisArgs, parse_duration};
use flotilla::ids::JobId;
use flotilla::job::NewJob;
use flotilla::queue::enqueue::{Enqueued, MAX_SCRIPT_BATCH};
use serde::Serialize;

use super::{print_json, progress};
use crate::queues::Queues;
use crate::request::{JobRequest, RunAt};

/// Bad lines listed before the rest are only counted.
const MAX_REPORTED: usize = 20;

/// Arguments of `enqueue`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
JSON lines: one job per line, as an object with these fields (all but tenant optional):
  {\"tenant\": \"acme\", \"payload\": {...}, \"idempotency_key\": \"order-1\", \"delay_ms\": 5000}
  \"run_at\" (RFC 3339 text or ms since the epoch) may replace \"delay_ms\"; --tenant fills in
  a missing tenant. Blank lines are skipped. A bad line stops the whole file: nothing is enqueued.

Examples:
  flotilla-producer enqueue bench --tenant acme --payload '{\"sleep_ms\": 10}'
  flotilla-producer enqueue bench --tenant acme --idempotency-key order-1 --delay 5m
  flotilla-producer enqueue bench jobs.jsonl
  generate-jobs | flotilla-producer enqueue bench - --tenant acme --json")]
pub struct EnqueueArgs {
    /// The queue (e.g. bench).
    pub queue: String,
    /// Read jobs from this JSON-lines file; `-` reads stdin. Without it, one
    /// job is built from the flags.
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub input: Option<PathBuf>,
    /// Same as FILE.
    #[arg(long, hide = true)]
    pub file: Option<PathBuf>,
    /// The tenant the job belongs to (for a file: the tenant of lines without one).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The job's payload, as JSON (default {}).
    #[arg(long, conflicts_with_all = ["input", "file"])]
    pub payload: Option<String>,
    /// Makes the enqueue safe to repeat: the same tenant and key within the
    /// idempotency TTL (24 h) return the first job and enqueue nothing.
    #[arg(long, conflicts_with_all = ["input", "file"])]
    pub idempotency_key: Option<String>,
    /// Run no sooner than this from now (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["input", "file", "run_at"])]
    pub delay: Option<Duration>,
    /// Run no sooner than this instant (RFC 3339, e.g. 2026-11-22T18:00:00Z).
    #[arg(long, conflicts_with_all = ["input", "file"])]
    pub run_at: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `enqueue` did (the `--json` output).
#[derive(Debug, Default, Serialize)]
struct Summary {
    queue: String,
    /// Jobs enqueued now.
    enqueued: usize,
    /// Jobs whose idempotency key was already used with the same payload.
    duplicates: usize,
    /// Jobs whose idempotency key was already used with another payload.
    conflicts: usize,
    /// One id per job, in input order (for duplicates and conflicts: the first job's).
    ids: Vec<String>,
}

/// Runs `enqueue`.
pub async fn run(redis: &RedisArgs, queue: &QueueArgs, args: EnqueueArgs) -> anyhow::Result<()> {
    flotilla::kinds::lookup(&args.queue)?;
    let source = args.input.as_ref().or(args.file.as_ref());
    let (jobs, lines) = match source {
        Some(path) => read_lines(path, &args)?,
        None => (vec![single(&args)?], vec![0]),
    };
    let queues = Queues::open(redis, queue).await?;
    let q = queues.get(&args.queue)?;
    let bar = progress(jobs.len() as u64, "enqueueing", args.json || jobs.len() < 2);
    let mut summary = Summary {
        queue: args.queue.clone(),
        ..Summary::default()
    };
    // (line number, first job's id) of each conflict.
    let mut conflicts: Vec<(usize, JobId)> = Vec::new();
    for (chunk_no, chunk) in jobs.chunks(MAX_SCRIPT_BATCH).enumerate() {
        let results = q.enqueue_batch(chunk).await?;
        for (i, r) in results.iter().enumerate() {
            summary.ids.push(r.id().to_string());
            match r {
                Enqueued::New(_) => summary.enqueued += 1,
                Enqueued::Duplicate(_) => summary.duplicates += 1,
                Enqueued::Conflict(first) => {
                    summary.conflicts += 1;
                    conflicts.push((lines[chunk_no * MAX_SCRIPT_BATCH + i], *first));
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    if args.json {
        print_json(&summary)?;
    } else if source.is_none() {
        if summary.duplicates == 1 {
            println!(
                "already enqueued with this idempotency key: job {} (nothing new enqueued)",
                summary.ids[0]
            );
        } else if summary.enqueued == 1 {
            println!("enqueued job {} on {}", summary.ids[0], args.queue);
        }
    } else {
        println!(
            "enqueued {} job(s) on {}; {} duplicate(s) skipped; {} conflict(s)",
            summary.enqueued, args.queue, summary.duplicates, summary.conflicts
        );
    }
    if let Some((n, first)) = conflicts.first() {
        let at = if source.is_some() {
            format!("line {n}: ")
        } else {
            String::new()
        };
        bail!(
            "{at}idempotency key already used with a different payload by job {first}; use a new key for a different job ({} conflict(s) in all)",
            conflicts.len()
        );
    }
    Ok(())
}

/// The one job the flags describe.
fn single(args: &EnqueueArgs) -> anyhow::Result<NewJob> {
    let Some(tenant) = args.tenant.clone() else {
        bail!("--tenant is required: every job belongs to a tenant (e.g. --tenant acme)");
    };
    let payload = match &args.payload {
        Some(text) => Some(
            serde_json::from_str(text)
                .context("--payload is not valid JSON (e.g. '{\"sleep_ms\": 10}')")?,
        ),
        None => None,
    };
    let request = JobRequest {
        tenant: Some(tenant),
        payload,
        idempotency_key: args.idempotency_key.clone(),
        delay_ms: args.delay.map(|d| d.as_millis() as u64),
        run_at: args.run_at.clone().map(RunAt::Text),
    };
    Ok(request.into_job(&args.queue, None)?)
}

/// Reads and validates every line; fails listing the bad ones, enqueuing
/// nothing. Returns the jobs and, for each, its line number.
fn read_lines(path: &Path, args: &EnqueueArgs) -> anyhow::Result<(Vec<NewJob>, Vec<usize>)> {
    let stdin = path.as_os_str() == "-";
    let reader: Box<dyn std::io::BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut jobs = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {} (is it UTF-8?)", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = JobRequest::parse(line.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|r| {
                r.into_job(&args.queue, args.tenant.as_deref())
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(job) => {
                jobs.push(job);
                lines.push(n + 1);
            }
            Err(e) => errors.push(format!("line {}: {e}", n + 1)),
        }
    }
    if !errors.is_empty() {
        let shown = errors
            .iter()
            .take(MAX_REPORTED)
            .cloned()
            .collect::<Vec<_>>();
        let more = errors.len().saturating_sub(MAX_REPORTED);
        let more = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        bail!(
            "{} bad line(s), nothing enqueued; fix them and run again: {}{more}",
            errors.len(),
            shown.join("; ")
        );
    }
    if jobs.is_empty() {
        let name = if stdin {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        bail!("{name} holds no jobs: give one JSON object per line (see --help)");
    }
    Ok((jobs, lines))
}
