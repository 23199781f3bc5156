//! One integration-test binary (links once): the real server over real HTTP.

mod helpers;
mod real_binary;

mod apidoc;
mod auth;
mod catalog;
mod cli;
mod contract;
mod delivery;
mod durability;
mod engine_state;
mod engine_swap;
mod evolution;
mod faults;
mod hardening;
mod ingest;
mod limits;
mod logs;
mod multi_instance;
mod persistence;
mod postgres_faults;
mod retention;
mod secrets_at_rest;
mod sources;
mod store;
mod store_backends;
mod ui;
mod waha;
mod webhooks;
