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

/// Every fixture file in the repository (built-in backends, templates, test
/// data), found by walking it: the schema is the published reference, so it
/// must accept every one, and so must the runner's own parser.
fn fixture_files_in_repository() -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | ".git" | ".venv" | ".smsgw-toolchain") {
                    walk(&path, out);
                }
            } else if name.ends_with(".json") && path.parent().is_some_and(|p| p.ends_with("testdata")) {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

#[test]
fn the_fixture_schema_accepts_every_fixture_file_in_the_repository() {
    let files = fixture_files_in_repository();
    assert!(files.len() >= 11, "found only {files:?}");
    assert!(files.iter().any(|f| f.ends_with("templates/rust/testdata/sample.json")), "{files:?}");
    for file in &files {
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let problems = smsgw::authoring::fixtures::schema::problems(&value);
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
        smsgw::authoring::fixtures::read_fixture_file(file).unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// The schema refuses the mistakes the parser refuses, and names the place;
/// it is stricter where the parser takes any string (the outcome's name).
#[test]
fn the_schema_and_the_parser_refuse_the_same_mistakes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let valid: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("backends/http/testdata/outgoing.json")).unwrap())
            .unwrap();
    type Mutation = fn(&mut serde_json::Value);
    // (what, mutation, the parser refuses it too)
    let mutations: &[(&str, Mutation, bool)] = &[
        ("unknown top-level key", |v| v["confg"] = serde_json::json!({}), true),
        (
            "case without a name",
            |v| {
                v["outgoing"][0].as_object_mut().unwrap().remove("name");
            },
            true,
        ),
        ("unknown outcome", |v| v["outgoing"][0]["expect"]["outcome"]["result"] = "retry".into(), false),
        ("identities not a list", |v| v["outgoing"][0]["message"]["identities"] = "+1".into(), true),
        (
            "misspelt expectation",
            |v| {
                let case = v["outgoing"][0].as_object_mut().unwrap();
                let expect = case.remove("expect").unwrap();
                case.insert("expcet".into(), expect);
            },
            true,
        ),
        ("secret not a string", |v| v["secrets"] = serde_json::json!({ "token": 5 }), true),
    ];
    assert!(smsgw::authoring::fixtures::schema::problems(&valid).is_empty());
    for (what, mutate, parser_refuses) in mutations {
        let mut v = valid.clone();
        mutate(&mut v);
        let problems = smsgw::authoring::fixtures::schema::problems(&v);
        assert!(!problems.is_empty(), "schema accepted: {what}");
        assert!(problems.iter().all(|p| p.starts_with("at /")), "{what}: {problems:?}");
        let parsed = serde_json::from_value::<smsgw::authoring::fixtures::FixtureFile>(v);
        assert_eq!(parsed.is_err(), *parser_refuses, "parser and schema on: {what}");
    }
}

/// Overrides apply over either base; a case's own config replaces both;
/// the operator's settings replace the file's config.
#[test]
fn fixture_configuration_under_settings_and_overrides() {
    let file: smsgw::authoring::fixtures::FixtureFile = serde_json::from_value(serde_json::json!({
        "config": { "url": "http://fixture/send", "from": "fixture" },
        "overrides": { "url": "http://mock/send" },
        "secrets": { "token": "fixture-token" },
        "allowed_hosts": ["http://mock"],
    }))
    .unwrap();
    let own = file.config_for(None);
    assert_eq!(own["url"], "http://mock/send");
    assert_eq!(own["from"], "fixture");
    let case = serde_json::Map::from_iter([("only".to_string(), serde_json::json!(1))]);
    assert_eq!(file.config_for(Some(&case)), case);
    let settings: smsgw::backend::settings::UploadSettings = serde_json::from_value(serde_json::json!({
        "allowed_hosts": ["https://api.example.com"],
        "config": { "url": "https://api.example.com/send", "from": "operator" },
        "secrets": { "token": "operator-token", "other": "x" },
    }))
    .unwrap();
    let under = file.under_settings(&settings);
    let config = under.config_for(None);
    assert_eq!(config["url"], "http://mock/send", "the override wins");
    assert_eq!(config["from"], "operator", "the operator's value replaces the file's");
    assert_eq!(under.secrets["token"], "fixture-token");
    assert_eq!(under.secrets["other"], "x");
    assert_eq!(under.allowed_hosts, vec!["http://mock".to_string(), "https://api.example.com".to_string()]);
}
