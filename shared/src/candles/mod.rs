//! Candle execution: strategies that run once per candle interval and fan
//! out to their subscribers.
//!
//! - [`resolution`]: candle lengths, interval floors, next closes, interval keys
//! - [`symbol`], [`candle`]: a market's ticker and one closed bar, checked once
//! - [`strategy`]: the built-in strategy kinds as pure functions of candles
//! - [`sizing`]: risk-based position sizing per subscriber
//! - [`execute`]: one job's effects in one tenant-scoped transaction
//! - [`store`]: market data and the cross-tenant questions the triggers ask
//! - [`trigger`]: a closed candle into one job per strategy, once per interval
//! - [`feed`]: a candle from a market-data feed: checked, stored, enqueued
//! - [`clock`]: the boundary tick and the reconciler, with time as an argument
//! - [`views`]: what a tenant reads (strategies, subscriptions, executions, PnL)

pub mod candle;
pub mod clock;
pub mod execute;
pub mod feed;
pub mod resolution;
pub mod sizing;
pub mod store;
pub mod strategy;
pub mod symbol;
pub mod trigger;
pub mod views;

pub use candle::Candle;
pub use resolution::{Interval, Resolution};
pub use symbol::Symbol;
