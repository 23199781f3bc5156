//! The openwa adapter: `adapters::openwa::translate` on an arbitrary JSON body, then what it produced
//! through the ingest rules (`check_translated`), as the route does.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use wabridge::adapters::{openwa, Translation};
use wabridge::ingest::check_translated;
use wabridge::store::EventSource;

fuzz_target!(|data: &[u8]| {
    let Some(body) = common::json(data) else {
        return;
    };
    let catalog = &*common::CATALOG_ALL;
    let source = catalog.sources().engine("openwa").expect("the openwa source file");
    let translation = openwa::translate(source, &body);
    if let Ok(Translation::Events(events)) = translation {
        for t in &events {
            let _ = check_translated(catalog, t, EventSource::OpenWa, common::now());
        }
    }
});
