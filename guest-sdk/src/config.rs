//! Typed access to the operator's configuration table (JSON on the wire).

use serde_json::{Map, Value};

/// The backend's configuration; getters name the key in their errors so the
/// operator knows what to fix.
#[derive(Debug, Clone, Default)]
pub struct Config {
    table: Map<String, Value>,
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConfigError> for crate::ParseError {
    fn from(e: ConfigError) -> Self {
        crate::ParseError::Config(e.0)
    }
}

impl From<ConfigError> for crate::SendError {
    fn from(e: ConfigError) -> Self {
        crate::SendError::Config(e.0)
    }
}

impl Config {
    /// Parses the JSON object the host passes in `BackendContext::config`.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str(json) {
            Ok(Value::Object(table)) => Ok(Config { table }),
            Ok(_) => Err(ConfigError("configuration is not a table".into())),
            Err(e) => Err(ConfigError(format!("configuration is not valid JSON: {e}"))),
        }
    }

    /// The raw value of `key`.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.table.get(key)
    }

    /// A string value, `None` when absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ConfigError(format!("config key '{key}' must be a string"))),
        }
    }

    /// A string value or `default`.
    pub fn string_or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.string(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A string value that must be present.
    pub fn required(&self, key: &str) -> Result<String, ConfigError> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ConfigError(format!("config key '{key}' is required"))),
        }
    }

    /// A boolean, accepting `true`/`false` and their string spellings.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ConfigError(format!("config key '{key}' must be true or false"))),
        }
    }

    /// A table of strings (e.g. Kannel's `sendsms_params`), in key order.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, ConfigError> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    _ => Err(ConfigError(format!("config key '{key}.{k}' must be a string"))),
                })
                .collect(),
            Some(_) => Err(ConfigError(format!("config key '{key}' must be a table"))),
        }
    }
}
