//! Slack's request signature: `X-Slack-Signature: v0=<hex HMAC-SHA256>` of
//! `v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's signing secret, the
//! timestamp within five minutes (Slack, "Verifying requests from Slack"), compared in
//! constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from the clock, either way: Slack's own advice,
/// so that a captured request cannot be replayed later.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// The timestamp header.
pub const TIMESTAMP: &str = "x-slack-request-timestamp";
/// The signature header.
pub const SIGNATURE: &str = "x-slack-signature";

/// Why a request was refused (answered 401, naming this, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// A header is missing (or given twice).
    Missing(&'static str),
    /// A header is not in Slack's form.
    Malformed(&'static str),
    /// The timestamp is more than five minutes from the clock.
    Stale,
    /// The signature does not match the body.
    Mismatch,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Missing(h) => write!(f, "no single {h} header"),
            Rejected::Malformed(TIMESTAMP) => write!(f, "{TIMESTAMP} is not a Unix time in seconds"),
            Rejected::Malformed(h) => write!(f, "{h} is not `v0=<64 hex digits>`"),
            Rejected::Stale => write!(
                f,
                "{TIMESTAMP} is more than {MAX_SKEW_SECONDS} seconds from now (a replay, or a clock off)"
            ),
            Rejected::Mismatch => write!(f, "{SIGNATURE} does not match the body"),
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    Some(mac)
}

/// Checks a request's `timestamp` and `signature` header values against `body`, the
/// raw bytes as received, and `now` in Unix seconds: the real clock, since Slack's
/// timestamp is one.
///
/// # Errors
/// [`Rejected`] saying which check failed.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Rejected> {
    let timestamp = timestamp.ok_or(Rejected::Missing(TIMESTAMP))?.trim();
    let signature = signature.ok_or(Rejected::Missing(SIGNATURE))?.trim();
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| Rejected::Malformed(TIMESTAMP))?;
    // abs_diff: a hostile timestamp such as i64::MIN must not overflow.
    if now.abs_diff(sent) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(Rejected::Stale);
    }
    let digest = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|d| d.len() == 32)
        .ok_or(Rejected::Malformed(SIGNATURE))?;
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body)
        .ok_or(Rejected::Mismatch)?
        .verify_slice(&digest)
        .map_err(|_| Rejected::Mismatch)
}

/// The `X-Slack-Signature` Slack would send for `body` at `timestamp` (tests, tools).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    match mac(secret, &timestamp.to_string(), body) {
        Some(m) => format!("v0={}", hex::encode(m.finalize().into_bytes())),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example ("Verifying requests from Slack", step by step).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        let now = 1_531_420_618 + 60;
        assert_eq!(verify(SECRET, Some(TS), Some(SIG), BODY, now), Ok(()));
        assert_eq!(sign(SECRET, 1_531_420_618, BODY), SIG);
    }

    #[test]
    fn anything_else_is_refused() {
        let now = 1_531_420_618;
        let tampered = [BODY, b"x"].concat();
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), &tampered, now),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            verify(
                b"another-secret-value-32-bytes-xx",
                Some(TS),
                Some(SIG),
                BODY,
                now
            ),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, now + 301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, now - 301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY, now),
            Err(Rejected::Missing(TIMESTAMP))
        );
        assert_eq!(
            verify(SECRET, Some(TS), None, BODY, now),
            Err(Rejected::Missing(SIGNATURE))
        );
        assert_eq!(
            verify(SECRET, Some("soon"), Some(SIG), BODY, now),
            Err(Rejected::Malformed(TIMESTAMP))
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(&SIG[3..]), BODY, now),
            Err(Rejected::Malformed(SIGNATURE))
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some("v0=abcd"), BODY, now),
            Err(Rejected::Malformed(SIGNATURE))
        );
        // v1 or a signature of another timestamp.
        let other = sign(SECRET, now + 1, BODY);
        assert_eq!(
            verify(SECRET, Some(TS), Some(&other), BODY, now),
            Err(Rejected::Mismatch)
        );
    }
}
