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
    /// List mounted backends.
    List,
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
        BackendCommand::List => client.get(&base),
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
