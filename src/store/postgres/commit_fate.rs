//! A COMMIT whose answer never arrived.
//!
//! When the connection to PostgreSQL is lost while a COMMIT is under way (the server crashed or
//! was restarted, the backend was terminated, the network dropped), the transaction may have
//! committed or not, and only the server knows which. A write that answers a client (an
//! ingest, a registration change) therefore notes its transaction id before it commits: with a
//! query of its own ([`note`]), or, where a round trip counts, as a column of the rows it
//! writes ([`current_xid`]; a transaction that wrote no row has nothing to learn). If its
//! COMMIT then fails for want of the database, it asks the server over a new connection what
//! became of that id (`pg_xact_status`), for at most [`ASK_FOR`]:
//! - committed: the write stands, and is answered as a success;
//! - aborted: nothing was stored, and the error stands (503, retry);
//! - not learned in time: [`StoreError::OutcomeUnknown`] (503 that says a retry is safe, since a
//!   stored event is answered as a duplicate).
//!
//! Without this, a commit that took effect was answered 503 "nothing stored", and its event was
//! delivered all the same.

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use crate::store::{StoreError, StoreResult};

/// How long a write whose COMMIT lost its connection waits to learn the outcome (a server that
/// restarts after a crash is typically back within a few seconds).
const ASK_FOR: Duration = Duration::from_secs(10);

/// The pause between two questions while the server is away or the transaction still runs.
const ASK_AGAIN: Duration = Duration::from_millis(100);

/// The running transaction's id as text: an SQL expression, for a column of a statement's
/// result (`concat!("... RETURNING id, ", current_xid!())`), read with [`Xid::read`]. A macro,
/// so that it joins a statement's text at compile time.
macro_rules! current_xid {
    () => {
        "pg_current_xact_id()::text"
    };
}
pub(super) use current_xid;

/// A transaction's id (`xid8`, as text), noted before its COMMIT.
pub(super) struct Xid(String);

impl Xid {
    /// The id a statement returned in a [`current_xid`] column.
    pub(super) fn read(text: String) -> Self {
        Self(text)
    }
}

/// Begins a transaction and notes its id (assigning one: the transaction is going to write).
pub(super) async fn begin(pool: &PgPool) -> StoreResult<(Transaction<'static, Postgres>, Xid)> {
    let mut tx = pool.begin().await?;
    let xid = note(&mut tx).await?;
    Ok((tx, xid))
}

/// Notes the id of the transaction `tx` (assigning one).
pub(super) async fn note(tx: &mut Transaction<'static, Postgres>) -> StoreResult<Xid> {
    let xid = sqlx::query_scalar(concat!("SELECT ", current_xid!()))
        .fetch_one(&mut **tx)
        .await?;
    Ok(Xid(xid))
}

/// Commits `tx`. If the COMMIT fails for want of the database, learns from the server whether
/// it took effect anyway. Without an id (`None`: the transaction wrote nothing), the failure
/// stands.
pub(super) async fn commit(
    pool: &PgPool,
    tx: Transaction<'static, Postgres>,
    xid: Option<&Xid>,
) -> StoreResult<()> {
    let lost = match tx.commit().await {
        Ok(()) => return Ok(()),
        Err(e) => StoreError::from(e),
    };
    // Only a COMMIT that lost the database may have taken effect anyway, and only a
    // transaction that wrote (and so has an id) has an outcome to learn.
    let (true, Some(xid)) = (lost.is_unavailable(), xid) else {
        return Err(lost);
    };
    match tokio::time::timeout(ASK_FOR, learn(pool, xid)).await {
        Ok(Fate::Committed) => {
            tracing::warn!(error = %lost, "lost the connection during a COMMIT that took effect");
            Ok(())
        }
        Ok(Fate::Aborted) => Err(lost),
        Ok(Fate::InProgress) | Ok(Fate::Unknown) | Err(_) => {
            Err(StoreError::OutcomeUnknown(format!(
                "the connection to the database was lost during COMMIT ({lost}), and whether it \
                 took effect could not be learned"
            )))
        }
    }
}

/// Asks, until the server answers with a final state, what became of `xid`.
async fn learn(pool: &PgPool, xid: &Xid) -> Fate {
    loop {
        let asked: StoreResult<Option<String>> =
            sqlx::query_scalar("SELECT pg_xact_status($1::xid8)::text")
                .bind(&xid.0)
                .fetch_one(pool)
                .await
                .map_err(StoreError::from);
        match asked {
            Ok(status) => match fate(status.as_deref()) {
                Fate::InProgress => {}
                settled => return settled,
            },
            Err(e) if e.is_unavailable() => {}
            Err(_) => return Fate::Unknown,
        }
        tokio::time::sleep(ASK_AGAIN).await;
    }
}

/// What became of a transaction.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Committed,
    Aborted,
    /// Still running on a backend that has not noticed its client is gone: ask again.
    InProgress,
    /// Too old for the server to remember (wrapped around), or an answer this code does not know.
    Unknown,
}

/// Reads `pg_xact_status`'s answer.
fn fate(status: Option<&str>) -> Fate {
    match status {
        Some("committed") => Fate::Committed,
        Some("aborted") => Fate::Aborted,
        Some("in progress") => Fate::InProgress,
        _ => Fate::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_of_pg_xact_status_is_read() {
        assert_eq!(fate(Some("committed")), Fate::Committed);
        assert_eq!(fate(Some("aborted")), Fate::Aborted);
        assert_eq!(fate(Some("in progress")), Fate::InProgress);
        // NULL: the id is too old for the server's commit log.
        assert_eq!(fate(None), Fate::Unknown);
        assert_eq!(fate(Some("something new")), Fate::Unknown);
    }
}
