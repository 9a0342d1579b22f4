//! Wake-ups: how an idle worker learns within milliseconds that work arrived,
//! without polling.
//!
//! Scripts that make work claimable PUBLISH on the queue's `wake` channel.
//! One subscriber per process turns messages into a version bump on a
//! `watch` channel per queue; an idle backend waits for the version to change
//! (or for its next due time). Pub/sub can drop a message while reconnecting,
//! so every (re)subscription bumps every queue too, and idle backends still
//! look again after a bounded time.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::queue::FairQueue;

/// Receivers of wake-ups, one per queue.
#[derive(Debug, Clone)]
pub struct Wakeups {
    by_channel: HashMap<String, watch::Receiver<u64>>,
}

impl Wakeups {
    /// The receiver for `queue`'s wake channel.
    pub fn for_queue(&self, queue: &FairQueue) -> watch::Receiver<u64> {
        self.by_channel
            .get(&queue.keys().wake_channel())
            .cloned()
            .expect("Wakeups::listen was given every queue the process consumes")
    }

    /// Subscribes to the wake channels of `queues` and keeps the subscription
    /// alive (reconnecting with backoff) for as long as the process runs.
    pub fn listen(client: redis::Client, queues: &[FairQueue]) -> Self {
        let mut senders = HashMap::new();
        let mut by_channel = HashMap::new();
        for q in queues {
            let (tx, rx) = watch::channel(0u64);
            let channel = q.keys().wake_channel();
            senders.insert(channel.clone(), tx);
            by_channel.insert(channel, rx);
        }
        tokio::spawn(subscribe_forever(client, senders));
        Self { by_channel }
    }
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|v| *v = v.wrapping_add(1));
}

async fn subscribe_forever(client: redis::Client, senders: HashMap<String, watch::Sender<u64>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                let mut ok = true;
                for channel in senders.keys() {
                    if let Err(e) = pubsub.subscribe(channel).await {
                        warn!(error = %e, "wake-up subscription failed; retrying");
                        ok = false;
                        break;
                    }
                }
                if ok {
                    debug!(channels = senders.len(), "subscribed to wake-ups");
                    backoff = Duration::from_millis(100);
                    // Anything published while we were not listening is lost: look now.
                    senders.values().for_each(bump);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if let Some(tx) = senders.get(msg.get_channel_name()) {
                            bump(tx);
                        }
                    }
                    warn!(
                        "wake-up subscription closed (Redis restarted or the connection dropped); resubscribing"
                    );
                }
            }
            Err(e) => warn!(error = %e, "cannot open the wake-up subscription; retrying"),
        }
        if senders.values().all(|tx| tx.is_closed()) {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
