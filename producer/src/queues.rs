//! Opening the queues this build knows, on the Redis and namespace the
//! global flags name.

use anyhow::Context as _;
use flotilla::config::{QueueArgs, RedisArgs};
use flotilla::ids::{JobId, QueueName};
use flotilla::job::JobStatus;
use flotilla::kinds::known_queues;
use flotilla::queue::FairQueue;

/// Every known queue, keyed by name.
#[derive(Clone)]
pub struct Queues {
    queues: Vec<FairQueue>,
}

impl Queues {
    /// Connects to Redis and opens every known queue.
    pub async fn open(redis: &RedisArgs, queue: &QueueArgs) -> anyhow::Result<Self> {
        let (_, conn) = flotilla::redis_conn::connect(&redis.redis_url).await?;
        let settings = queue.settings();
        let queues = known_queues()
            .into_iter()
            .map(|name| {
                let name = QueueName::parse(name).expect("known queues have valid names");
                FairQueue::new(conn.clone(), &redis.namespace, name, settings.clone())
            })
            .collect();
        Ok(Queues { queues })
    }

    /// All of them, in catalogue order.
    pub fn all(&self) -> &[FairQueue] {
        &self.queues
    }

    /// The queue named `name`; the error lists the known ones.
    pub fn get(&self, name: &str) -> anyhow::Result<&FairQueue> {
        self.queues
            .iter()
            .find(|q| q.name().as_str() == name)
            .with_context(|| {
                format!(
                    "unknown queue {name:?}; known queues: {}",
                    known_queues().join(", ")
                )
            })
    }

    /// Checks that Redis answers, within two seconds.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.queues[0].connection();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        tokio::time::timeout(std::time::Duration::from_secs(2), ping)
            .await
            .context("no answer within 2 s")??;
        Ok(())
    }

    /// Looks a job up on every queue.
    pub async fn find_job(&self, id: JobId) -> anyhow::Result<Option<JobStatus>> {
        for q in &self.queues {
            if let Some(status) = q.job(id).await? {
                return Ok(Some(status));
            }
        }
        Ok(None)
    }
}
