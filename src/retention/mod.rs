//! Retention: what the store may forget, and when. Pure: the time is an input, nothing here
//! reads a clock or a database. The store applies these cutoffs in SQL (`Store::prune`); the
//! periodic task that drives it is `pruner.rs`.
//!
//! The rule:
//! - a **pending** delivery is never pruned (it is still owed);
//! - a **delivered** delivery is pruned once it was finished (its last state change) more than
//!   the delivered window ago (`WABRIDGE_RETENTION_DELIVERED`, default 7 days);
//! - a **dead** delivery (dead letter) once it died more than the dead window ago
//!   (`WABRIDGE_RETENTION_DEAD`, default 30 days); a redrive makes it pending again;
//! - its attempts go with it;
//! - an **event** is pruned once no delivery of it is left and it was received more than the
//!   shorter of the two windows ago. With it goes its idempotency key: the dedup window is
//!   therefore at least that long, and longer while any delivery of the event is kept.
//! - the last `session.status` of each session is never pruned (one row per session), so
//!   "dispatched only when it changes" holds across pruning.

pub mod pruner;

use std::time::Duration;

use crate::defaults;

/// How long finished work is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub delivered: Duration,
    pub dead: Duration,
}

impl Default for Retention {
    /// [`defaults::RETENTION_DELIVERED`] and [`defaults::RETENTION_DEAD`].
    fn default() -> Self {
        Self {
            delivered: defaults::duration(defaults::RETENTION_DELIVERED),
            dead: defaults::duration(defaults::RETENTION_DEAD),
        }
    }
}

/// The state of a delivery, as far as retention cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Still owed: never pruned.
    Pending,
    Delivered,
    Dead,
}

/// The instants before which finished work may be forgotten (Unix ms, exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    /// Delivered deliveries finished before this.
    pub delivered_before_ms: i64,
    /// Dead deliveries that died before this.
    pub dead_before_ms: i64,
    /// Events without deliveries received before this.
    pub events_before_ms: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Retention {
    /// The cutoffs at `now_ms`.
    pub fn cutoffs(&self, now_ms: i64) -> PruneCutoffs {
        let delivered = now_ms.saturating_sub(ms(self.delivered));
        let dead = now_ms.saturating_sub(ms(self.dead));
        PruneCutoffs {
            delivered_before_ms: delivered,
            dead_before_ms: dead,
            // The shorter window: an event is never kept for its own sake longer than its
            // longest-lived kind of delivery would be, and never shorter than either.
            events_before_ms: delivered.max(dead),
        }
    }

    /// The shortest time an accepted idempotency key is remembered (the dedup window).
    pub fn dedup_window(&self) -> Duration {
        self.delivered.min(self.dead)
    }
}

impl PruneCutoffs {
    /// May a delivery in `state`, last changed at `updated_at_ms`, be pruned?
    pub fn delivery_prunable(&self, state: Finished, updated_at_ms: i64) -> bool {
        match state {
            Finished::Pending => false,
            Finished::Delivered => updated_at_ms < self.delivered_before_ms,
            Finished::Dead => updated_at_ms < self.dead_before_ms,
        }
    }

    /// May an event with `deliveries_left` kept deliveries, received at `received_at_ms`, be
    /// pruned (and its idempotency key forgotten)?
    pub fn event_prunable(&self, deliveries_left: usize, received_at_ms: i64) -> bool {
        deliveries_left == 0 && received_at_ms < self.events_before_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;
    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn defaults_are_a_week_and_a_month() {
        let r = Retention::default();
        assert_eq!(r.delivered, Duration::from_secs(604_800));
        assert_eq!(r.dead, Duration::from_secs(2_592_000));
        assert_eq!(r.dedup_window(), Duration::from_secs(604_800));
    }

    #[test]
    fn cutoffs_are_now_minus_each_window() {
        let c = Retention::default().cutoffs(NOW);
        assert_eq!(c.delivered_before_ms, NOW - 7 * DAY);
        assert_eq!(c.dead_before_ms, NOW - 30 * DAY);
        assert_eq!(c.events_before_ms, NOW - 7 * DAY, "the shorter window");
        let short_dead = Retention {
            delivered: Duration::from_secs(7 * 86_400),
            dead: Duration::from_secs(86_400),
        };
        assert_eq!(short_dead.cutoffs(NOW).events_before_ms, NOW - DAY);
        assert_eq!(short_dead.dedup_window(), Duration::from_secs(86_400));
    }

    #[test]
    fn pending_is_never_pruned() {
        let c = Retention::default().cutoffs(NOW);
        assert!(!c.delivery_prunable(Finished::Pending, 0));
        assert!(!c.delivery_prunable(Finished::Pending, NOW - 365 * DAY));
    }

    #[test]
    fn delivered_and_dead_go_after_their_own_window() {
        let c = Retention::default().cutoffs(NOW);
        assert!(c.delivery_prunable(Finished::Delivered, NOW - 7 * DAY - 1));
        assert!(
            !c.delivery_prunable(Finished::Delivered, NOW - 7 * DAY),
            "exclusive"
        );
        assert!(!c.delivery_prunable(Finished::Dead, NOW - 7 * DAY - 1));
        assert!(!c.delivery_prunable(Finished::Dead, NOW - 30 * DAY));
        assert!(c.delivery_prunable(Finished::Dead, NOW - 30 * DAY - 1));
    }

    #[test]
    fn an_event_goes_only_without_deliveries_and_after_the_shorter_window() {
        let c = Retention::default().cutoffs(NOW);
        assert!(c.event_prunable(0, NOW - 7 * DAY - 1));
        assert!(!c.event_prunable(1, NOW - 365 * DAY), "a delivery is left");
        assert!(!c.event_prunable(0, NOW - 7 * DAY), "within the window");
    }

    #[test]
    fn windows_longer_than_now_prune_nothing() {
        let huge = Retention {
            delivered: Duration::from_secs(u64::MAX / 4),
            dead: Duration::from_secs(u64::MAX / 4),
        };
        let c = huge.cutoffs(NOW);
        assert!(!c.delivery_prunable(Finished::Delivered, 0));
        assert!(!c.event_prunable(0, 0));
    }
}
