//! SQLite implementation of [`Store`]: one file, WAL, one writer connection (so write
//! transactions never fight over the lock) and a small pool of readers.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::rows::{self, to_json};
use super::*;
use crate::ids;

/// Ordered migrations; each runs once, in a transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_fanout_index.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_ignored_events.sql"),
    ),
];

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrate(&write).await?;
        let read = if url.contains(":memory:") {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Self { write, read })
    }
}

async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM _migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO _migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(crate::clock::now_ms())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "applied migration");
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn write_subscriptions(
    tx: &mut Transaction<'static, Sqlite>,
    webhook: &Webhook,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM webhook_subscriptions WHERE webhook_id = ?")
        .bind(&webhook.id)
        .execute(&mut **tx)
        .await?;
    for pattern in &webhook.events {
        sqlx::query(
            "INSERT OR IGNORE INTO webhook_subscriptions (pattern, webhook_id) VALUES (?, ?)",
        )
        .bind(pattern)
        .bind(&webhook.id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

macro_rules! delivery_select {
    () => {
        "SELECT d.id, d.webhook_id, d.event_id, e.event, e.idempotency_key, d.state, d.attempts, \
    d.next_attempt_at, d.last_status, d.last_error, d.is_test, d.created_at, d.updated_at \
    FROM deliveries d JOIN events e ON e.id = d.event_id"
    };
}

macro_rules! webhook_columns {
    () => {
        "id, url, events, session_id, description, headers, secret, active, rate_limit, disabled_reason, created_at, updated_at"
    };
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn key_hashes(&self, role: KeyRole) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT hash FROM api_keys WHERE role = ?")
                .bind(role.as_str())
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn insert_key(&self, role: KeyRole, hash: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query("INSERT OR IGNORE INTO api_keys (hash, role, created_at) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(role.as_str())
            .bind(now_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, url, events, session_id, description, headers, secret, active, rate_limit, disabled_reason, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&w.id)
        .bind(&w.url)
        .bind(to_json(&w.events)?)
        .bind(&w.session_id)
        .bind(&w.description)
        .bind(to_json(&w.headers)?)
        .bind(w.secret.expose())
        .bind(w.active)
        .bind(w.rate_limit)
        .bind(&w.disabled_reason)
        .bind(w.created_at_ms)
        .bind(w.updated_at_ms)
        .execute(&mut *tx)
        .await?;
        write_subscriptions(&mut tx, w).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
        let sql = concat!("SELECT ", webhook_columns!(), " FROM webhooks WHERE id = ?");
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        row.as_ref().map(rows::webhook).transpose()
    }

    async fn list_webhooks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Webhook>> {
        let sql = concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE id > ? ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(rows::webhook).collect()
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET url = ?, events = ?, session_id = ?, description = ?, headers = ?, secret = ?, active = ?, rate_limit = ?, disabled_reason = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&w.url)
        .bind(to_json(&w.events)?)
        .bind(&w.session_id)
        .bind(&w.description)
        .bind(to_json(&w.headers)?)
        .bind(w.secret.expose())
        .bind(w.active)
        .bind(w.rate_limit)
        .bind(&w.disabled_reason)
        .bind(w.updated_at_ms)
        .bind(&w.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            write_subscriptions(&mut tx, w).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = ?)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deliveries WHERE webhook_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(done)
    }

    async fn ingest(&self, events: &[NewEvent], now_ms: i64) -> StoreResult<Vec<IngestOutcome>> {
        let mut tx = self.write.begin().await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(ingest_one(&mut tx, e, now_ms).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        busy: &[String],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.write.begin().await?;
        let candidates = sqlx::query(
            "SELECT d.id, d.webhook_id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 \
               AND (d.lease_until IS NULL OR d.lease_until < ?1) AND w.active = 1 \
               AND d.webhook_id NOT IN (SELECT value FROM json_each(?2)) \
             ORDER BY d.next_attempt_at, d.id LIMIT ?3",
        )
        .bind(now_ms)
        .bind(to_json(&busy)?)
        .bind(i64::from(limit) * 4)
        .fetch_all(&mut *tx)
        .await?;
        let mut per: HashMap<String, u32> = HashMap::new();
        let mut chosen: Vec<String> = Vec::new();
        for row in &candidates {
            let webhook_id: String = row.try_get("webhook_id")?;
            let n = per.entry(webhook_id).or_insert(0);
            if *n < per_webhook && chosen.len() < limit as usize {
                *n += 1;
                chosen.push(row.try_get("id")?);
            }
        }
        if chosen.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let ids = to_json(&chosen)?;
        sqlx::query(
            "UPDATE deliveries SET lease_until = ? WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(now_ms + lease_ms)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, d.attempts, d.retry_base, d.is_test, w.url, w.secret, w.headers, w.rate_limit, \
                    e.event, e.session_id, e.idempotency_key, e.occurred_rfc3339, e.data \
             FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id \
             WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.next_attempt_at, d.id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::claimed).collect()
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        // A leased delivery is due again only when its lease runs out (else the engine would
        // poll at its shortest interval while its own attempts are in flight). Bounded: only the
        // earliest pending rows are looked at, in index order.
        Ok(sqlx::query_scalar(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until + 1, 0))) FROM ( \
               SELECT d.next_attempt_at, d.lease_until FROM deliveries d \
               JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.state = 'pending' AND w.active = 1 \
               ORDER BY d.next_attempt_at LIMIT 512)",
        )
        .fetch_one(&self.read)
        .await?)
    }

    async fn record_attempts(&self, results: &[AttemptRecord]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        let now = crate::clock::now_ms();
        for r in results {
            sqlx::query(
                // The registration (and its deliveries) may have been deleted meanwhile.
                "INSERT OR REPLACE INTO attempts (delivery_id, attempt, started_at, status_code, latency_ms, error) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1)",
            )
            .bind(&r.delivery_id)
            .bind(i64::from(r.attempt))
            .bind(r.started_at_ms)
            .bind(r.status_code.map(i64::from))
            .bind(r.latency_ms)
            .bind(&r.error)
            .execute(&mut *tx)
            .await?;
            let (state, next_at) = match &r.next {
                AttemptNext::Delivered => ("delivered", None),
                AttemptNext::RetryAt(at) => ("pending", Some(*at)),
                AttemptNext::Dead | AttemptNext::Gone => ("dead", None),
            };
            sqlx::query(
                "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at), \
                 lease_until = NULL, last_status = ?, last_error = ?, updated_at = ? WHERE id = ?",
            )
            .bind(state)
            .bind(i64::from(r.attempt))
            .bind(next_at)
            .bind(r.status_code.map(i64::from))
            .bind(&r.error)
            .bind(now)
            .bind(&r.delivery_id)
            .execute(&mut *tx)
            .await?;
            if r.next == AttemptNext::Gone {
                sqlx::query(
                    "UPDATE webhooks SET active = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
                )
                .bind("the endpoint answered 410 Gone; set active to true to resume")
                .bind(now)
                .bind(&r.webhook_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn renew_leases(&self, ids: &[String], until_ms: i64) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(
            "UPDATE deliveries SET lease_until = ? \
             WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending' AND lease_until IS NOT NULL",
        )
        .bind(until_ms)
        .bind(to_json(&ids)?)
        .execute(&self.write)
        .await?
        .rows_affected())
    }

    async fn recover_leases_on_start(&self) -> StoreResult<u64> {
        // One process owns an SQLite file: leases left by a previous (killed) run are void.
        Ok(
            sqlx::query("UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL")
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryInfo>> {
        let sql = concat!(
            delivery_select!(),
            " WHERE d.webhook_id = ? AND d.id > ? ORDER BY d.id LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(webhook_id)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        let mut out: Vec<DeliveryInfo> = rows
            .iter()
            .map(rows::delivery)
            .collect::<StoreResult<_>>()?;
        for d in &mut out {
            d.attempt_log = attempts_of(&self.read, &d.id).await?;
        }
        Ok(out)
    }

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<DeliveryInfo>> {
        let sql = concat!(delivery_select!(), " WHERE d.id = ?");
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        let Some(row) = row else { return Ok(None) };
        let mut d = rows::delivery(&row)?;
        d.attempt_log = attempts_of(&self.read, &d.id).await?;
        Ok(Some(d))
    }

    async fn redrive(
        &self,
        webhook_id: &str,
        delivery_id: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'pending', retry_base = attempts, next_attempt_at = ?, \
             lease_until = NULL, updated_at = ? \
             WHERE webhook_id = ? AND state = 'dead' AND (? IS NULL OR id = ?)",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(webhook_id)
        .bind(delivery_id)
        .bind(delivery_id)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(done)
    }

    async fn record_ignored(&self, ignored: &IgnoredEvent, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ignored_events (source, name, count, first_seen_at, last_seen_at, last_reason) VALUES (?1, ?2, 1, ?3, ?3, ?4) ON CONFLICT (source, name) DO UPDATE SET count = count + 1, last_seen_at = excluded.last_seen_at, last_reason = excluded.last_reason",
        )
        .bind(ignored.source.as_str())
        .bind(&ignored.name)
        .bind(now_ms)
        .bind(&ignored.reason)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn list_ignored(&self) -> StoreResult<Vec<IgnoredSummary>> {
        let rows = sqlx::query(
            "SELECT source, name, count, first_seen_at, last_seen_at, last_reason FROM ignored_events ORDER BY last_seen_at DESC, source, name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(rows::ignored).collect()
    }

    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
            .fetch_all(&self.read)
            .await?;
        let mut c = DeliveryCounts::default();
        for row in rows {
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            match row.try_get::<&str, _>("state")? {
                "pending" => c.pending = n,
                "delivered" => c.delivered = n,
                "dead" => c.dead = n,
                _ => {}
            }
        }
        let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE active = 1")
            .fetch_one(&self.read)
            .await?;
        c.active_webhooks = u64::try_from(active).unwrap_or(0);
        Ok(c)
    }
}

async fn attempts_of(pool: &SqlitePool, delivery_id: &str) -> StoreResult<Vec<AttemptInfo>> {
    let rows = sqlx::query(
        "SELECT attempt, started_at, status_code, latency_ms, error FROM attempts WHERE delivery_id = ? ORDER BY attempt",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::attempt).collect()
}

async fn ingest_one(
    tx: &mut Transaction<'static, Sqlite>,
    e: &NewEvent,
    now_ms: i64,
) -> StoreResult<IngestOutcome> {
    let data = to_json(&e.data)?;
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO events (id, idempotency_key, event, session_id, data, occurred_rfc3339, received_at, dispatched, source) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
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
    .await?;
    let Some(event_id) = inserted else {
        let existing: String =
            sqlx::query_scalar("SELECT id FROM events WHERE idempotency_key = ?")
                .bind(&e.idempotency_key)
                .fetch_one(&mut **tx)
                .await?;
        return Ok(IngestOutcome {
            event_id: existing,
            idempotency_key: e.idempotency_key.clone(),
            duplicate: true,
            dispatched: false,
            reason: Some(
                "this idempotency key was already accepted; nothing new was stored".into(),
            ),
            deliveries: Vec::new(),
        });
    };

    if let Some(status) = &e.status {
        let changed: Option<String> = sqlx::query_scalar(
            "INSERT INTO session_status (session_id, status, event_id, updated_at) VALUES (?, ?, ?, ?) \
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
            let reason = format!(
                "session {} is already '{status}': session.status is dispatched only when it changes",
                e.session_id
            );
            sqlx::query("UPDATE events SET dispatched = 0, not_dispatched_reason = ? WHERE id = ?")
                .bind(&reason)
                .bind(&event_id)
                .execute(&mut **tx)
                .await?;
            return Ok(IngestOutcome {
                event_id,
                idempotency_key: e.idempotency_key.clone(),
                duplicate: false,
                dispatched: false,
                reason: Some(reason),
                deliveries: Vec::new(),
            });
        }
    }

    let targets: Vec<String> = match &e.only_webhook {
        Some(id) => vec![id.clone()],
        None => {
            let [name, family, all] = &e.subscribed_by;
            sqlx::query_scalar(
                // By session first (indexed), then the subscription: registrations of other
                // sessions are never visited.
                "SELECT w.id FROM webhooks w WHERE w.session_id = ?3 AND w.active = 1 \
                   AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.webhook_id = w.id AND s.pattern IN (?1, ?2, ?4)) \
                 UNION \
                 SELECT w.id FROM webhooks w WHERE w.session_id IS NULL AND w.active = 1 \
                   AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.webhook_id = w.id AND s.pattern IN (?1, ?2, ?4)) \
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
    let mut deliveries = Vec::with_capacity(targets.len());
    for webhook_id in targets {
        let id = ids::delivery_id();
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, webhook_id, state, attempts, retry_base, next_attempt_at, is_test, created_at, updated_at) \
             VALUES (?, ?, ?, 'pending', 0, 0, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&event_id)
        .bind(&webhook_id)
        .bind(now_ms)
        .bind(is_test)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        deliveries.push(id);
    }
    Ok(IngestOutcome {
        event_id,
        idempotency_key: e.idempotency_key.clone(),
        duplicate: false,
        dispatched: true,
        reason: None,
        deliveries,
    })
}
