//! Shared by the fuzz targets: catalogs loaded once per process, input splitting.
#![allow(dead_code)]

use std::sync::LazyLock;

use time::OffsetDateTime;
use wabridge::catalog::Catalog;
use wabridge::catalog::sources::parse_specs;

/// The catalog of a bridge fed by the default sources.
pub static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::load("http://127.0.0.1").expect("the embedded catalog loads"));

/// The catalog of a bridge fed by every engine, so adapter output is not all reserved.
pub static CATALOG_ALL: LazyLock<Catalog> = LazyLock::new(|| {
    let specs = parse_specs("openwa,waha,evolution").expect("engine list parses");
    Catalog::load_with("http://127.0.0.1", &specs).expect("the embedded catalog loads")
});

/// A fixed ingest time, so runs are reproducible.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("valid timestamp")
}

/// The input as JSON, or `None` (the target skips non-JSON input).
pub fn json(data: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(data).ok()
}

/// Splits the input into `n` parts at NUL bytes (missing parts are empty; the last part keeps
/// any further NULs).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

/// A signed 64-bit number from up to 8 bytes (little endian, zero-padded).
pub fn i64_from(bytes: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    i64::from_le_bytes(buf)
}
