//! Query-string and form parameters, RapidSMS's `request.GET` / `request.POST`.

use crate::{HttpRequest, ParseError};

/// Decoded name/value pairs; the first occurrence of a name wins, as in RapidSMS.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse(bytes: &[u8]) -> Self {
        Params { pairs: form_urlencoded::parse(bytes).into_owned().collect() }
    }

    /// The request's query string.
    pub fn from_query(req: &HttpRequest) -> Self {
        Self::parse(req.query.as_bytes())
    }

    /// The request's form body; empty when the body is not a form.
    pub fn from_form(req: &HttpRequest) -> Self {
        let is_form = req
            .header("content-type")
            .is_none_or(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        if is_form { Self::parse(&req.body) } else { Self::default() }
    }

    /// Builds parameters from pairs, e.g. to encode them.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or a 400 naming the missing parameter.
    pub fn required(&self, name: &str) -> Result<String, ParseError> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            Some(_) => Err(ParseError::InvalidRequest(format!("parameter '{name}' is empty"))),
            None => Err(ParseError::InvalidRequest(format!("missing parameter '{name}'"))),
        }
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Appends a pair.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((name.into(), value.into()));
    }

    /// Percent-encodes the pairs as a query string or form body.
    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.pairs).finish()
    }
}

impl Params {
    /// Like [`Params::encode`], but `{{secret:NAME}}` references in values are
    /// left as they are, so the host can fill them in. Why a separate method: only
    /// values from the operator's configuration may carry references; a reference
    /// in a message text or a provider's field would let its author read the secret.
    pub fn encode_with_secret_refs(&self) -> String {
        self.pairs
            .iter()
            .map(|(name, value)| format!("{}={}", encode_component(name), encode_keeping_refs(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn encode_component(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Encodes `value` except for its well-formed `{{secret:NAME}}` references.
fn encode_keeping_refs(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some((before, reference, after)) = split_secret_ref(rest) {
        out.push_str(&encode_component(before));
        out.push_str(reference);
        rest = after;
    }
    out.push_str(&encode_component(rest));
    out
}

/// The first `{{secret:NAME}}` in `text` as (before, reference, after); the name
/// must be non-empty and free of braces so nothing else passes unencoded.
fn split_secret_ref(text: &str) -> Option<(&str, &str, &str)> {
    const OPEN: &str = "{{secret:";
    let start = text.find(OPEN)?;
    let name_len = text[start + OPEN.len()..].find("}}")?;
    let name = &text[start + OPEN.len()..start + OPEN.len() + name_len];
    if name.is_empty() || name.contains(['{', '}']) {
        return None;
    }
    let end = start + OPEN.len() + name_len + 2;
    Some((&text[..start], &text[start..end], &text[end..]))
}

/// Parameters whose values stay raw bytes after percent-decoding. Why: some
/// providers (Kannel) put text in a charset other than UTF-8 into the query,
/// which [`Params`] would already have decoded lossily as UTF-8.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    pairs: Vec<(String, Vec<u8>)>,
}

impl RawParams {
    /// Parses `application/x-www-form-urlencoded` bytes; `+` decodes to a space
    /// and `%XX` to the byte XX. Names are decoded as (lossy) UTF-8.
    pub fn parse(bytes: &[u8]) -> Self {
        let pairs = bytes
            .split(|b| *b == b'&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (name, value) = match part.iter().position(|b| *b == b'=') {
                    Some(i) => (&part[..i], &part[i + 1..]),
                    None => (part, &part[..0]),
                };
                (String::from_utf8_lossy(&decode_bytes(name)).into_owned(), decode_bytes(value))
            })
            .collect();
        RawParams { pairs }
    }

    /// The request's query string.
    pub fn from_query(req: &HttpRequest) -> Self {
        Self::parse(req.query.as_bytes())
    }

    /// The first value of `name`, as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, Vec<u8>)] {
        &self.pairs
    }
}

/// Percent-decodes one form component to bytes, `+` meaning a space.
fn decode_bytes(component: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = component.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_params_keep_non_utf8_bytes() {
        let p = RawParams::parse(b"text=%00%E9%D8%3D%DE%00&id=%2B255+1&flag&text=second");
        assert_eq!(p.get("text"), Some(&[0x00, 0xE9, 0xD8, 0x3D, 0xDE, 0x00][..]));
        assert_eq!(p.get("id"), Some(&b"+255 1"[..]));
        assert_eq!(p.get("flag"), Some(&b""[..]));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.pairs().len(), 4);
    }

    #[test]
    fn secret_refs_survive_encoding_and_nothing_else_does() {
        let params = Params::from_pairs(vec![
            ("password".into(), "{{secret:kannel_password}}".into()),
            ("user".into(), "a b&{{secret:}}{{secret:x".into()),
            ("mixed".into(), "pre {{secret:a}}/{{secret:b}}".into()),
        ]);
        assert_eq!(
            params.encode_with_secret_refs(),
            "password={{secret:kannel_password}}&user=a+b%26%7B%7Bsecret%3A%7D%7D%7B%7Bsecret%3Ax\
             &mixed=pre+{{secret:a}}%2F{{secret:b}}"
        );
    }
}
