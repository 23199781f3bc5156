//! API keys: configured ones from the environment, or one generated on first start whose hash
//! (never the key) is stored. Two roles: admin (registrations) and ingest (engines).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{KeyRole, Store, StoreResult};

/// Hex SHA-256 of a key: what is stored and compared.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random key, `wbk_` (admin) or `wbi_` (ingest) + 43 URL-safe characters.
pub fn generate_key(role: KeyRole) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let prefix = match role {
        KeyRole::Admin => "wbk",
        KeyRole::Ingest => "wbi",
    };
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A key generated at start, to be shown once to the operator.
#[derive(Clone)]
pub struct GeneratedKey {
    pub role: KeyRole,
    pub key: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The accepted key hashes per role.
#[derive(Default)]
pub struct KeySet {
    admin: Vec<[u8; 32]>,
    ingest: Vec<[u8; 32]>,
    admin_can_ingest: bool,
}

impl KeySet {
    /// Does `presented` grant `role`?
    pub fn grants(&self, presented: &str, role: KeyRole) -> bool {
        let h = hash_key(presented);
        let matches = |set: &[[u8; 32]]| {
            // Check every entry so the time does not depend on which one matched.
            set.iter()
                .fold(false, |acc, k| acc | bool::from(k.ct_eq(&h)))
        };
        match role {
            KeyRole::Admin => matches(&self.admin),
            KeyRole::Ingest => {
                matches(&self.ingest) || (self.admin_can_ingest && matches(&self.admin))
            }
        }
    }
}

/// Builds the key set: configured keys win; without any for a role, the stored hashes are used,
/// and if there are none either, a key is generated, its hash stored, and the key returned once.
/// Of several instances doing this at once on one fresh database, one stores its key
/// ([`Store::insert_first_key`]); the others use that one and return none.
pub async fn load(
    store: &dyn Store,
    admin: &[String],
    ingest: &[String],
    admin_can_ingest: bool,
    now_ms: i64,
) -> StoreResult<(KeySet, Vec<GeneratedKey>)> {
    let mut generated = Vec::new();
    let mut set = KeySet {
        admin_can_ingest,
        ..KeySet::default()
    };
    for (role, configured) in [(KeyRole::Admin, admin), (KeyRole::Ingest, ingest)] {
        let hashes: Vec<[u8; 32]> = if configured.is_empty() {
            let stored = stored_hashes(store, role).await?;
            if !stored.is_empty() {
                stored
            } else {
                let key = generate_key(role);
                let h = hash_key(&key);
                if store
                    .insert_first_key(role, &hex::encode(h), now_ms)
                    .await?
                {
                    generated.push(GeneratedKey { role, key });
                    vec![h]
                } else {
                    // Another instance starting on the same fresh database stored its key
                    // first: that one is the key (ours was never stored, so it is not shown).
                    stored_hashes(store, role).await?
                }
            }
        } else {
            configured.iter().map(|k| hash_key(k)).collect()
        };
        match role {
            KeyRole::Admin => set.admin = hashes,
            KeyRole::Ingest => set.ingest = hashes,
        }
    }
    Ok((set, generated))
}

async fn stored_hashes(store: &dyn Store, role: KeyRole) -> StoreResult<Vec<[u8; 32]>> {
    Ok(store
        .key_hashes(role)
        .await?
        .iter()
        .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_separate_unless_configured() {
        let mut set = KeySet {
            admin: vec![hash_key("admin-key")],
            ingest: vec![hash_key("ingest-key")],
            admin_can_ingest: false,
        };
        assert!(set.grants("admin-key", KeyRole::Admin));
        assert!(!set.grants("admin-key", KeyRole::Ingest));
        assert!(set.grants("ingest-key", KeyRole::Ingest));
        assert!(!set.grants("ingest-key", KeyRole::Admin));
        assert!(!set.grants("", KeyRole::Admin));
        set.admin_can_ingest = true;
        assert!(set.grants("admin-key", KeyRole::Ingest));
    }

    #[test]
    fn generated_keys_are_distinct_and_prefixed() {
        let a = generate_key(KeyRole::Admin);
        let b = generate_key(KeyRole::Admin);
        assert!(a.starts_with("wbk_") && a.len() > 40);
        assert_ne!(a, b);
        assert!(generate_key(KeyRole::Ingest).starts_with("wbi_"));
    }
}
