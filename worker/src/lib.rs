//! `flotilla-worker`: runs Flotilla's jobs with apalis workers on the fair
//! Redis queue. `main` only parses flags and calls [`app::run`].
//!
//! # Layout
//! - [`config`]: flags and environment, checked once
//! - [`app`]: start-up (Redis safety check, HTTP, consumers) and the run
//! - [`consumers`]: one apalis worker per queue; the queue → handler map
//! - [`handlers`]: the job handlers, business logic only
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`
//! - [`health`]: what readiness means
//! - [`gauges`]: queue-wide gauges refreshed on a timer
//! - [`connect_sweep`]: user-connect failover and its gauges, on a timer
//! - [`shutdown`]: stop requests (signals) and the drain with its grace period

pub mod app;
pub mod config;
pub mod connect_sweep;
pub mod consumers;
pub mod gauges;
pub mod handlers;
pub mod health;
pub mod http;
pub mod shutdown;
