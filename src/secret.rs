//! Webhook signing secrets: parsed once at the edge, generated in the Standard Webhooks format,
//! never printed by `Debug`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

pub mod at_rest;

/// Prefix of a Standard Webhooks secret; the rest is the base64 of the HMAC key.
pub const WHSEC_PREFIX: &str = "whsec_";

/// The Standard Webhooks HMAC key for a configured secret: a `whsec_` secret yields its
/// base64-decoded bytes (falling back to the UTF-8 bytes of the whole string if the part after
/// the prefix is not valid base64); any other secret yields its UTF-8 bytes.
pub fn standard_key_from_secret(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(WHSEC_PREFIX)
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Why a given secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a whsec_ secret must be base64 after the prefix")]
    NotBase64,
    #[error("a whsec_ secret must decode to 24 to 64 bytes, this one decodes to {0}")]
    WrongKeyLength(usize),
    #[error("a plain secret must be 16 to 255 characters long, this one has {0}")]
    WrongLength(usize),
    #[error("a secret must not have leading or trailing whitespace")]
    Whitespace,
}

/// A validated webhook secret: either `whsec_` + base64 of 24..=64 bytes, or a plain string of
/// 16..=255 characters (what OpenWA users already have).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        if raw.trim() != raw {
            return Err(SecretError::Whitespace);
        }
        if let Some(encoded) = raw.strip_prefix(WHSEC_PREFIX) {
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64)?;
            if !(24..=64).contains(&key.len()) {
                return Err(SecretError::WrongKeyLength(key.len()));
            }
            return Ok(Self(raw.to_owned()));
        }
        let chars = raw.chars().count();
        if !(16..=255).contains(&chars) {
            return Err(SecretError::WrongLength(chars));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A new secret: `whsec_` + base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(format!("{WHSEC_PREFIX}{}", STANDARD.encode(key)))
    }

    /// The secret as the user gave it (or as generated). Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key of the Standard Webhooks signature: the decoded bytes of a `whsec_` secret,
    /// or the UTF-8 bytes of a plain one.
    pub fn standard_key(&self) -> Vec<u8> {
        standard_key_from_secret(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_whsec_with_32_bytes() {
        let s = WebhookSecret::generate();
        assert!(s.expose().starts_with(WHSEC_PREFIX));
        assert_eq!(s.standard_key().len(), 32);
        assert_eq!(WebhookSecret::parse(s.expose()), Ok(s.clone()));
        assert_ne!(WebhookSecret::generate(), s);
    }

    #[test]
    fn whsec_length_is_checked_on_the_decoded_key() {
        let short = format!("{WHSEC_PREFIX}{}", STANDARD.encode([1u8; 23]));
        assert_eq!(
            WebhookSecret::parse(&short),
            Err(SecretError::WrongKeyLength(23))
        );
        let long = format!("{WHSEC_PREFIX}{}", STANDARD.encode([1u8; 65]));
        assert_eq!(
            WebhookSecret::parse(&long),
            Err(SecretError::WrongKeyLength(65))
        );
        let ok = format!("{WHSEC_PREFIX}{}", STANDARD.encode([1u8; 24]));
        assert!(WebhookSecret::parse(&ok).is_ok());
        assert_eq!(
            WebhookSecret::parse("whsec_!!!not-base64"),
            Err(SecretError::NotBase64)
        );
    }

    #[test]
    fn plain_secrets_are_16_to_255_characters() {
        assert_eq!(
            WebhookSecret::parse("short"),
            Err(SecretError::WrongLength(5))
        );
        assert!(WebhookSecret::parse("exactly-16-chars").is_ok());
        assert!(WebhookSecret::parse(&"x".repeat(255)).is_ok());
        assert_eq!(
            WebhookSecret::parse(&"x".repeat(256)),
            Err(SecretError::WrongLength(256))
        );
        let plain = WebhookSecret::parse("a-plain-openwa-secret").unwrap();
        assert_eq!(plain.standard_key(), b"a-plain-openwa-secret");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = WebhookSecret::parse("a-plain-openwa-secret").unwrap();
        assert!(!format!("{s:?}").contains("plain"));
    }
}
