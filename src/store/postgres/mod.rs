//! PostgreSQL implementation of [`Store`]: the same semantics as [`super::SqliteStore`], for
//! several wabridge instances sharing one database.
//!
//! What makes it safe to share:
//! - Claims lock candidate rows with `FOR UPDATE SKIP LOCKED` and lease them to this instance
//!   (`lease_until`, `claimed_by`): an attempt is taken by exactly one instance while its lease
//!   runs, and by another one once the lease has run out (the holder died or stopped renewing).
//! - Ingest dedup and `session.status` only-on-change are single statements on unique keys
//!   (`ON CONFLICT`): of two instances inserting the same key at once, one waits for the other
//!   and then sees its row.
//! - An ingest transaction takes what it needs in one global order (locks on the sessions whose
//!   status it sets, then the keys, both sorted), so overlapping batches take turns instead of
//!   deadlocking.
//! - Nothing is cached per process: registrations are read at ingest and at claim.
//! - A write that answers a client (an ingest, a registration change) and loses its connection
//!   during COMMIT learns from the server whether the commit took effect (`commit_fate.rs`),
//!   so that it is not answered "nothing stored" when it was stored.
//! - Transactions that can still deadlock or fail to serialise against another instance's (PostgreSQL
//!   answers `40P01` / `40001`) are retried a few times.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

mod commit_fate;
mod ingest;

use super::claims;
use super::columns::shared;
use super::migrations;
use super::reseal::{self, ResealRows, SealedRow};
use super::rows::{self, corrupt, to_json};
use super::*;
use crate::secret::at_rest::AtRest;

/// Key of the advisory lock held while checking for a stored key and storing a generated one,
/// so that instances starting together on a fresh database store one key per role, not one
/// each ("wabrkeys" in ASCII).
const FIRST_KEY_LOCK: i64 = 0x7761_6272_6b65_7973;

/// Connections per instance unless the URL says `pool_size=N`.
const DEFAULT_POOL_SIZE: u32 = 10;

/// How often a transaction that lost a deadlock or serialisation race is tried.
const TRIES: u32 = 5;

pub struct PostgresStore {
    pool: PgPool,
    /// Who this instance is in `deliveries.claimed_by`: host, process id and a random suffix.
    instance: String,
    /// How registrations' secrets and header values are stored.
    at_rest: AtRest,
}

impl PostgresStore {
    /// Connects to a `postgres://` or `postgresql://` URL and runs pending migrations.
    ///
    /// The URL takes libpq's parameters that sqlx understands (`sslmode`, `sslrootcert`,
    /// `application_name`, `options`, ...) plus wabridge's `pool_size` (connections per instance,
    /// default 10).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, AtRest::plaintext()).await
    }

    /// [`PostgresStore::connect`], with secrets kept as `at_rest` says.
    pub async fn connect_with(url: &str, at_rest: AtRest) -> StoreResult<Self> {
        let (url, pool_size) = split_pool_size(url)?;
        let mut options = PgConnectOptions::from_str(&url)?;
        if !url.contains("application_name=") {
            options = options.application_name("wabridge");
        }
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrate(&pool).await?;
        Ok(Self {
            pool,
            instance: instance_id(),
            at_rest,
        })
    }

    /// This instance's name in `deliveries.claimed_by`.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// Removes wabridge's own `pool_size` parameter from the URL (sqlx would warn about it).
fn split_pool_size(raw: &str) -> StoreResult<(String, u32)> {
    let bad = |why: String| StoreError::InvalidUrl(format!("{}: {why}", redact_url(raw)));
    let mut url = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    let mut size = DEFAULT_POOL_SIZE;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        if k == "pool_size" {
            size = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(format!("pool_size={v} is not a positive number")))?;
        } else {
            kept.push((k.into_owned(), v.into_owned()));
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((url.into(), size))
}

fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &suffix[..8])
}

/// Applies pending migrations (see `store/migrations.rs`; sqlx holds an advisory lock while it
/// migrates, so instances starting together take turns), carrying over a database recorded by
/// the old runner.
async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    let old_newest: Option<i64> =
        if sqlx::query_scalar::<_, bool>("SELECT to_regclass('_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?
        {
            sqlx::query_scalar("SELECT MAX(version) FROM _migrations")
                .fetch_one(&mut *conn)
                .await?
        } else {
            None
        };
    let m = migrations::migrator(sqlx::migrate!("migrations/postgres"));
    migrations::run(&m, &mut *conn, old_newest).await?;
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let known = migrations::newest_known(&m);
    if let Some(newest) = newest.filter(|n| *n > known) {
        // A rolling upgrade: a newer instance migrated already. Migrations only add, so this
        // older binary keeps working; it must not be the one left running for long.
        tracing::warn!(
            database = newest,
            binary = known,
            "the database schema is newer than this binary; upgrade this instance"
        );
    }
    Ok(())
}

/// Did PostgreSQL abort the transaction because of a concurrent one (deadlock, serialisation)?
fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Evaluates `$tx` (an expression running one whole transaction) again when it lost a race
/// against another instance's transaction.
macro_rules! retrying {
    ($what:literal, $tx:expr) => {{
        let mut tries = 1;
        loop {
            match $tx {
                Err(e) if tries < TRIES && is_retryable(&e) => {
                    tracing::debug!(error = %e, tries, what = $what, "transaction lost a race; retrying");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                    tries += 1;
                }
                other => break other,
            }
        }
    }};
}

fn to_i32(n: u32) -> StoreResult<i32> {
    i32::try_from(n).map_err(corrupt)
}

async fn write_subscriptions(
    tx: &mut Transaction<'static, Postgres>,
    webhook: &Webhook,
) -> StoreResult<()> {
    sqlx::query(shared::DELETE_SUBSCRIPTIONS_OF)
        .bind(&webhook.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO webhook_subscriptions (pattern, webhook_id) \
         SELECT DISTINCT p, $2 FROM UNNEST($1::text[]) AS p ON CONFLICT DO NOTHING",
    )
    .bind(&webhook.events)
    .bind(&webhook.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn attempts_of(pool: &PgPool, delivery_id: &DeliveryId) -> StoreResult<Vec<AttemptInfo>> {
    let rows = sqlx::query(shared::ATTEMPTS_OF)
        .bind(delivery_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(rows::attempt).collect()
}

impl PostgresStore {
    async fn claim_tx(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        busy: &[WebhookId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // A claim only takes leases: its commit need not wait for the disk (docs/reliability.md).
        // Said in the same round trip as the `BEGIN`.
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
            .await?;
        // Per registration with pending deliveries (found by skipping through
        // deliveries_due_by_webhook one registration at a time, so registrations with nothing
        // pending cost nothing), active and not busy, its earliest due rows from that index: a
        // busy registration's backlog is never walked. Rows another instance is claiming right
        // now are locked: skip them rather than wait. A row it has just leased and committed
        // fails the lease test when re-checked.
        let candidates = sqlx::query(
            "WITH RECURSIVE pending(w) AS ( \
                (SELECT webhook_id FROM deliveries WHERE state = 'pending' \
                  ORDER BY webhook_id LIMIT 1) \
                UNION ALL \
                SELECT (SELECT x.webhook_id FROM deliveries x \
                         WHERE x.state = 'pending' AND x.webhook_id > p.w \
                         ORDER BY x.webhook_id LIMIT 1) \
                  FROM pending p WHERE p.w IS NOT NULL) \
             SELECT d.id, d.webhook_id FROM pending p JOIN webhooks w ON w.id = p.w \
             CROSS JOIN LATERAL ( \
                SELECT x.id, x.webhook_id, x.next_attempt_at FROM deliveries x \
                 WHERE x.webhook_id = w.id AND x.state = 'pending' AND x.next_attempt_at <= $1 \
                   AND (x.lease_until IS NULL OR x.lease_until < $1) \
                 ORDER BY x.next_attempt_at, x.id LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) d \
             WHERE w.active AND NOT (w.id = ANY($2)) \
             ORDER BY d.next_attempt_at, d.id LIMIT $3",
        )
        .bind(now_ms)
        .bind(busy)
        .bind(i64::from(limit) * 4)
        .bind(i64::from(per_webhook))
        .fetch_all(&mut *tx)
        .await?;
        // Leases, activity and busy registrations are already filtered by the query.
        let candidates = candidates
            .iter()
            .map(|r| {
                Ok(claims::Candidate {
                    id: r.try_get("id")?,
                    webhook_id: r.try_get("webhook_id")?,
                    lease_until: None,
                    active: true,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let chosen: Vec<DeliveryId> = claims::choose(
            &candidates,
            now_ms,
            limit as usize,
            per_webhook,
            &HashSet::new(),
        )
        .into_iter()
        .map(DeliveryId::from_stored)
        .collect();
        if chosen.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let lease = Lease::new(now_ms + lease_ms, &self.instance);
        let claimed = lease_and_read(&mut tx, &chosen, &lease, &self.at_rest).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn record_tx(&self, results: &[AttemptRecord]) -> StoreResult<u64> {
        let now = crate::clock::now_ms();
        let mut ids = Vec::with_capacity(results.len());
        let mut tokens = Vec::with_capacity(results.len());
        let mut states = Vec::with_capacity(results.len());
        let mut attempts = Vec::with_capacity(results.len());
        let mut next_at = Vec::with_capacity(results.len());
        let mut statuses = Vec::with_capacity(results.len());
        let mut errors = Vec::with_capacity(results.len());
        let mut started = Vec::with_capacity(results.len());
        let mut latencies = Vec::with_capacity(results.len());
        for r in results {
            let (state, next) = r.next.state();
            ids.push(r.delivery_id.as_str());
            tokens.push(r.claim_token);
            states.push(state.as_str());
            attempts.push(to_i32(r.attempt)?);
            next_at.push(next);
            statuses.push(r.status_code.map(i32::from));
            errors.push(r.error.as_deref());
            started.push(r.started_at_ms);
            latencies.push(r.latency_ms);
        }
        // One statement is its own transaction: no `BEGIN` and `COMMIT` round trips around it,
        // unless a registration answered 410 and is deactivated in the same transaction.
        let gone_any = results.iter().any(|r| r.next == AttemptNext::Gone);
        let mut tx = if gone_any {
            Some(self.pool.begin().await?)
        } else {
            None
        };
        // One statement for the batch. Fenced: only deliveries still pending under the same
        // claim token are updated (a stale holder's result, or one for a delivery deleted
        // meanwhile, changes nothing), and only their attempts are logged. The row locks of the
        // update keep a concurrent deletion of the registration out until this commits.
        let record = sqlx::query_scalar::<_, DeliveryId>(
            "WITH r AS (SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::int4[], \
                    $5::bigint[], $6::int4[], $7::text[], $8::bigint[], $9::bigint[]) \
                    AS r(id, tok, st, a, nx, sc, er, t0, ms)), \
             u AS (UPDATE deliveries d SET state = r.st, attempts = r.a, \
                    next_attempt_at = COALESCE(r.nx, d.next_attempt_at), lease_until = NULL, \
                    claim_token = NULL, last_status = r.sc, last_error = r.er, updated_at = $10 \
                   FROM r WHERE d.id = r.id AND d.state = 'pending' AND d.claim_token = r.tok \
                   RETURNING d.id) \
             INSERT INTO attempts (delivery_id, attempt, started_at, status_code, latency_ms, error) \
             SELECT r.id, r.a, r.t0, r.sc, r.ms, r.er FROM r JOIN u ON u.id = r.id \
             ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = excluded.started_at, \
                status_code = excluded.status_code, latency_ms = excluded.latency_ms, \
                error = excluded.error \
             RETURNING delivery_id",
        )
        .bind(&ids)
        .bind(&tokens)
        .bind(&states)
        .bind(&attempts)
        .bind(&next_at)
        .bind(&statuses)
        .bind(&errors)
        .bind(&started)
        .bind(&latencies)
        .bind(now);
        let recorded = match tx.as_mut() {
            Some(tx) => record.fetch_all(&mut **tx).await?,
            None => record.fetch_all(&self.pool).await?,
        };
        let Some(mut tx) = tx else {
            return Ok(u64::try_from(recorded.len()).unwrap_or(u64::MAX));
        };
        let gone: Vec<&str> = results
            .iter()
            .filter(|r| r.next == AttemptNext::Gone && recorded.contains(&r.delivery_id))
            .map(|r| r.webhook_id.as_str())
            .collect();
        if !gone.is_empty() {
            sqlx::query(
                "UPDATE webhooks SET active = FALSE, disabled_reason = $1, updated_at = $2 \
                 WHERE id = ANY($3)",
            )
            .bind(DisabledReason::Gone.to_string())
            .bind(now)
            .bind(&gone)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(recorded.len()).unwrap_or(u64::MAX))
    }

    /// One batch of pruning (see [`Store::prune`]) in one short transaction. Rows another
    /// instance is pruning (or redriving) right now are locked: skipped, not waited for.
    async fn prune_tx(&self, cut: &PruneCutoffs, limit: u32) -> StoreResult<PruneOutcome> {
        let limit = i64::from(limit);
        let mut tx = self.pool.begin().await?;
        let mut ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM deliveries WHERE state = 'delivered' AND updated_at < $1 \
             ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(cut.delivered_before_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let room = limit - i64::try_from(ids.len()).unwrap_or(limit);
        if room > 0 {
            ids.extend(
                sqlx::query_scalar::<_, String>(
                    "SELECT id FROM deliveries WHERE state = 'dead' AND updated_at < $1 \
                     ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                )
                .bind(cut.dead_before_ms)
                .bind(room)
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        let mut out = PruneOutcome::default();
        if !ids.is_empty() {
            out.attempts = sqlx::query("DELETE FROM attempts WHERE delivery_id = ANY($1)")
                .bind(&ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let gone = sqlx::query(
                "DELETE FROM deliveries WHERE id = ANY($1) AND state IN ('delivered', 'dead') \
                 RETURNING state, event_id",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
            let mut events = Vec::with_capacity(gone.len());
            for row in &gone {
                match rows::state(row.try_get(0)?)? {
                    DeliveryState::Delivered => out.delivered += 1,
                    _ => out.dead += 1,
                }
                events.push(row.try_get::<String, _>(1)?);
            }
            events.sort_unstable();
            events.dedup();
            sqlx::query(
                "UPDATE events SET dispatched = FALSE WHERE id = ANY($1) AND dispatched \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
            )
            .bind(&events)
            .execute(&mut *tx)
            .await?;
        }
        out.events = sqlx::query(
            "DELETE FROM events WHERE id IN ( \
                SELECT id FROM events WHERE NOT dispatched AND received_at < $1 \
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id) \
                 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cut.events_before_ms)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(out)
    }

    /// Stores one registration's secrets again as `at_rest` writes them, unless they already
    /// are (the row locked while it is read and written); true if it did.
    async fn reseal_tx(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let Some(row) =
            sqlx::query("SELECT id, secret, headers FROM webhooks WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(false);
        };
        let Some(stored) = reseal::resealed(&self.at_rest, &rows::sealed(&row)?)? else {
            return Ok(false);
        };
        sqlx::query("UPDATE webhooks SET secret = $1, headers = $2 WHERE id = $3")
            .bind(&stored.secret)
            .bind(&stored.headers)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_tx(&self, id: &str) -> StoreResult<bool> {
        let (mut tx, xid) = commit_fate::begin(&self.pool).await?;
        let done = delete_webhook_cascade!(tx, id);
        commit_fate::commit(&self.pool, tx, Some(&xid)).await?;
        Ok(done)
    }
}

impl ResealRows for PostgresStore {
    async fn sealed_page(&self, after: &str) -> StoreResult<Vec<SealedRow>> {
        let page = sqlx::query(shared::SEALED_PAGE)
            .bind(after)
            .bind(reseal::PAGE)
            .fetch_all(&self.pool)
            .await?;
        page.iter().map(rows::sealed).collect()
    }

    async fn reseal_one(&self, id: &str) -> StoreResult<bool> {
        self.reseal_tx(id).await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn key_hashes(&self, role: KeyRole) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT hash FROM api_keys WHERE role = $1 ORDER BY created_at, hash",
        )
        .bind(role.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn insert_first_key(&self, role: KeyRole, hash: &str, now_ms: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // Held until commit: another instance checking now waits here, and its INSERT (a new
        // statement, so a new snapshot under READ COMMITTED) then sees this one's key.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FIRST_KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let stored = sqlx::query(
            "INSERT INTO api_keys (hash, role, created_at) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE role = $2) ON CONFLICT DO NOTHING",
        )
        .bind(hash)
        .bind(role.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(stored)
    }

    async fn reseal_secrets(&self, rewrite: bool) -> StoreResult<ResealReport> {
        reseal::reseal_all(self, &self.at_rest, rewrite).await
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let stored = self.at_rest.seal(w.id.as_str(), &w.secret, &w.headers)?;
        let (mut tx, xid) = commit_fate::begin(&self.pool).await?;
        bind_webhook!(
            sqlx::query(shared::INSERT_WEBHOOK).bind(&w.id),
            w,
            stored,
            to_json(&w.events)?
        )
        .bind(w.created_at_ms)
        .bind(w.updated_at_ms)
        .execute(&mut *tx)
        .await?;
        write_subscriptions(&mut tx, w).await?;
        commit_fate::commit(&self.pool, tx, Some(&xid)).await?;
        Ok(())
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        let sql = shared::WEBHOOK_BY_ID;
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(|r| rows::webhook(r, &self.at_rest))
            .transpose()
    }

    async fn list_webhooks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Webhook>> {
        let sql = shared::WEBHOOK_PAGE;
        let rows = sqlx::query(sql)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| rows::webhook(r, &self.at_rest))
            .collect()
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        retrying!("delete_webhook", self.delete_tx(id.as_str()).await)
    }

    async fn ingest(&self, events: &[NewEvent], now_ms: i64) -> StoreResult<Vec<IngestOutcome>> {
        // A batch whose keys or sessions overlap another instance's batch in another order can
        // deadlock; PostgreSQL aborts one of them, which is then run again from the start.
        Ok(retrying!("ingest", self.ingest_tx(events, now_ms, None).await)?.0)
    }

    async fn ingest_and_claim(
        &self,
        events: &[NewEvent],
        now_ms: i64,
        lease_until_ms: i64,
        at_most: usize,
    ) -> StoreResult<(Vec<IngestOutcome>, Vec<ClaimedDelivery>)> {
        retrying!(
            "ingest",
            self.ingest_tx(events, now_ms, Some((lease_until_ms, at_most)))
                .await
        )
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        busy: &[WebhookId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        retrying!(
            "claim_due",
            self.claim_tx(now_ms, lease_ms, limit, per_webhook, busy)
                .await
        )
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        // A delivery leased by any instance is due for the others only when its lease runs out:
        // without that, every instance would poll at the shortest interval while one works.
        // Bounded as the trait says (the earliest rows of deliveries_due).
        Ok(sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until + 1, next_attempt_at))) \
             FROM (SELECT d.next_attempt_at, d.lease_until FROM deliveries d \
               JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.state = 'pending' AND w.active \
               ORDER BY d.next_attempt_at LIMIT $1) AS due",
        )
        .bind(NEXT_DUE_WINDOW)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn record_attempts(&self, results: &[AttemptRecord]) -> StoreResult<u64> {
        if results.is_empty() {
            return Ok(0);
        }
        retrying!("record_attempts", self.record_tx(results).await)
    }

    async fn renew_leases(
        &self,
        leases: &[HeldLease],
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryId>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = leases.iter().map(|l| l.delivery_id.as_str()).collect();
        let mut tokens: Vec<i64> = leases.iter().map(|l| l.claim_token).collect();
        tokens.sort_unstable();
        tokens.dedup();
        // Only leases this instance still holds under the same claim: one taken over by another
        // instance (or claimed again) stays with its new holder. A recorded result clears the
        // token, so a row that still has one is pending and leased.
        //
        // By primary key and a short list of claim tokens, not a join with the pairs: with a
        // join the planner could scan every pending row of this instance once per held lease.
        // The exact (delivery, token) pairs are checked here; a row the list's tokens match
        // under another pair (held twice by this instance) only keeps its lease a while longer.
        let updated: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE deliveries SET lease_until = $1 \
             WHERE id = ANY($2) AND claim_token = ANY($3) AND claimed_by = $4 \
             RETURNING id, claim_token",
        )
        .bind(until_ms)
        .bind(&ids)
        .bind(&tokens)
        .bind(&self.instance)
        .fetch_all(&self.pool)
        .await?;
        let held: HashSet<(&str, i64)> = leases
            .iter()
            .map(|l| (l.delivery_id.as_str(), l.claim_token))
            .collect();
        Ok(updated
            .into_iter()
            .filter(|(id, token)| held.contains(&(id.as_str(), *token)))
            .map(|(id, _)| DeliveryId::from_stored(id))
            .collect())
    }

    async fn recover_leases_on_start(&self) -> StoreResult<u64> {
        // Other instances may be working right now: their leases are theirs. Leases of a dead
        // instance (this one's previous run included) are taken over when they run out.
        Ok(0)
    }

    async fn list_deliveries(
        &self,
        webhook_id: &WebhookId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryInfo>> {
        let sql = shared::DELIVERY_PAGE;
        let rows = sqlx::query(sql)
            .bind(webhook_id)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<DeliveryInfo> = rows
            .iter()
            .map(rows::delivery)
            .collect::<StoreResult<_>>()?;
        for d in &mut out {
            d.attempt_log = attempts_of(&self.pool, &d.id).await?;
        }
        Ok(out)
    }

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryInfo>> {
        let sql = shared::DELIVERY_BY_ID;
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let mut d = rows::delivery(&row)?;
        d.attempt_log = attempts_of(&self.pool, &d.id).await?;
        Ok(Some(d))
    }

    async fn redrive(
        &self,
        webhook_id: &WebhookId,
        delivery_id: Option<&DeliveryId>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(shared::REDRIVE)
            .bind(now_ms)
            .bind(webhook_id)
            .bind(delivery_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done)
    }

    async fn record_ignored(&self, ignored: &IgnoredEvent, now_ms: i64) -> StoreResult<()> {
        sqlx::query(shared::RECORD_IGNORED)
            .bind(ignored.source.as_str())
            .bind(&ignored.name)
            .bind(now_ms)
            .bind(&ignored.reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_ignored(&self) -> StoreResult<Vec<IgnoredSummary>> {
        let rows = sqlx::query(shared::IGNORED).fetch_all(&self.pool).await?;
        rows.iter().map(rows::ignored).collect()
    }

    async fn prune(&self, cutoffs: &PruneCutoffs, limit: u32) -> StoreResult<PruneOutcome> {
        retrying!("prune", self.prune_tx(cutoffs, limit).await)
    }

    async fn reclaim_space(&self, _max_pages: u32) -> StoreResult<u64> {
        // Autovacuum marks the deleted rows' space reusable; the files do not shrink.
        Ok(0)
    }

    async fn delivery_counts(&self) -> StoreResult<StateCounts> {
        // Appended per statement by triggers (migration 0004); fold what was appended since the
        // last read into one row per state, then read those. Two instances folding at once are
        // safe: each folds only the rows its DELETE took.
        sqlx::query(
            "WITH taken AS (DELETE FROM delivery_state_counts RETURNING state, n) \
             INSERT INTO delivery_state_counts (state, n) SELECT state, SUM(n) FROM taken GROUP BY state",
        )
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT state, SUM(n)::BIGINT AS n FROM delivery_state_counts GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows::counters(&rows)
    }

    async fn active_webhooks(&self) -> StoreResult<u64> {
        let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE active")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(active).unwrap_or(0))
    }

    async fn state_counts(
        &self,
        webhook_id: Option<&WebhookId>,
        now_ms: i64,
    ) -> StoreResult<StateCounts> {
        let Some(webhook_id) = webhook_id else {
            // All deliveries: the counters kept by triggers, and the leased pending rows.
            let c = self.delivery_counts().await?;
            let in_flight: i64 = sqlx::query_scalar(shared::IN_FLIGHT)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?;
            return Ok(StateCounts {
                in_flight: u64::try_from(in_flight).unwrap_or(0),
                ..c
            });
        };
        let row = sqlx::query(shared::STATE_COUNTS_OF)
            .bind(now_ms)
            .bind(webhook_id)
            .fetch_one(&self.pool)
            .await?;
        rows::state_counts(&row)
    }

    async fn delivery_event(&self, delivery_id: &DeliveryId) -> StoreResult<Option<DeliveryEvent>> {
        let row = sqlx::query(shared::DELIVERY_EVENT)
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::delivery_event).transpose()
    }

    async fn update_webhook_if_unchanged(
        &self,
        w: &Webhook,
        read: &Webhook,
    ) -> StoreResult<WebhookWrite> {
        let stored = self.at_rest.seal(w.id.as_str(), &w.secret, &w.headers)?;
        let (mut tx, xid) = commit_fate::begin(&self.pool).await?;
        let done = bind_webhook!(
            sqlx::query(shared::UPDATE_WEBHOOK_IF_UNCHANGED),
            w,
            stored,
            to_json(&w.events)?
        )
        .bind(w.updated_at_ms)
        .bind(&w.id)
        .bind(read.updated_at_ms)
        .bind(read.active)
        .bind(&read.disabled_reason)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        let outcome = if done {
            write_subscriptions(&mut tx, w).await?;
            WebhookWrite::Updated
        } else {
            let exists = sqlx::query(shared::WEBHOOK_EXISTS)
                .bind(&w.id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                WebhookWrite::Changed
            } else {
                WebhookWrite::Missing
            }
        };
        commit_fate::commit(&self.pool, tx, Some(&xid)).await?;
        Ok(outcome)
    }
}

/// Leases these deliveries (taken in this transaction) under `lease` and reads them, ready to
/// send: one statement.
async fn lease_and_read(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[DeliveryId],
    lease: &Lease<'_>,
    at_rest: &AtRest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let rows = sqlx::query(concat!(
        "WITH leased AS (UPDATE deliveries SET lease_until = $1, claimed_by = $2, claim_token = $3 \
            WHERE id = ANY($4) RETURNING *) ",
        claimed_select!("leased"),
        " ORDER BY d.next_attempt_at, d.id"
    ))
    .bind(lease.until)
    .bind(lease.instance)
    .bind(lease.token)
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(|r| rows::claimed(r, at_rest)).collect()
}

/// The deliveries `ids` (inserted leased in this transaction), ready to send.
async fn read_claimed(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[DeliveryId],
    at_rest: &AtRest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let rows = sqlx::query(concat!(
        claimed_select!(),
        " WHERE d.id = ANY($1) ORDER BY d.next_attempt_at, d.id"
    ))
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(|r| rows::claimed(r, at_rest)).collect()
}

/// A lease: until when, held by which instance, under which claim token (new per claim).
struct Lease<'a> {
    until: i64,
    instance: &'a str,
    token: i64,
}

impl<'a> Lease<'a> {
    fn new(until: i64, instance: &'a str) -> Self {
        Self {
            until,
            instance,
            token: new_claim_token(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_taken_out_of_the_url() {
        let (url, n) =
            split_pool_size("postgres://u:p@h:5432/db?pool_size=3&sslmode=require").unwrap();
        assert_eq!(
            (url.as_str(), n),
            ("postgres://u:p@h:5432/db?sslmode=require", 3)
        );
        let (url, n) = split_pool_size("postgresql://u@h/db?pool_size=7").unwrap();
        assert_eq!((url.as_str(), n), ("postgresql://u@h/db", 7));
        let (url, n) = split_pool_size("postgres:///db?host=/var/run/postgresql").unwrap();
        assert_eq!(
            (url.as_str(), n),
            (
                "postgres:///db?host=%2Fvar%2Frun%2Fpostgresql",
                DEFAULT_POOL_SIZE
            )
        );
        PgConnectOptions::from_str(&url).expect("sqlx reads the rebuilt URL");
        let (url, _) = split_pool_size("postgres://u:p%40ss@h/db").unwrap();
        assert_eq!(url, "postgres://u:p%40ss@h/db", "encoding is kept");
    }

    #[test]
    fn a_bad_pool_size_is_refused_without_showing_the_password() {
        for bad in ["0", "-1", "ten", ""] {
            let err = split_pool_size(&format!("postgres://u:secret@h/db?pool_size={bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("pool_size"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
        assert_eq!(redact_url("sqlite://wabridge.db"), "sqlite://wabridge.db");
    }
}
