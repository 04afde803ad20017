//! An uploaded backend's settings: what it may reach, its configuration,
//! secrets and limits, stored as JSON beside each version. `test-backend
//! --settings` reads the same file, so fixtures run as an upload runs them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{BackendConfig, SecretValue};

/// What an upload carries besides the component (the `config` part, JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: Option<serde_json::Map<String, serde_json::Value>>,
}

impl UploadSettings {
    /// The settings as a backend declaration.
    pub fn to_backend_config(&self, name: &str, source: &str) -> Result<BackendConfig, String> {
        let config: toml::Table = serde_json::from_value(serde_json::Value::Object(self.config.clone()))
            .map_err(|e| format!("config cannot be represented (nulls are not allowed): {e}"))?;
        let limits: Option<toml::Table> = match &self.limits {
            None => None,
            Some(l) => {
                Some(serde_json::from_value(serde_json::Value::Object(l.clone())).map_err(|e| format!("limits: {e}"))?)
            }
        };
        Ok(BackendConfig {
            name: name.to_string(),
            component: source.to_string(),
            allowed_hosts: self.allowed_hosts.clone(),
            config,
            secrets: self.secrets.iter().map(|(k, v)| (k.clone(), SecretValue::Inline(v.clone()))).collect(),
            limits,
        })
    }

    /// The settings with secret values hidden, for API output.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "allowed_hosts": self.allowed_hosts,
            "config": self.config,
            "secrets": crate::secrets::redacted_names(self.secrets.keys()),
            "limits": self.limits,
        })
    }
}
