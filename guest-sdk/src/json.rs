//! JSON request bodies that cannot smuggle `{{secret:NAME}}` references.
//!
//! The host fills in `{{secret:NAME}}` anywhere in a request body. Text from
//! users or providers (an SMS body, a sender address) must therefore never reach
//! a body with such a reference intact, or whoever wrote it could have a secret
//! sent to them.

use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter};
use std::io;

/// Serialises `value` compactly with every `{` inside a string written as
/// `\u007b`: the same JSON to any parser, but no secret reference for the host.
pub fn to_string_untrusted(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, NoOpenBraces);
    // Writing a `Value` into a `Vec` cannot fail.
    if serde::Serialize::serialize(value, &mut serializer).is_err() {
        return "null".into();
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Serialises an object whose `trusted` members (from the operator's
/// configuration) keep their secret references and whose `untrusted` members
/// cannot carry any; a name in both takes the untrusted value.
pub fn object_body(trusted: &serde_json::Map<String, Value>, untrusted: &serde_json::Map<String, Value>) -> String {
    let mut members = Vec::new();
    for (name, value) in trusted.iter().filter(|(name, _)| !untrusted.contains_key(*name)) {
        members.push(format!("{}:{}", Value::String(name.clone()), value));
    }
    for (name, value) in untrusted {
        let name = to_string_untrusted(&Value::String(name.clone()));
        members.push(format!("{name}:{}", to_string_untrusted(value)));
    }
    format!("{{{}}}", members.join(","))
}

/// A compact formatter that escapes `{` in strings.
struct NoOpenBraces;

impl Formatter for NoOpenBraces {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut parts = fragment.split('{');
        if let Some(first) = parts.next() {
            CompactFormatter.write_string_fragment(writer, first)?;
        }
        for part in parts {
            writer.write_all(b"\\u007b")?;
            CompactFormatter.write_string_fragment(writer, part)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn untrusted_strings_lose_their_references_but_not_their_meaning() {
        let value = json!({"content": "{{secret:pw}} {x}", "list": ["{{secret:a}}"]});
        let text = to_string_untrusted(&value);
        assert!(!text.contains("{{secret:"));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn object_body_keeps_trusted_references_only() {
        let trusted = json!({"key": "{{secret:api}}", "content": "ignored"});
        let untrusted = json!({"content": "{{secret:api}}"});
        let text = object_body(trusted.as_object().unwrap(), untrusted.as_object().unwrap());
        assert_eq!(text.matches("{{secret:api}}").count(), 1);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, json!({"key": "{{secret:api}}", "content": "{{secret:api}}"}));
    }
}
