//! `smsgw new` output builds with its own toolchain and passes its sample
//! fixtures under `smsgw test-backend`, unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

fn smsgw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smsgw"))
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Creates a project, builds it with `env` and runs its sample fixtures.
fn new_build_and_test(lang: &str, env: &[(&str, PathBuf)]) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("demo-{lang}");
    let out = smsgw().args(["new", &name, "--lang", lang, "--dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let project = dir.path().join(&name);
    assert!(project.join("wit/backend.wit").exists());

    let mut build = Command::new("bash");
    build.arg(project.join("build.sh")).env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    for (k, v) in env {
        build.env(k, v);
    }
    let build = build.output().unwrap();
    assert!(build.status.success(), "{lang} build failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let wasm = project.join(format!("{name}.wasm"));

    let inspect = smsgw().arg("inspect").arg(&wasm).output().unwrap();
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stdout));
    let test = smsgw().arg("test-backend").arg(&wasm).arg(project.join("testdata/sample.json")).output().unwrap();
    let report = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{lang}: {report}");
    assert!(report.contains("4 passed, 0 failed"), "{lang}: {report}");
}

#[test]
fn rust_template_builds_and_passes_its_fixtures() {
    // Share a target dir for dependencies across runs.
    new_build_and_test("rust", &[("CARGO_TARGET_DIR", target_dir().join("template-test"))]);
}

#[test]
fn python_template_builds_and_passes_its_fixtures() {
    // Reuse the examples' pinned toolchain when scripts/test.sh installed it.
    let cpy = target_dir().join("toolchains/python/venv/bin/componentize-py");
    let env: Vec<_> = if cpy.exists() { vec![("COMPONENTIZE_PY", cpy)] } else { Vec::new() };
    new_build_and_test("python", &env);
}

#[test]
fn js_template_builds_and_passes_its_fixtures() {
    let jco = target_dir().join("toolchains/js/node_modules/.bin/jco");
    let env: Vec<_> = if jco.exists() { vec![("JCO", jco)] } else { Vec::new() };
    new_build_and_test("js", &env);
}

#[test]
fn new_refuses_to_overwrite_and_names_unknown_languages() {
    let dir = tempfile::tempdir().unwrap();
    assert!(smsgw().args(["new", "x", "--dir"]).arg(dir.path()).output().unwrap().status.success());
    let again = smsgw().args(["new", "x", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let unknown = smsgw().args(["new", "y", "--lang", "cobol", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no template for language 'cobol'"));
}
