//! Request authentication: HMAC-SHA256 signatures (GitHub, Flux `generic-hmac`,
//! PagerDuty v3), the Flagger token and the Argo bearer token, all compared in constant
//! time. SHA-1 signatures are never accepted.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a request was not authenticated (the response says which, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    Missing(&'static str),
    Malformed(&'static str),
    Mismatch(&'static str),
    Duplicated(&'static str),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Missing(h) => write!(f, "no {h}"),
            Rejected::Malformed(h) if h.starts_with("X-PagerDuty") => {
                write!(f, "{h} is not `v1=<64 hex digits>[,v1=…]`")
            }
            Rejected::Malformed(h) if *h == "Authorization" => {
                write!(f, "{h} is not `Bearer <token>`")
            }
            Rejected::Malformed(h) => write!(f, "{h} is not `sha256=<64 hex digits>`"),
            Rejected::Mismatch(h) => write!(f, "{h} does not match the body"),
            Rejected::Duplicated(h) => write!(f, "{h} given more than once"),
        }
    }
}

/// Checks `sha256=<hex>` (the value of `header`) against HMAC-SHA256(secret, body).
pub fn verify_sha256(
    header: &'static str,
    values: &[&str],
    secret: &[u8],
    body: &[u8],
) -> Result<(), Rejected> {
    let value = match values {
        [] => return Err(Rejected::Missing(header)),
        [one] => one.trim(),
        _ => return Err(Rejected::Duplicated(header)),
    };
    let hex_digest = value
        .strip_prefix("sha256=")
        .ok_or(Rejected::Malformed(header))?;
    let expected = hex::decode(hex_digest).map_err(|_| Rejected::Malformed(header))?;
    if expected.len() != 32 {
        return Err(Rejected::Malformed(header));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Rejected::Mismatch(header))?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Rejected::Mismatch(header))
}

/// The signature a sender would put in the header (for tests and tools).
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A shared token, compared in constant time.
pub fn verify_token(
    name: &'static str,
    given: Option<&str>,
    expected: &[u8],
) -> Result<(), Rejected> {
    let given = given.ok_or(Rejected::Missing(name))?;
    if bool::from(given.as_bytes().ct_eq(expected)) {
        Ok(())
    } else {
        Err(Rejected::Mismatch(name))
    }
}

/// Checks PagerDuty's `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` against
/// HMAC-SHA256(secret, body): during a secret rotation PagerDuty sends one signature per
/// secret, and any valid one is enough (PagerDuty's "Verifying Signatures"). Signatures
/// of other versions are skipped; none of version 1 is malformed.
pub fn verify_pagerduty(values: &[&str], secret: &[u8], body: &[u8]) -> Result<(), Rejected> {
    const H: &str = "X-PagerDuty-Signature";
    let value = match values {
        [] => return Err(Rejected::Missing(H)),
        [one] => one.trim(),
        _ => return Err(Rejected::Duplicated(H)),
    };
    let mut any = false;
    for signature in value.split(',').map(str::trim) {
        let Some(hex_digest) = signature.strip_prefix("v1=") else {
            continue;
        };
        any = true;
        let Ok(expected) = hex::decode(hex_digest) else {
            continue;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    if any {
        Err(Rejected::Mismatch(H))
    } else {
        Err(Rejected::Malformed(H))
    }
}

/// PagerDuty's signature header for `body` (for tests and tools): `v1=<hex>`.
pub fn sign_pagerduty(secret: &[u8], body: &[u8]) -> String {
    sign_sha256(secret, body).replacen("sha256=", "v1=", 1)
}

/// Checks `Authorization: Bearer <token>` (Argo's webhook service sends the header its
/// config names; it cannot sign the body), in constant time.
pub fn verify_bearer(values: &[&str], expected: &[u8]) -> Result<(), Rejected> {
    const H: &str = "Authorization";
    let value = match values {
        [] => return Err(Rejected::Missing(H)),
        [one] => one.trim(),
        _ => return Err(Rejected::Duplicated(H)),
    };
    let (scheme, token) = value.split_once(' ').ok_or(Rejected::Malformed(H))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejected::Malformed(H));
    }
    verify_token(H, Some(token.trim()), expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "X-Hub-Signature-256";

    #[test]
    fn github_documentation_example() {
        // The example from GitHub's "Validating webhook deliveries".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify_sha256(H, &[sig], b"It's a Secret to Everybody", b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            sign_sha256(b"It's a Secret to Everybody", b"Hello, World!"),
            sig
        );
    }

    #[test]
    fn rejections() {
        let sig = sign_sha256(b"s", b"body");
        assert_eq!(
            verify_sha256(H, &[], b"s", b"body"),
            Err(Rejected::Missing(H))
        );
        assert_eq!(
            verify_sha256(H, &[&sig, &sig], b"s", b"body"),
            Err(Rejected::Duplicated(H))
        );
        assert_eq!(
            verify_sha256(H, &[&sig], b"s", b"bodY"),
            Err(Rejected::Mismatch(H))
        );
        assert_eq!(
            verify_sha256(H, &[&sig], b"t", b"body"),
            Err(Rejected::Mismatch(H))
        );
        assert_eq!(
            verify_sha256(
                H,
                &["sha1=0123456789abcdef0123456789abcdef01234567"],
                b"s",
                b"body"
            ),
            Err(Rejected::Malformed(H))
        );
        assert_eq!(
            verify_sha256(H, &["sha256=zz"], b"s", b"body"),
            Err(Rejected::Malformed(H))
        );
        assert_eq!(verify_token("token", Some("abc"), b"abc"), Ok(()));
        assert!(verify_token("token", Some("abd"), b"abc").is_err());
        assert!(verify_token("token", None, b"abc").is_err());
    }

    #[test]
    fn pagerduty_signatures() {
        const P: &str = "X-PagerDuty-Signature";
        let body = br#"{"event":{"id":"01DEN2SFUXJCW4VOBEQW3OGQ3B"}}"#;
        let good = sign_pagerduty(b"new", body);
        let old = sign_pagerduty(b"old", body);
        assert!(good.starts_with("v1=") && good.len() == 67);
        assert_eq!(verify_pagerduty(&[&good], b"new", body), Ok(()));
        // A rotation: two signatures, either secret verifies.
        let both = format!("{old},{good}");
        assert_eq!(verify_pagerduty(&[&both], b"new", body), Ok(()));
        assert_eq!(verify_pagerduty(&[&both], b"old", body), Ok(()));
        assert_eq!(
            verify_pagerduty(&[&both], b"other", body),
            Err(Rejected::Mismatch(P))
        );
        assert_eq!(
            verify_pagerduty(&[&good], b"new", b"{}"),
            Err(Rejected::Mismatch(P))
        );
        assert_eq!(
            verify_pagerduty(&[], b"new", body),
            Err(Rejected::Missing(P))
        );
        assert_eq!(
            verify_pagerduty(&["sha256=00"], b"new", body),
            Err(Rejected::Malformed(P))
        );
        assert_eq!(
            verify_pagerduty(&["v1=zz"], b"new", body),
            Err(Rejected::Mismatch(P))
        );
    }

    #[test]
    fn bearer_tokens() {
        const A: &str = "Authorization";
        assert_eq!(verify_bearer(&["Bearer abc"], b"abc"), Ok(()));
        assert_eq!(verify_bearer(&["bearer  abc "], b"abc"), Ok(()));
        assert_eq!(
            verify_bearer(&["Bearer abd"], b"abc"),
            Err(Rejected::Mismatch(A))
        );
        assert_eq!(
            verify_bearer(&["Basic abc"], b"abc"),
            Err(Rejected::Malformed(A))
        );
        assert_eq!(verify_bearer(&["abc"], b"abc"), Err(Rejected::Malformed(A)));
        assert_eq!(verify_bearer(&[], b"abc"), Err(Rejected::Missing(A)));
        assert_eq!(
            verify_bearer(&["Bearer abc", "Bearer abc"], b"abc"),
            Err(Rejected::Duplicated(A))
        );
    }
}
