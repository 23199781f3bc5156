//! The schema files embedded from `schemas/` and their served form: `$id` rewritten to the public
//! URL, serialised once, with a strong ETag.

use std::collections::BTreeMap;

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_schemas.rs"));
}

/// The base that `$id`s carry in the files under `schemas/` (the default public URL).
pub const CANONICAL_BASE: &str = "http://127.0.0.1:8787";

/// Files under `schemas/` that are test fixtures, not part of the served contract.
const NOT_SERVED_PREFIX: &str = "examples/";

/// Every embedded file, raw.
pub fn embedded() -> BTreeMap<&'static str, &'static [u8]> {
    embedded::FILES.iter().copied().collect()
}

/// One served schema file.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// The document as served (with its public `$id`).
    pub json: Value,
    /// The exact bytes served.
    pub bytes: Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
}

/// Builds the served files from the raw embedded ones.
pub fn served_files(
    raw: &BTreeMap<&'static str, &'static [u8]>,
    public_url: &str,
) -> anyhow::Result<BTreeMap<String, SchemaFile>> {
    let mut out = BTreeMap::new();
    for (path, bytes) in raw {
        if path.starts_with(NOT_SERVED_PREFIX) {
            continue;
        }
        let mut json: Value =
            serde_json::from_slice(bytes).with_context(|| format!("schemas/{path} is not JSON"))?;
        if let Some(obj) = json.as_object_mut()
            && obj.contains_key("$id")
        {
            obj.insert(
                "$id".to_owned(),
                Value::String(format!("{public_url}/v1/schemas/{path}")),
            );
        }
        let mut served = serde_json::to_vec_pretty(&json)?;
        served.push(b'\n');
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&served)[..16]));
        out.insert(
            (*path).to_owned(),
            SchemaFile {
                json,
                bytes: served.into(),
                etag,
            },
        );
    }
    Ok(out)
}
