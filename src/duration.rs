//! Durations as an operator writes them: a whole number and a unit (`500ms`, `15s`, `2m`, `12h`,
//! `7d`; a space between the two is allowed), or a bare whole number of seconds. The one parser
//! for every duration the bridge reads (the duration options, each entry of the retry schedule);
//! the caller says which units it takes. The arithmetic is humantime's.

use std::time::Duration;

/// Every unit, smallest first.
pub const ALL_UNITS: &[&str] = &["ms", "s", "m", "h", "d"];

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Blank.
    Empty,
    /// No whole number where one was expected (`s`, `-5s`, `1.5s`, `5 5s`, `five`).
    BadNumber,
    /// A unit the caller does not take.
    BadUnit(String),
    /// More than a `Duration` holds.
    TooLarge,
}

/// Parses `raw` (trimmed) with one of `units`; a bare number means seconds.
pub fn parse(raw: &str, units: &[&str]) -> Result<Duration, DurationError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let unit = match unit.trim_start() {
        "" => "s",
        unit => unit,
    };
    if number.is_empty() || unit.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::BadNumber);
    }
    if !units.contains(&unit) {
        return Err(DurationError::BadUnit(unit.to_owned()));
    }
    humantime::parse_duration(&format!("{number}{unit}")).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => DurationError::TooLarge,
        _ => DurationError::BadNumber,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let ok = |s| parse(s, ALL_UNITS);
        assert_eq!(ok("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(ok(" 200 ms "), Ok(Duration::from_millis(200)));
        assert_eq!(ok("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(ok("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(ok("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(ok("3"), Ok(Duration::from_secs(3)));
        assert_eq!(ok("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refusals() {
        let err = |s| parse(s, ALL_UNITS).unwrap_err();
        assert_eq!(err(" "), DurationError::Empty);
        for bad in ["s", "-5s", "+5", "1.5s", "5 5s", "five", "abc"] {
            assert_eq!(err(bad), DurationError::BadNumber, "{bad}");
        }
        assert_eq!(err("3 weeks"), DurationError::BadUnit("weeks".into()));
        assert_eq!(
            parse("5d", &["ms", "s", "m", "h"]),
            Err(DurationError::BadUnit("d".into()))
        );
        assert_eq!(err("99999999999999999999h"), DurationError::TooLarge);
        assert_eq!(err("18446744073709551615h"), DurationError::TooLarge);
    }
}
