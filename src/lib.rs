//! wabridge: a stable trigger contract between WhatsApp gateway engines and automation tools.
//! See ARCHITECTURE.md for the map.

pub mod adapters;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod defaults;
pub mod delivery;
pub mod duration;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod outcome;
pub mod registration;
pub mod retention;
pub mod secret;
pub mod store;
pub mod target_url;
pub mod validation;
