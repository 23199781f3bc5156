//! Evolution's `Authorization: Bearer <JWT>`: `verify_bearer` on an arbitrary header value, key
//! and clock; and a token signed with the key (claims from the input when they are JSON) never
//! makes it panic, and verifies when its `exp` is in the future.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use wabridge::adapters::evolution::{sign_like_evolution, verify_bearer};

fuzz_target!(|data: &[u8]| {
    // now (8 bytes) \0 key \0 authorization \0 claims (JSON)
    let p = common::parts(data, 4);
    let secs = common::i64_from(p[0]).rem_euclid(8_000_000_000);
    let now = OffsetDateTime::from_unix_timestamp(secs).expect("in range");
    let key = p[1];
    let authorization = String::from_utf8_lossy(p[2]);

    let _ = verify_bearer(Some(&authorization), key, now);

    if key.is_empty() {
        return;
    }
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(p[3])
        && claims.is_object()
    {
        let token = sign_like_evolution(&claims, key);
        let _ = verify_bearer(Some(&format!("Bearer {token}")), key, now);
    }
    let claims = serde_json::json!({
        "iat": secs, "exp": secs + 600, "app": "evolution", "action": "webhook"
    });
    let token = sign_like_evolution(&claims, key);
    let result = verify_bearer(Some(&format!("Bearer {token}")), key, now);
    assert!(result.is_ok(), "a fresh token was refused: {result:?}");
});
