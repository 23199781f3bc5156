//! Registration bodies: `parse_registration` and `parse_patch` on arbitrary JSON.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use wabridge::registration::{parse_patch, parse_registration};

fuzz_target!(|data: &[u8]| {
    let Some(body) = common::json(data) else {
        return;
    };
    let catalog = &*common::CATALOG;
    if let Ok(reg) = parse_registration(catalog, &body) {
        let _ = reg.normalized();
    }
    let _ = parse_patch(catalog, &body);
});
