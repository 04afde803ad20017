//! `smsgw test-backend`: the conformance runner for backend authors.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::fixtures::schema::read_json_object;
use super::fixtures::{FixtureRunner, read_fixture_file};
use crate::backend::settings::UploadSettings;
use crate::secrets::Secrets;
use crate::wasm::cache::CompileCache;

/// What to run, and how.
pub struct TestBackend<'a> {
    pub component: &'a Path,
    pub fixtures: &'a [PathBuf],
    /// A JSON object replacing each file's `config` (the old way to try a config).
    pub config: Option<&'a Path>,
    /// Settings as an upload would carry them: the fixtures run as on upload.
    pub settings: Option<&'a Path>,
    /// Where compiled components are kept between runs; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

/// The default place for compiled components: a large component (Python's
/// interpreter is 19 MB) takes seconds to compile, and authors run this often.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SMSGW_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("smsgw").join("components"))
}

/// Runs fixture files against a component in the real sandbox; returns
/// whether every case passed (the caller turns that into the exit code).
pub async fn test_backend(run: TestBackend<'_>) -> anyhow::Result<bool> {
    let wasm = std::fs::read(run.component).with_context(|| format!("cannot read {}", run.component.display()))?;
    let runner = FixtureRunner::new()?;
    let cache = match &run.cache_dir {
        None => None,
        Some(dir) => match CompileCache::new(dir, runner.engine()) {
            Ok(cache) => Some(cache),
            Err(e) => {
                eprintln!("note: not caching the compiled component: {e:#}");
                None
            }
        },
    };
    let compiled = runner
        .compile_with(&wasm, cache.as_ref())
        .with_context(|| format!("{} is not an acceptable backend", run.component.display()))?;
    if compiled.compiled {
        println!("compiled {} in {} ms", run.component.display(), compiled.elapsed.as_millis());
    }
    let replace_config = run.config.map(|path| read_json_object(path, "the configuration")).transpose()?;
    let settings: Option<UploadSettings> = match run.settings {
        None => None,
        Some(path) => Some(
            serde_json::from_value(serde_json::Value::Object(read_json_object(path, "upload settings")?))
                .with_context(|| format!("{} is not valid upload settings", path.display()))?,
        ),
    };
    let (mut passed, mut failed) = (0, 0);
    for path in run.fixtures {
        let mut file = read_fixture_file(path)?;
        if let Some(c) = &replace_config {
            file.config = c.clone();
        }
        if let Some(settings) = &settings {
            if let Some(reason) = runner.settings_refusal(&compiled.component, settings, Some(&file)).await {
                println!("{}:\n  FAIL the component rejects these settings: {reason}", path.display());
                failed += 1;
                continue;
            }
            file = file.under_settings(settings);
        }
        let report = runner.run(&compiled.component, &file).await;
        // Mismatches quote what the component sent, secrets filled in.
        let shown = match &settings {
            Some(settings) => Secrets::new(settings.secrets.clone()).redact(&report.to_string()),
            None => report.to_string(),
        };
        println!("{}:\n{shown}", path.display());
        failed += report.failed();
        passed += report.cases.len() - report.failed();
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
