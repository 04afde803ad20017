//! Every built-in backend passes every fixture file in `backends/<name>/testdata/`.

use std::path::Path;

use smsgw::authoring::fixtures::FixtureRunner;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_backends_pass_their_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("backends");
    let runner = FixtureRunner::new().unwrap();
    let mut summary = Vec::new();
    let mut failed = 0;
    for name in smsgw::backend::builtin::names() {
        let wasm = smsgw::backend::builtin::component(name).unwrap();
        let component = runner.compile(wasm).unwrap();
        let dir = root.join(name).join("testdata");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("built-in backend '{name}' has no fixtures in {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no fixture files in {}", dir.display());
        for file in files {
            let report = smsgw::authoring::fixtures::run_file(&runner, &component, &file).await.unwrap();
            assert!(!report.cases.is_empty(), "{} has no cases", file.display());
            failed += report.failed();
            summary.push(format!("{}:\n{report}", file.strip_prefix(&root).unwrap().display()));
        }
    }
    let summary = summary.join("\n");
    assert_eq!(failed, 0, "fixture cases failed:\n{summary}");
}
