//! Evolution's webhook authentication, pure: `Authorization: Bearer <JWT>`.
//!
//! When a webhook's `headers` contain the key `jwt_key`, Evolution (≥ 2.3.0) removes it and
//! sends `Authorization: Bearer <JWT>` instead: HS256 over `{iat, exp: iat + 600, app:
//! "evolution", action: "webhook"}` with that key as the secret. The token is minted once per
//! event and reused on every retry of it, so a retry more than ten minutes after the event
//! carries an expired token (see docs/engines/evolution.md).
//!
//! The JWT is decoded and its signature checked by the `jsonwebtoken` crate, restricted to
//! HS256 (`alg: none` and every other algorithm are refused). Its HMAC runs on this project's
//! `hmac` + `sha2` through a small [`CryptoProvider`], so the build has no second crypto
//! library (jsonwebtoken's own providers are aws-lc-rs or a RustCrypto set with RSA and curves).
//! `exp` is required, must be an integer, and is checked here against `now`, an input.

use std::collections::HashSet;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtLibError, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Validation};
use serde::Deserialize;
use sha2::Sha256;
use time::OffsetDateTime;

/// Allowed difference between Evolution's clock and ours when checking `exp`, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// The claims Evolution puts in its webhook token. Only `exp` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookClaims {
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
}

/// Why a request is not authenticated. Answered with 401 whatever the variant; the variant is
/// for logs (it never contains the token or the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no Authorization: Bearer header")]
    Missing,
    #[error("the bearer token is not a JWT with HS256 and an integer exp")]
    Malformed,
    #[error("the JWT's signature does not match the configured key")]
    BadSignature,
    #[error("the JWT has expired")]
    Expired,
}

/// Verifies the value of an `Authorization` header against the operator's `jwt_key` at `now`.
pub fn verify_bearer(
    authorization: Option<&str>,
    jwt_key: &[u8],
    now: OffsetDateTime,
) -> Result<WebhookClaims, JwtError> {
    let value = authorization.map(str::trim).ok_or(JwtError::Missing)?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(JwtError::Missing),
    };
    if token.is_empty() {
        return Err(JwtError::Missing);
    }
    install_provider();
    let key = DecodingKey::from_secret(jwt_key).map_err(|_| JwtError::BadSignature)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false; // checked below against `now`
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.required_spec_claims = HashSet::from(["exp".to_owned()]);
    let data = jsonwebtoken::decode::<WebhookClaims>(token, &key, &validation)
        .map_err(|e| classify(&e))?;
    if now.unix_timestamp() > data.claims.exp.saturating_add(CLOCK_SKEW_SECS) {
        return Err(JwtError::Expired);
    }
    Ok(data.claims)
}

fn classify(e: &JwtLibError) -> JwtError {
    match e.kind() {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        _ => JwtError::Malformed,
    }
}

/// Signs claims the way Evolution does (for tests and local tooling).
pub fn sign_like_evolution(claims: &serde_json::Value, jwt_key: &[u8]) -> String {
    install_provider();
    let key = EncodingKey::from_secret(jwt_key).expect("a non-empty key");
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), claims, &key)
        .expect("HS256 signing")
}

type HmacSha256 = Hmac<Sha256>;

/// HS256 only; any other algorithm is refused by the factories.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`PROVIDER`] jsonwebtoken's process-wide provider (a no-op once one is installed).
fn install_provider() {
    let _ = PROVIDER.install_default();
}

struct Hs256(HmacSha256);

impl Hs256 {
    fn new(secret: &[u8]) -> Result<Self, JwtLibError> {
        HmacSha256::new_from_slice(secret)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // Constant-time comparison.
        mac.verify_slice(sig).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, JwtLibError> {
    if *alg != Algorithm::HS256 || key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Hs256::new(key.as_bytes())?))
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, JwtLibError> {
    if *alg != Algorithm::HS256 || key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Hs256::new(key.try_get_as_bytes()?)?))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    const KEY: &[u8] = b"operator-chosen-jwt-key-0123456789";
    const IAT: i64 = 1_794_000_000;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn evolution_token(key: &[u8]) -> String {
        sign_like_evolution(
            &json!({"iat": IAT, "exp": IAT + 600, "app": "evolution", "action": "webhook"}),
            key,
        )
    }

    #[test]
    fn a_token_signed_like_evolution_is_accepted_until_it_expires() {
        let header = format!("Bearer {}", evolution_token(KEY));
        let claims = verify_bearer(Some(&header), KEY, at(IAT + 5)).unwrap();
        assert_eq!(claims.exp, IAT + 600);
        assert_eq!(claims.app.as_deref(), Some("evolution"));
        assert_eq!(claims.action.as_deref(), Some("webhook"));
        // The scheme is case-insensitive; the skew allowance holds at the edge.
        let lower = format!("bearer {}", evolution_token(KEY));
        assert!(verify_bearer(Some(&lower), KEY, at(IAT + 600 + CLOCK_SKEW_SECS)).is_ok());
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let header = format!("Bearer {}", evolution_token(b"some-other-key"));
        assert_eq!(
            verify_bearer(Some(&header), KEY, at(IAT + 5)),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let header = format!("Bearer {}", evolution_token(KEY));
        assert_eq!(
            verify_bearer(Some(&header), KEY, at(IAT + 600 + CLOCK_SKEW_SECS + 1)),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = URL_SAFE_NO_PAD.encode(json!({"exp": IAT + 600}).to_string());
        for header in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "HS512", "typ": "JWT"}),
            json!({"alg": "RS256", "typ": "JWT"}),
        ] {
            let head = URL_SAFE_NO_PAD.encode(header.to_string());
            for sig in ["", "c2ln"] {
                let token = format!("Bearer {head}.{claims}.{sig}");
                assert!(
                    verify_bearer(Some(&token), KEY, at(IAT)).is_err(),
                    "{header} with signature {sig:?} must be refused"
                );
            }
        }
    }

    #[test]
    fn malformed_and_missing_tokens_are_refused() {
        assert_eq!(verify_bearer(None, KEY, at(IAT)), Err(JwtError::Missing));
        assert_eq!(
            verify_bearer(Some(""), KEY, at(IAT)),
            Err(JwtError::Missing)
        );
        assert_eq!(
            verify_bearer(Some("Bearer "), KEY, at(IAT)),
            Err(JwtError::Missing)
        );
        assert_eq!(
            verify_bearer(Some(&evolution_token(KEY)), KEY, at(IAT)),
            Err(JwtError::Missing),
            "a token without the Bearer scheme"
        );
        for token in [
            "Bearer abc",
            "Bearer a.b.c",
            "Bearer ...",
            "Basic dXNlcjpwYXNz",
        ] {
            assert!(verify_bearer(Some(token), KEY, at(IAT)).is_err(), "{token}");
        }
        // exp missing, or not an integer (a string must not bypass the expiry check).
        for claims in [
            json!({"iat": IAT}),
            json!({"exp": "never"}),
            json!({"exp": null}),
        ] {
            let token = format!("Bearer {}", sign_like_evolution(&claims, KEY));
            assert!(
                verify_bearer(Some(&token), KEY, at(IAT)).is_err(),
                "claims {claims} must be refused"
            );
        }
    }
}
