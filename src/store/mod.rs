//! The store boundary: the only place that knows SQL. Handlers and the delivery engine speak to
//! `dyn Store`; SQLite is the embedded default (one process per file), PostgreSQL implements the
//! same trait for several instances sharing one database. The URL picks the backend.

mod claims;
#[macro_use]
mod columns;
#[cfg(test)]
pub(crate) mod gated;
mod inspect;
mod migrations;
mod model;
mod outcome;
mod postgres;
mod reseal;
mod rows;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use crate::retention::PruneCutoffs;
use crate::secret::at_rest::AtRest;
pub use inspect::*;

pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Errors from the store. The HTTP layer answers them with a bare 500 and logs the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite writer's synchronous side (see `store/sqlite/db.rs`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(
        "unsupported database URL {0:?}: use sqlite://<file> or postgres://<user>@<host>/<database>"
    )]
    UnsupportedUrl(String),
    #[error("invalid database URL {0}")]
    InvalidUrl(String),
    /// A registration's stored secrets cannot be read (no key, an unknown key, altered) or
    /// written.
    #[error(transparent)]
    Secrets(#[from] crate::secret::at_rest::AtRestError),
    /// A write that was not committed because the database could not take it (see
    /// [`StoreError::is_unavailable`]).
    #[error("{0}")]
    Unavailable(String),
    /// The connection to the database was lost during a COMMIT, and whether it took effect could
    /// not be learned (PostgreSQL; see `store/postgres/commit_fate.rs`). The write may be
    /// stored; the same request again is safe (an ingested event is answered as a duplicate).
    #[error("{0}")]
    OutcomeUnknown(String),
}

impl StoreError {
    /// Is this a failure of the database's resources or of the connection to it, rather than of
    /// the request: the disk full, the database restarting or unreachable, every connection
    /// busy? Nothing was stored, and the same request may well succeed later: the HTTP layer
    /// answers 503 with `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Database(e) => sqlx_unavailable(e),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                sqlite_code_unavailable(e.extended_code)
            }
            _ => false,
        }
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // 08: connection exception; 53: insufficient resources (53100 disk full);
                // 57P01-57P03: shut down or starting up.
                let code = pg.code();
                code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
                sqlite_code_unavailable(code)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// An SQLite result code that says the database could not take the write: the primary code (the
/// low byte of an extended one) SQLITE_BUSY (5), SQLITE_IOERR (10), SQLITE_FULL (13) or
/// SQLITE_CANTOPEN (14).
fn sqlite_code_unavailable(code: i32) -> bool {
    matches!(code & 0xff, 5 | 10 | 13 | 14)
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How many of the earliest pending deliveries [`Store::next_due_at`] looks at (the same rule
/// in every backend).
pub const NEXT_DUE_WINDOW: i64 = 512;

/// Opens (creating and migrating) the store named by a database URL: `sqlite:` or
/// `postgres://` / `postgresql://`. Secrets are stored in plaintext (see [`connect_with`]).
pub async fn connect(database_url: &str) -> StoreResult<Arc<dyn Store>> {
    connect_with(database_url, AtRest::plaintext()).await
}

/// [`connect`], with registrations' secrets and header values kept as `at_rest` says (encrypted
/// under its current key, readable with it and its previous ones).
pub async fn connect_with(database_url: &str, at_rest: AtRest) -> StoreResult<Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect_with(database_url, at_rest).await?,
        ))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect_with(database_url, at_rest).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(database_url.to_owned()))
    }
}

/// The file of an SQLite URL when it does not exist (`None` for PostgreSQL, in-memory
/// databases and existing files): commands that work on an existing database refuse it rather
/// than create an empty one.
pub fn missing_sqlite_file(database_url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    if !database_url.starts_with("sqlite:") || database_url.contains(":memory:") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url).ok()?;
    let file = options.get_filename();
    (!file.exists()).then(|| file.to_owned())
}

/// The database URL with any password replaced by `***`, for logs and error messages.
pub fn redact_url(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.into()
        }
        Ok(_) => database_url.to_owned(),
        Err(_) => "<unparseable database URL>".into(),
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Is the database reachable?
    async fn ping(&self) -> StoreResult<()>;

    // --- API keys (hashes only) ---
    async fn key_hashes(&self, role: KeyRole) -> StoreResult<Vec<String>>;
    /// Stores the hash of a generated key, unless a key of this role is stored already; true if
    /// it was stored. Atomic across instances: of several first starts at once, one wins.
    async fn insert_first_key(&self, role: KeyRole, hash: &str, now_ms: i64) -> StoreResult<bool>;

    // --- Secrets at rest ---
    /// Reads every registration's secret and headers (so a missing or wrong key shows as an
    /// error here, at start, not at the first delivery) and counts those not stored as this
    /// store writes them (plaintext, or under a previous key). With `rewrite`, stores those
    /// again under the current key (or in plaintext without one), each in its own transaction.
    async fn reseal_secrets(&self, rewrite: bool) -> StoreResult<ResealReport>;

    // --- Registrations ---
    async fn create_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>>;
    /// Registrations ordered by id (ids sort by creation time), after the cursor id.
    async fn list_webhooks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Webhook>>;
    /// Deletes a registration and its deliveries; false if it did not exist.
    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool>;

    // --- Ingest (transactional outbox) ---
    /// Stores a batch of events and every delivery they fan out to, in one transaction.
    async fn ingest(&self, events: &[NewEvent], now_ms: i64) -> StoreResult<Vec<IngestOutcome>>;
    /// [`Store::ingest`], and in the same transaction leases up to `at_most` of the new
    /// deliveries to this process until `lease_until_ms` (a new claim token), returned ready to
    /// send: the hand-off to the engine, with no claim scan. The first ones in the batch's order
    /// are leased; the rest stay unleased and pending, for a claim, as do deliveries the backend
    /// cannot hand off this way (`session.status`, test deliveries).
    async fn ingest_and_claim(
        &self,
        events: &[NewEvent],
        now_ms: i64,
        lease_until_ms: i64,
        at_most: usize,
    ) -> StoreResult<(Vec<IngestOutcome>, Vec<ClaimedDelivery>)>;

    // --- Delivery work ---
    /// Claims up to `limit` due deliveries of active registrations, leasing them until
    /// `now_ms + lease_ms`, at most `per_webhook` per registration, skipping `busy` ones (the
    /// rule in `claims.rs`). A busy registration's backlog is never walked past a bounded
    /// window: a backend may look at the head of the global due order first
    /// (`claims::window` rows), and reads registrations' due rows from their own indexes
    /// when that does not fill the claim.
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        busy: &[WebhookId],
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// When the next pending delivery of an active registration is due, if any: a leased one
    /// when its lease runs out. Bounded in both backends: only the [`NEXT_DUE_WINDOW`] earliest
    /// pending rows (by `next_attempt_at`) are looked at.
    async fn next_due_at(&self) -> StoreResult<Option<i64>>;
    /// Records attempt results (each clears its lease), in one transaction. Fenced: a result is
    /// recorded only if its delivery is still pending under the same claim token; results of a
    /// claim that lost its lease (taken over, or the delivery was deleted) are dropped. Returns
    /// how many were recorded.
    async fn record_attempts(&self, results: &[AttemptRecord]) -> StoreResult<u64>;
    /// Extends to `until_ms` the leases still held under these claims: the delivery is pending
    /// and its claim token is the one given (the engine renews the claims it is working on, so a
    /// lease only runs out when its holder stops: died, hung, or lost the database). A lease
    /// taken over by another claim, or cleared by a result, is not extended. Returns the ids of
    /// the deliveries whose leases were extended; the others are lost to this holder. With
    /// `until_ms` in the past, hands the leases back (claimable at once).
    async fn renew_leases(
        &self,
        leases: &[HeldLease],
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryId>>;
    /// Start-up: releases the leases that can only be left over from a dead run, and returns
    /// how many. SQLite releases all (one process per file: whoever held them is gone);
    /// PostgreSQL releases none (other instances may be working; a dead one's leases run out).
    async fn recover_leases_on_start(&self) -> StoreResult<u64>;

    // --- Delivery inspection and redrive ---
    async fn list_deliveries(
        &self,
        webhook_id: &WebhookId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryInfo>>;
    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryInfo>>;
    /// Puts dead deliveries back to pending (one, or all of a registration); returns how many.
    async fn redrive(
        &self,
        webhook_id: &WebhookId,
        delivery_id: Option<&DeliveryId>,
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// Deliveries by state, for metrics and readiness: the counters kept by triggers, whatever
    /// the size of the table (`in_flight` is not counted here: 0; see [`Store::state_counts`]).
    async fn delivery_counts(&self) -> StoreResult<StateCounts>;
    /// How many registrations are active.
    async fn active_webhooks(&self) -> StoreResult<u64>;

    // --- Retention (the rule: `crate::retention`) ---
    /// One short batch of pruning: up to `limit` finished deliveries past their cutoff (delivered
    /// first, then dead; never pending) with their attempts, then up to `limit` events that have
    /// no delivery left and were received before `events_before_ms` (with their idempotency
    /// keys). The state counters follow (triggers). `session_status` is never touched.
    async fn prune(&self, cutoffs: &PruneCutoffs, limit: u32) -> StoreResult<PruneOutcome>;
    /// Gives up to `max_pages` free pages back to the file system; returns how many it freed.
    /// SQLite: `PRAGMA incremental_vacuum`. PostgreSQL: nothing (autovacuum reuses the space).
    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64>;

    // --- Engine deliveries that did not become catalog events ---
    /// Counts one more ignored delivery of this source and native name, keeping the last reason.
    async fn record_ignored(&self, ignored: &IgnoredEvent, now_ms: i64) -> StoreResult<()>;
    /// Every ignored name, most recently seen first.
    async fn list_ignored(&self) -> StoreResult<Vec<IgnoredSummary>>;

    // --- The operator's views ---
    /// Deliveries by state, of one registration or (`None`) of all; `in_flight` counts the
    /// pending ones whose lease runs past `now_ms`.
    async fn state_counts(
        &self,
        webhook_id: Option<&WebhookId>,
        now_ms: i64,
    ) -> StoreResult<StateCounts>;
    /// The stored event a delivery carries (what its envelope is built from), if it exists.
    async fn delivery_event(&self, delivery_id: &DeliveryId) -> StoreResult<Option<DeliveryEvent>>;

    // --- Optimistic registration update (`registration::update`) ---
    /// Replaces a registration only while it is still as `read` found it: the same
    /// `updated_at`, `active` and `disabled_reason` (every change through the API moves
    /// `updated_at`; the engine's 410 deactivation changes all three). [`WebhookWrite::Changed`]
    /// when it was changed meanwhile (nothing written), [`WebhookWrite::Missing`] when it is gone.
    async fn update_webhook_if_unchanged(
        &self,
        webhook: &Webhook,
        read: &Webhook,
    ) -> StoreResult<WebhookWrite>;
}

/// What [`Store::update_webhook_if_unchanged`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookWrite {
    Updated,
    /// Changed since it was read: nothing written.
    Changed,
    /// No such registration (any more).
    Missing,
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::StoreError;

    /// The SQLite writer's synchronous side reports SQLite's own result codes: the database
    /// busy, an I/O error, the disk full or the file not opened (also as extended codes) are
    /// "unavailable" (503 with Retry-After); a broken constraint or a plain error are not.
    #[test]
    fn sqlite_failures_of_the_database_are_unavailable_and_others_are_not() {
        let error =
            |code| StoreError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_FULL,
            ffi::SQLITE_CANTOPEN,
        ] {
            assert!(error(code).is_unavailable(), "code {code}");
        }
        for code in [ffi::SQLITE_CONSTRAINT_UNIQUE, ffi::SQLITE_ERROR] {
            assert!(!error(code).is_unavailable(), "code {code}");
        }
    }
}
