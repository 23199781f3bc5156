//! One integration-test binary (links once): the real server over real HTTP.

mod helpers;

mod apidoc;
mod auth;
mod catalog;
mod cli;
mod delivery;
mod durability;
mod evolution;
mod ingest;
mod logs;
mod limits;
mod multi_instance;
mod persistence;
mod sources;
mod store;
mod store_backends;
mod waha;
mod webhooks;
