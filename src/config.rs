//! Typed configuration of `wabridge serve`. Flags and environment variables are parsed by clap in
//! `main.rs`; tests build a [`Config`] directly.

use std::net::SocketAddr;
use std::time::Duration;

use crate::catalog::SourceSpec;
use crate::defaults;
use crate::delivery::net_policy::NetPolicy;
use crate::delivery::retry::RetrySchedule;
use crate::duration::{self, DurationError};
use crate::secret::at_rest::AtRest;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// `sqlite://<file>` (created if missing) or `postgres://user:password@host/database`.
    pub database_url: String,
    /// Base URL under which the bridge is reachable; schema `$id`s use it. Defaults to
    /// `http://<listen address>`.
    pub public_url: Option<String>,
    /// Admin keys; empty = use the stored one or generate one.
    pub api_keys: Vec<String>,
    /// Ingest keys; empty = use the stored one or generate one.
    pub ingest_keys: Vec<String>,
    /// May an admin key also ingest?
    pub admin_can_ingest: bool,
    /// Secret OpenWA signs its deliveries with (X-OpenWA-Signature), if any.
    pub openwa_secret: Option<String>,
    /// Key of Evolution API's webhook JWTs (its `jwt_key` header), if any.
    pub evolution_jwt_key: Option<String>,
    /// Key WAHA signs its webhooks with (X-Webhook-Hmac, HMAC-SHA512), if any.
    pub waha_hmac_key: Option<String>,
    /// WAHA's base URL and API key, to fetch its QR codes (both or neither).
    pub waha_url: Option<String>,
    pub waha_api_key: Option<String>,
    /// The engines feeding this bridge (`WABRIDGE_SOURCES`); they decide what can fire here.
    pub sources: Vec<SourceSpec>,
    /// Private targets the operator allows (CIDRs and host names).
    pub allow_targets: NetPolicy,
    pub retry_schedule: RetrySchedule,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Deliveries in flight at once, across all registrations.
    pub max_in_flight: usize,
    /// Deliveries in flight at once to one registration.
    pub per_webhook_in_flight: usize,
    /// How long shutdown waits for in-flight attempts.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request head (also the idle keep-alive limit).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// How long a claimed delivery stays leased without renewal: after an instance dies, others
    /// take its work over once this has passed. `None`: the attempt timeout + 60 s.
    pub lease: Option<Duration>,
    /// How long finished deliveries (and then their events) are kept: `WABRIDGE_RETENTION_*`.
    pub retention: crate::retention::Retention,
    /// How often the pruner runs (tests shorten it).
    pub prune_every: Duration,
    /// How webhook secrets and custom header values are stored: encrypted under the current key
    /// (`WABRIDGE_SECRET_KEY`), readable with it and the previous ones; plaintext without a key.
    pub at_rest: AtRest,
}

impl Config {
    /// Defaults ([`crate::defaults`]) for everything but the listen address and the database
    /// (tests and embedding).
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            public_url: None,
            api_keys: Vec::new(),
            ingest_keys: Vec::new(),
            admin_can_ingest: false,
            openwa_secret: None,
            evolution_jwt_key: None,
            waha_hmac_key: None,
            waha_url: None,
            waha_api_key: None,
            sources: crate::catalog::default_sources(),
            allow_targets: NetPolicy::default(),
            retry_schedule: RetrySchedule::default(),
            attempt_timeout: defaults::duration(defaults::ATTEMPT_TIMEOUT),
            max_in_flight: defaults::MAX_IN_FLIGHT,
            per_webhook_in_flight: defaults::PER_WEBHOOK_IN_FLIGHT,
            shutdown_grace: defaults::duration(defaults::SHUTDOWN_GRACE),
            header_read_timeout: defaults::duration(defaults::HEADER_TIMEOUT),
            body_timeout: defaults::duration(defaults::BODY_TIMEOUT),
            max_connections: defaults::MAX_CONNECTIONS,
            lease: None,
            retention: crate::retention::Retention::default(),
            prune_every: Duration::from_secs(60),
            at_rest: AtRest::plaintext(),
        }
    }
}

/// Splits a comma-separated list, trimming and dropping empty items.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a duration option: `15s`, `500ms`, `2m`, `12h`, `7d`, or a bare number of seconds
/// ([`crate::duration`]).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    duration::parse(raw, duration::ALL_UNITS).map_err(|e| match e {
        DurationError::Empty | DurationError::BadNumber => {
            format!("{raw:?} is not a duration like 15s, 500ms or 2m")
        }
        DurationError::BadUnit(unit) => {
            format!("{raw:?}: unknown unit {unit:?}; use ms, s, m, h or d")
        }
        DurationError::TooLarge => format!("{raw:?}: too large"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }
}
