//! One file per resource; `http::router` merges them.

pub mod catalog;
pub mod deliveries;
pub mod documents;
pub mod health;
pub mod ingest;
pub mod ingest_evolution;
pub mod ingest_waha;
pub mod inspect;
pub mod webhooks;
