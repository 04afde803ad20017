//! Operator secrets: substituted into outbound requests by the host, redacted
//! from everything the gateway logs, stores or returns.
//!
//! A backend refers to a secret as `{{secret:NAME}}` (e.g. in a URL parameter or
//! a Basic-auth header); the component never sees the value.

use std::fmt;

/// A backend's secrets by name.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
    /// Every form the values take where the host writes them, computed once:
    /// redaction runs on every provider response.
    forms: Vec<String>,
}

/// Not shown: this type holds passwords.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values.iter().map(|(n, _)| n)).finish()
    }
}

/// How a substituted value is escaped for its surroundings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is (header values).
    None,
    /// Percent-encoded (URLs, form bodies).
    Url,
    /// Escaped for the inside of a JSON string.
    Json,
}

/// A value raw, form- and percent-encoded, JSON-escaped and in base64.
fn forms_of(value: &str) -> [String; 5] {
    use base64::Engine as _;
    let form: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let percent = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    let json = quoted[1..quoted.len() - 1].to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(value);
    [value.to_string(), form, percent, json, b64]
}

/// What replaces a secret's value wherever it would be shown.
pub const REDACTED: &str = "[redacted]";

const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";

impl Secrets {
    /// Secrets from name/value pairs. Empty values are ignored: they would
    /// redact every empty string.
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut values: Vec<_> = values.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        // Longest first, so a secret containing another is redacted whole.
        values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let forms = values.iter().flat_map(|(_, value)| forms_of(value)).collect();
        Secrets { values, forms }
    }

    /// True when there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Replaces every `{{secret:NAME}}` in `text` with the value. An unknown
    /// name is an error naming it, so a typo fails loudly instead of sending
    /// the placeholder. Percent-encoded references are deliberately left alone:
    /// encoding is what a backend does to message text, and a reference typed
    /// into an SMS must never be filled in (it would send the secret to a phone).
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        self.substitute_in(text, Escape::None)
    }

    /// Like [`Secrets::substitute`], escaping values put in place of plain
    /// `{{secret:NAME}}` references for where they land (a URL, a JSON string),
    /// so a value containing `&` or `"` cannot change the request's structure.
    pub fn substitute_in(&self, text: &str, escape: Escape) -> Result<String, String> {
        if !text.contains(OPEN) {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        while let Some(found) = text[pos..].find(OPEN) {
            let start = pos + found;
            out.push_str(&text[pos..start]);
            let name_start = start + OPEN.len();
            let end = text[name_start..]
                .find(CLOSE)
                .map(|e| name_start + e)
                .ok_or_else(|| "unterminated {{secret:...}} reference".to_string())?;
            let name = &text[name_start..end];
            let value = self
                .values
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("unknown secret '{name}'"))?;
            match escape {
                Escape::None => out.push_str(value),
                Escape::Url => out.extend(form_urlencoded::byte_serialize(value.as_bytes())),
                Escape::Json => {
                    let quoted = serde_json::Value::String(value.clone()).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
            }
            pos = end + CLOSE.len();
        }
        out.push_str(&text[pos..]);
        Ok(out)
    }

    /// Every form a secret's value can take where the host puts it: raw,
    /// form- and percent-encoded (URLs, form bodies), JSON-escaped, base64.
    fn forms<'a>(&'a self, extra: &'a [String]) -> impl Iterator<Item = &'a str> + 'a {
        self.forms.iter().chain(extra).map(String::as_str)
    }

    /// `text` with every secret value, in any of the forms the host writes it
    /// in, and every string in `extra` (e.g. a filled-in `Authorization`
    /// value) replaced by [`REDACTED`].
    pub fn redact_with(&self, text: &str, extra: &[String]) -> String {
        let mut out = text.to_string();
        for form in self.forms(extra) {
            if form.len() >= 3 && out.contains(form) {
                out = out.replace(form, REDACTED);
            }
        }
        out
    }

    /// `text` with every secret value (in any form the host writes it in) replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.redact_with(text, &[])
    }

    /// Like [`Secrets::redact_with`] for bytes that need not be UTF-8 (a provider's response body).
    pub fn redact_bytes(&self, bytes: &[u8], extra: &[String]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for form in self.forms(extra) {
            let needle = form.as_bytes();
            if needle.len() < 3 {
                continue;
            }
            let mut result = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(needle) {
                    result.extend_from_slice(REDACTED.as_bytes());
                    i += needle.len();
                } else {
                    result.push(out[i]);
                    i += 1;
                }
            }
            out = result;
        }
        out
    }

    /// True when `text` contains any secret value: the check behind "a secret
    /// never leaks" tests.
    pub fn leaks_into(&self, text: &str) -> bool {
        self.redact(text) != text
    }
}

/// Secret names with every value hidden, for API output.
pub fn redacted_names<'a>(names: impl IntoIterator<Item = &'a String>) -> serde_json::Map<String, serde_json::Value> {
    names.into_iter().map(|name| (name.clone(), serde_json::Value::from(REDACTED))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::new([("pw".to_string(), "s3cr3t&x".to_string()), ("empty".to_string(), String::new())])
    }

    #[test]
    fn substitutes_known_and_refuses_unknown_names() {
        let s = secrets();
        assert_eq!(s.substitute("a={{secret:pw}}&b=1").unwrap(), "a=s3cr3t&x&b=1");
        assert_eq!(s.substitute("no refs").unwrap(), "no refs");
        assert_eq!(s.substitute("{{secret:nope}}").unwrap_err(), "unknown secret 'nope'");
        assert!(s.substitute("{{secret:pw").is_err());
        // An encoded reference is message text, not the operator's: left alone.
        assert_eq!(s.substitute("pw=%7B%7Bsecret%3Apw%7D%7D").unwrap(), "pw=%7B%7Bsecret%3Apw%7D%7D");
        assert_eq!(s.substitute_in("a?pw={{secret:pw}}", Escape::Url).unwrap(), "a?pw=s3cr3t%26x");
        let quoted = Secrets::new([("q".to_string(), "a\"b".to_string())]);
        assert_eq!(quoted.substitute_in(r#"{"p":"{{secret:q}}"}"#, Escape::Json).unwrap(), r#"{"p":"a\"b"}"#);
    }

    #[test]
    fn redacts_every_form_the_host_writes() {
        let s = secrets();
        assert_eq!(s.redact("pw=s3cr3t&x"), "pw=[redacted]");
        assert_eq!(s.redact("pw=s3cr3t%26x"), "pw=[redacted]");
        let quoted = Secrets::new([("q".to_string(), "a\"b/c".to_string())]);
        assert_eq!(quoted.redact(r#"{"p":"a\"b/c"}"#), r#"{"p":"[redacted]"}"#);
        assert_eq!(quoted.redact("p=a%22b%2Fc"), "p=[redacted]");
        assert_eq!(quoted.redact("YSJiL2M="), "[redacted]", "base64");
        assert_eq!(s.redact_with("Basic dXNlcjpwdw==", &["dXNlcjpwdw==".into()]), "Basic [redacted]");
        assert_eq!(s.redact_bytes(b"\xffs3cr3t&x\x00", &[]), b"\xff[redacted]\x00".to_vec());
        assert!(s.leaks_into("...s3cr3t&x..."));
        assert!(!s.leaks_into("nothing here"));
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
