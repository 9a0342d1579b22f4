//! Identifiers parsed once at the edge. Each newtype keeps its field private,
//! so a value that exists has passed its `parse`: a `TenantId` can be put in a
//! Redis key or a log line without escaping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a piece of input is not a valid identifier. The message names the
/// field and the rule, so a user can fix the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {field} {shown:?}: {rule}")]
pub struct InvalidId {
    /// The kind of identifier that was being parsed ("tenant id", ...).
    pub field: &'static str,
    /// The rejected input, shortened and with control characters escaped.
    pub shown: String,
    /// The rule it broke.
    pub rule: &'static str,
}

impl InvalidId {
    pub(crate) fn new(field: &'static str, input: &str, rule: &'static str) -> Self {
        let shown: String = input.chars().take(40).collect();
        Self { field, shown, rule }
    }
}

/// Lowercase ASCII letters, digits, `-` and `_`, starting with a letter or digit.
fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the input.
            pub fn parse(input: &str) -> Result<Self, InvalidId> {
                if is_slug(input, $max) {
                    Ok(Self(input.to_owned()))
                } else {
                    Err(InvalidId::new(
                        $field,
                        input,
                        concat!("use 1 to ", $max, " characters from a-z, 0-9, '-' and '_', starting with a letter or digit"),
                    ))
                }
            }

            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug_id!(
    /// A tenant of the platform. It appears in Redis keys, so its alphabet is
    /// restricted; display names live elsewhere.
    TenantId, "tenant id", 64
);
slug_id!(
    /// The name of a queue (`provisioning`, `candles`, `connect`, `bench`).
    QueueName, "queue name", 32
);
slug_id!(
    /// The first part of every Redis key Flotilla writes (`flotilla` by
    /// default); tests and side-by-side deployments use their own.
    Namespace, "namespace", 48
);

/// A job's id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(ulid::Ulid);

impl JobId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }

    /// Parses the 26-character ULID text form.
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        ulid::Ulid::from_string(input)
            .map(Self)
            .map_err(|_| InvalidId::new("job id", input, "a job id is a 26-character ULID"))
    }

    /// Milliseconds since the epoch at which the id was made.
    pub fn created_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

slug_id!(
    /// A session host (a process outside the fleet holding users' Telegram
    /// or broker sessions), as it registers itself.
    HostId, "host id", 63
);
slug_id!(
    /// Where a session host runs (`eu-west`, `us-east-1`).
    Region, "region", 63
);

/// A tenant's user, as the tenant names it. It appears in URL paths, job
/// payloads and idempotency keys, so its alphabet is restricted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// 1 to 128 characters from A-Z, a-z, 0-9 and `. _ : @ -`.
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let ok = !input.is_empty()
            && input.len() <= 128
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:@".contains(&b));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidId::new(
                "user id",
                input,
                "use 1 to 128 characters from A-Z, a-z, 0-9 and . _ : @ -",
            ))
        }
    }

    /// The validated text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A client-chosen key that makes an enqueue safe to repeat (the HTTP
/// `Idempotency-Key` header, or a natural key like `strategy:42:1700000000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Printable ASCII without spaces, 1 to 255 characters.
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let ok =
            !input.is_empty() && input.len() <= 255 && input.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidId::new(
                "idempotency key",
                input,
                "use 1 to 255 printable ASCII characters without spaces",
            ))
        }
    }

    /// The validated text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_accept_slugs() {
        for ok in ["acme", "a", "tenant-42", "t_1", &"x".repeat(64)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn tenant_ids_reject_hostile_and_empty_input() {
        for bad in [
            "",
            "Acme",
            "a b",
            "a:b",
            "{x}",
            "a\n",
            "-a",
            "é",
            "'; DROP",
            &"x".repeat(65),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn invalid_id_message_names_the_field_and_rule() {
        let err = TenantId::parse("Bad Tenant").unwrap_err().to_string();
        assert!(err.contains("tenant id"), "{err}");
        assert!(err.contains("a-z"), "{err}");
    }

    #[test]
    fn job_ids_round_trip_through_text() {
        let id = JobId::new();
        assert_eq!(JobId::parse(&id.to_string()).unwrap(), id);
        assert!(JobId::parse("nope").is_err());
    }

    #[test]
    fn idempotency_keys_reject_spaces_and_control_characters() {
        assert!(IdempotencyKey::parse("strategy:42:1700000000").is_ok());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("bell\u{7}").is_err());
        assert!(IdempotencyKey::parse("").is_err());
    }
}
