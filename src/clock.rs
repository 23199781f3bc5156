//! The wall clock, read in one place. Pure code takes time as a parameter instead.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    to_ms(now())
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// RFC 3339 text of a Unix-milliseconds time, always with three fractional digits
/// (`2026-12-03T08:00:00.000Z`), so that two such times sort as text as they do as times.
pub fn rfc3339_ms(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::rfc3339_ms;

    #[test]
    fn millisecond_times_sort_as_text() {
        assert_eq!(rfc3339_ms(1_795_860_000_000), "2026-11-28T10:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_860_000_500), "2026-11-28T10:00:00.500Z");
        assert!(rfc3339_ms(1_795_860_000_000) < rfc3339_ms(1_795_860_000_001));
    }
}
