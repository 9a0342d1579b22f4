//! Stopping well. Platforms send SIGTERM and kill a little later (Heroku
//! after 30 s, Railway after its drain time), so on the first signal the
//! worker stops claiming at once, lets running jobs finish within
//! `SHUTDOWN_GRACE`, then hands what is still running back to its tenant's
//! queue (without counting the attempt) instead of leaving it to lease
//! expiry, which would delay those jobs by a whole lease and burn an attempt.
//! A second signal cuts the grace short.
//!
//! Stop requests are a parameter ([`StopRequests`]), not a global, so a test
//! or an embedding program drives shutdown the same way the OS does.

use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::consumers::Consumer;

/// How long handing back unfinished jobs may take (Redis writes) before the
/// worker gives up and lets their leases expire instead.
const HAND_BACK_LIMIT: Duration = Duration::from_secs(3);

/// Requests to stop, in order: the first starts the drain, the second ends
/// the grace period early.
#[derive(Debug)]
pub struct StopRequests {
    rx: mpsc::UnboundedReceiver<&'static str>,
}

impl StopRequests {
    /// SIGTERM and SIGINT. Registered now, so a signal that arrives during
    /// start-up is kept rather than killing the process mid-claim.
    pub fn from_signals() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    Some(()) = term.recv() => "SIGTERM",
                    Some(()) = int.recv() => "SIGINT",
                    else => return,
                };
                if tx.send(name).is_err() {
                    return;
                }
            }
        });
        Ok(Self { rx })
    }

    /// Requests sent by hand (tests, embedding): send a reason to stop.
    pub fn channel() -> (mpsc::UnboundedSender<&'static str>, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Self { rx })
    }

    /// The next request's reason; never resolves once every sender is gone.
    pub async fn next(&mut self) -> &'static str {
        match self.rx.recv().await {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

/// What a shutdown did, for the final log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Jobs running when the stop began.
    pub running_at_stop: usize,
    /// Jobs handed back to the queue because the grace ran out.
    pub handed_back: usize,
    /// Whether every consumer drained within the grace.
    pub drained: bool,
    /// How long the shutdown took.
    pub took: Duration,
}

/// Waits for the (already stopped) consumers to finish their running jobs
/// within `grace`, then hands back whatever is left and leaves the worker
/// registry for those that did not drain.
pub async fn drain(
    mut consumers: Vec<Consumer>,
    worker: &str,
    grace: Duration,
    stop: &mut StopRequests,
) -> Summary {
    let started = Instant::now();
    let running_at_stop = consumers.iter().map(|c| c.handle.running()).sum();
    info!(
        running = running_at_stop,
        grace_ms = grace.as_millis() as u64,
        "stopped claiming; waiting for running jobs"
    );
    let finished = join_all(consumers.iter_mut().map(|c| {
        let queue = c.queue.name().to_string();
        let task = &mut c.task;
        async move {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(queue, error = %e, "the apalis worker ended with an error"),
                Err(e) => warn!(queue, error = %e, "the apalis worker task failed"),
            }
        }
    }));
    let drained = tokio::select! {
        _ = finished => true,
        _ = tokio::time::sleep(grace) => false,
        reason = stop.next() => {
            info!(signal = reason, "second stop request: not waiting for the rest of the grace period");
            false
        }
    };
    let mut handed_back = 0;
    for c in consumers.iter().filter(|c| !c.task.is_finished()) {
        let n = c.handle.hand_back_unfinished(HAND_BACK_LIMIT).await;
        handed_back += n;
        warn!(queue = %c.queue.name(), jobs = n, "grace period over: handed unfinished jobs back to the queue");
        c.task.abort();
        match tokio::time::timeout(HAND_BACK_LIMIT, c.queue.leave(worker)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(queue = %c.queue.name(), error = %e, "could not leave the worker registry; the entry expires on its own")
            }
            Err(_) => {
                warn!(queue = %c.queue.name(), "Redis too slow to leave the worker registry; the entry expires on its own")
            }
        }
    }
    Summary {
        running_at_stop,
        handed_back,
        drained: drained && handed_back == 0,
        took: started.elapsed(),
    }
}
