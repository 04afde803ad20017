//! `smsgw backend ...`: the admin API from the command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

/// Where the gateway is and how to authenticate.
#[derive(clap::Args)]
pub struct Connection {
    /// The gateway's URL.
    #[arg(long, env = "SMSGW_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin bearer token.
    #[arg(long, env = "SMSGW_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum BackendCommand {
    /// Upload a component (new backend or new version) with its settings.
    Upload {
        name: String,
        /// The `.wasm` component.
        component: PathBuf,
        /// JSON settings: {"allowed_hosts": [...], "config": {...}, "secrets": {...}, "limits": {...}}.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Fixture file the component must pass before it is activated.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Replace the settings of the active component (a new version).
    Configure { name: String, config: PathBuf },
    /// List backends: a table, or the gateway's JSON with `--json`.
    List {
        /// Print the gateway's JSON answer (every version, settings, counters).
        #[arg(long)]
        json: bool,
    },
    /// Show one backend with its versions.
    Show { name: String },
    /// Activate the previous version, or `--version N`.
    Rollback {
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Remove an uploaded backend; its queued messages fail.
    Delete { name: String },
    /// Dry run: a JSON file with {"request": {...}} or {"message": {...}, "mocks": [...]}.
    Try { name: String, input: PathBuf },
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs one admin command and prints the gateway's JSON answer.
pub async fn run(conn: Connection, command: BackendCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base = format!("{}/api/v1/admin/backends", conn.url.trim_end_matches('/'));
    let token = conn.token.as_deref().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        anyhow::anyhow!("no admin token: pass --token or set SMSGW_ADMIN_TOKEN (the gateway's admin_token_file or SMSGW_ADMIN_TOKEN)")
    })?;
    let auth = format!("Bearer {token}");
    let as_table = matches!(command, BackendCommand::List { json: false });
    let request = match command {
        BackendCommand::Upload { name, component, config, fixtures } => {
            let mut form = reqwest::multipart::Form::new()
                .part("component", reqwest::multipart::Part::bytes(read(&component)?).file_name("component.wasm"));
            if let Some(c) = config {
                form = form.part("config", reqwest::multipart::Part::bytes(read(&c)?));
            }
            if let Some(f) = fixtures {
                form = form.part("fixtures", reqwest::multipart::Part::bytes(read(&f)?));
            }
            client.put(format!("{base}/{name}")).multipart(form)
        }
        BackendCommand::Configure { name, config } => {
            client.put(format!("{base}/{name}")).header("content-type", "application/json").body(read(&config)?)
        }
        BackendCommand::List { .. } => client.get(&base),
        BackendCommand::Show { name } => client.get(format!("{base}/{name}")),
        BackendCommand::Rollback { name, version } => {
            client.post(format!("{base}/{name}/rollback")).json(&serde_json::json!({ "version": version }))
        }
        BackendCommand::Delete { name } => client.delete(format!("{base}/{name}")),
        BackendCommand::Try { name, input } => {
            client.post(format!("{base}/{name}/try")).header("content-type", "application/json").body(read(&input)?)
        }
    };
    let response = request.header("authorization", auth).send().await.with_context(|| {
        format!("cannot reach the gateway at {}: is it running there? (set --url or SMSGW_URL)", conn.url)
    })?;
    let status = response.status();
    let body = response.text().await?;
    if status.is_success() && as_table {
        let list: serde_json::Value =
            serde_json::from_str(&body).context("the gateway's backend list is not JSON (is --url the gateway?)")?;
        print!("{}", backend_table(&list));
        return Ok(());
    }
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or(body.clone()))
        .unwrap_or(body);
    if status.is_success() {
        println!("{pretty}");
        Ok(())
    } else if status == reqwest::StatusCode::UNAUTHORIZED {
        anyhow::bail!("the gateway refused the admin token (401)")
    } else {
        anyhow::bail!("the gateway answered {status}: {pretty}")
    }
}

/// One line per backend, for people; `--json` keeps every detail for scripts.
fn backend_table(list: &serde_json::Value) -> String {
    let backends = list["backends"].as_array().cloned().unwrap_or_default();
    if backends.is_empty() {
        return "no backends\n".to_string();
    }
    let header = ["NAME", "SOURCE", "VERSION", "VERSIONS", "STATE", "SIZE", "SHA256"].map(String::from);
    let mut rows = vec![header.to_vec()];
    for b in &backends {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let state = if !b["mounted"].as_bool().unwrap_or(false) {
            "not mounted".to_string()
        } else if !b["paused_until"].is_null() {
            "paused".to_string()
        } else {
            "serving".to_string()
        };
        let versions = b["versions"].as_array().map_or("-".to_string(), |v| v.len().to_string());
        let sha = text(&b["sha256"]).chars().take(12).collect::<String>();
        rows.push(vec![
            text(&b["name"]),
            text(&b["source"]),
            text(&b["active_version"]),
            versions,
            state,
            text(&b["size"]),
            sha,
        ]);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::backend_table;

    #[test]
    fn list_is_a_table_with_one_line_per_backend() {
        let list = serde_json::json!({ "backends": [
            { "name": "kannel", "source": "config", "mounted": true, "active_version": null, "versions": [],
              "sha256": "0123456789abcdef0123", "size": 140000, "paused_until": null },
            { "name": "acme", "source": "upload", "mounted": true, "active_version": 3, "versions": [{}, {}, {}],
              "sha256": "fedcba9876543210", "size": 18000000, "paused_until": 1700000000000u64 },
        ]});
        let table = backend_table(&list);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("NAME"), "{table}");
        assert!(lines[1].starts_with("kannel ") && lines[1].contains("serving") && lines[1].contains("0123456789ab"));
        assert!(!lines[1].contains("0123456789abc"), "sha256 shortened: {table}");
        assert!(lines[2].contains("acme") && lines[2].contains(" 3 ") && lines[2].contains("paused"), "{table}");
        assert_eq!(backend_table(&serde_json::json!({ "backends": [] })), "no backends\n");
    }
}
