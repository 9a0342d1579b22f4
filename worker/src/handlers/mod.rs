//! Job handlers: business logic only. Retries, timeouts, panics, leases and
//! tracing are the middleware's and the backend's job, so a handler takes
//! its payload and [`flotilla::backend::JobContext`] and returns
//! `Result<(), JobError>`: `JobError::Permanent` for what no retry can fix,
//! anything else is retried with backoff.

pub mod bench;
pub mod candles;
pub mod connect;
pub mod provisioning;
