//! Webhook signing and verification.
//!
//! Two schemes are produced for every delivery:
//!
//! * **Standard Webhooks v1** (`webhook-signature` header): `"v1," + base64(HMAC-SHA256(key,
//!   "{webhook-id}.{webhook-timestamp}.{body}"))`. The key comes from a `whsec_` secret via
//!   [`crate::secret::standard_key_from_secret`].
//! * **OpenWA compatible** (`X-OpenWA-Signature` header): `"sha256=" + hex(HMAC-SHA256(secret as
//!   UTF-8, body))`.
//!
//! Everything here is pure: the current time is always an argument, nothing reads the clock.
//! Verification compares MACs in constant time (`hmac`'s `verify_slice`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a Standard Webhooks signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header holds no `v1,` signature at all.
    #[error("no v1 signature in the webhook-signature header")]
    NoSignature,
    /// There were `v1,` signatures, but none matched.
    #[error("no signature matches")]
    Mismatch,
    /// The timestamp lies further in the past than the tolerance allows.
    #[error("webhook timestamp is too old ({age_secs} s, tolerance {tolerance_secs} s)")]
    TimestampTooOld { age_secs: i64, tolerance_secs: i64 },
    /// The timestamp lies further in the future than the tolerance allows.
    #[error("webhook timestamp is in the future ({ahead_secs} s, tolerance {tolerance_secs} s)")]
    TimestampTooNew {
        ahead_secs: i64,
        tolerance_secs: i64,
    },
}

/// A MAC instance for `key`. HMAC accepts keys of any length, so this cannot fail in practice;
/// the fallback (an empty key) only keeps the code free of panics.
fn mac_for(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
    }
}

fn standard_mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = mac_for(key);
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The Standard Webhooks `webhook-signature` value: `"v1,<base64 HMAC-SHA256>"` over
/// `"{msg_id}.{timestamp}.{body}"`.
pub fn standard_signature(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = standard_mac(key, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("v1,{}", BASE64.encode(tag.as_slice()))
}

/// The OpenWA `X-OpenWA-Signature` value: `"sha256=<lowercase hex HMAC-SHA256>"` keyed with the
/// secret's UTF-8 bytes over the exact body bytes.
pub fn openwa_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = mac_for(secret.as_bytes());
    mac.update(body);
    format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes().as_slice())
    )
}

/// Verifies a Standard Webhooks `webhook-signature` header (one or more space-separated
/// `v1,<base64>` entries; entries of other versions are ignored) and the timestamp tolerance
/// (`|now - timestamp| <= tolerance_secs`).
pub fn verify_standard(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let tolerance_secs = tolerance_secs.max(0);
    let age = now.saturating_sub(timestamp);
    if age > tolerance_secs {
        return Err(VerifyError::TimestampTooOld {
            age_secs: age,
            tolerance_secs,
        });
    }
    if age < -tolerance_secs {
        return Err(VerifyError::TimestampTooNew {
            ahead_secs: age.saturating_neg(),
            tolerance_secs,
        });
    }

    let mac = standard_mac(key, msg_id, timestamp, body);
    let mut saw_v1 = false;
    for entry in header.split_ascii_whitespace() {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        saw_v1 = true;
        let Ok(candidate) = BASE64.decode(encoded) else {
            continue;
        };
        if mac.clone().verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    Err(if saw_v1 {
        VerifyError::Mismatch
    } else {
        VerifyError::NoSignature
    })
}

/// Verifies an OpenWA `X-OpenWA-Signature` header (`sha256=<hex>`, hex case-insensitive) in
/// constant time.
pub fn verify_openwa(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(encoded) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(candidate) = hex::decode(encoded) else {
        return false;
    };
    let mut mac = mac_for(secret.as_bytes());
    mac.update(body);
    mac.verify_slice(&candidate).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::standard_key_from_secret;

    const VEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VEC_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VEC_TS: i64 = 1_649_367_553;
    const VEC_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VEC_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn vec_key() -> Vec<u8> {
        standard_key_from_secret(VEC_SECRET)
    }

    #[test]
    fn published_test_vector() {
        assert_eq!(
            standard_signature(&vec_key(), VEC_ID, VEC_TS, VEC_BODY),
            VEC_SIG
        );
        assert_eq!(
            verify_standard(&vec_key(), VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_TS, 300),
            Ok(())
        );
    }

    #[test]
    fn plain_secret_signature_matches_python_hmac() {
        // python3: base64.b64encode(hmac.new(b"plain-secret", b"id1.100.hello", sha256).digest())
        let key = standard_key_from_secret("plain-secret");
        assert_eq!(key, b"plain-secret");
        assert_eq!(
            standard_signature(&key, "id1", 100, b"hello"),
            "v1,2rNKjX/YSt52qNRskukpFYTCIWYbOZOXllogyHAKMBY="
        );
    }

    #[test]
    fn tampered_body_id_or_timestamp_rejected() {
        let key = vec_key();
        let tampered_body = br#"{"email":"test@example.com","username":"test_user2"}"#;
        assert_eq!(
            verify_standard(&key, VEC_ID, VEC_TS, tampered_body, VEC_SIG, VEC_TS, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_standard(&key, VEC_ID, VEC_TS + 1, VEC_BODY, VEC_SIG, VEC_TS, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_standard(&key, "msg_other", VEC_TS, VEC_BODY, VEC_SIG, VEC_TS, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_standard(b"wrong key", VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_TS, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn timestamp_tolerance() {
        let key = vec_key();
        let ok = |now| verify_standard(&key, VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, now, 300);
        assert_eq!(ok(VEC_TS + 300), Ok(()));
        assert_eq!(ok(VEC_TS - 300), Ok(()));
        assert_eq!(
            ok(VEC_TS + 301),
            Err(VerifyError::TimestampTooOld {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            ok(VEC_TS - 301),
            Err(VerifyError::TimestampTooNew {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        );
        // Extreme values do not overflow.
        assert!(verify_standard(&key, VEC_ID, i64::MIN, VEC_BODY, VEC_SIG, i64::MAX, 300).is_err());
        assert!(verify_standard(&key, VEC_ID, i64::MAX, VEC_BODY, VEC_SIG, i64::MIN, 300).is_err());
    }

    #[test]
    fn several_signatures_any_may_match() {
        let key = vec_key();
        let other = standard_signature(b"rotated-out key", VEC_ID, VEC_TS, VEC_BODY);
        let header = format!("{other} v2,AAAA {VEC_SIG}");
        assert_eq!(
            verify_standard(&key, VEC_ID, VEC_TS, VEC_BODY, &header, VEC_TS, 300),
            Ok(())
        );
        let header = format!("  {VEC_SIG}   {other} ");
        assert_eq!(
            verify_standard(&key, VEC_ID, VEC_TS, VEC_BODY, &header, VEC_TS, 300),
            Ok(())
        );
        // Only non-matching or undecodable v1 entries.
        let header = format!("{other} v1,not*base64");
        assert_eq!(
            verify_standard(&key, VEC_ID, VEC_TS, VEC_BODY, &header, VEC_TS, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn header_without_v1_entries() {
        let key = vec_key();
        for header in [
            "",
            "   ",
            "v2,abc",
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ] {
            assert_eq!(
                verify_standard(&key, VEC_ID, VEC_TS, VEC_BODY, header, VEC_TS, 300),
                Err(VerifyError::NoSignature),
                "{header:?}"
            );
        }
    }

    #[test]
    fn truncated_signature_rejected() {
        let key = vec_key();
        let full = BASE64
            .decode(VEC_SIG.trim_start_matches("v1,"))
            .unwrap_or_default();
        let short = format!("v1,{}", BASE64.encode(&full[..16]));
        assert_eq!(
            verify_standard(&key, VEC_ID, VEC_TS, VEC_BODY, &short, VEC_TS, 300),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn openwa_known_value() {
        // python3: hmac.new(b"my-openwa-secret-0123", body, hashlib.sha256).hexdigest()
        let body = br#"{"event":"message.received","sessionId":"s1"}"#;
        let expected = "sha256=0004a8d3079613e7fc4ac32035fcbe5f04bca1c5e3e0c742977cddd317b8f0da";
        assert_eq!(openwa_signature("my-openwa-secret-0123", body), expected);
        assert!(verify_openwa("my-openwa-secret-0123", body, expected));
        assert!(verify_openwa(
            "my-openwa-secret-0123",
            body,
            &expected.to_ascii_uppercase().replace("SHA256=", "sha256=")
        ));
    }

    #[test]
    fn openwa_rejects_bad_headers() {
        let body = b"{}";
        let good = openwa_signature("secret-secret-secret", body);
        assert!(verify_openwa("secret-secret-secret", body, &good));
        assert!(!verify_openwa("secret-secret-secreT", body, &good));
        assert!(!verify_openwa("secret-secret-secret", b"{ }", &good));
        assert!(!verify_openwa("secret-secret-secret", body, ""));
        assert!(!verify_openwa("secret-secret-secret", body, "sha256="));
        assert!(!verify_openwa("secret-secret-secret", body, "sha256=zz"));
        assert!(!verify_openwa(
            "secret-secret-secret",
            body,
            good.trim_start_matches("sha256=")
        ));
        assert!(!verify_openwa(
            "secret-secret-secret",
            body,
            &good[..good.len() - 2]
        ));
    }

    #[test]
    fn key_from_secret() {
        assert_eq!(
            standard_key_from_secret("whsec_AAEC"),
            vec![0u8, 1, 2],
            "whsec_ secrets are base64-decoded"
        );
        assert_eq!(
            standard_key_from_secret("whsec_not base64!"),
            b"whsec_not base64!".to_vec(),
            "undecodable whsec_ secrets fall back to their UTF-8 bytes"
        );
        assert_eq!(standard_key_from_secret("hunter2"), b"hunter2".to_vec());
        assert_eq!(standard_key_from_secret(""), Vec::<u8>::new());
        assert_eq!(vec_key().len(), 24);
    }
}
