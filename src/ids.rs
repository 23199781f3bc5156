//! Identifiers: a short type prefix and a time-ordered UUID (v7), so ids sort by creation time
//! and a stray id says what it names.
//!
//! Each kind of id is its own type ([`WebhookId`], [`EventId`], [`DeliveryId`]), so a delivery's
//! id cannot be passed where a registration's is meant. Ids are typed from the edge inward:
//! minted here by `new()`, read back from the store as stored (the column decodes straight into
//! the type), and parsed once where they come from outside (a URL's path) with `parse`. On the
//! wire and in the database an id is its text, unchanged (serde and sqlx see through the type).

use uuid::Uuid;

fn prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// Is `text` an id of this prefix as [`prefixed`] writes them: `<prefix>_` and 32 lowercase hex
/// digits?
fn well_formed(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// An id given from outside that is not one of this kind: no such thing can exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an id of this kind")]
pub struct NotAnId(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with (before the `_`).
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: the prefix and a time-ordered UUIDv7.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(prefixed($prefix))
            }

            /// An id given from outside (a URL's path): only the form this module writes is
            /// one; anything else cannot name a stored thing.
            pub fn parse(text: &str) -> Result<Self, NotAnId> {
                if well_formed(text, $prefix) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(NotAnId(text.to_owned()))
                }
            }

            /// An id taken as it is, without checking its form: one read back from the store,
            /// or a fixture in a test.
            pub fn from_stored(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NotAnId;
            fn try_from(text: &str) -> Result<Self, NotAnId> {
                Self::parse(text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// `wh_…`: a registration.
    WebhookId,
    "wh"
);
id_type!(
    /// `evt_…`: an ingested event.
    EventId,
    "evt"
);
id_type!(
    /// `dlv_…`: one delivery of one event to one registration.
    DeliveryId,
    "dlv"
);

/// A WhatsApp session's name, as engines send it and registrations filter on: 1 to
/// [`SessionId::MAX_LEN`] characters, not only white space, no control character. The rule
/// lives here once; ingest and registration each word their own problem when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Most characters (not bytes) a session id may have.
    pub const MAX_LEN: usize = 128;

    /// A session id given from outside (an ingested event, a registration, an engine's
    /// delivery), if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        (!text.trim().is_empty()
            && text.chars().count() <= Self::MAX_LEN
            && !text.chars().any(char::is_control))
        .then(|| Self(text.to_owned()))
    }

    /// A session id taken as it is, without checking it: one read back from the store, or a
    /// fixture in a test.
    pub fn from_stored(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for SessionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SessionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_back() {
        let id = WebhookId::new();
        assert!(id.as_str().starts_with("wh_"));
        assert_eq!(WebhookId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        assert!(DeliveryId::parse(DeliveryId::new().as_str()).is_ok());
        assert!(EventId::parse(EventId::new().as_str()).is_ok());
    }

    #[test]
    fn other_text_is_not_an_id() {
        let dlv = DeliveryId::new();
        for text in [
            "",
            "wh_",
            "wh_1",
            dlv.as_str(),
            "wh_0193ABCDEF0123456789abcdef012345",
            "wh_0193abcdef0123456789abcdef0123456",
            "xwh_0193abcdef0123456789abcdef01234",
        ] {
            assert!(WebhookId::parse(text).is_err(), "{text}");
        }
        assert!(WebhookId::parse("wh_0193abcdef0123456789abcdef012345").is_ok());
    }

    #[test]
    fn session_ids_are_1_to_128_printable_characters() {
        for ok in ["s1", "shop main", &"é".repeat(128)] {
            assert_eq!(SessionId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "   ", "a\nb", "tab\t", &"s".repeat(129)] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
