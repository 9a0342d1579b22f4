//! API keys: `flt_<prefix>_<secret>`. The prefix finds the key's row; only a
//! SHA-256 of the whole key is stored, so a database dump reveals no key.
//! A key is shown once, when issued. The admin key is not stored at all: it
//! comes from the environment (`FLOTILLA_ADMIN_KEY`).

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;

use super::settings::TenantSettings;
use super::{TenantStatus, Tier};
use crate::db::DbError;
use crate::ids::TenantId;

const PREFIX_BYTES: usize = 6;
const SECRET_BYTES: usize = 24;

/// A key as presented by a caller, split into its parts. Holding one says
/// nothing about whether it is valid: [`authenticate`] decides that.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    prefix: String,
    whole: String,
}

impl std::fmt::Debug for ApiKey {
    // Never print the secret, even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(flt_{}_…)", self.prefix)
    }
}

/// Why a presented key cannot even be looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed API key: expected flt_<12 hex>_<48 hex>, as issued when the tenant was created")]
pub struct MalformedKey;

impl ApiKey {
    /// Splits a presented key; refuses anything not shaped like an issued key.
    pub fn parse(text: &str) -> Result<Self, MalformedKey> {
        let rest = text.strip_prefix("flt_").ok_or(MalformedKey)?;
        let (prefix, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let hex = |s: &str, n: usize| {
            s.len() == n * 2
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(prefix, PREFIX_BYTES) || !hex(secret, SECRET_BYTES) {
            return Err(MalformedKey);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            whole: text.to_owned(),
        })
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut prefix = [0u8; PREFIX_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut prefix);
        rng.fill_bytes(&mut secret);
        let prefix = hex::encode(prefix);
        let whole = format!("flt_{prefix}_{}", hex::encode(secret));
        Self { prefix, whole }
    }

    /// The public part, stored in clear to find the row.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The whole key: show it once, to the tenant, and never log it.
    pub fn reveal(&self) -> &str {
        &self.whole
    }

    /// What is stored.
    pub fn hash(&self) -> Vec<u8> {
        digest(&self.whole).to_vec()
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Compares two secrets without an early exit, so timing says nothing about
/// how much of a guess was right.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    let (a, b) = (digest(presented), digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Issues a new key for `tenant` and stores its hash; the returned key is
/// the only copy of the secret.
pub async fn issue(conn: &mut sqlx::PgConnection, tenant: &TenantId) -> Result<ApiKey, DbError> {
    let key = ApiKey::generate();
    store(conn, tenant, &key).await?;
    Ok(key)
}

/// Stores `key`'s hash for `tenant`.
pub async fn store(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    key: &ApiKey,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO api_keys (id, tenant_id, prefix, hash) VALUES ($1, $2, $3, $4)")
        .bind(ulid::Ulid::new().to_string().to_lowercase())
        .bind(tenant.as_str())
        .bind(key.prefix())
        .bind(key.hash())
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every key of `tenant`; returns how many were live.
pub async fn revoke_all(pool: &PgPool, tenant: &TenantId) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The tenant a valid key belongs to, as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyOwner {
    /// The tenant.
    pub tenant: TenantId,
    /// Its tier (for rate limits).
    pub tier: Tier,
    /// Its status (suspended tenants may read but not enqueue).
    pub status: TenantStatus,
    /// Its resolved settings (the daily enqueue limit), read with the key
    /// so a change applies to the next request.
    pub settings: TenantSettings,
}

/// Tenant id, key hash, tier, status, resolved settings.
type KeyRow = (
    String,
    Vec<u8>,
    Tier,
    TenantStatus,
    Option<serde_json::Value>,
);

/// The owner of `key`, or `None` when the key is unknown, revoked, or its
/// tenant deleted: all of which the API answers with 401.
pub async fn authenticate(pool: &PgPool, key: &ApiKey) -> Result<Option<KeyOwner>, DbError> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT t.id, k.hash, t.tier, t.status, c.resolved
               FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
               LEFT JOIN tenant_configs c ON c.tenant_id = t.id
              WHERE k.prefix = $1 AND k.revoked_at IS NULL",
    )
    .bind(key.prefix())
    .fetch_optional(pool)
    .await?;
    let Some((tenant, hash, tier, status, resolved)) = row else {
        return Ok(None);
    };
    let matches = hash.len() == 32
        && hash
            .iter()
            .zip(key.hash().iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    if !matches || status == TenantStatus::Deleted {
        return Ok(None);
    }
    Ok(Some(KeyOwner {
        tenant: TenantId::parse(&tenant)?,
        tier,
        status,
        settings: TenantSettings::from_resolved(&resolved.unwrap_or_default()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_back_to_itself() {
        let key = ApiKey::generate();
        assert_eq!(ApiKey::parse(key.reveal()), Ok(key.clone()));
        assert_eq!(key.prefix().len(), 12);
    }

    #[test]
    fn keys_not_shaped_like_issued_ones_are_malformed() {
        for bad in [
            "",
            "flt_",
            "flt_abc_def",
            "xyz_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef",
            "flt_0123456789AB_0123456789abcdef0123456789abcdef0123456789abcdef",
            "flt_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcde'",
        ] {
            assert_eq!(ApiKey::parse(bad), Err(MalformedKey), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = ApiKey::generate();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.reveal()[17..]), "{shown}");
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("admin-secret", "admin-secret"));
        assert!(!same_secret("admin-secret", "admin-secreT"));
        assert!(!same_secret("", "admin-secret"));
    }
}
