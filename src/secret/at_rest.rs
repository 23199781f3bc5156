//! Secrets at rest: a registration's signing secret and its custom header values, encrypted in
//! the database under the operator's key (`WABRIDGE_SECRET_KEY`), with AES-256-GCM from `ring`.
//!
//! - **Key**: 32 random bytes, written in base64 (`wabridge secrets new-key`, or
//!   `openssl rand -base64 32`). Its *key id* is the first 8 hex digits of a SHA-256 of the key
//!   (never the key itself): stored beside each value, it says which key to decrypt with.
//! - **Stored form**: `enc:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`, a random 96-bit
//!   nonce per value (`ring::rand::SystemRandom`). The secret column holds it as text; the headers
//!   column, which holds a JSON object in plaintext, holds it as a JSON *string* (the whole
//!   object encrypted, names included).
//! - **Which rows are encrypted** is told by the headers column alone: a JSON string there means
//!   sealed, a JSON object plaintext. (A plain secret may be any string, including one that looks
//!   like `enc:v1:…`, so the secret's text cannot tell.) Both columns are always written
//!   together.
//! - **Associated data**: the field and the registration id (`wabridge/v1/<field>/<id>`), so a
//!   ciphertext moved to another row or to the other column does not decrypt.
//! - **Rotation**: values decrypt with the current key or any previous one
//!   (`WABRIDGE_SECRET_KEY_PREVIOUS`) and are always written with the current one;
//!   `wabridge secrets rotate` rewrites every row that is not (see docs/reliability.md).
//!
//! Without a key, rows are written in plaintext, and plaintext rows are read whatever the key.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use sha2::{Digest, Sha256};

use super::WebhookSecret;

/// Prefix of every encrypted value (version 1 of the format).
pub const PREFIX: &str = "enc:v1:";

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// Length of the AES-GCM tag appended to each ciphertext.
const TAG_LEN: usize = 16;

/// Base64 as operators write it: standard alphabet, padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a configured key was refused. Never shows the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is not base64 (make one with `wabridge secrets new-key`)")]
    NotBase64,
    #[error(
        "the key decodes to {0} bytes; it must be {KEY_LEN} random bytes in base64 (make one with `wabridge secrets new-key`)"
    )]
    WrongLength(usize),
}

/// One encryption key, parsed from its base64 form. `Debug` shows only its id.
pub struct AtRestKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtRestKey({})", self.id)
    }
}

impl AtRestKey {
    /// `raw`: base64 (standard alphabet, padding optional) of exactly [`KEY_LEN`] bytes;
    /// surrounding whitespace is ignored.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(KeyError::Empty);
        }
        let bytes = LENIENT.decode(raw).map_err(|_| KeyError::NotBase64)?;
        if bytes.len() != KEY_LEN {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"wabridge secret key id\0")
            .chain_update(bytes)
            .finalize();
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key");
        Self {
            key: LessSafeKey::new(unbound),
            id: hex::encode(&digest[..4]),
        }
    }

    /// A new key, in the form [`AtRestKey::parse`] reads (base64 of 32 random bytes).
    pub fn generate() -> Result<String, AtRestError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| AtRestError::Random)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The key's id (8 hex digits), stored beside each value it encrypted.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Which column a value belongs to (part of the associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Secret,
    Headers,
}

impl Field {
    fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Headers => "header values",
        }
    }

    fn aad_label(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Headers => "headers",
        }
    }
}

/// Why a stored registration's secrets cannot be read, or written. Never shows a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    #[error(
        "registration {webhook}: its secret and header values are encrypted (key id {kid}), but WABRIDGE_SECRET_KEY is not set; start with the key they were written with"
    )]
    NoKey { webhook: String, kid: String },
    #[error(
        "registration {webhook}: its secret and header values are encrypted with key id {kid}, which is neither WABRIDGE_SECRET_KEY nor a WABRIDGE_SECRET_KEY_PREVIOUS (configured key ids: {known})"
    )]
    UnknownKey {
        webhook: String,
        kid: String,
        known: String,
    },
    #[error(
        "registration {webhook}: its {} does not decrypt with key id {kid}: the stored value was altered or moved from another row",
        .field.as_str()
    )]
    Undecryptable {
        webhook: String,
        field: Field,
        kid: String,
    },
    #[error("registration {webhook}: its stored {} is malformed: {why}", .field.as_str())]
    Malformed {
        webhook: String,
        field: Field,
        why: String,
    },
    #[error("the system's random number generator failed")]
    Random,
}

/// A registration's secret and headers as stored: the text of the `secret` and `headers`
/// columns.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecrets {
    pub secret: String,
    pub headers: String,
}

impl std::fmt::Debug for StoredSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSecrets(<redacted>)")
    }
}

/// How secrets are kept in the database: the current key (none: plaintext) and the previous
/// ones that are still read. Cheap to clone.
#[derive(Clone, Default)]
pub struct AtRest {
    current: Option<Arc<AtRestKey>>,
    previous: Vec<Arc<AtRestKey>>,
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtRest")
            .field("current", &self.current_key_id())
            .field(
                "previous",
                &self.previous.iter().map(|k| k.id()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The headers column: a JSON object in plaintext, a JSON string when sealed.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum HeadersColumn {
    Plain(BTreeMap<String, String>),
    Sealed(String),
}

impl AtRest {
    /// No key: secrets are written in plaintext (and encrypted rows cannot be read).
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Writes with `current` (plaintext if none); reads with it and with every `previous` key.
    pub fn new(current: Option<AtRestKey>, previous: Vec<AtRestKey>) -> Self {
        Self {
            current: current.map(Arc::new),
            previous: previous.into_iter().map(Arc::new).collect(),
        }
    }

    /// The id of the key new values are written with, if any.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_deref().map(AtRestKey::id)
    }

    /// A registration's secret and headers as they are to be stored.
    pub fn seal(
        &self,
        webhook_id: &str,
        secret: &WebhookSecret,
        headers: &BTreeMap<String, String>,
    ) -> Result<StoredSecrets, AtRestError> {
        let headers_json = serde_json::to_string(headers).map_err(|_| AtRestError::Malformed {
            webhook: webhook_id.to_owned(),
            field: Field::Headers,
            why: "cannot be written as JSON".into(),
        })?;
        let Some(key) = &self.current else {
            return Ok(StoredSecrets {
                secret: secret.expose().to_owned(),
                headers: headers_json,
            });
        };
        let sealed_headers = seal(key, Field::Headers, webhook_id, headers_json.as_bytes())?;
        Ok(StoredSecrets {
            secret: seal(key, Field::Secret, webhook_id, secret.expose().as_bytes())?,
            // A JSON string: what marks the row as sealed.
            headers: serde_json::Value::String(sealed_headers).to_string(),
        })
    }

    /// A registration's secret and headers from their stored text.
    pub fn open(
        &self,
        webhook_id: &str,
        stored_secret: &str,
        stored_headers: &str,
    ) -> Result<(WebhookSecret, BTreeMap<String, String>), AtRestError> {
        let malformed = |field, why: String| AtRestError::Malformed {
            webhook: webhook_id.to_owned(),
            field,
            why,
        };
        // Fixed reasons, not the JSON parser's: those may quote a piece of the value.
        let column: HeadersColumn = serde_json::from_str(stored_headers).map_err(|_| {
            malformed(
                Field::Headers,
                "neither a JSON object of strings nor an encrypted value".into(),
            )
        })?;
        let (secret, headers) = match column {
            HeadersColumn::Plain(headers) => (stored_secret.to_owned(), headers),
            HeadersColumn::Sealed(sealed) => {
                let headers = self.open_value(webhook_id, Field::Headers, &sealed)?;
                let headers = serde_json::from_slice(&headers).map_err(|_| {
                    malformed(
                        Field::Headers,
                        "decrypts to something else than a JSON object of strings".into(),
                    )
                })?;
                let secret = self.open_value(webhook_id, Field::Secret, stored_secret)?;
                let secret = String::from_utf8(secret)
                    .map_err(|_| malformed(Field::Secret, "not UTF-8".into()))?;
                (secret, headers)
            }
        };
        let secret =
            WebhookSecret::parse(&secret).map_err(|e| malformed(Field::Secret, e.to_string()))?;
        Ok((secret, headers))
    }

    /// Are these stored values as this configuration writes them (sealed under the current key,
    /// or plaintext when there is none)? `wabridge secrets rotate` rewrites the others.
    pub fn is_current(&self, stored_secret: &str, stored_headers: &str) -> bool {
        let sealed_with = match serde_json::from_str::<HeadersColumn>(stored_headers) {
            Ok(HeadersColumn::Plain(_)) => None,
            Ok(HeadersColumn::Sealed(sealed)) => Some(key_id_of(&sealed).unwrap_or("").to_owned()),
            Err(_) => return false,
        };
        match (self.current_key_id(), sealed_with) {
            (None, None) => true,
            (Some(current), Some(kid)) => {
                kid == current && key_id_of(stored_secret) == Some(current)
            }
            _ => false,
        }
    }

    fn open_value(
        &self,
        webhook_id: &str,
        field: Field,
        stored: &str,
    ) -> Result<Vec<u8>, AtRestError> {
        let malformed = |why: &str| AtRestError::Malformed {
            webhook: webhook_id.to_owned(),
            field,
            why: why.to_owned(),
        };
        let rest = stored
            .strip_prefix(PREFIX)
            .ok_or_else(|| malformed("the row is encrypted but this value is not"))?;
        let (kid, body) = rest.split_once(':').ok_or_else(|| malformed("no key id"))?;
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id() == kid)
            .ok_or_else(|| {
                if self.current.is_none() && self.previous.is_empty() {
                    AtRestError::NoKey {
                        webhook: webhook_id.to_owned(),
                        kid: kid.to_owned(),
                    }
                } else {
                    AtRestError::UnknownKey {
                        webhook: webhook_id.to_owned(),
                        kid: kid.to_owned(),
                        known: self
                            .current
                            .iter()
                            .chain(&self.previous)
                            .map(|k| k.id())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                }
            })?;
        let mut bytes = STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| malformed("not base64"))?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed("too short"));
        }
        let mut in_out = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| malformed("nonce"))?;
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad(field, webhook_id)), &mut in_out)
            .map_err(|_| AtRestError::Undecryptable {
                webhook: webhook_id.to_owned(),
                field,
                kid: kid.to_owned(),
            })?;
        Ok(plain.to_vec())
    }
}

/// The key id of a stored encrypted value, if it is one.
fn key_id_of(stored: &str) -> Option<&str> {
    stored.strip_prefix(PREFIX)?.split_once(':').map(|(k, _)| k)
}

fn aad(field: Field, webhook_id: &str) -> Vec<u8> {
    format!("wabridge/v1/{}/{webhook_id}", field.aad_label()).into_bytes()
}

fn seal(
    key: &AtRestKey,
    field: Field,
    webhook_id: &str,
    plain: &[u8],
) -> Result<String, AtRestError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| AtRestError::Random)?;
    let mut in_out = plain.to_vec();
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(field, webhook_id)),
            &mut in_out,
        )
        .map_err(|_| AtRestError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&in_out);
    Ok(format!(
        "{PREFIX}{}:{}",
        key.id(),
        STANDARD_NO_PAD.encode(out)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AtRestKey {
        AtRestKey::parse(&base64::engine::general_purpose::STANDARD.encode([byte; KEY_LEN]))
            .unwrap()
    }

    fn headers() -> BTreeMap<String, String> {
        BTreeMap::from([("Authorization".to_owned(), "Bearer n8n-token".to_owned())])
    }

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("a-plain-openwa-secret").unwrap()
    }

    #[test]
    fn a_sealed_registration_opens_with_its_key_and_shows_nothing_in_clear() {
        let at_rest = AtRest::new(Some(key(1)), Vec::new());
        let stored = at_rest.seal("wh_1", &secret(), &headers()).unwrap();
        assert!(stored.secret.starts_with(PREFIX), "{}", stored.secret);
        assert!(!stored.secret.contains("openwa"));
        assert!(!stored.headers.contains("n8n-token"));
        assert!(
            !stored.headers.contains("Authorization"),
            "names are sealed too"
        );
        assert!(stored.headers.starts_with('"'), "a JSON string");
        let (s, h) = at_rest
            .open("wh_1", &stored.secret, &stored.headers)
            .unwrap();
        assert_eq!((s, h), (secret(), headers()));
        assert!(at_rest.is_current(&stored.secret, &stored.headers));
        // A new random nonce each time.
        let again = at_rest.seal("wh_1", &secret(), &headers()).unwrap();
        assert_ne!(again.secret, stored.secret);
    }

    #[test]
    fn a_wrong_key_is_refused_with_its_id() {
        let stored = AtRest::new(Some(key(1)), Vec::new())
            .seal("wh_1", &secret(), &headers())
            .unwrap();
        let err = AtRest::new(Some(key(2)), Vec::new())
            .open("wh_1", &stored.secret, &stored.headers)
            .unwrap_err();
        assert!(
            matches!(&err, AtRestError::UnknownKey { kid, .. } if kid == key(1).id()),
            "{err}"
        );
        let err = AtRest::plaintext()
            .open("wh_1", &stored.secret, &stored.headers)
            .unwrap_err();
        assert!(matches!(err, AtRestError::NoKey { .. }), "{err}");
        assert!(err.to_string().contains("WABRIDGE_SECRET_KEY"), "{err}");
    }

    #[test]
    fn a_key_with_the_same_id_but_other_bytes_does_not_decrypt() {
        // Forge a value under key 1's id that was sealed by key 2: the tag check refuses it.
        let k1 = key(1);
        let k2 = AtRestKey {
            key: key(2).key,
            id: k1.id().to_owned(),
        };
        let forged = seal(&k2, Field::Secret, "wh_1", b"a-plain-openwa-secret").unwrap();
        let headers = AtRest::new(Some(key(1)), Vec::new())
            .seal("wh_1", &secret(), &headers())
            .unwrap()
            .headers;
        let err = AtRest::new(Some(k1), Vec::new())
            .open("wh_1", &forged, &headers)
            .unwrap_err();
        assert!(matches!(err, AtRestError::Undecryptable { .. }), "{err}");
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let at_rest = AtRest::new(Some(key(1)), Vec::new());
        let stored = at_rest.seal("wh_1", &secret(), &headers()).unwrap();
        let (head, body) = stored.secret.rsplit_once(':').unwrap();
        let mut bytes = STANDARD_NO_PAD.decode(body).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{head}:{}", STANDARD_NO_PAD.encode(&bytes));
        let err = at_rest
            .open("wh_1", &tampered, &stored.headers)
            .unwrap_err();
        assert!(
            matches!(
                err,
                AtRestError::Undecryptable {
                    field: Field::Secret,
                    ..
                }
            ),
            "{err}"
        );
        let err = at_rest
            .open("wh_1", &format!("{head}:AAAA"), &stored.headers)
            .unwrap_err();
        assert!(matches!(err, AtRestError::Malformed { .. }), "{err}");
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_is_refused() {
        let at_rest = AtRest::new(Some(key(1)), Vec::new());
        let a = at_rest.seal("wh_a", &secret(), &headers()).unwrap();
        let b = at_rest.seal("wh_b", &secret(), &headers()).unwrap();
        // wh_a's secret in wh_b's row.
        let err = at_rest.open("wh_b", &a.secret, &b.headers).unwrap_err();
        assert!(
            matches!(
                err,
                AtRestError::Undecryptable {
                    field: Field::Secret,
                    ..
                }
            ),
            "{err}"
        );
        // The sealed headers put in the secret column (and the other way round).
        let sealed_headers: String = serde_json::from_str(&a.headers).unwrap();
        let swapped = serde_json::Value::String(a.secret.clone()).to_string();
        let err = at_rest.open("wh_a", &sealed_headers, &swapped).unwrap_err();
        assert!(matches!(err, AtRestError::Undecryptable { .. }), "{err}");
    }

    #[test]
    fn plaintext_rows_stay_readable_with_a_key_and_are_not_current() {
        let plain = AtRest::plaintext()
            .seal("wh_1", &secret(), &headers())
            .unwrap();
        assert_eq!(plain.secret, "a-plain-openwa-secret");
        assert!(AtRest::plaintext().is_current(&plain.secret, &plain.headers));
        let keyed = AtRest::new(Some(key(1)), Vec::new());
        let (s, h) = keyed.open("wh_1", &plain.secret, &plain.headers).unwrap();
        assert_eq!((s, h), (secret(), headers()));
        assert!(!keyed.is_current(&plain.secret, &plain.headers));
        // A plain secret that merely looks encrypted is plaintext: the headers column decides.
        let lookalike =
            WebhookSecret::parse("enc:v1:00000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .unwrap();
        let stored = AtRest::plaintext()
            .seal("wh_1", &lookalike, &BTreeMap::new())
            .unwrap();
        assert_eq!(
            keyed
                .open("wh_1", &stored.secret, &stored.headers)
                .unwrap()
                .0,
            lookalike
        );
    }

    #[test]
    fn previous_keys_decrypt_and_the_current_one_writes() {
        let old = AtRest::new(Some(key(1)), Vec::new());
        let stored = old.seal("wh_1", &secret(), &headers()).unwrap();
        let rotating = AtRest::new(Some(key(2)), vec![key(1)]);
        assert!(!rotating.is_current(&stored.secret, &stored.headers));
        let (s, h) = rotating
            .open("wh_1", &stored.secret, &stored.headers)
            .unwrap();
        let resealed = rotating.seal("wh_1", &s, &h).unwrap();
        assert!(rotating.is_current(&resealed.secret, &resealed.headers));
        assert!(
            resealed
                .secret
                .starts_with(&format!("{PREFIX}{}:", key(2).id()))
        );
        // Decrypting back to plaintext: no current key, the old one as previous.
        let off = AtRest::new(None, vec![key(2)]);
        let (s, h) = off
            .open("wh_1", &resealed.secret, &resealed.headers)
            .unwrap();
        let plain = off.seal("wh_1", &s, &h).unwrap();
        assert_eq!(plain.secret, "a-plain-openwa-secret");
        assert!(off.is_current(&plain.secret, &plain.headers));
    }

    #[test]
    fn keys_are_32_bytes_of_base64_and_never_echoed() {
        let generated = AtRestKey::generate().unwrap();
        let k = AtRestKey::parse(&generated).unwrap();
        assert_eq!(k.id().len(), 8);
        assert!(!format!("{k:?}").contains(&generated));
        assert_eq!(
            AtRestKey::parse(&format!(" {}\n", generated.trim_end_matches('=')))
                .unwrap()
                .id(),
            k.id(),
            "padding and surrounding whitespace do not matter"
        );
        assert_ne!(
            AtRestKey::parse(&AtRestKey::generate().unwrap())
                .unwrap()
                .id(),
            k.id()
        );
        assert_eq!(AtRestKey::parse("").unwrap_err(), KeyError::Empty);
        assert_eq!(
            AtRestKey::parse("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let err = AtRestKey::parse(&short).unwrap_err();
        assert_eq!(err, KeyError::WrongLength(16));
        assert!(!err.to_string().contains(&short));
    }
}
