//! `smsgw test-backend`: the conformance runner for backend authors.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::fixtures::{FixtureFile, FixtureRunner};

/// Runs fixture files against a component in the real sandbox; returns
/// whether every case passed (the caller turns that into the exit code).
pub async fn test_backend(component: &Path, fixtures: &[PathBuf], config: Option<&Path>) -> anyhow::Result<bool> {
    let wasm = std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let runner = FixtureRunner::new()?;
    let compiled =
        runner.compile(&wasm).with_context(|| format!("{} is not an acceptable backend", component.display()))?;
    let override_config = match config {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) => anyhow::bail!("{} must hold a JSON object", path.display()),
                Err(e) => anyhow::bail!("{} is not valid JSON: {e}", path.display()),
            }
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for path in fixtures {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut file: FixtureFile =
            serde_json::from_str(&text).with_context(|| format!("{} is not a valid fixture file", path.display()))?;
        if let Some(c) = &override_config {
            file.config = c.clone();
        }
        let report = runner.run(&compiled, &file).await;
        println!("{}:\n{report}", path.display());
        failed += report.failed();
        passed += report.cases.len() - report.failed();
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
