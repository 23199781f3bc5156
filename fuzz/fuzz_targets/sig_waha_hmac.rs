//! WAHA's `X-Webhook-Hmac`: `verify_hmac` on an arbitrary header, key and body, and the HMAC-SHA512
//! of the body (computed here independently) always verifies.
#![no_main]

#[path = "common.rs"]
mod common;

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha512;
use wabridge::adapters::waha::verify_hmac;

fuzz_target!(|data: &[u8]| {
    // key \0 header \0 body
    let p = common::parts(data, 3);
    let (key, header, body) = (p[0], String::from_utf8_lossy(p[1]), p[2]);

    let _ = verify_hmac(key, body, &header);

    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(body);
    let good = hex::encode(mac.finalize().into_bytes().as_slice());
    assert!(verify_hmac(key, body, &good), "a correct HMAC was refused");
    assert!(
        verify_hmac(key, body, &format!(" {good}\t")),
        "surrounding whitespace refused"
    );
});
