//! Registrations applied to the stored model: a new registration becomes a [`Webhook`], a patch
//! is merged into one. Pure.

use super::{Registration, RegistrationPatch};
use crate::secret::WebhookSecret;
use crate::store::{Webhook, WebhookId};

impl Registration {
    /// The stored registration under `id`, created at `now_ms`; without a secret given, one is
    /// generated.
    pub fn into_webhook(self, id: WebhookId, now_ms: i64) -> Webhook {
        Webhook {
            id,
            url: self.url,
            events: self.events,
            session_id: self.session_id,
            description: self.description,
            headers: self.headers,
            secret: self.secret.unwrap_or_else(WebhookSecret::generate),
            active: self.active,
            rate_limit: self.rate_limit,
            disabled_reason: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

impl RegistrationPatch {
    /// `webhook` with the fields given changed, updated at `now_ms`. Turning a registration
    /// back on clears why it was turned off.
    pub fn apply(&self, webhook: &Webhook, now_ms: i64) -> Webhook {
        let mut w = webhook.clone();
        if let Some(url) = &self.url {
            w.url.clone_from(url);
        }
        if let Some(events) = &self.events {
            w.events.clone_from(events);
        }
        if let Some(secret) = &self.secret {
            w.secret = secret.clone();
        }
        if let Some(s) = &self.session_id {
            w.session_id.clone_from(s);
        }
        if let Some(d) = &self.description {
            w.description.clone_from(d);
        }
        if let Some(h) = &self.headers {
            w.headers.clone_from(h);
        }
        if let Some(r) = self.rate_limit {
            w.rate_limit = r;
        }
        if let Some(active) = self.active {
            w.active = active;
            if active {
                w.disabled_reason = None;
            }
        }
        w.updated_at_ms = now_ms;
        w
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn registration() -> Registration {
        Registration {
            url: crate::target_url::TargetUrl::parse("https://n8n.example/hook").unwrap(),
            events: vec!["message.*".into()],
            secret: None,
            session_id: Some(crate::ids::SessionId::from_stored("s1")),
            description: None,
            headers: BTreeMap::from([("X-Team".into(), "a".into())]),
            active: true,
            rate_limit: Some(5.0),
        }
    }

    #[test]
    fn a_registration_becomes_the_stored_model_with_a_secret() {
        let w = registration().into_webhook(WebhookId::from_stored("wh_1"), 42);
        assert_eq!(
            (w.id.as_str(), w.url.as_str()),
            ("wh_1", "https://n8n.example/hook")
        );
        assert_eq!((w.created_at_ms, w.updated_at_ms), (42, 42));
        assert_eq!(w.disabled_reason, None);
        assert!(!w.secret.expose().is_empty(), "a secret is generated");
    }

    #[test]
    fn a_patch_changes_only_the_fields_given() {
        let mut w = registration().into_webhook(WebhookId::from_stored("wh_1"), 1);
        w.active = false;
        w.disabled_reason = Some("the endpoint answered 410 Gone".into());
        let patch = RegistrationPatch {
            description: Some(Some("d".into())),
            session_id: Some(None),
            rate_limit: Some(None),
            ..RegistrationPatch::default()
        };
        let out = patch.apply(&w, 9);
        assert_eq!(out.description.as_deref(), Some("d"));
        assert_eq!((out.session_id, out.rate_limit), (None, None));
        assert_eq!((out.url, out.events), (w.url.clone(), w.events.clone()));
        assert_eq!(out.headers, w.headers);
        assert_eq!(out.secret.expose(), w.secret.expose());
        assert_eq!((out.created_at_ms, out.updated_at_ms), (1, 9));
        assert!(!out.active, "an inactive registration stays off");
        assert!(out.disabled_reason.is_some());
        // Turning it back on clears the reason; turning it off keeps none.
        let on = RegistrationPatch {
            active: Some(true),
            ..RegistrationPatch::default()
        };
        let out = on.apply(&w, 10);
        assert!(out.active);
        assert_eq!(out.disabled_reason, None);
    }
}
