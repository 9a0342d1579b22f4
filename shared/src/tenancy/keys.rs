//! The Redis keys that belong to one tenant, under the deployment's
//! namespace: `<ns>:tenant:<id>` (a hash: tier, status and the settings the
//! queue enforces, for operators and the API), `<ns>:tenant:<id>:new-key`
//! (a freshly issued API key, readable once, then gone) and
//! `<ns>:tenant:<id>:enqueued:<day>` (enqueues on that UTC day, days since the epoch, for the
//! daily limit). Tenant ids are slugs, so they need no escaping.

use crate::ids::{Namespace, TenantId};

/// Key names for one deployment.
#[derive(Debug, Clone)]
pub struct TenantKeys {
    ns: String,
}

impl TenantKeys {
    /// Keys under `namespace`.
    pub fn new(namespace: &Namespace) -> Self {
        Self {
            ns: namespace.as_str().to_owned(),
        }
    }

    /// The tenant's record (hash).
    pub fn record(&self, tenant: &TenantId) -> String {
        format!("{}:tenant:{tenant}", self.ns)
    }

    /// A new API key waiting to be shown once.
    pub fn new_key(&self, tenant: &TenantId) -> String {
        format!("{}:tenant:{tenant}:new-key", self.ns)
    }

    /// Enqueues counted on UTC day `day` (days since the epoch).
    pub fn enqueued(&self, tenant: &TenantId, day: u64) -> String {
        format!("{}:tenant:{tenant}:enqueued:{day}", self.ns)
    }
}
