//! Standard Webhooks verification: `verify_standard` on an arbitrary `webhook-signature` header,
//! key, id, body and clock; `standard_key_from_secret` on an arbitrary secret. Also checks that
//! a header carrying the right signature among arbitrary entries verifies.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use wabridge::delivery::signer::{standard_signature, verify_standard};
use wabridge::secret::standard_key_from_secret;

fuzz_target!(|data: &[u8]| {
    // nums (24 bytes: timestamp, now, tolerance) \0 secret \0 msg_id \0 header \0 body
    let p = common::parts(data, 5);
    let nums = p[0];
    let ts = common::i64_from(nums.get(..8).unwrap_or(nums));
    let now = common::i64_from(nums.get(8..16).unwrap_or(&[]));
    let tolerance = common::i64_from(nums.get(16..).unwrap_or(&[]));
    let secret = String::from_utf8_lossy(p[1]);
    let msg_id = String::from_utf8_lossy(p[2]);
    let header = String::from_utf8_lossy(p[3]);
    let body = p[4];

    let key = standard_key_from_secret(&secret);
    let _ = verify_standard(&key, &msg_id, ts, body, &header, now, tolerance);

    // The right signature, anywhere among arbitrary entries, always verifies within tolerance.
    let good = standard_signature(&key, &msg_id, ts, body);
    let with_good = format!("{header} {good}");
    let result = verify_standard(&key, &msg_id, ts, body, &with_good, ts, 300);
    assert!(result.is_ok(), "a correct signature was refused: {result:?}");
});
