//! How many deliveries the engine can still be handed off, shared by the engine (which knows how
//! many it holds) and concurrent ingests (which reserve their share before they lease).
//!
//! Without a reservation, every ingest that ran while the engine had room leased all of its new
//! deliveries, and the engine gave back what it could not hold: a second write per delivery, and
//! then a claim. With it, an ingest leases at most what it reserved; the rest stay unleased for a
//! claim. The engine still gives back anything beyond its limit (the counts here are a guide read
//! at different moments, not a lock).

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
pub(super) struct Room {
    /// What the engine can take beyond what it holds and what its claim in flight may bring
    /// (set by the engine).
    free: AtomicUsize,
    /// Reserved by ingests in flight, plus handed off and not yet taken by the engine.
    taken: AtomicUsize,
    /// Deliveries per event of the last ingest that created any (at least 1): what an ingest
    /// reserves per event.
    per_event: AtomicUsize,
}

impl Room {
    /// The engine: it can take `free` more now.
    pub fn set_free(&self, free: usize) {
        self.free.store(free, Ordering::Release);
    }

    /// Reserves room for an ingest of `events` events: as many deliveries as they are expected
    /// to fan out to, or what is left (`Reservation::granted`; 0: lease none). What the ingest
    /// does not hand off comes back when it settles, or when the reservation is dropped (an
    /// error, a panic).
    pub fn reserve(&self, events: usize) -> Reservation<'_> {
        Reservation {
            room: self,
            granted: self.take(events),
        }
    }

    fn take(&self, events: usize) -> usize {
        let want = events.saturating_mul(self.per_event.load(Ordering::Acquire).max(1));
        let free = self.free.load(Ordering::Acquire);
        let mut granted = 0;
        let _ = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                granted = free.saturating_sub(taken).min(want);
                (granted > 0).then_some(taken + granted)
            });
        granted
    }

    /// The engine took `n` handed-off deliveries.
    pub fn taken_by_engine(&self, n: usize) {
        self.release(n);
    }

    fn release(&self, n: usize) {
        if n > 0 {
            let _ = self
                .taken
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                    Some(t.saturating_sub(n))
                });
        }
    }
}

/// Room an ingest has reserved.
pub(super) struct Reservation<'a> {
    room: &'a Room,
    granted: usize,
}

impl Reservation<'_> {
    pub fn granted(&self) -> usize {
        self.granted
    }

    /// The ingest is done: it handed off `handed` of the reserved deliveries (counted until the
    /// engine takes them) and created `created` deliveries for `events` events.
    pub fn settle(mut self, handed: usize, events: usize, created: usize) {
        self.granted = self.granted.saturating_sub(handed);
        if created > 0 && events > 0 {
            self.room
                .per_event
                .store(created.div_ceil(events), Ordering::Release);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.room.release(self.granted);
    }
}

#[cfg(test)]
mod tests {
    use super::Room;

    #[test]
    fn concurrent_ingests_share_the_room_instead_of_each_taking_all_of_it() {
        let room = Room::default();
        room.set_free(250);
        // Nothing is known about the fan-out yet: one delivery per event.
        let first = room.reserve(100);
        let second = room.reserve(100);
        let third = room.reserve(100);
        assert_eq!((first.granted(), second.granted()), (100, 100));
        assert_eq!(third.granted(), 50, "only what is left");
        assert_eq!(room.reserve(1).granted(), 0, "none left");
        // The first hands off all 100; until the engine takes them they still count.
        first.settle(100, 100, 100);
        assert_eq!(room.reserve(1).granted(), 0);
        room.taken_by_engine(100);
        assert_eq!(room.reserve(10).granted(), 10);
    }

    #[test]
    fn an_ingest_gives_back_what_it_did_not_hand_off() {
        let room = Room::default();
        room.set_free(10);
        let r = room.reserve(10);
        assert_eq!(r.granted(), 10);
        // Duplicates, status changes: 3 handed off of 10 reserved.
        r.settle(3, 10, 3);
        assert_eq!(room.reserve(100).granted(), 7);
    }

    #[test]
    fn the_reservation_follows_the_fan_out_of_the_last_ingest() {
        let room = Room::default();
        room.set_free(1000);
        let first = room.reserve(2);
        assert_eq!(first.granted(), 2);
        // Two events went to 100 registrations each.
        first.settle(2, 2, 200);
        let next = room.reserve(3);
        assert_eq!(next.granted(), 300);
        assert_eq!(room.reserve(10).granted(), 698, "capped by what is free");
    }

    #[test]
    fn a_closed_or_full_engine_grants_nothing() {
        let room = Room::default();
        assert_eq!(room.reserve(5).granted(), 0);
        room.set_free(5);
        room.set_free(0);
        assert_eq!(room.reserve(5).granted(), 0);
    }

    #[test]
    fn a_reservation_dropped_unsettled_gives_everything_back() {
        let room = Room::default();
        room.set_free(10);
        let failed = room.reserve(8);
        assert_eq!(room.reserve(8).granted(), 2);
        drop(failed);
        assert_eq!(room.reserve(8).granted(), 8);
    }
}
