-- Engine deliveries that were acknowledged without becoming catalog events (no catalog
-- counterpart, or an event no configured source emits): one row per source and native name.
CREATE TABLE ignored_events (
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    last_reason TEXT NOT NULL,
    PRIMARY KEY (source, name)
);
