//! Checking that a `.wasm` is a backend this host can run, with reasons a
//! backend author can act on.

use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::ADAPTER_EXPORT;
use super::cache::{CompileCache, Compiled};

/// Why a `.wasm` cannot become a backend.
#[derive(Debug, Error)]
pub enum CompileError {
    #[error(transparent)]
    Invalid(#[from] InvalidComponent),
    #[error("the component does not compile: {0}")]
    DoesNotCompile(String),
}

/// Everything a configured backend, `test-backend` and `inspect` check, in
/// one order: header, compilation (or the cache), then imports and exports.
/// Only a component that passed every check is written to `cache`. Uploads are
/// compiled in a child process instead (`deploy::compiler`) and then go
/// through [`accept`].
pub fn compile(engine: &Engine, cache: Option<&CompileCache>, wasm: &[u8]) -> Result<Compiled, CompileError> {
    let started = std::time::Instant::now();
    check_header(wasm)?;
    let sha256 = super::cache::sha256_hex(wasm);
    if let Some(component) = cache.and_then(|c| c.get(&sha256)) {
        return Ok(Compiled { component, sha256, compiled: false, elapsed: started.elapsed() });
    }
    let component = Component::new(engine, wasm).map_err(|e| CompileError::DoesNotCompile(format!("{e:#}")))?;
    check_shape(&shape(engine, &component))?;
    let component = match cache {
        None => component,
        Some(cache) => {
            let artefact = component.serialize().map_err(|e| CompileError::DoesNotCompile(format!("{e:#}")))?;
            cache.put(&sha256, &artefact).map_err(|e| CompileError::DoesNotCompile(format!("{e:#}")))?
        }
    };
    Ok(Compiled { component, sha256, compiled: true, elapsed: started.elapsed() })
}

/// The header check and compilation alone, for showing what a component is
/// before saying whether it is accepted.
pub fn compile_unchecked(engine: &Engine, wasm: &[u8]) -> Result<Compiled, CompileError> {
    check_header(wasm)?;
    Compiled::without_cache(engine, wasm).map_err(|e| CompileError::DoesNotCompile(format!("{e:#}")))
}

/// Checks a component compiled elsewhere (the upload compiler's child).
pub fn accept(engine: &Engine, component: &Component) -> Result<(), InvalidComponent> {
    check_shape(&shape(engine, component))
}

/// Why a component is not an acceptable backend.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidComponent {
    #[error("not a WebAssembly file")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build with \
         `cargo build --target wasm32-wasip2` (or componentize-py / jco componentize / wasm-tools component new)"
    )]
    CoreModule,
    #[error(
        "it imports '{0}', which this gateway does not grant (allowed: the smsgw:backend@0.1 interfaces and the WASI 0.2 interfaces a std guest needs)"
    )]
    ForbiddenImport(String),
    #[error("it does not export '{ADAPTER_EXPORT}'; it exports: {0}")]
    MissingExport(String),
}

/// Interface prefixes a backend may import. WASI is granted with nothing
/// behind it (no env, files or sockets); it is here because std guests import it.
const ALLOWED_IMPORT_PREFIXES: &[&str] = &[
    "smsgw:backend/types@0.1.",
    "smsgw:backend/http-client@0.1.",
    "smsgw:backend/log@0.1.",
    "wasi:cli/environment@0.2.",
    "wasi:cli/exit@0.2.",
    "wasi:cli/stdin@0.2.",
    "wasi:cli/stdout@0.2.",
    "wasi:cli/stderr@0.2.",
    "wasi:cli/terminal-input@0.2.",
    "wasi:cli/terminal-output@0.2.",
    "wasi:cli/terminal-stdin@0.2.",
    "wasi:cli/terminal-stdout@0.2.",
    "wasi:cli/terminal-stderr@0.2.",
    "wasi:io/error@0.2.",
    "wasi:io/poll@0.2.",
    "wasi:io/streams@0.2.",
    "wasi:clocks/monotonic-clock@0.2.",
    "wasi:clocks/wall-clock@0.2.",
    "wasi:filesystem/types@0.2.",
    "wasi:filesystem/preopens@0.2.",
    "wasi:random/random@0.2.",
    "wasi:random/insecure@0.2.",
    "wasi:random/insecure-seed@0.2.",
];

/// Cheap header check before spending time compiling.
pub fn check_header(bytes: &[u8]) -> Result<(), InvalidComponent> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(InvalidComponent::NotWasm);
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Err(InvalidComponent::CoreModule),
        [_, _, 1, 0] => Ok(()),
        _ => Err(InvalidComponent::NotWasm),
    }
}

/// What a compiled component imports and exports.
pub struct Shape {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Lists a component's imports and exports by reflection.
pub fn shape(engine: &Engine, component: &Component) -> Shape {
    let ty = component.component_type();
    Shape {
        imports: ty.imports(engine).map(|(name, _)| name.to_string()).collect(),
        exports: ty.exports(engine).map(|(name, _)| name.to_string()).collect(),
    }
}

/// Checks imports against the grant list and that the adapter is exported.
pub fn check_shape(shape: &Shape) -> Result<(), InvalidComponent> {
    if let Some(bad) = shape.imports.iter().find(|i| !ALLOWED_IMPORT_PREFIXES.iter().any(|p| i.starts_with(p))) {
        return Err(InvalidComponent::ForbiddenImport(bad.clone()));
    }
    if !shape.exports.iter().any(|e| e == ADAPTER_EXPORT) {
        let list = if shape.exports.is_empty() { "nothing".to_string() } else { shape.exports.join(", ") };
        return Err(InvalidComponent::MissingExport(list));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_modules_from_components() {
        assert_eq!(check_header(b"\0asm\x01\0\0\0"), Err(InvalidComponent::CoreModule));
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
        assert_eq!(check_header(b"hello world"), Err(InvalidComponent::NotWasm));
        assert_eq!(check_header(b""), Err(InvalidComponent::NotWasm));
    }

    #[test]
    fn imports_outside_the_grant_are_named() {
        let shape = Shape {
            imports: vec!["wasi:io/streams@0.2.6".into(), "wasi:sockets/tcp@0.2.6".into()],
            exports: vec![ADAPTER_EXPORT.into()],
        };
        assert_eq!(check_shape(&shape), Err(InvalidComponent::ForbiddenImport("wasi:sockets/tcp@0.2.6".into())));
        let ok = Shape { imports: vec!["smsgw:backend/log@0.1.0".into()], exports: vec![ADAPTER_EXPORT.into()] };
        assert_eq!(check_shape(&ok), Ok(()));
        let none = Shape { imports: vec![], exports: vec![] };
        assert!(matches!(check_shape(&none), Err(InvalidComponent::MissingExport(_))));
    }
}
