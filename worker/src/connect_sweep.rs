//! User-connect failover on a timer (see [`flotilla::connect::sweep`]):
//! every worker consuming `connect` sweeps, which is safe on any number of
//! replicas, so failover needs no leader and survives any one worker. The
//! connect gauges (hosts by status, free places, users by state) are
//! refreshed on the same timer; like the queue gauges they describe the
//! fleet, so dashboards take `max()` across replicas.

use flotilla::connect::ConnectArgs;
use flotilla::connect::sweep::{census, sweep};
use flotilla::queue::FairQueue;
use flotilla::telemetry::names;
use metrics::gauge;
use sqlx::PgPool;
use tracing::{info, warn};

/// Sweeps every `settings.sweep_every` for as long as the process runs.
pub async fn run(db: PgPool, queue: FairQueue, settings: ConnectArgs) {
    let mut tick = tokio::time::interval(settings.sweep_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let swept = sweep(
            &db,
            &queue,
            settings.heartbeat_timeout,
            settings.stuck_after,
        )
        .await;
        let counted = census(&db, settings.heartbeat_timeout).await;
        match (swept, counted) {
            (Ok(swept), Ok(census)) => {
                if failing {
                    info!("the connect sweep works again");
                }
                failing = false;
                if !swept.offline.is_empty() {
                    info!(hosts = ?swept.offline, moves = swept.moves, "session hosts went offline; their users are moving");
                }
                for (status, n) in census.hosts {
                    gauge!(names::SESSION_HOSTS, "status" => status).set(n as f64);
                }
                gauge!(names::SESSION_HOSTS_FREE).set(census.free as f64);
                for (state, n) in census.users {
                    gauge!(names::USER_CONNECTIONS, "state" => state.as_str()).set(n as f64);
                }
            }
            (Err(e), _) => {
                if !failing {
                    warn!(error = %e, "the connect sweep failed; retrying every tick");
                }
                failing = true;
            }
            (_, Err(e)) => {
                if !failing {
                    warn!(error = %e, "counting session hosts failed; retrying every tick");
                }
                failing = true;
            }
        }
    }
}
