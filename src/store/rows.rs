//! Row → model mapping, written once for every backend. A backend only says how its column types
//! decode ([`RowExt`]); the SELECTs of both backends name the same columns.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::{
    AttemptInfo, ClaimedDelivery, DeliveryEvent, DeliveryId, DeliveryInfo, DeliveryState, EventId,
    IgnoredSummary, SessionId, StateCounts, StoreError, StoreResult, TargetUrl, Webhook, WebhookId,
};
use crate::secret::WebhookSecret;
use crate::secret::at_rest::AtRest;

pub(super) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A delivery's state from its stored text.
pub(super) fn state(text: &str) -> StoreResult<DeliveryState> {
    DeliveryState::parse(text).ok_or_else(|| corrupt(format!("unknown delivery state {text:?}")))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(corrupt)
}

/// Typed column access; each backend maps its own column types (e.g. INTEGER vs BIGINT counts).
pub(super) trait RowExt {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    /// A time in Unix milliseconds, or another 64-bit integer.
    fn int(&self, col: &str) -> StoreResult<i64>;
    /// A small non-negative count (attempts).
    fn count(&self, col: &str) -> StoreResult<u32>;
    /// An HTTP status code, if any.
    fn opt_status(&self, col: &str) -> StoreResult<Option<u16>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn opt_real(&self, col: &str) -> StoreResult<Option<f64>>;

    /// A registration's target URL, as [`TargetUrl::as_str`] stored it.
    fn url(&self, col: &str) -> StoreResult<TargetUrl> {
        TargetUrl::from_stored(&self.text(col)?).map_err(corrupt)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        serde_json::from_str(&self.text(col)?).map_err(corrupt)
    }

    /// A registration's secret and headers, from the `secret` and `headers` columns (decrypted
    /// when sealed, see [`AtRest`]).
    fn secrets(
        &self,
        at_rest: &AtRest,
        webhook_id: &str,
    ) -> StoreResult<(WebhookSecret, BTreeMap<String, String>)> {
        Ok(at_rest.open(webhook_id, &self.text("secret")?, &self.text("headers")?)?)
    }
}

macro_rules! row_ext {
    ($row:ty, $small:ty, $get:ident) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> StoreResult<String> {
                Ok(self.$get(col)?)
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                Ok(self.$get(col)?)
            }
            fn int(&self, col: &str) -> StoreResult<i64> {
                Ok(self.$get(col)?)
            }
            fn count(&self, col: &str) -> StoreResult<u32> {
                let n: $small = self.$get(col)?;
                u32::try_from(n).map_err(corrupt)
            }
            fn opt_status(&self, col: &str) -> StoreResult<Option<u16>> {
                let s: Option<$small> = self.$get(col)?;
                Ok(s.and_then(|s| u16::try_from(s).ok()))
            }
            fn flag(&self, col: &str) -> StoreResult<bool> {
                Ok(self.$get(col)?)
            }
            fn opt_real(&self, col: &str) -> StoreResult<Option<f64>> {
                Ok(self.$get(col)?)
            }
        }
    };
}

// SQLite stores every integer as 64-bit; PostgreSQL counts and statuses are INTEGER.
row_ext!(SqliteRow, i64, try_get);
row_ext!(PgRow, i32, try_get);
// The SQLite writer's synchronous side (see `store/sqlite/db.rs`).
row_ext!(rusqlite::Row<'_>, i64, get);

/// Columns: id, url, events, session_id, description, headers, secret, active, rate_limit,
/// disabled_reason, created_at, updated_at.
pub(super) fn webhook<R: RowExt>(row: &R, at_rest: &AtRest) -> StoreResult<Webhook> {
    let id = WebhookId::from_stored(row.text("id")?);
    let (secret, headers) = row.secrets(at_rest, id.as_str())?;
    Ok(Webhook {
        id,
        url: row.url("url")?,
        events: row.json("events")?,
        session_id: row.opt_text("session_id")?.map(SessionId::from_stored),
        description: row.opt_text("description")?,
        headers,
        secret,
        active: row.flag("active")?,
        rate_limit: row.opt_real("rate_limit")?,
        disabled_reason: row.opt_text("disabled_reason")?,
        created_at_ms: row.int("created_at")?,
        updated_at_ms: row.int("updated_at")?,
    })
}

/// Columns: id, webhook_id, attempts, retry_base, is_test, claim_token (delivery); url, secret, headers,
/// rate_limit (webhook); event, session_id, idempotency_key, occurred_rfc3339, data (event).
pub(super) fn claimed<R: RowExt>(row: &R, at_rest: &AtRest) -> StoreResult<ClaimedDelivery> {
    let webhook_id = WebhookId::from_stored(row.text("webhook_id")?);
    let (secret, headers) = row.secrets(at_rest, webhook_id.as_str())?;
    Ok(ClaimedDelivery {
        id: DeliveryId::from_stored(row.text("id")?),
        webhook_id,
        url: row.url("url")?,
        secret,
        headers,
        rate_limit: row.opt_real("rate_limit")?,
        event: row.text("event")?,
        session_id: row.text("session_id")?,
        idempotency_key: row.text("idempotency_key")?,
        occurred: row.text("occurred_rfc3339")?,
        data: row.text("data")?,
        is_test: row.flag("is_test")?,
        attempts: row.count("attempts")?,
        retry_base: row.count("retry_base")?,
        claim_token: row.int("claim_token")?,
    })
}

/// Columns of `delivery_select!` in each backend.
pub(super) fn delivery<R: RowExt>(row: &R) -> StoreResult<DeliveryInfo> {
    let state = state(&row.text("state")?)?;
    let next = row.int("next_attempt_at")?;
    Ok(DeliveryInfo {
        id: DeliveryId::from_stored(row.text("id")?),
        webhook_id: WebhookId::from_stored(row.text("webhook_id")?),
        event_id: EventId::from_stored(row.text("event_id")?),
        event: row.text("event")?,
        idempotency_key: row.text("idempotency_key")?,
        next_attempt_at_ms: (state == DeliveryState::Pending).then_some(next),
        state,
        attempts: row.count("attempts")?,
        last_status: row.opt_status("last_status")?,
        last_error: row.opt_text("last_error")?,
        is_test: row.flag("is_test")?,
        created_at_ms: row.int("created_at")?,
        updated_at_ms: row.int("updated_at")?,
        attempt_log: Vec::new(),
    })
}

/// Columns: attempt, started_at, status_code, latency_ms, error.
pub(super) fn attempt<R: RowExt>(row: &R) -> StoreResult<AttemptInfo> {
    Ok(AttemptInfo {
        attempt: row.count("attempt")?,
        started_at_ms: row.int("started_at")?,
        status_code: row.opt_status("status_code")?,
        latency_ms: row.int("latency_ms")?,
        error: row.opt_text("error")?,
    })
}

pub(super) fn ignored<R: RowExt>(row: &R) -> StoreResult<IgnoredSummary> {
    Ok(IgnoredSummary {
        source: row.text("source")?,
        name: row.text("name")?,
        count: u64::try_from(row.int("count")?).map_err(corrupt)?,
        first_seen_at_ms: row.int("first_seen_at")?,
        last_seen_at_ms: row.int("last_seen_at")?,
        last_reason: row.text("last_reason")?,
    })
}

/// Counts by state from the counter rows kept by triggers (columns: state, n; several rows per
/// state are summed). `in_flight` is not among them: 0.
pub(super) fn counters<R: RowExt>(rows: &[R]) -> StoreResult<StateCounts> {
    let mut c = StateCounts::default();
    for row in rows {
        let n = u64::try_from(row.int("n")?).unwrap_or(0);
        c.add(state(&row.text("state")?)?, n);
    }
    Ok(c)
}

/// Columns: pending, in_flight, delivered, dead.
pub(super) fn state_counts<R: RowExt>(row: &R) -> StoreResult<StateCounts> {
    let n = |col: &str| -> StoreResult<u64> { Ok(u64::try_from(row.int(col)?).unwrap_or(0)) };
    Ok(StateCounts {
        pending: n("pending")?,
        in_flight: n("in_flight")?,
        delivered: n("delivered")?,
        dead: n("dead")?,
    })
}

/// Columns: id, secret, headers (as stored, not opened).
pub(super) fn sealed<R: RowExt>(row: &R) -> StoreResult<super::reseal::SealedRow> {
    Ok(super::reseal::SealedRow {
        id: row.text("id")?,
        secret: row.text("secret")?,
        headers: row.text("headers")?,
    })
}

/// Columns of `delivery_event_select!`.
pub(super) fn delivery_event<R: RowExt>(row: &R) -> StoreResult<DeliveryEvent> {
    Ok(DeliveryEvent {
        delivery_id: DeliveryId::from_stored(row.text("id")?),
        webhook_id: WebhookId::from_stored(row.text("webhook_id")?),
        event: row.text("event")?,
        session_id: row.text("session_id")?,
        idempotency_key: row.text("idempotency_key")?,
        occurred: row.text("occurred_rfc3339")?,
        data: row.text("data")?,
        is_test: row.flag("is_test")?,
    })
}
