//! `smsgw new` output builds with its own toolchain and passes its sample
//! fixtures under `smsgw test-backend`, unchanged.

use std::process::Command;

fn smsgw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smsgw"))
}

#[test]
fn rust_template_builds_and_passes_its_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let out = smsgw().args(["new", "demo-sms", "--lang", "rust", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let project = dir.path().join("demo-sms");
    assert!(project.join("wit/backend.wit").exists());

    // Share this workspace's target dir for dependencies, but not its env.
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/template-test");
    let build = Command::new("bash")
        .arg(project.join("build.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(build.status.success(), "build failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let wasm = project.join("demo-sms.wasm");

    let inspect = smsgw().arg("inspect").arg(&wasm).output().unwrap();
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stdout));
    let test = smsgw().arg("test-backend").arg(&wasm).arg(project.join("testdata/sample.json")).output().unwrap();
    let report = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{report}");
    assert!(report.contains("4 passed, 0 failed"), "{report}");

    // A second `new` with the same name refuses to overwrite it.
    let again = smsgw().args(["new", "demo-sms", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let unknown = smsgw().args(["new", "x", "--lang", "cobol", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no template for language 'cobol'"));
}
