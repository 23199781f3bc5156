//! PostgreSQL's ingest: a batch's events, their fan-out and their deliveries in one
//! transaction that takes its locks in one global order, and leases the hand-off's deliveries
//! to this instance before it commits.

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, Transaction};

use super::commit_fate::{self, Xid, current_xid};
use super::{Lease, PostgresStore, lease_and_read, read_claimed};
use crate::store::rows::{corrupt, to_json};
use crate::store::*;

/// First half of the two-part advisory lock keys ingest takes per session whose status it sets
/// (the other half hashes the session id); two-part keys never collide with one-part locks
/// (the first-key lock, sqlx's migration lock).
const SESSION_LOCKS: i32 = 0x7762_7373;

/// A stable 32-bit hash of a lock name, the same in every instance and version.
fn lock_hash(name: &str) -> i32 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(name.as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl PostgresStore {
    pub(super) async fn ingest_tx(
        &self,
        events: &[NewEvent],
        now_ms: i64,
        hand_off: Option<(i64, usize)>,
    ) -> StoreResult<(Vec<IngestOutcome>, Vec<ClaimedDelivery>)> {
        // Two batches that touch the same keys or sessions in different orders would each wait
        // for a row the other holds: a deadlock, which PostgreSQL breaks only after
        // `deadlock_timeout` (1 s). So every batch takes what it needs in one global order:
        // first a lock per session whose status it sets (sorted), then the keys (sorted).
        let mut sessions: Vec<i32> = events
            .iter()
            .filter(|e| e.status.is_some())
            .map(|e| lock_hash(e.session_id.as_str()))
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        let mut tx = self.pool.begin().await?;
        if !sessions.is_empty() {
            // Rows of UNNEST are produced, and locked, in the array's order.
            sqlx::query("SELECT pg_advisory_xact_lock($1, h) FROM UNNEST($2::int4[]) AS h")
                .bind(SESSION_LOCKS)
                .bind(&sessions)
                .execute(&mut *tx)
                .await?;
        }
        let mut by_key: Vec<usize> = (0..events.len()).collect();
        // Stable: of one key twice in a batch, the first stays first (and wins).
        by_key.sort_by(|a, b| events[*a].idempotency_key.cmp(&events[*b].idempotency_key));
        let plain = events
            .iter()
            .all(|e| e.status.is_none() && e.only_webhook.is_none());
        // The hand-off's lease, on the first `at_most` new deliveries: a plain batch inserts
        // them with it (one row version, not an insert and then an update); any other batch
        // leases them afterwards.
        let hand_off = hand_off.filter(|(_, at_most)| *at_most > 0);
        let lease = hand_off.map(|(until, _)| Lease::new(until, &self.instance));
        let at_most = hand_off.map_or(0, |(_, at_most)| at_most);
        let (out, xid) = if plain {
            ingest_plain(&mut tx, events, &by_key, now_ms, lease.as_ref(), at_most).await?
        } else {
            let xid = commit_fate::note(&mut tx).await?;
            let mut inserted: Vec<Option<String>> = vec![None; events.len()];
            for i in by_key {
                inserted[i] = insert_event(&mut tx, &events[i], now_ms).await?;
            }
            // Then statuses and fan-out in the batch's order (a batch may change a status
            // twice).
            let mut out = Vec::with_capacity(events.len());
            for (e, inserted) in events.iter().zip(inserted) {
                out.push(dispatch_one(&mut tx, e, inserted, now_ms).await?);
            }
            (out, Some(xid))
        };
        // The hand-off: lease the new deliveries to this instance in the same transaction.
        let mut claimed = Vec::new();
        if let Some(lease) = &lease {
            let ids: Vec<DeliveryId> = events
                .iter()
                .zip(&out)
                .filter(|(e, _)| e.status.is_none() && e.only_webhook.is_none())
                .flat_map(|(_, o)| o.deliveries.iter().cloned())
                .take(at_most)
                .collect();
            if !ids.is_empty() {
                claimed = if plain {
                    read_claimed(&mut tx, &ids, &self.at_rest).await?
                } else {
                    lease_and_read(&mut tx, &ids, lease, &self.at_rest).await?
                };
            }
        }
        commit_fate::commit(&self.pool, tx, xid.as_ref()).await?;
        Ok((out, claimed))
    }
}

/// A batch of plain events (no status, no single target) with one statement per table instead
/// of a few per event: the fan-out of every event, the events (inserted in `by_key` order, the
/// lock order), the ids of duplicates, the deliveries (the first `at_most` of them under
/// `lease`). Also returns the transaction's id if it wrote anything (`commit_fate.rs`).
async fn ingest_plain(
    tx: &mut Transaction<'static, Postgres>,
    events: &[NewEvent],
    by_key: &[usize],
    now_ms: i64,
    lease: Option<&Lease<'_>>,
    at_most: usize,
) -> StoreResult<(Vec<IngestOutcome>, Option<Xid>)> {
    // Who receives what, by session first (indexed), then the subscription; the fan-out rule is
    // the catalog's (`Catalog::matching_patterns`, carried in `subscribed_by`).
    let index: Vec<i32> = (0..events.len())
        .map(|i| i32::try_from(i).map_err(corrupt))
        .collect::<StoreResult<_>>()?;
    let column =
        |k: usize| -> Vec<&str> { events.iter().map(|e| e.subscribed_by[k].as_str()).collect() };
    let sessions: Vec<&str> = events.iter().map(|e| e.session_id.as_str()).collect();
    let pairs: Vec<(i32, String)> = sqlx::query_as(
        "WITH ev AS (SELECT * FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::text[], \
                $5::text[]) AS ev(i, s, n, f, a)) \
         SELECT ev.i, w.id FROM ev JOIN webhooks w ON w.session_id = ev.s \
          WHERE w.active AND EXISTS (SELECT 1 FROM webhook_subscriptions s \
                WHERE s.webhook_id = w.id AND s.pattern IN (ev.n, ev.f, ev.a)) \
         UNION ALL \
         SELECT ev.i, w.id FROM ev JOIN webhooks w ON w.session_id IS NULL \
          WHERE w.active AND EXISTS (SELECT 1 FROM webhook_subscriptions s \
                WHERE s.webhook_id = w.id AND s.pattern IN (ev.n, ev.f, ev.a)) \
         ORDER BY 1, 2",
    )
    .bind(&index)
    .bind(&sessions)
    .bind(column(0))
    .bind(column(1))
    .bind(column(2))
    .fetch_all(&mut **tx)
    .await?;
    let mut targets: Vec<Vec<String>> = vec![Vec::new(); events.len()];
    for (i, webhook_id) in pairs {
        usize::try_from(i)
            .ok()
            .and_then(|i| targets.get_mut(i))
            .ok_or_else(|| StoreError::Corrupt(format!("fan-out row for event {i}")))?
            .push(webhook_id);
    }

    // Of two instances inserting the same key at once, the second waits on the unique index
    // until the first commits, then does nothing (and reads the first one's id below). Rows of
    // UNNEST are inserted, and their keys locked, in the arrays' order.
    let mut cols: [Vec<String>; 7] = Default::default();
    let mut has_deliveries = Vec::with_capacity(events.len());
    for &i in by_key {
        let e = &events[i];
        for (col, v) in cols.iter_mut().zip([
            e.id.to_string(),
            e.idempotency_key.clone(),
            e.event.clone(),
            e.session_id.to_string(),
            to_json(&e.data)?,
            e.occurred.clone(),
            e.source.as_str().to_owned(),
        ]) {
            col.push(v);
        }
        has_deliveries.push(!targets[i].is_empty());
    }
    let [ids, keys, names, sessions, data, occurred, sources] = &cols;
    // Each row written also returns the transaction's id: the batch writes nothing else unless
    // it inserted an event here, so a batch that learns no id has nothing to learn at COMMIT.
    let rows: Vec<(String, String)> = sqlx::query_as(concat!(
        "INSERT INTO events (id, idempotency_key, event, session_id, data, occurred_rfc3339, \
            received_at, dispatched, source) \
         SELECT e.id, e.k, e.n, e.s, e.d, e.o, $8, e.dp, e.src \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
            $7::bool[], $9::text[]) AS e(id, k, n, s, d, o, dp, src) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, ",
        current_xid!()
    ))
    .bind(ids)
    .bind(keys)
    .bind(names)
    .bind(sessions)
    .bind(data)
    .bind(occurred)
    .bind(&has_deliveries)
    .bind(now_ms)
    .bind(sources)
    .fetch_all(&mut **tx)
    .await?;
    let xid = rows.first().map(|(_, xid)| Xid::read(xid.clone()));
    let inserted: HashSet<String> = rows.into_iter().map(|(id, _)| id).collect();

    let dup_keys: Vec<&str> = events
        .iter()
        .filter(|e| !inserted.contains(e.id.as_str()))
        .map(|e| e.idempotency_key.as_str())
        .collect();
    let existing: HashMap<String, String> = if dup_keys.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as("SELECT idempotency_key, id FROM events WHERE idempotency_key = ANY($1)")
            .bind(&dup_keys)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect()
    };

    let mut out = Vec::with_capacity(events.len());
    let (mut d_ids, mut d_events, mut d_webhooks) = (Vec::new(), Vec::new(), Vec::new());
    for (e, targets) in events.iter().zip(targets) {
        let key = &e.idempotency_key;
        if !inserted.contains(e.id.as_str()) {
            let existing = existing
                .get(key)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("no stored event for key {key}")))?;
            out.push(IngestOutcome::duplicate(existing, key));
            continue;
        }
        let ids: Vec<DeliveryId> = targets.iter().map(|_| DeliveryId::new()).collect();
        for (id, w) in ids.iter().zip(targets) {
            d_ids.push(id.to_string());
            d_events.push(e.id.to_string());
            d_webhooks.push(w);
        }
        out.push(IngestOutcome::dispatched(e.id.to_string(), key, ids));
    }
    // Not test deliveries: a test event always has a single target, so it is never plain.
    if !d_ids.is_empty() {
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, webhook_id, state, attempts, retry_base, \
                next_attempt_at, is_test, created_at, updated_at, lease_until, claimed_by, \
                claim_token) \
             SELECT d.id, d.event_id, d.webhook_id, 'pending', 0, 0, $4, FALSE, $4, $4, \
                    CASE WHEN d.n <= $8 THEN $5 END, CASE WHEN d.n <= $8 THEN $6 END, \
                    CASE WHEN d.n <= $8 THEN $7 END \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY \
                  AS d(id, event_id, webhook_id, n)",
        )
        .bind(&d_ids)
        .bind(&d_events)
        .bind(&d_webhooks)
        .bind(now_ms)
        .bind(lease.map(|l| l.until))
        .bind(lease.map(|l| l.instance))
        .bind(lease.map(|l| l.token))
        .bind(i64::try_from(at_most).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    }
    Ok((out, xid))
}

/// Stores the event unless its key was accepted before; its id if it was stored.
async fn insert_event(
    tx: &mut Transaction<'static, Postgres>,
    e: &NewEvent,
    now_ms: i64,
) -> StoreResult<Option<String>> {
    let data = to_json(&e.data)?;
    // Of two instances inserting the same key at once, the second waits on the unique index
    // until the first commits, then does nothing (and reads the first one's id).
    Ok(sqlx::query_scalar(
        "INSERT INTO events (id, idempotency_key, event, session_id, data, occurred_rfc3339, received_at, dispatched, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(&e.id)
    .bind(&e.idempotency_key)
    .bind(&e.event)
    .bind(&e.session_id)
    .bind(&data)
    .bind(&e.occurred)
    .bind(now_ms)
    .bind(e.source.as_str())
    .fetch_optional(&mut **tx)
    .await?)
}

/// What follows for one event of the batch: a duplicate, an unchanged status, or deliveries.
async fn dispatch_one(
    tx: &mut Transaction<'static, Postgres>,
    e: &NewEvent,
    inserted: Option<String>,
    now_ms: i64,
) -> StoreResult<IngestOutcome> {
    let Some(event_id) = inserted else {
        let existing: String =
            sqlx::query_scalar("SELECT id FROM events WHERE idempotency_key = $1")
                .bind(&e.idempotency_key)
                .fetch_one(&mut **tx)
                .await?;
        return Ok(IngestOutcome::duplicate(existing, &e.idempotency_key));
    };

    if let Some(status) = &e.status {
        // The row lock makes concurrent upserts of one session take turns; the WHERE is checked
        // against the row the other one committed, so the same new status changes it once.
        let changed: Option<String> = sqlx::query_scalar(
            "INSERT INTO session_status (session_id, status, event_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, event_id = excluded.event_id, updated_at = excluded.updated_at \
             WHERE session_status.status <> excluded.status RETURNING session_id",
        )
        .bind(&e.session_id)
        .bind(status)
        .bind(&event_id)
        .bind(now_ms)
        .fetch_optional(&mut **tx)
        .await?;
        if changed.is_none() {
            let outcome = IngestOutcome::status_unchanged(
                event_id,
                &e.idempotency_key,
                e.session_id.as_str(),
                status,
            );
            sqlx::query(
                "UPDATE events SET dispatched = FALSE, not_dispatched_reason = $1 WHERE id = $2",
            )
            .bind(outcome.reason.as_ref().map(ToString::to_string))
            .bind(&outcome.event_id)
            .execute(&mut **tx)
            .await?;
            return Ok(outcome);
        }
    }

    let targets: Vec<String> = match &e.only_webhook {
        Some(id) => vec![id.to_string()],
        None => {
            // The fan-out rule is the catalog's (`Catalog::matching_patterns`, carried in
            // `subscribed_by`): the SQL only compares stored patterns with these three.
            let [name, family, all] = &e.subscribed_by;
            sqlx::query_scalar(
                // By session first (indexed), then the subscription: registrations of other
                // sessions are never visited.
                "SELECT w.id FROM webhooks w WHERE w.session_id = $3 AND w.active \
                   AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.webhook_id = w.id AND s.pattern IN ($1, $2, $4)) \
                 UNION \
                 SELECT w.id FROM webhooks w WHERE w.session_id IS NULL AND w.active \
                   AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.webhook_id = w.id AND s.pattern IN ($1, $2, $4)) \
                 ORDER BY 1",
            )
            .bind(name)
            .bind(family)
            .bind(&e.session_id)
            .bind(all)
            .fetch_all(&mut **tx)
            .await?
        }
    };
    let is_test = e.source == EventSource::Test;
    let ids: Vec<DeliveryId> = targets.iter().map(|_| DeliveryId::new()).collect();
    if ids.is_empty() {
        // No delivery: retention may prune the event once it is old enough.
        sqlx::query("UPDATE events SET dispatched = FALSE WHERE id = $1")
            .bind(&event_id)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, webhook_id, state, attempts, retry_base, next_attempt_at, is_test, created_at, updated_at) \
             SELECT d.id, $3, d.webhook_id, 'pending', 0, 0, $4, $5, $4, $4 \
             FROM UNNEST($1::text[], $2::text[]) AS d(id, webhook_id)",
        )
        .bind(&ids)
        .bind(&targets)
        .bind(&event_id)
        .bind(now_ms)
        .bind(is_test)
        .execute(&mut **tx)
        .await?;
    }
    Ok(IngestOutcome::dispatched(event_id, &e.idempotency_key, ids))
}
