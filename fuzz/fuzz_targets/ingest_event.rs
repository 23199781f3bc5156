//! Event bodies (`POST /v1/ingest`): `parse_event` on arbitrary JSON, as a single event and as
//! the item of a batch.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use wabridge::ingest::parse_event;
use wabridge::store::EventSource;

fuzz_target!(|data: &[u8]| {
    let Some(body) = common::json(data) else {
        return;
    };
    let catalog = &*common::CATALOG;
    let _ = parse_event(catalog, &body, "", EventSource::Api, common::now());
    if let Some(items) = body.as_array() {
        for (i, item) in items.iter().enumerate().take(wabridge::ingest::MAX_BATCH) {
            let _ = parse_event(catalog, item, &format!("/{i}"), EventSource::Api, common::now());
        }
    }
});
