//! The queue's Lua scripts, one per operation, each compiled into the binary
//! with the shared prelude in front. `Script` runs them by SHA and reloads
//! them when Redis answers NOSCRIPT (after a restart or failover).

use std::sync::LazyLock;

use redis::Script;

macro_rules! lua {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../../lua/prelude.lua"),
                include_str!(concat!("../../lua/", $file))
            ))
        })
    };
}

pub(crate) static ENQUEUE: LazyLock<Script> = lua!("enqueue.lua");
pub(crate) static CLAIM: LazyLock<Script> = lua!("claim.lua");
pub(crate) static SETTLE: LazyLock<Script> = lua!("settle.lua");
pub(crate) static EXTEND: LazyLock<Script> = lua!("extend.lua");
pub(crate) static MAINTAIN: LazyLock<Script> = lua!("maintain.lua");
pub(crate) static REPLAY: LazyLock<Script> = lua!("replay.lua");
pub(crate) static PURGE: LazyLock<Script> = lua!("purge.lua");
pub(crate) static SET_POLICY: LazyLock<Script> = lua!("set_policy.lua");
pub(crate) static HEARTBEAT: LazyLock<Script> = lua!("heartbeat.lua");
pub(crate) static DEPTH: LazyLock<Script> = lua!("depth.lua");
