//! Flotilla's library: everything the worker and producer binaries share.
//!
//! # Layout
//! - [`ids`]: identifiers parsed once at the edge (`TenantId`, `JobId`, ...)
//! - [`job`]: the job lifecycle (`JobState`), what an enqueue carries, a job's status
//! - [`retry`]: retry policies and the retry-or-bury decision
//! - [`queue`]: the fair, durable Redis queue (`FairQueue`); its Lua scripts
//!   live in `shared/lua/`, one per operation
//! - [`backend`]: the queue as an apalis `Backend`, with the layer that records outcomes
//! - [`wake`]: pub/sub wake-ups so idle workers start new jobs within milliseconds
//! - [`candles`]: candle execution: time math, strategies, sizing, its tables
//! - [`connect`]: user connect: session hosts, assignment, failover
//! - [`kinds`]: the job kinds, their queues, payloads and retry policies
//! - [`redis_conn`]: connecting to Redis and refusing one that would lose jobs
//! - [`db`]: PostgreSQL, the system of record: pool, migrations, tenant-scoped transactions
//! - [`tenancy`]: tenants' tiers and statuses, API keys
//! - [`config`]: settings shared by both binaries (from flags and environment)
//! - [`telemetry`]: logs and the metric catalogue

pub mod backend;
pub mod candles;
pub mod config;
pub mod connect;
pub mod db;
pub mod ids;
pub mod job;
pub mod kinds;
pub mod queue;
pub mod redis_conn;
pub mod retry;
pub mod telemetry;
pub mod tenancy;
pub mod wake;
