-- Retention (issue 11): finished deliveries, their attempts and events with no delivery left are
-- pruned in small batches (`Store::prune`, the rule in src/retention/). Each batch finds its rows
-- through an index, so a prune never walks what it keeps.
--
-- The finished deliveries, by when they finished: only rows that left 'pending' are in these
-- (ingest pays nothing for them; a result adds one entry).
CREATE INDEX deliveries_delivered_at ON deliveries(updated_at) WHERE state = 'delivered';
CREATE INDEX deliveries_dead_at ON deliveries(updated_at) WHERE state = 'dead';
-- "Does this event still have a delivery?", and the foreign-key check when an event is deleted
-- (without it SQLite scans every delivery per deleted event).
CREATE INDEX deliveries_event ON deliveries(event_id);
-- events.dispatched now also means "has deliveries": 0 for an event that never got one (an
-- unchanged session.status, or no registration subscribes) or lost its last one (pruned, or
-- its registration deleted). Those are found here, oldest first.
UPDATE events SET dispatched = 0
 WHERE dispatched = 1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id);
CREATE INDEX events_undelivered ON events(received_at) WHERE dispatched = 0;
-- (Incremental auto-vacuum, which gives freed pages back to the file system, cannot be switched
-- on inside a transaction: the store does it when it opens the file; see sqlite/mod.rs.)
