//! SQLite implementation of [`Store`]: one file, WAL, one writer connection owned by a task that
//! commits concurrent writes together (group commit, `writer.rs`), and a small pool of readers.
//!
//! A bound `LIMIT` is written `LIMIT CAST(? AS INTEGER)`. SQLite plans a plain `LIMIT ?` with
//! the value bound at prepare time and marks the statement to be prepared again whenever that
//! parameter is bound anew, which sqlx does on every run: the claim query was parsed and planned
//! on every claim (3% of the writer thread's samples). The cast makes the limit a run-time value.

mod db;
mod ingest;
mod values;
mod writer;

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, SqliteConnection};

use super::claims;
use super::columns::shared;
use super::migrations;
use super::reseal::{self, ResealRows, SealedRow};
use super::rows::{self, to_json};
use super::*;
use crate::secret::at_rest::AtRest;
use ingest::{IngestRequest, Prepared};
use writer::{BoxFuture, Writer};

/// Prepared statements the writer's connection keeps.
const WRITER_STATEMENTS: usize = 400;

pub struct SqliteStore {
    writer: Writer,
    read: SqlitePool,
    /// How registrations' secrets and header values are stored.
    at_rest: AtRest,
}

impl SqliteStore {
    /// Opens the file (creating and migrating it); secrets in plaintext.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, AtRest::plaintext()).await
    }

    /// Opens the file (creating and migrating it); secrets kept as `at_rest` says.
    pub async fn connect_with(url: &str, at_rest: AtRest) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Incremental auto-vacuum lets pruning give pages back (`reclaim_space`). sqlx sets it
        // before the journal mode, so a new file gets it before any table exists.
        // The statements the writer still sends through sqlx are kept prepared: room for all of
        // them, not sqlx's default of 100 (its synchronous side has a cache of its own, `db.rs`).
        let mut write = options
            .clone()
            .statement_cache_capacity(WRITER_STATEMENTS)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .connect()
            .await?;
        enable_incremental_vacuum(&mut write).await?;
        migrate(&mut write).await?;
        // Most requests of a commit group run in a savepoint, and SQLite copies each page a
        // savepoint changes into a sub-journal first. By default that sub-journal spills to a
        // temporary file past 64 KiB, a write syscall per page; it only ever serves the open
        // transaction, so the writer keeps it (and its other temporary data: claim sorts) in
        // memory. Set after the start-up VACUUM, which would otherwise copy the file into memory.
        sqlx::query("PRAGMA temp_store = MEMORY")
            .execute(&mut write)
            .await?;
        // sqlx names an in-memory database per options and shares it between their connections.
        let read_options = if url.contains(":memory:") {
            options
        } else {
            options.read_only(true)
        };
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(read_options)
            .await?;
        Ok(Self {
            writer: Writer::start(db::Db::open(write).await?).map_err(|e| {
                StoreError::Unavailable(format!("could not start the SQLite writer thread: {e}"))
            })?,
            read,
            at_rest,
        })
    }
}

/// A file created by an earlier version has no auto-vacuum, and switching it on only takes
/// effect through one full `VACUUM` (which cannot run in a transaction, hence not a migration).
/// Done once, at start, before anything else uses the file.
async fn enable_incremental_vacuum(conn: &mut SqliteConnection) -> StoreResult<()> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut *conn)
        .await?;
    if mode != INCREMENTAL {
        tracing::info!(
            mode,
            "switching the SQLite file to incremental auto-vacuum: one VACUUM, once (it rewrites the file)"
        );
        sqlx::raw_sql("PRAGMA auto_vacuum = INCREMENTAL; VACUUM")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Applies pending migrations (see `store/migrations.rs`), carrying over a file recorded by the
/// old runner.
async fn migrate(conn: &mut SqliteConnection) -> StoreResult<()> {
    let old: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let old_newest: Option<i64> = match old {
        Some(_) => {
            sqlx::query_scalar("SELECT MAX(version) FROM _migrations")
                .fetch_one(&mut *conn)
                .await?
        }
        None => None,
    };
    let m = migrations::migrator(sqlx::migrate!("migrations/sqlite"));
    migrations::run(&m, conn, old_newest).await
}

async fn write_subscriptions(tx: &mut SqliteConnection, webhook: &Webhook) -> StoreResult<()> {
    sqlx::query(shared::DELETE_SUBSCRIPTIONS_OF)
        .bind(&webhook.id)
        .execute(&mut *tx)
        .await?;
    for pattern in &webhook.events {
        sqlx::query(
            "INSERT OR IGNORE INTO webhook_subscriptions (pattern, webhook_id) VALUES (?, ?)",
        )
        .bind(pattern)
        .bind(&webhook.id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// One attempt result as the batched statements read it.
struct ResultRow<'a> {
    id: &'a str,
    tok: i64,
    st: DeliveryState,
    a: u32,
    nx: Option<i64>,
    sc: Option<u16>,
    er: Option<&'a str>,
    t0: i64,
    ms: i64,
    /// The registration, and whether it answered 410 (deactivate it).
    w: &'a str,
    gone: bool,
}

/// Runs `statement` (which reads the results as `r`) over one chunk of results:
/// `WITH r (...) AS (VALUES ...)` with the rows bound, then `more` bound after them (a padding
/// row's NULL id matches no delivery). Returns the rows it changed.
fn over_results(
    c: &rusqlite::Connection,
    rows: &values::Chunk<ResultRow>,
    statement: &str,
    more: &[&dyn rusqlite::ToSql],
) -> StoreResult<usize> {
    let sql = format!(
        "WITH r (id, tok, st, a, nx, sc, er, t0, ms, w, gone) AS (VALUES {}) {statement}",
        values::rows_sql("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows.slots)
    );
    let mut st = c.prepare_cached(&sql)?;
    let mut b = values::Binder::new(&mut st);
    for r in rows.padded() {
        match r {
            Some(r) => b.row(&[
                &r.id,
                &r.tok,
                &r.st.as_str(),
                &r.a,
                &r.nx,
                &r.sc,
                &r.er,
                &r.t0,
                &r.ms,
                &r.w,
                &r.gone,
            ])?,
            None => b.nulls(11)?,
        }
    }
    b.row(more)?;
    Ok(st.raw_execute()?)
}

/// The results (`r`) whose delivery is still pending under the same claim: the only ones
/// recorded. A stale holder's result, or one for a delivery deleted meanwhile, changes nothing.
/// The state update in `record_batch` states the same condition in `UPDATE … FROM` form, which
/// cannot take this join.
macro_rules! held_results {
    () => {
        "FROM r JOIN deliveries d ON d.id = r.id AND d.state = 'pending' AND d.claim_token = r.tok"
    };
}

/// Writes attempt results, per chunk of rows (bound as `VALUES`), on the writer's thread: the
/// attempts of the held results are logged, registrations that answered 410 are deactivated,
/// then the deliveries get their new state. All three select the same held results, as nothing
/// between them changes a delivery. Returns how many were recorded.
fn record_batch(c: &rusqlite::Connection, results: &[AttemptRecord], now: i64) -> StoreResult<u64> {
    let rows: Vec<ResultRow> = results
        .iter()
        .map(|r| {
            let (st, nx) = r.next.state();
            ResultRow {
                id: r.delivery_id.as_str(),
                tok: r.claim_token,
                st,
                a: r.attempt,
                nx,
                sc: r.status_code,
                er: r.error.as_deref(),
                t0: r.started_at_ms,
                ms: r.latency_ms,
                w: r.webhook_id.as_str(),
                gone: r.next == AttemptNext::Gone,
            }
        })
        .collect();
    let mut recorded = 0;
    let gone = DisabledReason::Gone.to_string();
    for chunk in values::chunks(&rows) {
        over_results(
            c,
            &chunk,
            concat!(
                "INSERT OR REPLACE INTO attempts (delivery_id, attempt, started_at, status_code, \
                    latency_ms, error) \
                 SELECT r.id, r.a, r.t0, r.sc, r.ms, r.er ",
                held_results!()
            ),
            &[],
        )?;
        if chunk.rows.iter().any(|r| r.gone) {
            over_results(
                c,
                &chunk,
                concat!(
                    "UPDATE webhooks SET active = 0, disabled_reason = ?, updated_at = ? \
                     WHERE id IN (SELECT r.w ",
                    held_results!(),
                    " WHERE r.gone)"
                ),
                &[&gone, &now],
            )?;
        }
        let n = over_results(
            c,
            &chunk,
            "UPDATE deliveries SET state = r.st, attempts = r.a, \
                next_attempt_at = COALESCE(r.nx, deliveries.next_attempt_at), \
                lease_until = NULL, claim_token = NULL, last_status = r.sc, \
                last_error = r.er, updated_at = ? \
             FROM r WHERE deliveries.id = r.id \
                AND deliveries.state = 'pending' AND deliveries.claim_token = r.tok",
            &[&now],
        )?;
        recorded += u64::try_from(n).unwrap_or(0);
    }
    Ok(recorded)
}

fn claim_tx(
    c: &rusqlite::Connection,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
    per_webhook: u32,
    busy: &[WebhookId],
    at_rest: &AtRest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let busy_set: HashSet<&str> = busy.iter().map(WebhookId::as_str).collect();
    let limit_n = limit as usize;
    // First the head of the global due order (deliveries_due), a bounded window of its free
    // rows: with many registrations, each with a few due rows, this finds a full claim without
    // probing every registration's index. Leased rows are skipped inside the walk, so the window
    // is not spent on them: they are what the engines hold (in flight or queued in their
    // lanes), which the per-registration query below walks past as well.
    let window = claims::window(limit);
    let head = due_candidates(
        c,
        "SELECT d.id, d.webhook_id, d.lease_until, w.active, d.next_attempt_at FROM ( \
            SELECT rowid AS r FROM deliveries INDEXED BY deliveries_due \
             WHERE state = 'pending' AND next_attempt_at <= ?1 \
               AND (lease_until IS NULL OR lease_until < ?1) \
             ORDER BY next_attempt_at LIMIT CAST(?2 AS INTEGER)) x \
         CROSS JOIN deliveries d ON d.rowid = x.r JOIN webhooks w ON w.id = d.webhook_id",
        now_ms,
        window,
        None,
    )?;
    let mut chosen = claims::choose(&head, now_ms, limit_n, per_webhook, &busy_set);
    // The window was full and did not fill the claim (busy, inactive or capped registrations
    // at the head): then per registration with pending deliveries (found by skipping through
    // deliveries_due_by_webhook one registration at a time, so registrations with nothing
    // pending cost nothing), active and not busy, its earliest due rows from that index, so a
    // busy registration's backlog is never walked past the window. CROSS JOIN keeps the
    // registrations the outer loop (SQLite 3.51 would otherwise scan every delivery and run the
    // subquery for each).
    // Registrations the window brought up to their cap keep those picks and are left out there:
    // they could take no more.
    if chosen.len() < limit_n && i64::try_from(head.len()).unwrap_or(i64::MAX) >= window {
        let (kept, capped) = claims::capped(&head, &chosen, per_webhook);
        let skip: Vec<&str> = busy_set.iter().copied().chain(capped).collect();
        let per_registration = due_candidates(
            c,
            "WITH RECURSIVE pending(w) AS ( \
                SELECT (SELECT webhook_id FROM deliveries INDEXED BY deliveries_due_by_webhook \
                         WHERE state = 'pending' ORDER BY webhook_id LIMIT 1) \
                UNION ALL \
                SELECT (SELECT webhook_id FROM deliveries INDEXED BY deliveries_due_by_webhook \
                         WHERE state = 'pending' AND webhook_id > pending.w \
                         ORDER BY webhook_id LIMIT 1) \
                  FROM pending WHERE pending.w IS NOT NULL) \
             SELECT d.id, d.webhook_id, d.lease_until, w.active, d.next_attempt_at \
             FROM pending CROSS JOIN webhooks w ON w.id = pending.w \
             CROSS JOIN deliveries d ON d.rowid IN ( \
                SELECT x.rowid FROM deliveries x INDEXED BY deliveries_due_by_webhook \
                 WHERE x.webhook_id = w.id AND x.state = 'pending' AND x.next_attempt_at <= ?1 \
                   AND (x.lease_until IS NULL OR x.lease_until < ?1) \
                 ORDER BY x.next_attempt_at LIMIT CAST(?4 AS INTEGER)) \
             WHERE w.active = 1 AND w.id NOT IN (SELECT value FROM json_each(?3)) \
             ORDER BY d.next_attempt_at, d.id LIMIT CAST(?2 AS INTEGER)",
            now_ms,
            i64::from(limit) * 4,
            Some((to_json(&skip)?, i64::from(per_webhook))),
        )?;
        let skip: HashSet<&str> = skip.into_iter().collect();
        let room = limit_n.saturating_sub(kept.len());
        chosen = kept;
        chosen.extend(claims::choose(
            &per_registration,
            now_ms,
            room,
            per_webhook,
            &skip,
        ));
    }
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let ids = to_json(&chosen)?;
    lease(c, &ids, now_ms + lease_ms)?;
    read_claimed(c, &ids, at_rest)
}

/// Leases these deliveries (a JSON array of ids) until `until`, under a new claim token.
fn lease(c: &rusqlite::Connection, ids: &str, until: i64) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE deliveries SET lease_until = ?1, claim_token = ?2 \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )?
    .execute(rusqlite::params![until, new_claim_token(), ids])?;
    Ok(())
}

/// Candidates of a claim query, in due order (?1 now, ?2 a row limit, and for the
/// per-registration query ?3 the busy ids and ?4 the cap per registration). Each row is
/// (id, webhook_id, lease_until, active, due at), read as SQLite steps to it.
fn due_candidates(
    c: &rusqlite::Connection,
    sql: &'static str,
    now_ms: i64,
    rows: i64,
    busy_and_cap: Option<(String, i64)>,
) -> StoreResult<Vec<claims::Candidate>> {
    let mut q = c.prepare_cached(sql)?;
    let mut stepped = match &busy_and_cap {
        Some((busy, cap)) => q.query(rusqlite::params![now_ms, rows, busy, cap])?,
        None => q.query(rusqlite::params![now_ms, rows])?,
    };
    let mut found: Vec<(i64, claims::Candidate)> = Vec::new();
    while let Some(r) = stepped.next()? {
        found.push((
            r.get(4)?,
            claims::Candidate {
                id: r.get(0)?,
                webhook_id: r.get(1)?,
                lease_until: r.get(2)?,
                active: r.get::<_, i64>(3)? != 0,
            },
        ));
    }
    // The head query's join may visit its window in another order than the index gave it:
    // the due order is restored here.
    found.sort_unstable_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    Ok(found.into_iter().map(|(_, c)| c).collect())
}

/// These deliveries (a JSON array of ids), ready to send.
fn read_claimed(
    c: &rusqlite::Connection,
    ids: &str,
    at_rest: &AtRest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let mut q = c.prepare_cached(concat!(
        claimed_select!(),
        " WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.next_attempt_at, d.id"
    ))?;
    let mut rows = q.query([ids])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(rows::claimed(r, at_rest)?);
    }
    Ok(out)
}

/// Stores one registration's secrets again as `at_rest` writes them, unless they already are
/// (read and written in the writer's transaction); true if it did.
async fn reseal_tx(c: &mut SqliteConnection, id: &str, at_rest: &AtRest) -> StoreResult<bool> {
    let Some(row) = sqlx::query("SELECT id, secret, headers FROM webhooks WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
    else {
        return Ok(false);
    };
    let Some(stored) = reseal::resealed(at_rest, &rows::sealed(&row)?)? else {
        return Ok(false);
    };
    sqlx::query("UPDATE webhooks SET secret = ?, headers = ? WHERE id = ?")
        .bind(&stored.secret)
        .bind(&stored.headers)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(true)
}

impl SqliteStore {
    async fn ingest_with(
        &self,
        events: &[NewEvent],
        now_ms: i64,
        hand_off: Option<ingest::HandOff>,
    ) -> StoreResult<ingest::Ingested> {
        // Serialised here, on the caller's task, not on the writer's.
        let prepared = events
            .iter()
            .map(Prepared::new)
            .collect::<StoreResult<_>>()?;
        let (req, rx) = IngestRequest::new(prepared, now_ms, hand_off, self.at_rest.clone());
        self.writer.ingest(req).await?;
        rx.await
            .map_err(|_| StoreError::Corrupt("the SQLite writer has stopped".into()))?
    }
}

/// Boxes an async write for the writer (the closure gets the writer's connection).
macro_rules! write {
    ($self:ident, |$c:ident| $body:expr) => {
        write!(@ write, $self, |$c| $body)
    };
    // A write that only changes leases (see `writer`: its commit need not wait for the disk).
    (lease $self:ident, |$c:ident| $body:expr) => {
        write!(@ write_lease, $self, |$c| $body)
    };
    (@ $how:ident, $self:ident, |$c:ident| $body:expr) => {
        $self
            .writer
            .$how(
                move |$c: &mut SqliteConnection| -> BoxFuture<'_, StoreResult<_>> {
                    Box::pin(async move { $body })
                },
            )
            .await
    };
}

impl ResealRows for SqliteStore {
    async fn sealed_page(&self, after: &str) -> StoreResult<Vec<SealedRow>> {
        let page = sqlx::query(shared::SEALED_PAGE)
            .bind(after)
            .bind(reseal::PAGE)
            .fetch_all(&self.read)
            .await?;
        page.iter().map(rows::sealed).collect()
    }

    async fn reseal_one(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        let at_rest = self.at_rest.clone();
        write!(self, |c| reseal_tx(c, &id, &at_rest).await)
    }
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

    async fn insert_first_key(&self, role: KeyRole, hash: &str, now_ms: i64) -> StoreResult<bool> {
        let hash = hash.to_owned();
        // One statement in the writer's transaction (BEGIN IMMEDIATE: the file's write lock,
        // even against another process), so the check and the insert cannot be split.
        write!(self, |c| {
            Ok(sqlx::query(
                "INSERT OR IGNORE INTO api_keys (hash, role, created_at) SELECT ?1, ?2, ?3 \
                 WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE role = ?2)",
            )
            .bind(&hash)
            .bind(role.as_str())
            .bind(now_ms)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0)
        })
    }

    async fn reseal_secrets(&self, rewrite: bool) -> StoreResult<ResealReport> {
        reseal::reseal_all(self, &self.at_rest, rewrite).await
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let w = w.clone();
        let events = to_json(&w.events)?;
        let stored = self.at_rest.seal(w.id.as_str(), &w.secret, &w.headers)?;
        write!(self, |c| {
            bind_webhook!(
                sqlx::query(shared::INSERT_WEBHOOK).bind(&w.id),
                w,
                stored,
                &events
            )
            .bind(w.created_at_ms)
            .bind(w.updated_at_ms)
            .execute(&mut *c)
            .await?;
            write_subscriptions(c, &w).await
        })
    }

    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        let sql = shared::WEBHOOK_BY_ID;
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        row.as_ref()
            .map(|r| rows::webhook(r, &self.at_rest))
            .transpose()
    }

    async fn list_webhooks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Webhook>> {
        let sql = shared::WEBHOOK_PAGE;
        let rows = sqlx::query(sql)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| rows::webhook(r, &self.at_rest))
            .collect()
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        let id = id.to_owned();
        write!(self, |c| Ok(delete_webhook_cascade!(c, &id)))
    }

    async fn ingest(&self, events: &[NewEvent], now_ms: i64) -> StoreResult<Vec<IngestOutcome>> {
        Ok(self.ingest_with(events, now_ms, None).await?.0)
    }

    async fn ingest_and_claim(
        &self,
        events: &[NewEvent],
        now_ms: i64,
        lease_until_ms: i64,
        at_most: usize,
    ) -> StoreResult<(Vec<IngestOutcome>, Vec<ClaimedDelivery>)> {
        let hand_off = ingest::HandOff {
            until: lease_until_ms,
            at_most,
        };
        self.ingest_with(events, now_ms, Some(hand_off)).await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        busy: &[WebhookId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let busy = busy.to_vec();
        let at_rest = self.at_rest.clone();
        self.writer
            .write_sync(false, move |c| {
                claim_tx(c, now_ms, lease_ms, limit, per_webhook, &busy, &at_rest)
            })
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        // A leased delivery is due again only when its lease runs out (else the engine would
        // poll at its shortest interval while its own attempts are in flight). Bounded as the
        // trait says: only the earliest pending rows are looked at, in index order.
        Ok(sqlx::query_scalar(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until + 1, 0))) FROM ( \
               SELECT d.next_attempt_at, d.lease_until FROM deliveries d \
               JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.state = 'pending' AND w.active = 1 \
               ORDER BY d.next_attempt_at LIMIT CAST(? AS INTEGER))",
        )
        .bind(NEXT_DUE_WINDOW)
        .fetch_one(&self.read)
        .await?)
    }

    async fn record_attempts(&self, results: &[AttemptRecord]) -> StoreResult<u64> {
        if results.is_empty() {
            return Ok(0);
        }
        let results = results.to_vec();
        let now = crate::clock::now_ms();
        self.writer
            .write_sync(true, move |c| record_batch(c, &results, now))
            .await
    }

    async fn renew_leases(
        &self,
        leases: &[HeldLease],
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryId>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let held: Vec<(&str, i64)> = leases
            .iter()
            .map(|l| (l.delivery_id.as_str(), l.claim_token))
            .collect();
        let held = to_json(&held)?;
        write!(lease self, |c| {
            Ok(sqlx::query_scalar(
                "UPDATE deliveries SET lease_until = ?1 \
                 FROM json_each(?2) AS h \
                 WHERE deliveries.id = h.value ->> 0 AND deliveries.claim_token = h.value ->> 1 \
                   AND deliveries.state = 'pending' AND deliveries.lease_until IS NOT NULL \
                 RETURNING deliveries.id",
            )
            .bind(until_ms)
            .bind(&held)
            .fetch_all(&mut *c)
            .await?)
        })
    }

    async fn recover_leases_on_start(&self) -> StoreResult<u64> {
        // One process owns an SQLite file: leases left by a previous (killed) run are void.
        write!(lease self, |c| {
            Ok(sqlx::query(
                "UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL",
            )
            .execute(&mut *c)
            .await?
            .rows_affected())
        })
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

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryInfo>> {
        let sql = shared::DELIVERY_BY_ID;
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        let Some(row) = row else { return Ok(None) };
        let mut d = rows::delivery(&row)?;
        d.attempt_log = attempts_of(&self.read, &d.id).await?;
        Ok(Some(d))
    }

    async fn redrive(
        &self,
        webhook_id: &WebhookId,
        delivery_id: Option<&DeliveryId>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let webhook_id = webhook_id.to_owned();
        let delivery_id = delivery_id.cloned();
        write!(self, |c| {
            Ok(sqlx::query(shared::REDRIVE)
                .bind(now_ms)
                .bind(&webhook_id)
                .bind(&delivery_id)
                .execute(&mut *c)
                .await?
                .rows_affected())
        })
    }

    async fn record_ignored(&self, ignored: &IgnoredEvent, now_ms: i64) -> StoreResult<()> {
        let ignored = ignored.clone();
        write!(self, |c| {
            sqlx::query(shared::RECORD_IGNORED)
                .bind(ignored.source.as_str())
                .bind(&ignored.name)
                .bind(now_ms)
                .bind(&ignored.reason)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    async fn list_ignored(&self) -> StoreResult<Vec<IgnoredSummary>> {
        let rows = sqlx::query(shared::IGNORED).fetch_all(&self.read).await?;
        rows.iter().map(rows::ignored).collect()
    }

    async fn prune(&self, cutoffs: &PruneCutoffs, limit: u32) -> StoreResult<PruneOutcome> {
        let cutoffs = *cutoffs;
        write!(self, |c| prune_batch(c, &cutoffs, limit).await)
    }

    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64> {
        write!(self, |c| {
            let before: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&mut *c)
                .await?;
            // Steps until done: frees up to `max_pages` pages, moving pages from the end of the
            // file into free ones; the file shrinks at commit (WAL: at the next checkpoint).
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "PRAGMA incremental_vacuum({max_pages})"
            )))
            .execute(&mut *c)
            .await?;
            let after: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&mut *c)
                .await?;
            Ok(u64::try_from(before - after).unwrap_or(0))
        })
    }

    async fn delivery_counts(&self) -> StoreResult<StateCounts> {
        // Kept by triggers (migration 0004): three rows, whatever the size of the table.
        let rows = sqlx::query("SELECT state, n FROM delivery_state_counts")
            .fetch_all(&self.read)
            .await?;
        rows::counters(&rows)
    }

    async fn active_webhooks(&self) -> StoreResult<u64> {
        let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE active = 1")
            .fetch_one(&self.read)
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
                .fetch_one(&self.read)
                .await?;
            return Ok(StateCounts {
                in_flight: u64::try_from(in_flight).unwrap_or(0),
                ..c
            });
        };
        let row = sqlx::query(shared::STATE_COUNTS_OF)
            .bind(now_ms)
            .bind(webhook_id)
            .fetch_one(&self.read)
            .await?;
        rows::state_counts(&row)
    }

    async fn delivery_event(&self, delivery_id: &DeliveryId) -> StoreResult<Option<DeliveryEvent>> {
        let row = sqlx::query(shared::DELIVERY_EVENT)
            .bind(delivery_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(rows::delivery_event).transpose()
    }

    async fn update_webhook_if_unchanged(
        &self,
        w: &Webhook,
        read: &Webhook,
    ) -> StoreResult<WebhookWrite> {
        let w = w.clone();
        let (read_at, read_active, read_reason) = (
            read.updated_at_ms,
            read.active,
            read.disabled_reason.clone(),
        );
        let events = to_json(&w.events)?;
        let stored = self.at_rest.seal(w.id.as_str(), &w.secret, &w.headers)?;
        write!(self, |c| {
            let done = bind_webhook!(
                sqlx::query(shared::UPDATE_WEBHOOK_IF_UNCHANGED),
                w,
                stored,
                &events
            )
            .bind(w.updated_at_ms)
            .bind(&w.id)
            .bind(read_at)
            .bind(read_active)
            .bind(&read_reason)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0;
            if done {
                write_subscriptions(c, &w).await?;
                return Ok(WebhookWrite::Updated);
            }
            let exists = sqlx::query(shared::WEBHOOK_EXISTS)
                .bind(&w.id)
                .fetch_optional(&mut *c)
                .await?;
            Ok(if exists.is_some() {
                WebhookWrite::Changed
            } else {
                WebhookWrite::Missing
            })
        })
    }
}

/// One batch of pruning (see [`Store::prune`]), inside the writer's transaction.
async fn prune_batch(
    c: &mut SqliteConnection,
    cut: &PruneCutoffs,
    limit: u32,
) -> StoreResult<PruneOutcome> {
    let limit = i64::from(limit);
    // Oldest finished first, each kind from its own partial index.
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE state = 'delivered' AND updated_at < ?1 \
         ORDER BY updated_at LIMIT CAST(?2 AS INTEGER)",
    )
    .bind(cut.delivered_before_ms)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    let room = limit - i64::try_from(ids.len()).unwrap_or(limit);
    if room > 0 {
        ids.extend(
            sqlx::query_scalar::<_, String>(
                "SELECT id FROM deliveries WHERE state = 'dead' AND updated_at < ?1 \
                 ORDER BY updated_at LIMIT CAST(?2 AS INTEGER)",
            )
            .bind(cut.dead_before_ms)
            .bind(room)
            .fetch_all(&mut *c)
            .await?,
        );
    }
    let mut out = PruneOutcome::default();
    if !ids.is_empty() {
        let ids = to_json(&ids)?;
        out.attempts = sqlx::query(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&ids)
        .execute(&mut *c)
        .await?
        .rows_affected();
        let gone = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?1)) \
             AND state IN ('delivered', 'dead') RETURNING state, event_id",
        )
        .bind(&ids)
        .fetch_all(&mut *c)
        .await?;
        let mut events = Vec::with_capacity(gone.len());
        for row in &gone {
            match rows::state(row.try_get(0)?)? {
                DeliveryState::Delivered => out.delivered += 1,
                _ => out.dead += 1,
            }
            events.push(row.try_get::<String, _>(1)?);
        }
        // Their events, if that was the last delivery: now without deliveries.
        sqlx::query(
            "UPDATE events SET dispatched = 0 WHERE id IN (SELECT value FROM json_each(?1)) \
             AND dispatched = 1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
        )
        .bind(to_json(&events)?)
        .execute(&mut *c)
        .await?;
    }
    // Events without deliveries, oldest first, from events_undelivered.
    out.events = sqlx::query(
        "DELETE FROM events WHERE rowid IN ( \
            SELECT rowid FROM events WHERE dispatched = 0 AND received_at < ?1 \
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id) \
             ORDER BY received_at LIMIT CAST(?2 AS INTEGER))",
    )
    .bind(cut.events_before_ms)
    .bind(limit)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(out)
}

async fn attempts_of(pool: &SqlitePool, delivery_id: &DeliveryId) -> StoreResult<Vec<AttemptInfo>> {
    let rows = sqlx::query(shared::ATTEMPTS_OF)
        .bind(delivery_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(rows::attempt).collect()
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    /// `.cargo/config.toml` builds the bundled SQLite with `fdatasync` for its commits and
    /// without the allocator's global statistics and mutex (`LIBSQLITE3_FLAGS`). The flags travel
    /// together, so the two that SQLite reports stand for all three: a build that lost them
    /// (cargo run from outside the checkout, say) fails here.
    #[tokio::test]
    async fn sqlite_is_built_with_the_projects_flags() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&store.read)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
