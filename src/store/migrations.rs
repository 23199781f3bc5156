//! Schema migrations, by `sqlx::migrate!` (the files in `migrations/<backend>/`, embedded at
//! build time, each applied once in its own transaction and recorded with its checksum in
//! `_sqlx_migrations`).
//!
//! Databases made before that kept their own record, `_migrations` (version, applied_at), and
//! applied the files in order with no gaps. Such a database is carried over at start: the
//! versions up to its newest recorded one are marked applied in `_sqlx_migrations` without
//! running them ([`Migrator::skip`]), then the rest run as usual. `_migrations` is left as it
//! is (an older binary started on the file still finds its record), and no longer written.

use sqlx::migrate::{Migrate, Migrator};

use super::StoreResult;

/// The migrations of one backend, as the runner applies them: a database that knows more
/// versions than this binary (a rolling upgrade: a newer instance migrated already) is accepted,
/// since migrations only add.
pub(super) fn migrator(mut m: Migrator) -> Migrator {
    m.set_ignore_missing(true);
    m
}

/// The newest version this binary knows.
pub(super) fn newest_known(m: &Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Carries over a database recorded by the old runner (`old_newest`: the newest version in its
/// `_migrations`, if that table exists), then applies what is pending.
pub(super) async fn run<C: Migrate>(
    m: &Migrator,
    conn: &mut C,
    old_newest: Option<i64>,
) -> StoreResult<()> {
    if let Some(newest) = old_newest {
        m.run_direct(Some(newest), conn, true)
            .await
            .map_err(sqlx::Error::from)?;
    }
    m.run_direct(None, conn, false)
        .await
        .map_err(sqlx::Error::from)?;
    Ok(())
}
