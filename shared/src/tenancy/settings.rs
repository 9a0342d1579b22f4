//! A tenant's settings, resolved default → tier → its overrides and stored
//! in `tenant_configs.resolved`, so readers (the API's rate limit, the
//! queue's weights) never recompute them and a change is one row update
//! away (hot-reloadable: nothing caches them across requests).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the queue and the API enforce for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Share of claims under contention (starter 1, pro 2, enterprise 4).
    pub queue_weight: f64,
    /// Most of its jobs in flight at once across the fleet; 0 = no cap.
    pub max_in_flight: u32,
    /// Enqueues allowed per UTC day; `None` = unlimited.
    pub daily_enqueue_limit: Option<u64>,
}

/// Why overrides are refused. The message names the key and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config override {key:?}: {rule}")]
pub struct InvalidOverride {
    /// The key at fault.
    pub key: String,
    /// What it should be.
    pub rule: &'static str,
}

/// Checks an operator's overrides: only known keys, each with a sane value.
pub fn check_overrides(overrides: &Map<String, Value>) -> Result<(), InvalidOverride> {
    for (key, value) in overrides {
        let rule = match key.as_str() {
            "queue_weight" => match value.as_f64() {
                Some(w) if w > 0.0 && w <= 1000.0 => continue,
                _ => "a number above 0 and at most 1000",
            },
            "max_in_flight" => match value.as_u64() {
                Some(n) if n <= 100_000 => continue,
                _ => "a whole number from 0 (no cap) to 100000",
            },
            "daily_enqueue_limit" => match value {
                Value::Null => continue,
                v if v.as_u64().is_some() => continue,
                _ => "a whole number of jobs per UTC day, or null for unlimited",
            },
            _ => "unknown key; the known keys are queue_weight, max_in_flight, daily_enqueue_limit",
        };
        return Err(InvalidOverride {
            key: key.chars().take(64).collect(),
            rule,
        });
    }
    Ok(())
}

/// The built-in defaults, under every tier's settings.
fn defaults() -> Map<String, Value> {
    let Value::Object(map) = serde_json::json!({
        "queue_weight": 1,
        "max_in_flight": 0,
        "daily_enqueue_limit": null,
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// default → tier → overrides: later layers win key by key.
pub fn resolve(tier: &Value, overrides: &Value) -> Value {
    let mut resolved = defaults();
    for layer in [tier, overrides] {
        if let Value::Object(map) = layer {
            for (k, v) in map {
                resolved.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(resolved)
}

impl TenantSettings {
    /// Reads resolved settings; anything unreadable falls back to the
    /// defaults key by key rather than failing a request.
    pub fn from_resolved(resolved: &Value) -> Self {
        Self {
            queue_weight: resolved["queue_weight"]
                .as_f64()
                .filter(|w| *w > 0.0)
                .unwrap_or(1.0),
            max_in_flight: resolved["max_in_flight"]
                .as_u64()
                .map_or(0, |n| n.min(u32::MAX as u64) as u32),
            daily_enqueue_limit: resolved["daily_enqueue_limit"].as_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn overrides_win_over_the_tier_which_wins_over_the_defaults() {
        let tier = json!({"queue_weight": 2, "max_in_flight": 16, "daily_enqueue_limit": 100000});
        let resolved = resolve(&tier, &json!({"max_in_flight": 3}));
        assert_eq!(
            TenantSettings::from_resolved(&resolved),
            TenantSettings {
                queue_weight: 2.0,
                max_in_flight: 3,
                daily_enqueue_limit: Some(100_000)
            }
        );
    }

    #[test]
    fn a_null_limit_means_unlimited() {
        let resolved = resolve(
            &json!({"daily_enqueue_limit": 10}),
            &json!({"daily_enqueue_limit": null}),
        );
        assert_eq!(
            TenantSettings::from_resolved(&resolved).daily_enqueue_limit,
            None
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        for (bad, key) in [
            (json!({"queue_weight": 0}), "queue_weight"),
            (json!({"queue_weight": "4"}), "queue_weight"),
            (json!({"max_in_flight": -1}), "max_in_flight"),
            (json!({"daily_enqueue_limit": 1.5}), "daily_enqueue_limit"),
            (
                json!({"'; DROP TABLE tenants; --": 1}),
                "'; DROP TABLE tenants; --",
            ),
        ] {
            let Value::Object(map) = bad else {
                unreachable!()
            };
            assert_eq!(check_overrides(&map).unwrap_err().key, key);
        }
        let Value::Object(ok) = json!({"queue_weight": 3.5, "daily_enqueue_limit": null}) else {
            unreachable!()
        };
        assert_eq!(check_overrides(&ok), Ok(()));
    }
}
