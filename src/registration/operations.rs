//! Registration operations: the rules plus the network policy on the URL, and create and update
//! against the store. Update is optimistic: it merges the patch into the row it read and writes
//! only while that row is unchanged, else merges again into the fresh row, so a change made
//! meanwhile (the engine turning the registration off after a 410) is never overwritten by a
//! stale merge.

use serde_json::Value;

use super::{
    ErrorCode, FieldError, Registration, RegistrationPatch, parse_patch, parse_registration,
};
use crate::catalog::Catalog;
use crate::delivery::net_policy::NetPolicy;
use crate::store::{Store, StoreError, Webhook, WebhookId, WebhookWrite};

/// How many times an update merges into a fresh row before it gives up.
pub const UPDATE_ATTEMPTS: usize = 8;

/// A full registration body checked by every rule, the network policy included: the
/// registration, or every problem.
pub async fn check_registration(
    catalog: &Catalog,
    policy: &NetPolicy,
    body: &Value,
) -> Result<Registration, Vec<FieldError>> {
    with_policy(policy, body, parse_registration(catalog, body)).await
}

/// A patch body checked by every rule, the network policy included.
pub async fn check_patch(
    catalog: &Catalog,
    policy: &NetPolicy,
    body: &Value,
) -> Result<RegistrationPatch, Vec<FieldError>> {
    with_policy(policy, body, parse_patch(catalog, body)).await
}

/// The rules' answer with the network policy's problem on a well-formed `url` added.
async fn with_policy<T>(
    policy: &NetPolicy,
    body: &Value,
    parsed: Result<T, Vec<FieldError>>,
) -> Result<T, Vec<FieldError>> {
    let errors = parsed.as_ref().err().map(Vec::as_slice).unwrap_or(&[]);
    let blocked = policy_error(policy, body, errors).await;
    match (parsed, blocked) {
        (Ok(r), None) => Ok(r),
        (Ok(_), Some(e)) => Err(vec![e]),
        (Err(mut errs), extra) => {
            errs.extend(extra);
            Err(errs)
        }
    }
}

/// The network policy check of a body's `url`, when the url is otherwise well-formed.
async fn policy_error(
    policy: &NetPolicy,
    body: &Value,
    errors: &[FieldError],
) -> Option<FieldError> {
    if errors.iter().any(|e| e.pointer == "/url") {
        return None;
    }
    let raw = body.get("url")?.as_str()?;
    let url = url::Url::parse(raw).ok()?;
    match policy.check_url(&url).await {
        Ok(()) => None,
        // A name that does not resolve now may resolve later (or only inside the operator's
        // network): accept it; every delivery attempt checks the policy again.
        Err(blocked) if !blocked.is_forbidden_address() => {
            tracing::warn!(host = %blocked.host, reason = %blocked.reason, "registered a url whose host does not resolve now");
            None
        }
        Err(blocked) => Some(
            FieldError::new("/url", ErrorCode::UrlNotAllowed, blocked.to_string())
                .with_value(Value::String(raw.to_owned())),
        ),
    }
}

/// Stores a new registration under a new id: the stored registration (with its secret).
pub async fn create(
    store: &dyn Store,
    registration: Registration,
    now_ms: i64,
) -> Result<Webhook, StoreError> {
    let webhook = registration.into_webhook(WebhookId::new(), now_ms);
    store.create_webhook(&webhook).await?;
    Ok(webhook)
}

/// Why an update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no registration '{0}'")]
    NotFound(WebhookId),
    /// The registration changed under every one of [`UPDATE_ATTEMPTS`] merges.
    #[error("registration '{0}' kept changing during the update")]
    Contended(WebhookId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `patch` to registration `id` at `now_ms`: the registration as stored after it.
pub async fn update(
    store: &dyn Store,
    id: &WebhookId,
    patch: &RegistrationPatch,
    now_ms: i64,
) -> Result<Webhook, UpdateError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let Some(read) = store.get_webhook(id).await? else {
            return Err(UpdateError::NotFound(id.clone()));
        };
        // Always past the row read: updated_at is the version the next update checks.
        let merged = patch.apply(&read, now_ms.max(read.updated_at_ms + 1));
        match store.update_webhook_if_unchanged(&merged, &read).await? {
            WebhookWrite::Updated => return Ok(merged),
            WebhookWrite::Missing => return Err(UpdateError::NotFound(id.clone())),
            WebhookWrite::Changed => {
                tracing::debug!(webhook_id = %id, "registration changed meanwhile; merging again");
            }
        }
    }
    Err(UpdateError::Contended(id.clone()))
}
