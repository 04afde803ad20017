//! Which provider hosts a backend may reach.
//!
//! A backend's `allowed_hosts` lists origins; a request is allowed only when its
//! scheme, host and port all equal one entry's. Everything else is denied before
//! any connection is made.
//!
//! Addresses are checked too: loopback, private, link-local (the cloud metadata
//! address 169.254.169.254 among them), CGNAT, multicast, reserved and
//! unspecified addresses are never reached, unless an entry names that literal
//! address (`http://127.0.0.1:13013` for a Kannel on the same machine). Host
//! names are resolved by [`PublicResolver`], which refuses names resolving to
//! such addresses, and the connection goes to the address it checked, so there
//! is no window for DNS rebinding.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    #[error("an allowed host must be an origin (scheme://host[:port]) with no path, query or credentials: '{0}'")]
    NotAnOrigin(String),
    #[error("{0} is not in this backend's allowed_hosts")]
    NotAllowed(String),
}

/// What kind of non-public address `ip` is, if it is one.
pub fn special_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => special_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let first = a.segments()[0];
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if a.is_multicast() {
                Some("multicast")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first == 0x2001 && a.segments()[1] == 0x0db8 {
                Some("documentation")
            } else if first == 0x0064 && a.segments()[1] == 0xff9b {
                Some("NAT64")
            } else {
                None
            }
        }
    }
}

fn special_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o1, o2, o3, _] = a.octets();
    Some(if a.is_loopback() {
        "loopback"
    } else if a.is_private() {
        "private"
    } else if a.is_link_local() {
        "link-local"
    } else if o1 == 100 && (64..128).contains(&o2) {
        "CGNAT"
    } else if a.is_multicast() {
        "multicast"
    } else if a.is_unspecified() || o1 == 0 {
        "unspecified"
    } else if a.is_broadcast()
        || o1 >= 240
        || a.is_documentation()
        || (o1 == 198 && (o2 == 18 || o2 == 19))
        || (o1 == 192 && o2 == 0 && o3 == 0)
    {
        "reserved"
    } else {
        return None;
    })
}

/// A host name refused because it resolves to a non-public address: typed,
/// so the transport recognises it among the HTTP client's error causes.
#[derive(Debug, Error)]
#[error("denied by egress policy: {host} resolves to {ip} ({kind})")]
pub struct PolicyDenied {
    pub host: String,
    pub ip: IpAddr,
    pub kind: &'static str,
}

/// Resolves host names for backend requests, refusing any name that resolves
/// to a non-public address.
pub struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some((ip, kind)) = addrs.iter().find_map(|a| Some((a.ip(), special_kind(a.ip())?))) {
                let e: Box<dyn std::error::Error + Send + Sync> = Box::new(PolicyDenied { host, ip, kind });
                return Err(e);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl Origin {
    /// Parses an `allowed_hosts` entry such as `https://api.twilio.com` or `http://127.0.0.1:13013`.
    pub fn parse(text: &str) -> Result<Origin, EgressError> {
        let url = Url::parse(text).map_err(|e| EgressError::InvalidUrl(text.into(), e.to_string()))?;
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
        let host = url.host_str().ok_or_else(|| EgressError::NoHost(url.to_string()))?;
        let port = url.port_or_known_default().ok_or_else(|| EgressError::NoHost(url.to_string()))?;
        Ok(Origin { scheme, host: host.to_ascii_lowercase(), port })
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
        Ok(EgressPolicy { allowed: entries.iter().map(|e| Origin::parse(e)).collect::<Result<_, _>>()? })
    }

    /// Parses `url` and checks it against the allow-list.
    pub fn check(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = Url::parse(url).map_err(|e| EgressError::InvalidUrl(url.into(), e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressError::InvalidUrl(url.into(), "credentials in URLs are not allowed".into()));
        }
        let origin = Origin::of(&parsed)?;
        if !self.allowed.contains(&origin) {
            return Err(EgressError::NotAllowed(origin.to_string()));
        }
        // A literal address passes only through an entry naming it, which is
        // the operator's explicit grant; names are checked when resolved.
        Ok(parsed)
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
        assert!(p.check("http://127.0.0.1:13013/cgi-bin/sendsms?x=1").is_ok());
        assert!(matches!(p.check("http://api.example.com/"), Err(EgressError::NotAllowed(_))));
        assert!(matches!(p.check("https://api.example.com:8443/"), Err(EgressError::NotAllowed(_))));
        assert!(matches!(p.check("http://127.0.0.1:13014/"), Err(EgressError::NotAllowed(_))));
        assert!(matches!(p.check("https://evil.example.com/"), Err(EgressError::NotAllowed(_))));
    }

    #[test]
    fn rejects_tricks_and_other_schemes() {
        let p = policy(&["https://api.example.com"]);
        assert!(p.check("https://api.example.com@evil.com/").is_err());
        assert!(p.check("https://user:pw@api.example.com/").is_err());
        assert!(matches!(p.check("file:///etc/passwd"), Err(EgressError::Scheme(_))));
        assert!(p.check("not a url").is_err());
    }

    #[test]
    fn non_public_addresses_are_classified() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("fd00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            assert_eq!(special_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert_eq!(special_kind(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn literal_entries_grant_their_own_address_only() {
        let p = policy(&["http://127.0.0.1:13013", "http://10.0.0.8:80"]);
        assert!(p.check("http://127.0.0.1:13013/x").is_ok());
        assert!(p.check("http://10.0.0.8/x").is_ok());
        assert!(matches!(p.check("http://127.0.0.2:13013/"), Err(EgressError::NotAllowed(_))));
        // The port is still part of the grant.
        assert!(matches!(p.check("http://127.0.0.1:22/"), Err(EgressError::NotAllowed(_))));
    }

    #[test]
    fn allowed_hosts_entries_must_be_origins() {
        assert!(Origin::parse("https://api.example.com/path").is_err());
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("https://u:p@x").is_err());
        assert_eq!(Origin::parse("HTTP://Example.com").unwrap().to_string(), "http://example.com:80");
    }
}
