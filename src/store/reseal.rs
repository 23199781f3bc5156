//! The secret reseal walk, written once for every backend (see [`super::Store::reseal_secrets`]).
//! A backend only reads a page of stored secrets and rewrites one registration in a
//! transaction of its own ([`ResealRows`]).

use super::{ResealReport, StoreResult};
use crate::secret::at_rest::{AtRest, StoredSecrets};

/// Registrations read per page.
pub(super) const PAGE: i64 = 200;

/// One registration's secret and headers as stored.
pub(super) struct SealedRow {
    pub id: String,
    pub secret: String,
    pub headers: String,
}

/// What a backend provides to the walk.
pub(super) trait ResealRows {
    /// Up to [`PAGE`] registrations with an id after `after`, ordered by id.
    async fn sealed_page(&self, after: &str) -> StoreResult<Vec<SealedRow>>;
    /// Reads this registration again (locked) and stores [`resealed`] of it, in one
    /// transaction; true if it was rewritten.
    async fn reseal_one(&self, id: &str) -> StoreResult<bool>;
}

/// Reads every registration's secrets (so a key that cannot open them fails here), counts those
/// not stored as `at_rest` writes them, and with `rewrite` stores those again.
pub(super) async fn reseal_all(
    rows: &impl ResealRows,
    at_rest: &AtRest,
    rewrite: bool,
) -> StoreResult<ResealReport> {
    let mut report = ResealReport::default();
    let mut after = String::new();
    loop {
        let page = rows.sealed_page(&after).await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = last.id.clone();
        for row in &page {
            report.registrations += 1;
            at_rest.open(&row.id, &row.secret, &row.headers)?;
            if at_rest.is_current(&row.secret, &row.headers) {
                continue;
            }
            report.not_current += 1;
            if rewrite && rows.reseal_one(&row.id).await? {
                report.rewritten += 1;
            }
        }
    }
}

/// The secrets of this registration as `at_rest` writes them, unless they are stored so
/// already (`None`).
pub(super) fn resealed(at_rest: &AtRest, row: &SealedRow) -> StoreResult<Option<StoredSecrets>> {
    if at_rest.is_current(&row.secret, &row.headers) {
        return Ok(None);
    }
    let (secret, headers) = at_rest.open(&row.id, &row.secret, &row.headers)?;
    Ok(Some(at_rest.seal(&row.id, &secret, &headers)?))
}
