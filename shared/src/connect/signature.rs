//! Signing calls to session hosts, so a host can tell the fleet's calls
//! from anyone else's: `X-Flotilla-Signature: t=<unix seconds>,v1=<hex>`,
//! where `v1` is HMAC-SHA256 under the shared secret of `<t>.<body>`
//! (Stripe's scheme: the timestamp inside the MAC bounds replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a signed call carries.
pub const HEADER: &str = "x-flotilla-signature";

/// How far a signature's time may be from the verifier's clock.
pub const TOLERANCE_SECS: u64 = 300;

fn mac(secret: &str, t: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` signed at `t` (seconds since the epoch).
pub fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Why a call's signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or not `t=..,v1=..`.
    #[error(
        "missing or malformed X-Flotilla-Signature; expected t=<unix seconds>,v1=<hex HMAC-SHA256>"
    )]
    Malformed,
    /// Signed too long ago or in the future.
    #[error("the signature's time is more than {TOLERANCE_SECS}s from now; check both clocks")]
    Stale,
    /// Not made with this secret over this body.
    #[error("the signature does not match the body under the shared secret (FLOTILLA_HOST_SECRET)")]
    Mismatch,
}

/// Checks a header value against `body` at `now` (seconds since the epoch),
/// in constant time.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (t, v1) = t.zip(v1).ok_or(SignatureError::Malformed)?;
    if t.abs_diff(now) > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    mac(secret, t, body)
        .verify_slice(&v1)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_under_the_same_secret() {
        let header = sign("s3cret", 1_000, b"{\"user\":\"u1\"}");
        assert_eq!(
            verify("s3cret", Some(&header), b"{\"user\":\"u1\"}", 1_010),
            Ok(())
        );
    }

    #[test]
    fn another_body_or_secret_does_not_verify() {
        let header = sign("s3cret", 1_000, b"a");
        assert_eq!(
            verify("s3cret", Some(&header), b"b", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", Some(&header), b"a", 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_old_signature_is_refused() {
        let header = sign("s3cret", 1_000, b"a");
        assert_eq!(
            verify("s3cret", Some(&header), b"a", 2_000),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_malformed_header_is_refused() {
        for bad in [
            None,
            Some(""),
            Some("t=1"),
            Some("v1=00"),
            Some("t=x,v1=zz"),
        ] {
            assert_eq!(verify("s", bad, b"a", 1), Err(SignatureError::Malformed));
        }
    }
}
