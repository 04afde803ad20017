//! Twilio's `X-Twilio-Signature`: HMAC-SHA1 over the URL and the POST parameters.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use smsgw_guest::http::base64_encode;

/// The signature Twilio sends for a request to `url` with form `params`:
/// the URL, then each parameter's name and value, sorted by name then value
/// (identical pairs once, as Twilio's own libraries do), HMAC-SHA1 keyed with
/// the account's auth token, in base64.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut data = url.to_string();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    base64_encode(&mac.finalize().into_bytes())
}

/// True when `signature` matches `url` as given, without its port, or with its
/// scheme's default port: Twilio signs the URL it was configured with, and
/// proxies disagree on whether `:443` is part of it.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let mut candidates = vec![url.to_string()];
    candidates.extend(without_port(url));
    candidates.extend(with_default_port(url));
    // Check every candidate so the time taken does not depend on which matched.
    candidates
        .iter()
        .map(|candidate| constant_time_eq(compute(auth_token, candidate, params).as_bytes(), signature.as_bytes()))
        .fold(false, |any, ok| any | ok)
}

/// Splits `url` into (scheme with "://", authority, rest).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let after = &url[scheme_end..];
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some((&url[..scheme_end], &after[..authority_len], &after[authority_len..]))
}

/// The port of an authority, if it names one (IPv6 brackets respected).
fn port_split(authority: &str) -> Option<(&str, &str)> {
    let colon = authority.rfind(':')?;
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let inside_brackets = host.contains('[') && !host.contains(']');
    (is_port && !inside_brackets).then_some((host, port))
}

/// `url` without an explicit port, when it has one.
fn without_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split_url(url)?;
    let (host, _) = port_split(authority)?;
    Some(format!("{scheme}{host}{rest}"))
}

/// `url` with its scheme's default port, when it has none.
fn with_default_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split_url(url)?;
    if port_split(authority).is_some() {
        return None;
    }
    let port = match scheme.to_ascii_lowercase().as_str() {
        "https://" => 443,
        "http://" => 80,
        _ => return None,
    };
    Some(format!("{scheme}{authority}:{port}{rest}"))
}

/// Compares without stopping at the first difference, so an attacker cannot
/// find the right signature byte by byte from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    /// The example from Twilio's security documentation.
    #[test]
    fn matches_twilios_documented_example() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(compute("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn order_of_parameters_does_not_matter_but_values_do() {
        let a = pairs(&[("b", "2"), ("a", "1")]);
        let b = pairs(&[("a", "1"), ("b", "2")]);
        assert_eq!(compute("t", "https://x/", &a), compute("t", "https://x/", &b));
        assert_ne!(compute("t", "https://x/", &a), compute("t", "https://x/", &pairs(&[("a", "1")])));
    }

    #[test]
    fn ports_are_tried_both_ways() {
        let params = pairs(&[("Body", "hi")]);
        let signed_without = compute("t", "https://gw.example/backends/twilio/", &params);
        assert!(verify("t", "https://gw.example:443/backends/twilio/", &params, &signed_without));
        let signed_with = compute("t", "https://gw.example:443/backends/twilio/", &params);
        assert!(verify("t", "https://gw.example/backends/twilio/", &params, &signed_with));
        assert!(!verify("t", "https://gw.example/backends/twilio/", &params, "bm9wZQ=="));
        assert!(!verify("other", "https://gw.example/backends/twilio/", &params, &signed_without));
    }

    #[test]
    fn url_surgery_respects_ipv6_and_queries() {
        assert_eq!(without_port("http://[::1]:8080/a?b=c:1"), Some("http://[::1]/a?b=c:1".into()));
        assert_eq!(without_port("http://[::1]/a"), None);
        assert_eq!(with_default_port("https://h/a?x=1"), Some("https://h:443/a?x=1".into()));
        assert_eq!(with_default_port("https://h:8443/a"), None);
    }
}
