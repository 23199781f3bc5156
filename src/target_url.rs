//! A registration's target URL: parsed once, when the registration is checked, and carried as
//! a parsed URL through the store's models to every attempt, which sends to it without parsing
//! it again. Stored as its text (the `url` crate's serialisation, which parses back the same).

use url::Url;

/// Most bytes a target URL may have.
pub const MAX_URL_LEN: usize = 2048;

/// An absolute `http` or `https` URL with a host, no user name or password and no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(Url);

/// Why a text is not a target URL (`registration` words each as a problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// Longer than [`MAX_URL_LEN`] bytes (its length).
    TooLong(usize),
    /// Not an absolute URL at all.
    NotAUrl(url::ParseError),
    /// Neither http nor https (the scheme).
    Scheme(String),
    NoHost,
    /// Carries a user name or password.
    Credentials,
    Fragment,
}

impl TargetUrl {
    /// A target URL given from outside (a registration), if it is one.
    pub fn parse(raw: &str) -> Result<Self, UrlProblem> {
        if raw.len() > MAX_URL_LEN {
            return Err(UrlProblem::TooLong(raw.len()));
        }
        let url = Url::parse(raw).map_err(UrlProblem::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlProblem::Scheme(url.scheme().to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlProblem::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlProblem::Credentials);
        }
        if url.fragment().is_some() {
            return Err(UrlProblem::Fragment);
        }
        Ok(Self(url))
    }

    /// A target URL as the store has it (written by [`TargetUrl::as_str`]): only parsed, the
    /// registration's rules are not checked again.
    pub fn from_stored(text: &str) -> Result<Self, url::ParseError> {
        Url::parse(text).map(Self)
    }

    /// The parsed URL (what an attempt sends to).
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The text stored and shown.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for TargetUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for TargetUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for TargetUrl {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TargetUrl {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_text_parses_back_the_same() {
        let t = TargetUrl::parse("HTTPS://N8N.example:443/webhook/a b?x=1").unwrap();
        assert_eq!(t.as_str(), "https://n8n.example/webhook/a%20b?x=1");
        assert_eq!(TargetUrl::from_stored(t.as_str()).unwrap(), t);
    }

    #[test]
    fn what_is_not_a_target_url() {
        let long = format!("https://x.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            TargetUrl::parse(&long),
            Err(UrlProblem::TooLong(_))
        ));
        assert!(matches!(
            TargetUrl::parse("/hook"),
            Err(UrlProblem::NotAUrl(_))
        ));
        assert_eq!(
            TargetUrl::parse("ftp://x.example/"),
            Err(UrlProblem::Scheme("ftp".into()))
        );
        assert_eq!(
            TargetUrl::parse("https://u:p@x.example/"),
            Err(UrlProblem::Credentials)
        );
        assert_eq!(
            TargetUrl::parse("https://x.example/#f"),
            Err(UrlProblem::Fragment)
        );
    }
}
