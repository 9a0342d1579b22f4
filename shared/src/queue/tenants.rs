//! Per-tenant scheduling policy: weight (share under contention) and cap
//! (most jobs in flight across the fleet).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{FairQueue, QueueError, redis_err, scripts};
use crate::ids::TenantId;

/// How a tenant is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TenantPolicy {
    /// Relative share under contention (starter 1, pro 2, enterprise 4).
    pub weight: f64,
    /// Most of the tenant's jobs in flight at once across all workers; 0 = no cap.
    pub cap: u32,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            weight: 1.0,
            cap: 0,
        }
    }
}

/// A tenant's policy and live scheduling state on one queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantState {
    /// The policy in force.
    pub policy: TenantPolicy,
    /// Jobs of the tenant now leased.
    pub inflight: u64,
    /// Jobs of the tenant waiting on its queue.
    pub pending: u64,
}

impl FairQueue {
    /// Sets a tenant's weight and cap; the next claim honours them.
    pub async fn set_tenant_policy(
        &self,
        tenant: &TenantId,
        policy: TenantPolicy,
    ) -> Result<(), QueueError> {
        let weight = if policy.weight.is_finite() && policy.weight > 0.0 {
            policy.weight
        } else {
            1.0
        };
        let mut inv = self.invocation(&scripts::SET_POLICY);
        inv.arg(tenant.as_str()).arg(weight).arg(policy.cap);
        let _: String = self.run("set_policy", &inv).await?;
        Ok(())
    }

    /// The job an idempotency key of `tenant` names, while the key lives.
    /// Lets a caller answer a replay (e.g. over a spent rate limit) as the
    /// enqueue would.
    pub async fn idempotent_job(
        &self,
        tenant: &TenantId,
        key: &crate::ids::IdempotencyKey,
    ) -> Result<Option<crate::ids::JobId>, QueueError> {
        let mut conn = self.connection();
        let entry: Option<String> = redis::cmd("GET")
            .arg(format!(
                "{}idem:{tenant}:{}",
                self.keys.prefix(),
                key.as_str()
            ))
            .query_async(&mut conn)
            .await
            .map_err(redis_err("idempotency lookup"))?;
        Ok(entry
            .as_deref()
            .and_then(|e| e.split(':').next())
            .and_then(|id| crate::ids::JobId::parse(id).ok()))
    }

    /// A tenant's policy and current load on this queue.
    pub async fn tenant_state(&self, tenant: &TenantId) -> Result<TenantState, QueueError> {
        let mut conn = self.connection();
        let (h, pending): (HashMap<String, String>, u64) = redis::pipe()
            .hgetall(self.keys.tenant(tenant))
            .llen(self.keys.tenant_queue(tenant))
            .query_async(&mut conn)
            .await
            .map_err(redis_err("tenant state"))?;
        let num = |k: &str| h.get(k).and_then(|v| v.parse::<f64>().ok());
        Ok(TenantState {
            policy: TenantPolicy {
                weight: num("weight").unwrap_or(1.0),
                cap: num("cap").unwrap_or(0.0) as u32,
            },
            inflight: num("inflight").unwrap_or(0.0).max(0.0) as u64,
            pending,
        })
    }
}
