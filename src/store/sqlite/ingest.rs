//! The transactional outbox on SQLite: events and their deliveries, written by the writer task
//! (see `writer.rs`), with statements per batch rather than per row.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sqlx::SqliteConnection;
use tokio::sync::oneshot;

use super::db::Db;
use super::values;
use super::writer::NotCommitted;
use crate::ids::{DeliveryId, WebhookId};
use crate::secret::WebhookSecret;
use crate::secret::at_rest::AtRest;
use crate::store::rows::{corrupt, to_json};
use crate::store::{
    ClaimedDelivery, EventSource, IngestOutcome, NewEvent, StoreError, StoreResult, TargetUrl,
    new_claim_token,
};

/// Who receives which event of `?1` (a JSON array of `TargetKey`s), as the rows of `p`
/// (`i`: event index, `id`: registration), followed by `$select` over them: by session first
/// (indexed), then the subscription, for every event at once. Registrations of other sessions
/// are never visited. The fan-out rule is the catalog's (`Catalog::matching_patterns`, carried
/// in `subscribed_by`): the SQL only compares stored patterns with those three. A literal, so
/// that the queries below are literals too.
macro_rules! fan_out {
    ($select:literal) => {
        concat!(
            "WITH ev AS (SELECT key AS i, value ->> 's' AS s, value ->> 'n' AS n, \
                value ->> 'f' AS f, value ->> 'a' AS a FROM json_each(?1)), \
             p AS (SELECT ev.i, w.id FROM ev JOIN webhooks w ON w.session_id = ev.s \
                  WHERE w.active = 1 AND EXISTS (SELECT 1 FROM webhook_subscriptions s \
                        WHERE s.webhook_id = w.id AND s.pattern IN (ev.n, ev.f, ev.a)) \
                 UNION ALL \
                 SELECT ev.i, w.id FROM ev JOIN webhooks w ON w.session_id IS NULL \
                  WHERE w.active = 1 AND EXISTS (SELECT 1 FROM webhook_subscriptions s \
                        WHERE s.webhook_id = w.id AND s.pattern IN (ev.n, ev.f, ev.a))) ",
            $select
        )
    };
}

/// One row: a JSON array of `[event index, registration id]`, and NULL.
macro_rules! fan_out_pairs {
    () => {
        fan_out!("SELECT json_group_array(json_array(i, id)), NULL FROM p")
    };
}

/// The pairs, and in the second column the target registrations as the hand-off needs them: a
/// JSON array of `[id, url, secret, headers, rate_limit]`.
macro_rules! fan_out_and_targets {
    () => {
        fan_out!(
            "SELECT json_group_array(json_array(i, id)), \
                (SELECT json_group_array(json_array(w.id, w.url, w.secret, w.headers, \
                    w.rate_limit)) FROM webhooks w WHERE w.id IN (SELECT id FROM p)) \
             FROM p"
        )
    };
}

/// What an ingest answers: the outcomes, and the deliveries leased for the hand-off.
pub(super) type Ingested = (Vec<IngestOutcome>, Vec<ClaimedDelivery>);

/// One event, ready for the writer (its payload already serialised off the writer's path).
pub(super) struct Prepared {
    id: String,
    key: String,
    event: String,
    session: String,
    data: String,
    occurred: String,
    source: EventSource,
    status: Option<String>,
    only_webhook: Option<String>,
    subscribed_by: [String; 3],
}

impl Prepared {
    pub fn new(e: &NewEvent) -> StoreResult<Self> {
        Ok(Self {
            id: e.id.to_string(),
            key: e.idempotency_key.clone(),
            event: e.event.clone(),
            session: e.session_id.to_string(),
            data: to_json(&e.data)?,
            occurred: e.occurred.clone(),
            source: e.source,
            status: e.status.clone(),
            only_webhook: e.only_webhook.as_ref().map(ToString::to_string),
            subscribed_by: e.subscribed_by.clone(),
        })
    }
}

/// The hand-off an ingest asks for: lease up to `at_most` new deliveries until `until`.
#[derive(Clone, Copy)]
pub(super) struct HandOff {
    pub until: i64,
    pub at_most: usize,
}

/// One ingest call (one HTTP request): its events, committed together or not at all.
pub(super) struct IngestRequest {
    events: Vec<Prepared>,
    now_ms: i64,
    /// Lease new deliveries for the hand-off to the engine, as many as it says.
    hand_off: Option<HandOff>,
    /// How the store keeps secrets: the hand-off reads registrations' secrets and headers.
    at_rest: AtRest,
    result: Option<StoreResult<Ingested>>,
    reply: oneshot::Sender<StoreResult<Ingested>>,
}

impl IngestRequest {
    pub fn new(
        events: Vec<Prepared>,
        now_ms: i64,
        hand_off: Option<HandOff>,
        at_rest: AtRest,
    ) -> (Self, oneshot::Receiver<StoreResult<Ingested>>) {
        let (reply, rx) = oneshot::channel();
        (
            Self {
                events,
                now_ms,
                hand_off,
                at_rest,
                result: None,
                reply,
            },
            rx,
        )
    }

    /// Events in this request.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The events and deliveries this request stored, once it has run (duplicates store
    /// nothing; 0 and 0 before it ran, or if it failed): what the writer estimates the next
    /// requests' fan-out from.
    pub fn stored(&self) -> (usize, usize) {
        match &self.result {
            Some(Ok((outcomes, _))) => outcomes
                .iter()
                .filter(|o| !o.duplicate)
                .fold((0, 0), |(e, d), o| (e + 1, d + o.deliveries.len())),
            _ => (0, 0),
        }
    }

    /// No status to compare and no single target: can be merged with other plain requests.
    pub fn is_plain(&self) -> bool {
        self.events
            .iter()
            .all(|e| e.status.is_none() && e.only_webhook.is_none())
    }

    /// Writes this request alone (the caller rolls it back alone if it fails); true if it
    /// succeeded.
    pub async fn write_alone(&mut self, db: &mut Db) -> bool {
        let r = if self.is_plain() {
            write_merged(db.sync(), std::slice::from_mut(self)).map(|()| None)
        } else {
            self.write_one_by_one(db).await.map(Some)
        };
        match r {
            Ok(Some(out)) => {
                self.result = Some(Ok(out));
                true
            }
            Ok(None) => true,
            Err(e) => {
                self.result = Some(Err(e));
                false
            }
        }
    }

    /// Event after event (status changes depend on the order), then the hand-off of the plain
    /// events' deliveries when this request leases.
    async fn write_one_by_one(&self, db: &mut Db) -> StoreResult<Ingested> {
        let mut out = Vec::with_capacity(self.events.len());
        for e in &self.events {
            out.push(ingest_one(db.sqlx(), e, self.now_ms).await?);
        }
        let Some(hand_off) = self.hand_off else {
            return Ok((out, Vec::new()));
        };
        let ids: Vec<&DeliveryId> = self
            .events
            .iter()
            .zip(&out)
            .filter(|(e, _)| e.status.is_none() && e.only_webhook.is_none())
            .flat_map(|(_, o)| o.deliveries.iter())
            .take(hand_off.at_most)
            .collect();
        if ids.is_empty() {
            return Ok((out, Vec::new()));
        }
        let ids = to_json(&ids)?;
        super::lease(db.sync(), &ids, hand_off.until)?;
        let claimed = super::read_claimed(db.sync(), &ids, &self.at_rest)?;
        Ok((out, claimed))
    }

    pub fn fail_alone(&mut self, why: &str) {
        self.result = Some(Err(StoreError::Corrupt(why.to_owned())));
    }

    /// Answers the caller once the transaction is settled (`committed`: None, or why not).
    pub fn answer(self, committed: Option<&NotCommitted>) {
        let r = match (self.result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), None) => Ok(v),
            (_, Some(why)) => Err(why.error("the ingest")),
            (None, None) => Err(StoreError::Corrupt("the ingest did not run".into())),
        };
        let _ = self.reply.send(r);
    }

    /// The transaction could not even start.
    pub fn fail(self, why: &NotCommitted) {
        let _ = self.reply.send(Err(why.error("the ingest")));
    }
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Hash)]
struct TargetKey<'a> {
    s: &'a str,
    n: &'a str,
    f: &'a str,
    a: &'a str,
}

/// A new delivery as the insert reads it: id, event id, registration, lease until, claim token.
type DeliveryRow<'a> = (DeliveryId, &'a str, &'a str, Option<i64>, Option<i64>);

/// A target registration as the hand-off needs it (parsed once per batch).
struct Target {
    url: TargetUrl,
    secret: WebhookSecret,
    headers: BTreeMap<String, String>,
    rate_limit: Option<f64>,
}

struct EventRow<'a> {
    id: &'a str,
    k: &'a str,
    e: &'a str,
    s: &'a str,
    d: &'a str,
    o: &'a str,
    src: &'static str,
    /// Has deliveries (0: none subscribes, so retention may prune it once it is old enough).
    dp: bool,
}

/// Writes every event of these plain requests (no status, no single target) with one statement
/// per table, in the requests' order (of one key twice, the first is stored, the second is a
/// duplicate), and sets each request's outcomes. On error nothing is set: the caller rolls back.
pub(super) fn write_merged(
    conn: &rusqlite::Connection,
    reqs: &mut [IngestRequest],
) -> StoreResult<()> {
    let events: Vec<&Prepared> = reqs.iter().flat_map(|r| r.events.iter()).collect();
    if events.is_empty() {
        for r in reqs.iter_mut() {
            r.result = Some(Ok((Vec::new(), Vec::new())));
        }
        return Ok(());
    }
    let now_ms = reqs[0].now_ms;
    // Every request of a batch comes from the one store, so they share its configuration.
    let at_rest = reqs[0].at_rest.clone();

    // What the fan-out compares (see `fan_out!`): each distinct key once, since the events of a
    // group mostly share one (the same event name in the same session), and per event the
    // index of its key.
    let (keys, key_of) = distinct_keys(&events);
    // Who receives what as one JSON array of [event index, registration] in one row (one
    // aggregate rather than a row per pair: with fan-out that is thousands), and for the
    // hand-off (which sends at once) each target registration as it is now, in the same query.
    let leasing = reqs
        .iter()
        .any(|r| r.hand_off.is_some_and(|h| h.at_most > 0));
    let (pairs, rows): (String, Option<String>) = conn
        .prepare_cached(if leasing {
            fan_out_and_targets!()
        } else {
            fan_out_pairs!()
        })?
        .query_row([to_json(&keys)?], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut pairs: Vec<(usize, String)> = serde_json::from_str(&pairs).map_err(corrupt)?;
    // An aggregate's input order is not promised: by key, then registration.
    pairs.sort_unstable();
    let mut per_key: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    for (i, webhook_id) in pairs {
        per_key
            .get_mut(i)
            .ok_or_else(|| StoreError::Corrupt(format!("fan-out row for key {i}")))?
            .push(webhook_id);
    }
    let targets: Vec<&[String]> = key_of.iter().map(|&k| per_key[k].as_slice()).collect();
    let registrations = match rows {
        Some(rows) => open_targets(&rows, &at_rest)?,
        None => HashMap::new(),
    };

    let event_rows: Vec<EventRow> = events
        .iter()
        .zip(&targets)
        .map(|(e, t)| EventRow {
            id: &e.id,
            k: &e.key,
            e: &e.event,
            s: &e.session,
            d: &e.data,
            o: &e.occurred,
            src: e.source.as_str(),
            dp: !t.is_empty(),
        })
        .collect();
    // Each event's request, and per request its lease (until, claim token) with the number of
    // deliveries it may still lease.
    let request_of: Vec<usize> = reqs
        .iter()
        .enumerate()
        .flat_map(|(n, r)| std::iter::repeat_n(n, r.events.len()))
        .collect();
    let mut leases: Vec<Option<(i64, i64, usize)>> = reqs
        .iter()
        .map(|r| r.hand_off.map(|h| (h.until, new_claim_token(), h.at_most)))
        .collect();
    // Every event's deliveries, planned before it is known which events are new: an event whose
    // key is stored already inserts none of them (see `insert_rows`) and is dropped below.
    let mut delivery_rows: Vec<DeliveryRow> = Vec::new();
    let mut planned: Vec<(Vec<DeliveryId>, Vec<ClaimedDelivery>)> =
        Vec::with_capacity(events.len());
    for (n, (e, &targets)) in events.iter().zip(&targets).enumerate() {
        let ids: Vec<DeliveryId> = targets.iter().map(|_| DeliveryId::new()).collect();
        let mut handed = Vec::new();
        for (id, w) in ids.iter().zip(targets) {
            let mut lease = None;
            if let (Some((until, token, left @ 1..)), Some(t)) =
                (&mut leases[request_of[n]], registrations.get(w))
            {
                *left -= 1;
                lease = Some((*until, *token));
                handed.push(ClaimedDelivery {
                    id: id.clone(),
                    webhook_id: WebhookId::from_stored(w.clone()),
                    url: t.url.clone(),
                    secret: t.secret.clone(),
                    headers: t.headers.clone(),
                    rate_limit: t.rate_limit,
                    event: e.event.clone(),
                    session_id: e.session.clone(),
                    idempotency_key: e.key.clone(),
                    occurred: e.occurred.clone(),
                    data: e.data.clone(),
                    is_test: false,
                    attempts: 0,
                    retry_base: 0,
                    claim_token: *token,
                });
            }
            delivery_rows.push((id.clone(), &e.id, w, lease.map(|l| l.0), lease.map(|l| l.1)));
        }
        planned.push((ids, handed));
    }
    let added = insert_rows(conn, &event_rows, &delivery_rows, now_ms)?;
    let inserted: HashSet<String> = if added == events.len() {
        events.iter().map(|e| e.id.clone()).collect()
    } else {
        // Event ids are new, so a stored one is one this insert added.
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let json: String = conn
            .prepare_cached(
                "SELECT json_group_array(id) FROM events \
                 WHERE id IN (SELECT value FROM json_each(?1))",
            )?
            .query_row([to_json(&ids)?], |r| r.get(0))?;
        serde_json::from_str(&json).map_err(corrupt)?
    };

    let dup_keys: Vec<&str> = events
        .iter()
        .filter(|e| !inserted.contains(&e.id))
        .map(|e| e.key.as_str())
        .collect();
    let existing: HashMap<String, String> = if dup_keys.is_empty() {
        HashMap::new()
    } else {
        conn.prepare_cached(
            "SELECT idempotency_key, id FROM events \
             WHERE idempotency_key IN (SELECT value FROM json_each(?1))",
        )?
        .query_map([to_json(&dup_keys)?], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?
    };

    let mut planned = planned.into_iter();
    for r in reqs.iter_mut() {
        let mut outcomes = Vec::with_capacity(r.events.len());
        let mut claimed = Vec::new();
        for (e, (ids, handed)) in r.events.iter().zip(planned.by_ref()) {
            if inserted.contains(&e.id) {
                claimed.extend(handed);
                outcomes.push(IngestOutcome::dispatched(e.id.clone(), &e.key, ids));
            } else {
                let existing = existing.get(&e.key).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("no stored event for key {}", e.key))
                })?;
                outcomes.push(IngestOutcome::duplicate(existing, &e.key));
            }
        }
        r.result = Some(Ok((outcomes, claimed)));
    }
    Ok(())
}

/// Inserts the events (of one key twice, the first; `ON CONFLICT DO NOTHING`) and the
/// deliveries of the events it inserted (an event's id is new, so it exists only if this
/// inserted it); returns how many events it inserted. Rows go in statements of a few cached
/// shapes (see `values.rs`).
fn insert_rows(
    conn: &rusqlite::Connection,
    events: &[EventRow<'_>],
    deliveries: &[DeliveryRow<'_>],
    now_ms: i64,
) -> StoreResult<usize> {
    let mut added = 0;
    for chunk in values::chunks(events) {
        let sql = format!(
            "INSERT INTO events (id, idempotency_key, event, session_id, data, \
                occurred_rfc3339, received_at, dispatched, source) SELECT * FROM (VALUES {}) \
             WHERE column1 IS NOT NULL ON CONFLICT (idempotency_key) DO NOTHING",
            values::rows_sql("(?, ?, ?, ?, ?, ?, ?, ?, ?)", chunk.slots)
        );
        let mut st = conn.prepare_cached(&sql)?;
        let mut b = values::Binder::new(&mut st);
        for e in chunk.padded() {
            match e {
                Some(e) => b.row(&[&e.id, &e.k, &e.e, &e.s, &e.d, &e.o, &now_ms, &e.dp, &e.src])?,
                None => b.nulls(9)?,
            }
        }
        added += st.raw_execute()?;
    }
    for chunk in values::chunks(deliveries) {
        let sql = format!(
            "INSERT INTO deliveries (id, event_id, webhook_id, state, attempts, retry_base, \
                next_attempt_at, is_test, created_at, updated_at, lease_until, claim_token) \
             SELECT * FROM (VALUES {}) AS v WHERE v.column1 IS NOT NULL \
               AND EXISTS (SELECT 1 FROM events e WHERE e.id = v.column2)",
            values::rows_sql("(?, ?, ?, 'pending', 0, 0, ?, 0, ?, ?, ?, ?)", chunk.slots)
        );
        let mut st = conn.prepare_cached(&sql)?;
        let mut b = values::Binder::new(&mut st);
        for d in chunk.padded() {
            match d {
                Some((id, event_id, webhook_id, until, token)) => b.row(&[
                    &id.as_str(),
                    event_id,
                    webhook_id,
                    &now_ms,
                    &now_ms,
                    &now_ms,
                    until,
                    token,
                ])?,
                None => b.nulls(8)?,
            }
        }
        st.raw_execute()?;
    }
    Ok(added)
}

/// The distinct fan-out keys of `events`, in order of first appearance, and for each event the
/// index of its key among them.
fn distinct_keys<'a>(events: &[&'a Prepared]) -> (Vec<TargetKey<'a>>, Vec<usize>) {
    let mut keys: Vec<TargetKey<'a>> = Vec::new();
    let mut index: HashMap<TargetKey<'a>, usize> = HashMap::new();
    let key_of = events
        .iter()
        .map(|e| {
            let key = TargetKey {
                s: &e.session,
                n: &e.subscribed_by[0],
                f: &e.subscribed_by[1],
                a: &e.subscribed_by[2],
            };
            *index.entry(key).or_insert_with(|| {
                keys.push(key);
                keys.len() - 1
            })
        })
        .collect();
    (keys, key_of)
}

/// The target registrations of the fan-out query's second column, by id.
fn open_targets(rows: &str, at_rest: &AtRest) -> StoreResult<HashMap<String, Target>> {
    let rows: Vec<(String, String, String, String, Option<f64>)> =
        serde_json::from_str(rows).map_err(corrupt)?;
    rows.into_iter()
        .map(|(id, url, secret, headers, rate_limit)| {
            let (secret, headers) = at_rest.open(&id, &secret, &headers)?;
            let target = Target {
                url: TargetUrl::from_stored(&url).map_err(corrupt)?,
                secret,
                headers,
                rate_limit,
            };
            Ok((id, target))
        })
        .collect()
}

/// One event at a time: for `session.status` (dispatched only when it changes, so the order
/// within the batch matters) and single-target (test) deliveries.
async fn ingest_one(
    conn: &mut SqliteConnection,
    e: &Prepared,
    now_ms: i64,
) -> StoreResult<IngestOutcome> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO events (id, idempotency_key, event, session_id, data, occurred_rfc3339, received_at, dispatched, source) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(&e.id)
    .bind(&e.key)
    .bind(&e.event)
    .bind(&e.session)
    .bind(&e.data)
    .bind(&e.occurred)
    .bind(now_ms)
    .bind(e.source.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(event_id) = inserted else {
        let existing: String =
            sqlx::query_scalar("SELECT id FROM events WHERE idempotency_key = ?")
                .bind(&e.key)
                .fetch_one(&mut *conn)
                .await?;
        return Ok(IngestOutcome::duplicate(existing, &e.key));
    };

    if let Some(status) = &e.status {
        let changed: Option<String> = sqlx::query_scalar(
            "INSERT INTO session_status (session_id, status, event_id, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, event_id = excluded.event_id, updated_at = excluded.updated_at \
             WHERE session_status.status <> excluded.status RETURNING session_id",
        )
        .bind(&e.session)
        .bind(status)
        .bind(&event_id)
        .bind(now_ms)
        .fetch_optional(&mut *conn)
        .await?;
        if changed.is_none() {
            let outcome = IngestOutcome::status_unchanged(event_id, &e.key, &e.session, status);
            sqlx::query("UPDATE events SET dispatched = 0, not_dispatched_reason = ? WHERE id = ?")
                .bind(outcome.reason.as_ref().map(ToString::to_string))
                .bind(&outcome.event_id)
                .execute(&mut *conn)
                .await?;
            return Ok(outcome);
        }
    }

    let targets: Vec<String> = match &e.only_webhook {
        Some(id) => vec![id.clone()],
        None => {
            // The fan-out rule is the catalog's (`Catalog::matching_patterns`, carried in
            // `subscribed_by`): the SQL only compares stored patterns with these three.
            let [name, family, all] = &e.subscribed_by;
            sqlx::query_scalar(
                "SELECT w.id FROM webhooks w WHERE w.session_id = ?3 AND w.active = 1 \
                   AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.webhook_id = w.id AND s.pattern IN (?1, ?2, ?4)) \
                 UNION \
                 SELECT w.id FROM webhooks w WHERE w.session_id IS NULL AND w.active = 1 \
                   AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.webhook_id = w.id AND s.pattern IN (?1, ?2, ?4)) \
                 ORDER BY 1",
            )
            .bind(name)
            .bind(family)
            .bind(&e.session)
            .bind(all)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let is_test = e.source == EventSource::Test;
    let ids: Vec<DeliveryId> = targets.iter().map(|_| DeliveryId::new()).collect();
    if ids.is_empty() {
        // No delivery: retention may prune the event once it is old enough.
        sqlx::query("UPDATE events SET dispatched = 0 WHERE id = ?")
            .bind(&event_id)
            .execute(&mut *conn)
            .await?;
    } else {
        let rows: Vec<(&str, &str)> = ids
            .iter()
            .zip(&targets)
            .map(|(d, w)| (d.as_str(), w.as_str()))
            .collect();
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, webhook_id, state, attempts, retry_base, \
                next_attempt_at, is_test, created_at, updated_at) \
             SELECT value ->> 0, ?2, value ->> 1, 'pending', 0, 0, ?3, ?4, ?3, ?3 FROM json_each(?1)",
        )
        .bind(to_json(&rows)?)
        .bind(&event_id)
        .bind(now_ms)
        .bind(is_test)
        .execute(&mut *conn)
        .await?;
    }
    Ok(IngestOutcome::dispatched(event_id, &e.key, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_counts_new_events_and_their_deliveries_not_duplicates() {
        let (mut r, _rx) = IngestRequest::new(Vec::new(), 0, None, AtRest::plaintext());
        assert_eq!(r.stored(), (0, 0), "not run yet");
        let ids = |n| (0..n).map(|_| DeliveryId::new()).collect();
        r.result = Some(Ok((
            vec![
                IngestOutcome::dispatched("evt_1".into(), "k1", ids(3)),
                IngestOutcome::duplicate("evt_0".into(), "k0"),
                IngestOutcome::dispatched("evt_2".into(), "k2", ids(0)),
            ],
            Vec::new(),
        )));
        assert_eq!(r.stored(), (2, 3));
        r.result = Some(Err(StoreError::Corrupt("failed".into())));
        assert_eq!(r.stored(), (0, 0));
    }
}
