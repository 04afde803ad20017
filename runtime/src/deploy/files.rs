//! Uploaded component bytes on disk, content-addressed: written (temporary
//! file, fsync, rename) before any version refers to them, and checked
//! against their hash when read back.

use std::io::Write as _;
use std::path::PathBuf;

use super::DeployError;
use crate::wasm::cache::sha256_hex;

/// The `components/` directory of the data dir.
pub struct ComponentFiles {
    dir: PathBuf,
}

impl ComponentFiles {
    /// Uses (and creates) `dir`.
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(ComponentFiles { dir })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// The bytes stored under `sha256`, verified.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>, DeployError> {
        let bytes = std::fs::read(self.path(sha256))
            .map_err(|e| DeployError::Internal(format!("stored component {sha256} unreadable: {e}")))?;
        if sha256_hex(&bytes) != sha256 {
            return Err(DeployError::Internal(format!("stored component {sha256} is corrupt")));
        }
        Ok(bytes)
    }

    /// Writes bytes under their hash: temporary file, fsync, rename.
    pub fn write(&self, sha256: &str, wasm: &[u8]) -> Result<(), DeployError> {
        let path = self.path(sha256);
        if path.exists() {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(wasm)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Ok(dir) = std::fs::File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| DeployError::Internal(format!("cannot store the component: {e}")))
    }
}
