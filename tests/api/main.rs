//! One integration-test binary (links once): the real server over real HTTP.

mod helpers;

mod auth;
mod catalog;
mod cli;
mod delivery;
mod durability;
mod ingest;
mod persistence;
mod store;
mod webhooks;
