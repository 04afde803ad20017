//! `smsgw new NAME --lang ...`: a ready-to-build backend project with the WIT,
//! a build script, sample fixtures and a README. Templates live in
//! `runtime/templates/<lang>/` and are compiled into the binary, so a project
//! always carries the contract of the gateway that made it.

use std::path::Path;

use anyhow::Context as _;

/// The contract every template includes as `wit/backend.wit`.
const WIT: &str = include_str!("../../../wit/backend.wit");

/// (path in the project, contents) per language.
type Files = &'static [(&'static str, &'static str)];

/// Every project: the settings its README's upload command sends (the same
/// mock provider its fixtures use; the author points them at the real one).
const COMMON: Files = &[("settings.json", include_str!("../../templates/settings.json"))];

/// Rust builds on the guest SDK of this gateway, vendored beside the project
/// (like the WIT) so that the two always match; `Cargo.lock` pins what the
/// template was built and tested with.
const RUST: Files = &[
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml.tmpl")),
    ("Cargo.lock", include_str!("../../templates/rust/Cargo.lock.tmpl")),
    ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
    ("smsgw-guest/Cargo.toml", include_str!("../../templates/rust/smsgw-guest/Cargo.toml.tmpl")),
    ("smsgw-guest/src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    ("smsgw-guest/src/config.rs", include_str!("../../../guest-sdk/src/config.rs")),
    ("smsgw-guest/src/http.rs", include_str!("../../../guest-sdk/src/http.rs")),
    ("smsgw-guest/src/json.rs", include_str!("../../../guest-sdk/src/json.rs")),
    ("smsgw-guest/src/log.rs", include_str!("../../../guest-sdk/src/log.rs")),
    ("smsgw-guest/src/params.rs", include_str!("../../../guest-sdk/src/params.rs")),
    ("testdata/sample.json", include_str!("../../templates/rust/testdata/sample.json")),
    ("build.sh", include_str!("../../templates/rust/build.sh")),
    ("README.md", include_str!("../../templates/rust/README.md")),
    (".gitignore", include_str!("../../templates/rust/gitignore")),
];

const PYTHON: Files = &[
    ("app.py", include_str!("../../templates/python/app.py")),
    ("testdata/sample.json", include_str!("../../templates/rust/testdata/sample.json")),
    ("build.sh", include_str!("../../templates/python/build.sh")),
    ("README.md", include_str!("../../templates/python/README.md")),
    (".gitignore", include_str!("../../templates/python/gitignore")),
];

const JS: Files = &[
    ("backend.js", include_str!("../../templates/js/backend.js")),
    ("testdata/sample.json", include_str!("../../templates/rust/testdata/sample.json")),
    ("build.sh", include_str!("../../templates/js/build.sh")),
    ("README.md", include_str!("../../templates/js/README.md")),
    (".gitignore", include_str!("../../templates/js/gitignore")),
    // Fixes the build's random numbers and clocks, so the same source gives the same bytes.
    ("deterministic.c", include_str!("../../templates/js/deterministic.c")),
    // The pinned toolchain, installed by build.sh into .smsgw-toolchain/.
    ("toolchain-package.json", include_str!("../../templates/js/toolchain-package.json")),
    ("toolchain-package-lock.json", include_str!("../../templates/js/toolchain-package-lock.json")),
];

/// Languages with a template.
pub const LANGUAGES: &[&str] = &["rust", "python", "js"];

fn files(lang: &str) -> Option<Files> {
    match lang {
        "rust" => Some(RUST),
        "python" => Some(PYTHON),
        "js" | "javascript" => Some(JS),
        _ => None,
    }
}

/// Writes a new project for backend `name` in `dir/name`.
pub fn create(name: &str, lang: &str, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    crate::config::validate_backend_name(name)?;
    let files = files(lang)
        .with_context(|| format!("no template for language '{lang}' (available: {})", LANGUAGES.join(", ")))?;
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!("{} already exists; choose another name or directory", root.display());
    }
    let crate_name = name.replace('_', "-");
    let crate_file = crate_name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name).replace("{{crate_name}}", &crate_name).replace("{{crate_file}}", &crate_file)
    };
    let mut all: Vec<(&str, String)> = COMMON.iter().chain(files).map(|(p, c)| (*p, fill(c))).collect();
    all.push(("wit/backend.wit", WIT.to_string()));
    for (path, contents) in all {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, contents).with_context(|| format!("cannot write {}", target.display()))?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(root)
}
