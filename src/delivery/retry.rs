//! Retry maths for webhook deliveries.
//!
//! A [`RetrySchedule`] lists the delay before each attempt (attempt 1 normally goes out
//! immediately). [`RetrySchedule::next_delay`] turns "attempt N failed" into the wait before
//! attempt N+1, with ±20 % jitter and an honoured (but capped) `Retry-After`. The jitter sample
//! and the current time are inputs, so everything here is deterministic and testable; the caller
//! draws the sample with [`jitter_sample`].
//!
//! [`classify_status`] maps an HTTP status to what the dispatcher does next, and
//! [`parse_retry_after`] reads a `Retry-After` header (delta-seconds or HTTP date).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::defaults;
use crate::duration::{self, DurationError};

/// The longest `Retry-After` that is honoured; longer values are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Relative jitter amplitude: a delay is scaled by `1 + JITTER_FRACTION * sample`.
const JITTER_FRACTION: f64 = 0.2;

/// Delay before each attempt; `delays[0]` precedes attempt 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// Why a retry schedule could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("retry schedule is empty: give at least one delay, e.g. \"0,5s,5m,30m,2h\"")]
    Empty,
    #[error("retry schedule entry {position} is empty (two commas in a row?)")]
    EmptyEntry { position: usize },
    #[error(
        "retry schedule entry {position} ({entry:?}) has no valid number: expected a whole number followed by ms, s, m or h"
    )]
    BadNumber { position: usize, entry: String },
    #[error(
        "retry schedule entry {position} ({entry:?}) has unknown unit {unit:?}: use ms, s, m or h (a bare number means seconds)"
    )]
    BadUnit {
        position: usize,
        entry: String,
        unit: String,
    },
    #[error("retry schedule entry {position} ({entry:?}) is too large")]
    TooLarge { position: usize, entry: String },
    #[error("retry schedule has {count} entries, more than the maximum {max}")]
    TooManyEntries { count: usize, max: usize },
}

/// Upper bound on the number of attempts a schedule may describe.
pub const MAX_SCHEDULE_ENTRIES: usize = 1000;

impl RetrySchedule {
    /// A schedule from explicit delays (delay before attempt 1, 2, ...).
    pub fn new(delays: Vec<Duration>) -> Result<Self, ScheduleError> {
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if delays.len() > MAX_SCHEDULE_ENTRIES {
            return Err(ScheduleError::TooManyEntries {
                count: delays.len(),
                max: MAX_SCHEDULE_ENTRIES,
            });
        }
        Ok(Self { delays })
    }

    /// The delay before each attempt, attempt 1 first.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Total number of attempts (the first one included).
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// The wait after attempt `failed_attempt` (1-based) failed, before the next attempt; `None`
    /// when that was the last attempt. (`failed_attempt == 0` yields the delay before attempt 1.)
    ///
    /// `jitter` is a sample in `[-1, 1]` (clamped; NaN counts as 0): the scheduled delay is
    /// scaled by `1 + 0.2 * jitter`, so a zero delay stays zero. With `retry_after`, the result is
    /// at least `min(retry_after, MAX_RETRY_AFTER)`.
    pub fn next_delay(
        &self,
        failed_attempt: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(failed_attempt).ok()?;
        let scheduled = *self.delays.get(index)?;
        let jittered = apply_jitter(scheduled, jitter);
        Some(match retry_after {
            Some(wanted) => jittered.max(wanted.min(MAX_RETRY_AFTER)),
            None => jittered,
        })
    }
}

fn apply_jitter(delay: Duration, jitter: f64) -> Duration {
    let sample = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(-1.0, 1.0)
    };
    let factor = 1.0 + JITTER_FRACTION * sample;
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(delay)
}

impl Default for RetrySchedule {
    /// [`defaults::RETRY_SCHEDULE`]: eight attempts over about 28 hours.
    fn default() -> Self {
        defaults::RETRY_SCHEDULE
            .parse()
            .expect("the default retry schedule parses")
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// Parses `"0,5s,5m,30m,2h"` or `"0, 100ms, 200ms"`: comma-separated durations
    /// ([`crate::duration`]) in `ms`, `s`, `m` or `h` (none means seconds).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        let delays = s
            .split(',')
            .enumerate()
            .map(|(i, entry)| parse_entry(i + 1, entry))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(delays)
    }
}

/// The units a schedule entry takes (`Display` writes the same).
const SCHEDULE_UNITS: &[&str] = &["ms", "s", "m", "h"];

fn parse_entry(position: usize, raw: &str) -> Result<Duration, ScheduleError> {
    let entry = raw.trim();
    duration::parse(entry, SCHEDULE_UNITS).map_err(|e| {
        let entry = entry.to_owned();
        match e {
            DurationError::Empty => ScheduleError::EmptyEntry { position },
            DurationError::BadNumber => ScheduleError::BadNumber { position, entry },
            DurationError::BadUnit(unit) => ScheduleError::BadUnit {
                position,
                entry,
                unit,
            },
            DurationError::TooLarge => ScheduleError::TooLarge { position, entry },
        }
    })
}

impl fmt::Display for RetrySchedule {
    /// The `FromStr` syntax, each delay in the largest exact unit (`0,5s,5m,30m,2h`).
    /// Sub-millisecond parts are truncated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, delay) in self.delays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let ms = delay.as_millis();
            if ms == 0 {
                f.write_str("0")?;
            } else if ms % 3_600_000 == 0 {
                write!(f, "{}h", ms / 3_600_000)?;
            } else if ms % 60_000 == 0 {
                write!(f, "{}m", ms / 60_000)?;
            } else if ms % 1_000 == 0 {
                write!(f, "{}s", ms / 1_000)?;
            } else {
                write!(f, "{ms}ms")?;
            }
        }
        Ok(())
    }
}

/// Parses a `Retry-After` value: delta-seconds (`"120"`) or an HTTP date. A date in the past
/// gives zero; anything unparseable gives `None`. Huge delta-seconds saturate (callers cap the
/// value with [`MAX_RETRY_AFTER`]).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What to do after an attempt got an HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    /// 2xx: done.
    Delivered,
    /// 410 Gone: the endpoint asks to be disabled; do not retry.
    Gone,
    /// Anything else: retry per schedule; `honour_retry_after` for 429 and 503.
    Retry { honour_retry_after: bool },
}

/// Classifies a response status. Redirects (3xx) are failures: they are never followed.
pub fn classify_status(status: u16) -> AttemptVerdict {
    match status {
        200..=299 => AttemptVerdict::Delivered,
        410 => AttemptVerdict::Gone,
        429 | 503 => AttemptVerdict::Retry {
            honour_retry_after: true,
        },
        _ => AttemptVerdict::Retry {
            honour_retry_after: false,
        },
    }
}

/// A uniform jitter sample in `[-1, 1]` for [`RetrySchedule::next_delay`].
pub fn jitter_sample<R: rand::Rng>(rng: &mut R) -> f64 {
    rng.random_range(-1.0..=1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(
            s.delays(),
            &[
                secs(0),
                secs(5),
                secs(5 * MIN),
                secs(30 * MIN),
                secs(2 * HOUR),
                secs(5 * HOUR),
                secs(10 * HOUR),
                secs(10 * HOUR)
            ]
        );
        assert_eq!(s.to_string(), "0,5s,5m,30m,2h,5h,10h,10h");
        assert_eq!("0,5s,5m,30m,2h,5h,10h,10h".parse(), Ok(s));
    }

    #[test]
    fn parse_units_and_whitespace() {
        let s: RetrySchedule = " 0 , 100ms,200 ms ,3,4s, 1m ,1h".parse().unwrap();
        assert_eq!(
            s.delays(),
            &[
                secs(0),
                Duration::from_millis(100),
                Duration::from_millis(200),
                secs(3),
                secs(4),
                secs(60),
                secs(3600)
            ]
        );
        assert_eq!(s.max_attempts(), 7);
        assert_eq!(s.to_string(), "0,100ms,200ms,3s,4s,1m,1h");
    }

    #[test]
    fn display_round_trips_and_normalises() {
        for text in [
            "0,100ms,200ms",
            "0,5s,5m,30m,2h,5h,10h,10h",
            "1500ms,90s,7m",
        ] {
            let s: RetrySchedule = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(s.to_string().parse(), Ok(s));
        }
        let s: RetrySchedule = "60s,120m,1000ms,0ms".parse().unwrap();
        assert_eq!(s.to_string(), "1m,2h,1s,0");
    }

    #[test]
    fn parse_errors() {
        assert_eq!("".parse::<RetrySchedule>(), Err(ScheduleError::Empty));
        assert_eq!("  ".parse::<RetrySchedule>(), Err(ScheduleError::Empty));
        assert_eq!(
            "0,,5s".parse::<RetrySchedule>(),
            Err(ScheduleError::EmptyEntry { position: 2 })
        );
        assert_eq!(
            "0,5s,".parse::<RetrySchedule>(),
            Err(ScheduleError::EmptyEntry { position: 3 })
        );
        assert_eq!(
            "0,5d".parse::<RetrySchedule>(),
            Err(ScheduleError::BadUnit {
                position: 2,
                entry: "5d".into(),
                unit: "d".into()
            })
        );
        for bad in ["s", "-5s", "1.5s", "five", "5 5s", "+5"] {
            assert!(
                matches!(
                    bad.parse::<RetrySchedule>(),
                    Err(ScheduleError::BadNumber { position: 1, .. })
                ),
                "{bad}: {:?}",
                bad.parse::<RetrySchedule>()
            );
        }
        assert!(matches!(
            "99999999999999999999h".parse::<RetrySchedule>(),
            Err(ScheduleError::TooLarge { .. })
        ));
        assert!(matches!(
            "18446744073709551615h".parse::<RetrySchedule>(),
            Err(ScheduleError::TooLarge { .. })
        ));
        let msg = "0,5x".parse::<RetrySchedule>().unwrap_err().to_string();
        assert!(
            msg.contains("\"5x\"") && msg.contains("ms, s, m or h"),
            "{msg}"
        );
        let msg = "".parse::<RetrySchedule>().unwrap_err().to_string();
        assert!(msg.contains("empty"), "{msg}");
        assert!(RetrySchedule::new(vec![]).is_err());
        assert!(RetrySchedule::new(vec![Duration::ZERO; MAX_SCHEDULE_ENTRIES + 1]).is_err());
    }

    #[test]
    fn next_delay_walks_the_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(s.next_delay(0, 0.0, None), Some(secs(0)));
        assert_eq!(s.next_delay(1, 0.0, None), Some(secs(5)));
        assert_eq!(s.next_delay(2, 0.0, None), Some(secs(5 * MIN)));
        assert_eq!(s.next_delay(7, 0.0, None), Some(secs(10 * HOUR)));
        assert_eq!(s.next_delay(8, 0.0, None), None);
        assert_eq!(s.next_delay(u32::MAX, 0.0, None), None);
        let one: RetrySchedule = "0".parse().unwrap();
        assert_eq!(one.max_attempts(), 1);
        assert_eq!(one.next_delay(1, 0.0, None), None);
    }

    #[test]
    fn jitter_is_plus_minus_twenty_percent() {
        let s = RetrySchedule::default();
        assert_eq!(s.next_delay(1, 1.0, None), Some(secs(6)));
        assert_eq!(s.next_delay(1, -1.0, None), Some(secs(4)));
        assert_eq!(
            s.next_delay(1, 0.5, None),
            Some(Duration::from_millis(5500))
        );
        // Out-of-range and NaN samples are tamed.
        assert_eq!(s.next_delay(1, 7.0, None), Some(secs(6)));
        assert_eq!(s.next_delay(1, -7.0, None), Some(secs(4)));
        assert_eq!(s.next_delay(1, f64::NAN, None), Some(secs(5)));
        assert_eq!(s.next_delay(1, f64::INFINITY, None), Some(secs(6)));
        // Zero stays zero.
        assert_eq!(s.next_delay(0, 1.0, None), Some(Duration::ZERO));
        // Every delay of the default schedule stays within ±20 %.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..8 {
            let base = s.delays()[attempt as usize];
            for _ in 0..100 {
                let d = s
                    .next_delay(attempt, jitter_sample(&mut rng), None)
                    .unwrap();
                assert!(d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2), "{d:?}");
            }
        }
    }

    #[test]
    fn huge_delays_do_not_panic() {
        let s = RetrySchedule::new(vec![Duration::MAX, Duration::MAX]).unwrap();
        assert!(s.next_delay(1, 1.0, None).is_some());
        assert!(s.next_delay(1, -1.0, Some(secs(10))).is_some());
        assert_eq!(s.to_string().parse::<RetrySchedule>().ok(), None);
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_one_hour() {
        let s = RetrySchedule::default();
        // Longer than the scheduled 5 s: wins.
        assert_eq!(s.next_delay(1, 0.0, Some(secs(120))), Some(secs(120)));
        // Shorter than the schedule: the schedule wins.
        assert_eq!(s.next_delay(2, 0.0, Some(secs(1))), Some(secs(5 * MIN)));
        // Capped at one hour.
        assert_eq!(
            s.next_delay(1, 0.0, Some(secs(86_400))),
            Some(MAX_RETRY_AFTER)
        );
        // The cap never shortens a longer scheduled delay.
        assert_eq!(
            s.next_delay(5, 0.0, Some(secs(86_400))),
            Some(secs(5 * HOUR))
        );
        // An exhausted schedule stays exhausted.
        assert_eq!(s.next_delay(8, 0.0, Some(secs(1))), None);
        assert_eq!(MAX_RETRY_AFTER, secs(3600));
    }

    #[test]
    fn retry_after_parsing() {
        let now = SystemTime::UNIX_EPOCH + secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(secs(0)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 21 Oct 2015"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn status_classification() {
        use AttemptVerdict::*;
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(classify_status(ok), Delivered);
        }
        assert_eq!(classify_status(410), Gone);
        for slow in [429, 503] {
            assert_eq!(
                classify_status(slow),
                Retry {
                    honour_retry_after: true
                }
            );
        }
        for other in [
            100, 199, 300, 301, 302, 304, 307, 400, 401, 404, 500, 502, 504,
        ] {
            assert_eq!(
                classify_status(other),
                Retry {
                    honour_retry_after: false
                },
                "{other}"
            );
        }
    }

    #[test]
    fn jitter_samples_stay_in_range() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let samples: Vec<f64> = (0..1000).map(|_| jitter_sample(&mut rng)).collect();
        assert!(samples.iter().all(|x| (-1.0..=1.0).contains(x)));
        assert!(samples.iter().any(|&x| x < -0.5));
        assert!(samples.iter().any(|&x| x > 0.5));
    }
}
