//! Every default of `wabridge serve`, written once, as an operator writes it: clap shows and
//! parses these texts (`--help`, `default_value`), and `Config::new`, `RetrySchedule::default`
//! and `Retention::default` parse the same texts.

use std::time::Duration;

pub const LISTEN: &str = "127.0.0.1:8787";
pub const DATABASE_URL: &str = "sqlite://wabridge.db";
/// No private target is allowed.
pub const ALLOW_TARGETS: &str = "";
/// Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 28 hours.
pub const RETRY_SCHEDULE: &str = "0,5s,5m,30m,2h,5h,10h,10h";
pub const ATTEMPT_TIMEOUT: &str = "15s";
pub const MAX_IN_FLIGHT: usize = 256;
pub const PER_WEBHOOK_IN_FLIGHT: usize = 8;
pub const SHUTDOWN_GRACE: &str = "10s";
pub const HEADER_TIMEOUT: &str = "10s";
pub const BODY_TIMEOUT: &str = "30s";
pub const MAX_CONNECTIONS: usize = 1024;
/// Delivered deliveries are kept 7 days.
pub const RETENTION_DELIVERED: &str = "7d";
/// Dead letters are kept 30 days.
pub const RETENTION_DEAD: &str = "30d";

/// One of the duration defaults above, parsed.
pub fn duration(text: &str) -> Duration {
    crate::duration::parse(text, crate::duration::ALL_UNITS)
        .unwrap_or_else(|e| panic!("the default duration {text:?} does not parse: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        for text in [
            ATTEMPT_TIMEOUT,
            SHUTDOWN_GRACE,
            HEADER_TIMEOUT,
            BODY_TIMEOUT,
            RETENTION_DELIVERED,
            RETENTION_DEAD,
        ] {
            duration(text);
        }
        assert!(LISTEN.parse::<std::net::SocketAddr>().is_ok());
        assert!(
            RETRY_SCHEDULE
                .parse::<crate::delivery::retry::RetrySchedule>()
                .is_ok()
        );
        assert!(
            ALLOW_TARGETS
                .parse::<crate::delivery::net_policy::NetPolicy>()
                .is_ok()
        );
    }
}
