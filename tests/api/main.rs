//! One integration-test binary (links once): the real server over real HTTP.

mod helpers;

mod auth;
mod catalog;
mod cli;
mod delivery;
mod persistence;
mod webhooks;
