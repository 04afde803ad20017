//! Which provider hosts a backend may reach.
//!
//! A backend's `allowed_hosts` lists origins; a request is allowed only when its
//! scheme, host and port all equal one entry's. Everything else is denied before
//! any connection is made.

use thiserror::Error;
use url::Url;

/// One allowed `scheme://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// Why an origin or a request URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EgressError {
    #[error("'{0}' is not a valid URL: {1}")]
    InvalidUrl(String, String),
    #[error("scheme '{0}' is not allowed; use http or https")]
    Scheme(String),
    #[error("'{0}' has no host")]
    NoHost(String),
    #[error(
        "an allowed host must be an origin (scheme://host[:port]) with no path, query or credentials: '{0}'"
    )]
    NotAnOrigin(String),
    #[error("{0} is not in this backend's allowed_hosts")]
    NotAllowed(String),
}

impl Origin {
    /// Parses an `allowed_hosts` entry such as `https://api.twilio.com` or `http://127.0.0.1:13013`.
    pub fn parse(text: &str) -> Result<Origin, EgressError> {
        let url =
            Url::parse(text).map_err(|e| EgressError::InvalidUrl(text.into(), e.to_string()))?;
        let origin = Self::of(&url)?;
        let bare = (url.path() == "/" || url.path().is_empty())
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !bare {
            return Err(EgressError::NotAnOrigin(text.into()));
        }
        Ok(origin)
    }

    /// The origin a request URL targets.
    pub fn of(url: &Url) -> Result<Origin, EgressError> {
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(EgressError::Scheme(scheme));
        }
        let host = url
            .host_str()
            .ok_or_else(|| EgressError::NoHost(url.to_string()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| EgressError::NoHost(url.to_string()))?;
        Ok(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A backend's egress policy.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allowed: Vec<Origin>,
}

impl EgressPolicy {
    /// Builds the policy from `allowed_hosts` entries.
    pub fn new(entries: &[String]) -> Result<Self, EgressError> {
        Ok(EgressPolicy {
            allowed: entries
                .iter()
                .map(|e| Origin::parse(e))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Parses `url` and checks it against the allow-list.
    pub fn check(&self, url: &str) -> Result<Url, EgressError> {
        let parsed =
            Url::parse(url).map_err(|e| EgressError::InvalidUrl(url.into(), e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressError::InvalidUrl(
                url.into(),
                "credentials in URLs are not allowed".into(),
            ));
        }
        let origin = Origin::of(&parsed)?;
        if self.allowed.contains(&origin) {
            Ok(parsed)
        } else {
            Err(EgressError::NotAllowed(origin.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> EgressPolicy {
        EgressPolicy::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_scheme_host_and_port_exactly() {
        let p = policy(&["https://api.example.com", "http://127.0.0.1:13013"]);
        assert!(p.check("https://api.example.com/2010-04-01/x").is_ok());
        assert!(p.check("https://API.example.com:443/").is_ok());
        assert!(
            p.check("http://127.0.0.1:13013/cgi-bin/sendsms?x=1")
                .is_ok()
        );
        assert!(matches!(
            p.check("http://api.example.com/"),
            Err(EgressError::NotAllowed(_))
        ));
        assert!(matches!(
            p.check("https://api.example.com:8443/"),
            Err(EgressError::NotAllowed(_))
        ));
        assert!(matches!(
            p.check("http://127.0.0.1:13014/"),
            Err(EgressError::NotAllowed(_))
        ));
        assert!(matches!(
            p.check("https://evil.example.com/"),
            Err(EgressError::NotAllowed(_))
        ));
    }

    #[test]
    fn rejects_tricks_and_other_schemes() {
        let p = policy(&["https://api.example.com"]);
        assert!(p.check("https://api.example.com@evil.com/").is_err());
        assert!(p.check("https://user:pw@api.example.com/").is_err());
        assert!(matches!(
            p.check("file:///etc/passwd"),
            Err(EgressError::Scheme(_))
        ));
        assert!(p.check("not a url").is_err());
    }

    #[test]
    fn allowed_hosts_entries_must_be_origins() {
        assert!(Origin::parse("https://api.example.com/path").is_err());
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("https://u:p@x").is_err());
        assert_eq!(
            Origin::parse("HTTP://Example.com").unwrap().to_string(),
            "http://example.com:80"
        );
    }
}
