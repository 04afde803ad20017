//! Versions of uploaded backends.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use super::queue::fail_queued;
use crate::store::*;

#[async_trait::async_trait]
impl VersionStore for SqliteStore {
    async fn add_backend_version(
        &self,
        name: &str,
        sha256: &str,
        size: i64,
        settings: String,
        wit_version: &str,
    ) -> Result<BackendVersion, StoreError> {
        let (name, sha256, wit_version) = (name.to_string(), sha256.to_string(), wit_version.to_string());
        self.run(move |conn| {
            // Versions keep counting after a delete, so a number is never reused.
            let next: i64 = conn
                .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM backend_versions WHERE name = ?1")?
                .query_row([&name], |r| r.get(0))?;
            conn.prepare_cached("UPDATE backend_versions SET active = 0 WHERE name = ?1")?.execute([&name])?;
            let now = now_ms();
            conn.prepare_cached(
                "INSERT INTO backend_versions (name, version, sha256, size, settings, wit_version, uploaded_at, active)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
            )?
            .execute(params![name, next, sha256, size, settings, wit_version, now])?;
            Ok(BackendVersion {
                name,
                version: next,
                sha256,
                size,
                settings,
                wit_version,
                uploaded_at: now,
                active: true,
            })
        })
        .await
    }

    async fn activate_backend_version(&self, name: &str, version: i64) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            let exists: Option<i64> = conn
                .prepare_cached(
                    "SELECT version FROM backend_versions WHERE name = ?1 AND version = ?2 AND deleted = 0",
                )?
                .query_row(params![name, version], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Ok(false);
            }
            conn.prepare_cached("UPDATE backend_versions SET active = (version = ?2) WHERE name = ?1")?
                .execute(params![name, version])?;
            Ok(true)
        })
        .await
    }

    async fn backend_versions(&self, name: &str) -> Result<Vec<BackendVersion>, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM backend_versions WHERE name = ?1 AND deleted = 0 ORDER BY version"
            );
            let rows = conn.prepare_cached(&sql)?.query_map([name], read_version)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn active_backend_versions(&self) -> Result<Vec<BackendVersion>, StoreError> {
        self.run(|conn| {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM backend_versions WHERE active = 1 AND deleted = 0 ORDER BY name"
            );
            let rows = conn.prepare_cached(&sql)?.query_map([], read_version)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_backend(&self, name: &str, reason: String) -> Result<usize, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            conn.prepare_cached("UPDATE backend_versions SET active = 0, deleted = 1 WHERE name = ?1")?
                .execute([&name])?;
            let ids: Vec<MessageId> = conn
                .prepare_cached(
                    "SELECT id FROM messages WHERE direction = 'out' AND backend = ?1 AND status IN ('queued', 'sending')",
                )?
                .query_map([&name], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                fail_queued(conn, *id, &reason)?;
            }
            Ok(ids.len())
        })
        .await
    }
}

fn read_version(row: &Row<'_>) -> rusqlite::Result<BackendVersion> {
    Ok(BackendVersion {
        name: row.get(0)?,
        version: row.get(1)?,
        sha256: row.get(2)?,
        size: row.get(3)?,
        settings: row.get(4)?,
        wit_version: row.get(5)?,
        uploaded_at: row.get(6)?,
        active: row.get(7)?,
    })
}

const VERSION_COLUMNS: &str = "name, version, sha256, size, settings, wit_version, uploaded_at, active";
