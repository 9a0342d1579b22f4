//! `dlq`: the dead letter. Bulk replay and purge walk the dead letter in
//! bounded batches (one script call each) and show their progress.

use anyhow::bail;
use flotilla::config::{QueueArgs, RedisArgs};
use flotilla::ids::{JobId, TenantId};
use flotilla::job::JobState;
use flotilla::queue::FairQueue;
use flotilla::queue::dead::DeadFilter;
use serde::Serialize;

use super::job::print_status;
use super::{Output, print_json, progress, time};
use crate::queues::Queues;

/// The `dlq` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Dead jobs, newest first.
    List {
        /// Only this queue (default: all).
        #[arg(long)]
        queue: Option<String>,
        /// Only this tenant's jobs.
        #[arg(long)]
        tenant: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// How many to skip (paging).
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[command(flatten)]
        out: Output,
    },
    /// One dead job with its error history.
    Show {
        /// The job's id.
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Send dead jobs back to their queues with a fresh attempt budget.
    #[command(after_help = "Examples:\n  flotilla-producer dlq replay 01J9Z3...\n  \
flotilla-producer dlq replay --tenant acme\n  flotilla-producer dlq replay --all --queue bench")]
    Replay(Bulk),
    /// Delete dead jobs for good.
    #[command(after_help = "Examples:\n  flotilla-producer dlq purge 01J9Z3...\n  \
flotilla-producer dlq purge --tenant acme --yes\n  flotilla-producer dlq purge --all --yes")]
    Purge {
        #[command(flatten)]
        bulk: Bulk,
        /// Confirms a bulk purge (--tenant or --all): those jobs are deleted for good.
        #[arg(long)]
        yes: bool,
    },
}

/// Which dead jobs a replay or purge touches: ids, a tenant's, or all.
#[derive(Debug, clap::Args)]
#[group(id = "which", required = true, multiple = false, args = ["ids", "tenant", "all"])]
pub struct Bulk {
    /// These jobs.
    pub ids: Vec<String>,
    /// Every dead job of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Every dead job.
    #[arg(long)]
    pub all: bool,
    /// Only this queue (default: all).
    #[arg(long)]
    pub queue: Option<String>,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Serialize)]
struct BulkResult {
    action: &'static str,
    done: u64,
    missing: Vec<String>,
}

/// Runs a `dlq` verb.
pub async fn run(redis: &RedisArgs, queue: &QueueArgs, cmd: DlqCommand) -> anyhow::Result<()> {
    let queues = Queues::open(redis, queue).await?;
    match cmd {
        DlqCommand::List {
            queue,
            tenant,
            limit,
            offset,
            out,
        } => {
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            // Newest first across queues: the page is cut from the merge of
            // each queue's newest `offset + limit`.
            let mut jobs = Vec::new();
            for q in selected(&queues, queue.as_deref())? {
                jobs.extend(q.dead_jobs(tenant.as_ref(), 0, offset + limit).await?);
            }
            jobs.sort_by_key(|j| std::cmp::Reverse(j.finished_at));
            let jobs: Vec<_> = jobs.into_iter().skip(offset).take(limit).collect();
            if out.json {
                return print_json(&jobs);
            }
            if jobs.is_empty() {
                println!("the dead letter is empty");
            }
            for j in jobs {
                let died = j.finished_at.map(time).unwrap_or_default();
                println!(
                    "{}  {:<10} {:<16} {died}  {}",
                    j.id,
                    j.queue,
                    j.tenant,
                    j.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }
        DlqCommand::Show { id, out } => {
            let id = JobId::parse(id.trim())?;
            let Some(status) = queues.find_job(id).await? else {
                bail!(
                    "no job {id} on any queue: check the id and FLOTILLA_NAMESPACE (dead jobs are kept for FLOTILLA_DEAD_TTL, 7 days by default)"
                );
            };
            if status.state != JobState::Dead && !out.json {
                eprintln!(
                    "note: job {id} is not dead, it is {}",
                    status.state.as_str()
                );
            }
            if out.json {
                print_json(&status)
            } else {
                print_status(&status);
                Ok(())
            }
        }
        DlqCommand::Replay(bulk) => apply(&queues, bulk, Action::Replay).await,
        DlqCommand::Purge { bulk, yes } => {
            if !bulk.ids.is_empty() || yes {
                apply(&queues, bulk, Action::Purge).await
            } else {
                bail!("purging in bulk deletes jobs for good: add --yes to confirm")
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Replay,
    Purge,
}

fn selected<'a>(queues: &'a Queues, name: Option<&str>) -> anyhow::Result<Vec<&'a FairQueue>> {
    Ok(match name {
        Some(name) => vec![queues.get(name)?],
        None => queues.all().iter().collect(),
    })
}

async fn apply(queues: &Queues, bulk: Bulk, action: Action) -> anyhow::Result<()> {
    let verb = if action == Action::Replay {
        "replayed"
    } else {
        "purged"
    };
    let targets = selected(queues, bulk.queue.as_deref())?;
    let mut result = BulkResult {
        action: verb,
        done: 0,
        missing: Vec::new(),
    };
    if !bulk.ids.is_empty() {
        let ids = bulk
            .ids
            .iter()
            .map(|s| JobId::parse(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut found = vec![false; ids.len()];
        for q in targets {
            let hits = match action {
                Action::Replay => q.replay(&ids).await?,
                Action::Purge => q.purge(&ids).await?,
            };
            for (f, hit) in found.iter_mut().zip(hits) {
                *f |= hit;
            }
        }
        result.done = found.iter().filter(|f| **f).count() as u64;
        result.missing = ids
            .iter()
            .zip(&found)
            .filter(|(_, f)| !**f)
            .map(|(id, _)| id.to_string())
            .collect();
    } else if bulk.tenant.is_some() || bulk.all {
        let filter = DeadFilter {
            tenant: bulk.tenant.as_deref().map(TenantId::parse).transpose()?,
            died_before_ms: None,
        };
        for q in targets {
            let total = q.depth().await?.dead;
            let bar = progress(total, &format!("{verb} {}", q.name()), bulk.out.json);
            let report = |p: flotilla::queue::dead::Progress| bar.set_position(p.done);
            result.done += match action {
                Action::Replay => q.replay_all(&filter, report).await?,
                Action::Purge => q.purge_all(&filter, report).await?,
            };
            bar.finish_and_clear();
        }
    } else {
        bail!("say which dead jobs: job ids, --tenant <tenant> or --all");
    }
    if bulk.out.json {
        print_json(&result)?;
    } else {
        println!("{verb} {} dead job(s)", result.done);
    }
    if !result.missing.is_empty() {
        bail!("not in the dead letter: {}", result.missing.join(", "));
    }
    Ok(())
}
