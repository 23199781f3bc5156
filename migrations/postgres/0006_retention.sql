-- Retention (issue 11): as migrations/sqlite/0006_retention.sql. deliveries_event exists since
-- 0001. Freed space is reused by autovacuum (the files do not shrink).
CREATE INDEX deliveries_delivered_at ON deliveries(updated_at) WHERE state = 'delivered';
CREATE INDEX deliveries_dead_at ON deliveries(updated_at) WHERE state = 'dead';
-- events.dispatched now also means "has deliveries": FALSE for an event that never got one or
-- lost its last one. Those are found here, oldest first.
UPDATE events SET dispatched = FALSE
 WHERE dispatched AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id);
CREATE INDEX events_undelivered ON events(received_at) WHERE NOT dispatched;
