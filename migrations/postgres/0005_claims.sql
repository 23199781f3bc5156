-- Fencing: every claim (a claim scan, or the lease an ingest takes for the engine it hands its
-- deliveries to) writes a new token; a result is recorded only with the token of the claim
-- that holds the delivery, so a holder that lost its lease cannot overwrite the new holder's.
ALTER TABLE deliveries ADD COLUMN claim_token BIGINT;
-- The due-index per registration: a claim takes the due rows of each registration from here,
-- so a busy registration's backlog is never walked.
CREATE INDEX deliveries_due_by_webhook ON deliveries(webhook_id, next_attempt_at, id) WHERE state = 'pending';
