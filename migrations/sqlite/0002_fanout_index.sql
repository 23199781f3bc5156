-- Fan-out looks registrations up by session first (see ingest): index it.
CREATE INDEX webhooks_session ON webhooks(session_id);
