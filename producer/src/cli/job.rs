//! `job <id>`: one job, wherever it is.

use anyhow::bail;
use flotilla::config::{QueueArgs, RedisArgs};
use flotilla::ids::JobId;
use flotilla::job::JobStatus;

use super::{Output, print_json, time};
use crate::queues::Queues;

/// Arguments of `job`.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job's id (as printed by `enqueue` or returned by the API).
    pub id: String,
    #[command(flatten)]
    pub out: Output,
}

/// Prints one job.
pub async fn run(redis: &RedisArgs, queue: &QueueArgs, args: JobArgs) -> anyhow::Result<()> {
    let id = JobId::parse(args.id.trim())?;
    let queues = Queues::open(redis, queue).await?;
    let Some(status) = queues.find_job(id).await? else {
        bail!(
            "no job {id} on any queue: check the id and FLOTILLA_NAMESPACE; finished jobs are kept for FLOTILLA_FINISHED_TTL (1h by default)"
        );
    };
    if args.out.json {
        return print_json(&status);
    }
    print_status(&status);
    Ok(())
}

/// A job as a readable block.
pub fn print_status(s: &JobStatus) {
    println!("job          {}", s.id);
    println!("queue        {}", s.queue);
    println!("tenant       {}", s.tenant);
    println!("state        {}", s.state.as_str());
    println!("attempts     {} of {}", s.attempts, s.max_attempts);
    println!("enqueued     {}", time(s.enqueued_at));
    if let Some(t) = s.run_at {
        println!("runs at      {}", time(t));
    }
    if let Some(t) = s.started_at {
        println!("started      {}", time(t));
    }
    if let Some(t) = s.finished_at {
        println!("finished     {}", time(t));
    }
    if let Some(w) = &s.worker {
        println!("worker       {w}");
    }
    if let Some(k) = &s.idempotency_key {
        println!("idem key     {k}");
    }
    if let Some(e) = &s.last_error {
        println!("last error   {e}");
    }
    for f in &s.history {
        println!("  attempt {} at {}: {}", f.attempt, time(f.at), f.error);
    }
    println!("payload      {}", s.payload);
}
