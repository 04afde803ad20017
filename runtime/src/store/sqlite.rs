//! The embedded SQLite store (WAL, `synchronous=FULL`).
//!
//! One writer thread owns the connection and runs queued operations in
//! batches: one transaction and one fsync for many operations (group commit),
//! each operation inside its own savepoint so a failing one rolls back alone.
//! A caller is answered only after the batch is committed.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::oneshot;

use super::*;

/// Operations run per transaction at most.
const MAX_BATCH: usize = 512;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs an operation on the connection, or, given `None` (its batch could
/// not begin), only hands back its completion.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Completion) + Send>;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    backend         TEXT NOT NULL,
    identity        TEXT,
    text            TEXT NOT NULL,
    external_id     TEXT,
    fields          TEXT NOT NULL DEFAULT '[]',
    in_response_to  INTEGER REFERENCES messages(id),
    context         TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    received_at     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_unprocessed ON messages(id) WHERE direction = 'in' AND status = 'received';
CREATE INDEX IF NOT EXISTS messages_by_backend ON messages(backend, id);
CREATE TABLE IF NOT EXISTS recipients (
    message_id  INTEGER NOT NULL REFERENCES messages(id),
    identity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    external_id TEXT,
    error       TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, identity)
);
CREATE INDEX IF NOT EXISTS recipients_by_external_id ON recipients(external_id) WHERE external_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS backend_versions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    settings    TEXT NOT NULL,
    wit_version TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    backend     TEXT NOT NULL,
    message_id  TEXT,
    external_id TEXT,
    identity    TEXT,
    status      TEXT NOT NULL,
    detail      TEXT,
    matched     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
"#;

impl SqliteStore {
    /// Opens (creating if needed) `smsgw.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", data_dir.display()))?;
        let path = data_dir.join("smsgw.db");
        let conn =
            Connection::open(&path).map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // rusqlite keeps 16 by default, fewer than the store's distinct
        // statements: the queue's hot path was re-parsing SQL on every call.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.execute_batch(SCHEMA)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("smsgw-store".into()).spawn(move || writer(conn, rx))?;
        Ok(SqliteStore { jobs })
    }

    /// Runs `op` on the writer thread inside a savepoint of the current batch.
    async fn run<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // Without a connection the batch failed to begin; the commit error
            // given to the completion is what the caller sees.
            let result = conn.map_or(Err(StoreError::Closed), op);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, completion)
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer loop: take what is queued, run it in one transaction, commit, answer.
fn writer(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        let begin = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = begin {
            let msg = e.to_string();
            for job in batch {
                // Run nothing; tell each caller the batch could not start.
                let (_, done) = job(None);
                done(Err(StoreError::Database(msg.clone())));
            }
            continue;
        }
        for job in batch {
            let savepoint = run_cached(&conn, "SAVEPOINT op");
            let (ok, done) = job(Some(&conn));
            if savepoint.is_ok() {
                let end = if ok {
                    run_cached(&conn, "RELEASE op")
                } else {
                    run_cached(&conn, "ROLLBACK TO op").and_then(|_| run_cached(&conn, "RELEASE op"))
                };
                if let Err(e) = end {
                    tracing::error!("store savepoint failed: {e}");
                }
            }
            completions.push(done);
        }
        let commit = conn.execute_batch("COMMIT").map_err(|e| StoreError::Database(e.to_string()));
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions {
            done(commit.as_ref().map(|_| ()).map_err(|e| StoreError::Database(e.to_string())));
        }
    }
}

/// Runs a parameterless statement through the statement cache (the
/// savepoints around every operation would otherwise be parsed each time).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The columns of a new `messages` row.
struct NewRow<'a> {
    direction: Direction,
    backend: &'a str,
    identity: Option<&'a str>,
    text: &'a str,
    external_id: Option<&'a str>,
    fields: &'a [(String, String)],
    in_response_to: Option<MessageId>,
    context: &'a serde_json::Map<String, serde_json::Value>,
    status: &'a str,
    next_attempt_at: Option<Millis>,
    received_at: Option<Millis>,
}

fn insert_message(conn: &Connection, row: NewRow<'_>) -> Result<MessageId, StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO messages (direction, backend, identity, text, external_id, fields, in_response_to,
             context, status, next_attempt_at, received_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
    )?
    .execute(params![
        row.direction.as_str(),
        row.backend,
        row.identity,
        row.text,
        row.external_id,
        to_json(&row.fields),
        row.in_response_to,
        to_json(row.context),
        row.status,
        row.next_attempt_at,
        row.received_at,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

fn enqueue_on(conn: &Connection, m: &NewOutbound) -> Result<MessageId, StoreError> {
    let now = now_ms();
    let id = insert_message(
        conn,
        NewRow {
            direction: Direction::Out,
            backend: &m.backend,
            identity: None,
            text: &m.text,
            external_id: None,
            fields: &[],
            in_response_to: m.in_response_to,
            context: &m.context,
            status: "queued",
            next_attempt_at: Some(now),
            received_at: None,
        },
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO recipients (message_id, identity, status, updated_at) VALUES (?1, ?2, 'queued', ?3)",
    )?;
    for identity in &m.identities {
        stmt.execute(params![id, identity, now])?;
    }
    Ok(id)
}

/// Never moves a recipient backwards (a late "sent" must not undo "delivered").
fn rank(status: RecipientStatus) -> u8 {
    match status {
        RecipientStatus::Queued => 0,
        RecipientStatus::Sent => 1,
        RecipientStatus::Delivered | RecipientStatus::Failed => 2,
    }
}

fn apply_report(conn: &Connection, backend: &str, r: &NewReport) -> Result<bool, StoreError> {
    let now = now_ms();
    // Find the recipients the report is about: by gateway id, or by provider id.
    let mut targets: Vec<(MessageId, String, String)> = Vec::new();
    if let Some(mid) = r.message_id.as_deref().and_then(|s| s.trim().parse::<MessageId>().ok()) {
        let mut stmt = conn.prepare_cached(
            "SELECT r.message_id, r.identity, r.status FROM recipients r JOIN messages m ON m.id = r.message_id
             WHERE r.message_id = ?1 AND m.backend = ?2 AND (?3 IS NULL OR r.identity = ?3)",
        )?;
        let rows =
            stmt.query_map(params![mid, backend, r.identity], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        for row in rows {
            targets.push(row?);
        }
    } else if let Some(ext) = &r.external_id {
        let mut stmt = conn.prepare_cached(
            "SELECT r.message_id, r.identity, r.status FROM recipients r JOIN messages m ON m.id = r.message_id
             WHERE r.external_id = ?1 AND m.backend = ?2 AND (?3 IS NULL OR r.identity = ?3)",
        )?;
        let rows =
            stmt.query_map(params![ext, backend, r.identity], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        for row in rows {
            targets.push(row?);
        }
    }
    let matched = !targets.is_empty();
    conn.prepare_cached(
        "INSERT INTO reports (backend, message_id, external_id, identity, status, detail, matched, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        backend,
        r.message_id,
        r.external_id,
        r.identity,
        r.status.as_str(),
        r.detail,
        matched,
        now
    ])?;
    let mut touched = Vec::new();
    for (mid, identity, current) in targets {
        let current = RecipientStatus::parse(&current).unwrap_or(RecipientStatus::Queued);
        // A report for a still-queued recipient means the provider has it: it
        // can arrive before the send attempt is recorded (Kannel's fake SMSC
        // reports within milliseconds), or after an attempt that timed out on
        // our side. Either way it must count, and the recipient is not resent.
        if rank(r.status) < rank(current) {
            continue;
        }
        if rank(r.status) == rank(current) && current != RecipientStatus::Sent {
            continue;
        }
        let error = if r.status == RecipientStatus::Failed { r.detail.clone() } else { None };
        conn.prepare_cached(
            "UPDATE recipients SET status = ?3, error = COALESCE(?4, error), updated_at = ?5
             WHERE message_id = ?1 AND identity = ?2",
        )?
        .execute(params![mid, identity, r.status.as_str(), error, now])?;
        touched.push(mid);
    }
    touched.dedup();
    for mid in touched {
        refresh_status(conn, mid)?;
    }
    Ok(matched)
}

/// Fails every still-queued recipient of `id` with `reason`.
fn fail_queued(conn: &Connection, id: MessageId, reason: &str) -> Result<(), StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE recipients SET status = 'failed', error = ?2, updated_at = ?3 WHERE message_id = ?1 AND status = 'queued'",
    )?
    .execute(params![id, reason, now])?;
    conn.prepare_cached("UPDATE messages SET last_error = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, reason, now])?;
    refresh_status(conn, id)
}

/// Recomputes an outbound message's overall status from its recipients.
fn refresh_status(conn: &Connection, id: MessageId) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached("SELECT status FROM recipients WHERE message_id = ?1")?;
    let statuses: Vec<String> = stmt.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let count = |s: &str| statuses.iter().filter(|x| *x == s).count();
    let (queued, sent, delivered, failed) = (count("queued"), count("sent"), count("delivered"), count("failed"));
    let status = if queued > 0 {
        None // queue state ("queued"/"sending") is managed by the queue itself
    } else if failed == statuses.len() {
        Some("failed")
    } else if failed > 0 {
        Some("partially-failed")
    } else if delivered == statuses.len() {
        Some("delivered")
    } else {
        let _ = sent;
        Some("sent")
    };
    if let Some(status) = status {
        conn.prepare_cached("UPDATE messages SET status = ?2, next_attempt_at = NULL, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, status, now_ms()])?;
    }
    Ok(())
}

const MESSAGE_COLUMNS: &str = "id, direction, backend, identity, text, external_id, fields, in_response_to, context,
     status, attempts, next_attempt_at, last_error, received_at, created_at, updated_at";

fn read_message(row: &Row<'_>) -> rusqlite::Result<Message> {
    let direction: String = row.get(1)?;
    let fields: String = row.get(6)?;
    let context: String = row.get(8)?;
    Ok(Message {
        id: row.get(0)?,
        direction: if direction == "in" { Direction::In } else { Direction::Out },
        backend: row.get(2)?,
        identity: row.get(3)?,
        text: row.get(4)?,
        external_id: row.get(5)?,
        fields: serde_json::from_str(&fields).unwrap_or_default(),
        in_response_to: row.get(7)?,
        context: serde_json::from_str(&context).unwrap_or_default(),
        status: row.get(9)?,
        attempts: row.get(10)?,
        next_attempt_at: row.get(11)?,
        last_error: row.get(12)?,
        received_at: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        recipients: Vec::new(),
    })
}

fn recipients_of(conn: &Connection, id: MessageId) -> Result<Vec<Recipient>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT identity, status, external_id, error, updated_at FROM recipients WHERE message_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([id], |r| {
        let status: String = r.get(1)?;
        Ok(Recipient {
            identity: r.get(0)?,
            status: RecipientStatus::parse(&status).unwrap_or(RecipientStatus::Queued),
            external_id: r.get(2)?,
            error: r.get(3)?,
            updated_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn record_inbound(
        &self,
        backend: &str,
        messages: Vec<NewInbound>,
        reports: Vec<NewReport>,
    ) -> Result<InboundRecorded, StoreError> {
        let backend = backend.to_string();
        self.run(move |conn| {
            let mut recorded = InboundRecorded::default();
            for m in &messages {
                let id = insert_message(
                    conn,
                    NewRow {
                        direction: Direction::In,
                        backend: &backend,
                        identity: Some(&m.identity),
                        text: &m.text,
                        external_id: m.external_id.as_deref(),
                        fields: &m.fields,
                        in_response_to: None,
                        context: &serde_json::Map::new(),
                        status: "received",
                        next_attempt_at: None,
                        received_at: m.received_at,
                    },
                )?;
                recorded.message_ids.push(id);
            }
            for r in &reports {
                if apply_report(conn, &backend, r)? {
                    recorded.reports_matched += 1;
                } else {
                    recorded.reports_unmatched += 1;
                }
            }
            Ok(recorded)
        })
        .await
    }

    async fn unprocessed_inbound(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE direction = 'in' AND status = 'received' ORDER BY id LIMIT ?1"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([limit as i64], read_message)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn complete_inbound(
        &self,
        id: MessageId,
        replies: Vec<NewOutbound>,
        error: Option<String>,
    ) -> Result<Vec<MessageId>, StoreError> {
        self.run(move |conn| {
            let status = if error.is_some() { "app-error" } else { "handled" };
            let changed = conn
                .prepare_cached(
                    "UPDATE messages SET status = ?2, last_error = ?3, updated_at = ?4
                     WHERE id = ?1 AND direction = 'in' AND status = 'received'",
                )?
                .execute(params![id, status, error, now_ms()])?;
            if changed == 0 {
                return Ok(Vec::new()); // already handled: never queue its replies twice
            }
            replies.iter().map(|r| enqueue_on(conn, r)).collect()
        })
        .await
    }

    async fn enqueue(&self, message: NewOutbound) -> Result<MessageId, StoreError> {
        self.run(move |conn| enqueue_on(conn, &message)).await
    }

    async fn claim_due(&self, now: Millis, lease_until: Millis, limit: usize) -> Result<Vec<ClaimedSend>, StoreError> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1
                 AND status = 'queued' ORDER BY next_attempt_at, id LIMIT ?2"
            );
            let due: Vec<Message> = conn
                .prepare_cached(&sql)?
                .query_map(params![now, limit as i64], read_message)?
                .collect::<Result<_, _>>()?;
            let mut lease =
                conn.prepare_cached("UPDATE messages SET status = 'sending', next_attempt_at = ?2 WHERE id = ?1")?;
            let mut claimed = Vec::with_capacity(due.len());
            for m in due {
                lease.execute(params![m.id, lease_until])?;
                let identities: Vec<String> = recipients_of(conn, m.id)?
                    .into_iter()
                    .filter(|r| r.status == RecipientStatus::Queued)
                    .map(|r| r.identity)
                    .collect();
                let reply_to_external_id = match m.in_response_to {
                    Some(orig) => conn
                        .prepare_cached("SELECT external_id FROM messages WHERE id = ?1")?
                        .query_row([orig], |r| r.get::<_, Option<String>>(0))
                        .optional()?
                        .flatten(),
                    None => None,
                };
                claimed.push(ClaimedSend {
                    id: m.id,
                    backend: m.backend,
                    text: m.text,
                    identities,
                    in_response_to: m.in_response_to,
                    reply_to_external_id,
                    context: m.context,
                    attempts: m.attempts,
                });
            }
            Ok(claimed)
        })
        .await
    }

    async fn finish_attempt(&self, id: MessageId, result: AttemptResult) -> Result<(), StoreError> {
        self.run(move |conn| {
            let now = now_ms();
            let mut set = conn.prepare_cached(
                "UPDATE recipients SET status = ?3, external_id = COALESCE(?4, external_id), error = ?5, updated_at = ?6
                 WHERE message_id = ?1 AND identity = ?2 AND status = 'queued'",
            )?;
            // The provider's id is kept even when a fast delivery report already
            // moved the recipient on, so later reports by that id still match.
            let mut remember = conn.prepare_cached(
                "UPDATE recipients SET external_id = ?3 WHERE message_id = ?1 AND identity = ?2 AND external_id IS NULL",
            )?;
            for (identity, external_id) in &result.sent {
                set.execute(params![id, identity, "sent", external_id, Option::<String>::None, now])?;
                if external_id.is_some() {
                    remember.execute(params![id, identity, external_id])?;
                }
            }
            drop(remember);
            for (identity, reason) in &result.failed {
                set.execute(params![id, identity, "failed", Option::<String>::None, reason, now])?;
            }
            if result.retry_at.is_none() {
                let reason = result.error.clone().unwrap_or_else(|| "gave up".into());
                for identity in &result.retry {
                    set.execute(params![id, identity, "failed", Option::<String>::None, reason, now])?;
                }
            }
            drop(set);
            // Anything still queued waits for the next attempt.
            let pending: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM recipients WHERE message_id = ?1 AND status = 'queued'")?
                .query_row([id], |r| r.get(0))?;
            let (status, next) = if pending > 0 {
                ("queued", Some(result.retry_at.unwrap_or(now)))
            } else {
                ("sending", None) // refresh_status below sets the final state
            };
            conn.prepare_cached(
                "UPDATE messages SET attempts = attempts + 1, status = ?2, next_attempt_at = ?3,
                     last_error = COALESCE(?4, last_error), updated_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status, next, result.error, now])?;
            refresh_status(conn, id)
        })
        .await
    }

    async fn fail_message(&self, id: MessageId, reason: String) -> Result<(), StoreError> {
        self.run(move |conn| fail_queued(conn, id, &reason)).await
    }

    async fn postpone(&self, id: MessageId, until: Millis) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'sending'",
            )?
            .execute(params![id, until, now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        self.run(|conn| {
            Ok(conn
                .prepare_cached("SELECT MIN(next_attempt_at) FROM messages WHERE status = 'queued'")?
                .query_row([], |r| r.get::<_, Option<i64>>(0))?)
        })
        .await
    }

    async fn release_leases(&self) -> Result<usize, StoreError> {
        self.run(|conn| {
            Ok(conn.execute(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?1 WHERE status = 'sending'",
                [now_ms()],
            )?)
        })
        .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.run(move |conn| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
            let Some(mut m) = conn.prepare_cached(&sql)?.query_row([id], read_message).optional()? else {
                return Ok(None);
            };
            if m.direction == Direction::Out {
                m.recipients = recipients_of(conn, id)?;
            }
            Ok(Some(m))
        })
        .await
    }

    async fn list(&self, filter: MessageFilter) -> Result<Vec<Message>, StoreError> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE (?1 IS NULL OR direction = ?1)
                 AND (?2 IS NULL OR backend = ?2) ORDER BY id DESC LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![filter.direction.map(|d| d.as_str()), filter.backend, filter.limit as i64],
                read_message,
            )?;
            let mut messages: Vec<Message> = rows.collect::<Result<_, _>>()?;
            for m in &mut messages {
                if m.direction == Direction::Out {
                    m.recipients = recipients_of(conn, m.id)?;
                }
            }
            Ok(messages)
        })
        .await
    }

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

#[cfg(test)]
mod tests;
