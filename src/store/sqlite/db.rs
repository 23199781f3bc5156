//! The writer's one connection, reachable two ways.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a round trip
//! to it: two thread switches, both ways through channels. A commit group is several statements,
//! and with single events most of the writer's time went to those switches (75% of the writer
//! task's samples were parking, waking, and tokio's and sqlx's plumbing). So the statements of
//! the hot path (transaction control, the merged ingest, attempt results, claims) run
//! synchronously on the writer's own thread through rusqlite, on the same SQLite handle: one
//! transaction, one file lock, one page cache. The rest (registrations, status events, test
//! deliveries, lease renewals, migrations) stays on sqlx.
//! Both crates link the one `libsqlite3-sys`.

use sqlx::{Connection, SqliteConnection};

use crate::store::StoreResult;

/// Prepared statements the synchronous side keeps (its statements come in a few dozen shapes:
/// rows per statement are padded to powers of two, see `values.rs`).
const SYNC_STATEMENTS: usize = 128;

pub(crate) struct Db {
    /// The handle of `conn`, used from the writer's thread. Declared first, so it is dropped
    /// first; it never closes the handle, `conn` does.
    sync: rusqlite::Connection,
    conn: SqliteConnection,
}

impl Db {
    /// Takes the writer's connection (migrated and configured).
    pub async fn open(mut conn: SqliteConnection) -> StoreResult<Self> {
        let raw = conn.lock_handle().await?.as_raw_handle();
        // SAFETY: the handle stays open while `conn` does, and `sync` is dropped before `conn`
        // (field order, and `close`). sqlx opens it with SQLITE_OPEN_NOMUTEX, which asks that
        // no two threads use it at once. Only the writer's task uses either side, and it awaits
        // every sqlx call to its end (the connection's thread idle again, its answer received
        // through a channel) before it uses `sync`; and each sqlx call is sent through a channel
        // after the synchronous calls before it have returned.
        let sync = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }?;
        sync.set_prepared_statement_cache_capacity(SYNC_STATEMENTS);
        Ok(Self { sync, conn })
    }

    /// The synchronous side.
    pub fn sync(&self) -> &rusqlite::Connection {
        &self.sync
    }

    /// The sqlx side.
    pub fn sqlx(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Closes the connection: the synchronous side's statements first, then the handle.
    pub async fn close(self) {
        let Self { sync, conn } = self;
        drop(sync);
        let _ = conn.close().await;
    }
}
