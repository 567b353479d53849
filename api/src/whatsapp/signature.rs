//! `X-Hub-Signature-256` checking for Cloud API webhook deliveries.
//!
//! Meta signs the body bytes exactly as sent (non-ASCII already escaped as `\u00e3`), so the MAC
//! must be computed over the raw request body, never over a re-serialised copy. The legacy sha1
//! `X-Hub-Signature` header is not accepted on its own: callers pass only the sha256 header.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";

/// Why a delivery's signature was refused; every variant means "answer 401/403, do not process".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("malformed X-Hub-Signature-256 header: expected \"sha256=\" and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value, `sha256=<hex>`) against an HMAC-SHA256 of
/// `raw_body` keyed with the app secret, in constant time.
pub fn verify(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let digest = header
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed)?;
    let mut tag = [0u8; 32];
    hex::decode_to_slice(digest, &mut tag).map_err(|_| SignatureError::Malformed)?;
    mac(app_secret, raw_body)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

/// The full header value (`sha256=<lowercase hex>`) Meta would send for `body`; used by tests and
/// the load generator.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let tag = mac(app_secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(tag))
}

fn mac(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC hashes or zero-pads any key to the block size, so key length can never be rejected.
    let Ok(mut mac) = HmacSha256::new_from_slice(app_secret) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn known_answer_rfc4231_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn good_signature_verifies() {
        let header = sign(SECRET, BODY);
        assert_eq!(verify(SECRET, BODY, Some(&header)), Ok(()));
        // Header values may carry stray whitespace from proxies.
        assert_eq!(verify(SECRET, BODY, Some(&format!(" {header}\t"))), Ok(()));
    }

    #[test]
    fn bad_signature_is_a_mismatch() {
        let header = sign(SECRET, BODY);
        assert_eq!(
            verify(b"other-secret", BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        let tampered = br#"{"object":"whatsapp_business_account","entry":[{}]}"#;
        assert_eq!(
            verify(SECRET, tampered, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        let zeros = format!("sha256={}", "0".repeat(64));
        assert_eq!(
            verify(SECRET, BODY, Some(&zeros)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header() {
        assert_eq!(verify(SECRET, BODY, None), Err(SignatureError::Missing));
    }

    #[test]
    fn malformed_headers() {
        let hex = &sign(SECRET, BODY)[PREFIX.len()..];
        for header in [
            String::new(),
            hex.to_owned(),                    // no prefix
            format!("sha1={hex}"),             // legacy algorithm
            format!("sha256={}", &hex[..62]),  // too short
            format!("sha256={hex}00"),         // too long
            format!("sha256=zz{}", &hex[2..]), // not hex
        ] {
            assert_eq!(
                verify(SECRET, BODY, Some(&header)),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn escaped_non_ascii_is_signed_as_received() {
        let raw = br#"{"text":{"body":"Ol\u00e1, n\u00e3o"}}"#;
        let header = sign(SECRET, raw);
        assert_eq!(verify(SECRET, raw, Some(&header)), Ok(()));
        // Re-serialising turns the escapes into UTF-8 bytes, which no longer match.
        let value: serde_json::Value = serde_json::from_slice(raw).unwrap();
        let reserialised = serde_json::to_vec(&value).unwrap();
        assert_ne!(reserialised, raw);
        assert_eq!(
            verify(SECRET, &reserialised, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }
}
