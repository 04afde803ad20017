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
