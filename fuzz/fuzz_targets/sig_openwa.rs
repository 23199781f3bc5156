//! OpenWA's `X-OpenWA-Signature`: `verify_openwa` on an arbitrary header, secret and body, and
//! the signature `openwa_signature` makes always verifies (also in upper case).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use wabridge::delivery::signer::{openwa_signature, verify_openwa};

fuzz_target!(|data: &[u8]| {
    // secret \0 header \0 body
    let p = common::parts(data, 3);
    let secret = String::from_utf8_lossy(p[0]);
    let header = String::from_utf8_lossy(p[1]);
    let body = p[2];

    let _ = verify_openwa(&secret, body, &header);

    let good = openwa_signature(&secret, body);
    assert!(verify_openwa(&secret, body, &good), "own signature refused");
    let upper = format!("sha256={}", good["sha256=".len()..].to_ascii_uppercase());
    assert!(verify_openwa(&secret, body, &upper), "upper-case hex refused");
});
