use super::SqliteStore;
use crate::store::*;

pub(super) fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

fn outbound(identities: &[&str]) -> NewOutbound {
    NewOutbound {
        backend: "http".into(),
        text: "hello".into(),
        identities: identities.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn inbound_is_stored_and_completed_once() {
    let (_dir, store) = store();
    let msg = NewInbound {
        identity: "+1555".into(),
        text: "ping".into(),
        external_id: Some("ext-1".into()),
        received_at: None,
        fields: vec![("k".into(), "v".into())],
        decided: None,
    };
    let recorded = store.record_inbound("http", vec![msg], vec![], DedupWindows::OFF).await.unwrap();
    assert_eq!(recorded.messages.len(), 1);
    let id = recorded.messages[0].id;
    assert_eq!(store.unprocessed_inbound(10).await.unwrap().len(), 1);

    let reply = NewOutbound { in_response_to: Some(id), ..outbound(&["+1555"]) };
    let outcome = InboundOutcome { id, replies: vec![reply], error: None };
    assert_eq!(store.complete_inbound(vec![outcome.clone()]).await.unwrap()[0].len(), 1);
    // Completing again must not queue the reply twice.
    assert!(store.complete_inbound(vec![outcome]).await.unwrap()[0].is_empty());
    assert!(store.unprocessed_inbound(10).await.unwrap().is_empty());
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(stored.status.as_str(), "handled");
    assert_eq!(stored.fields, vec![("k".to_string(), "v".to_string())]);
}

/// Claims at most one due message.
async fn claim_one(store: &SqliteStore, now: Millis, lease_until: Millis) -> Option<ClaimedSend> {
    let mut claimed = store.claim_due(ClaimRequest::any(now, lease_until, 1)).await.unwrap();
    assert!(claimed.len() <= 1);
    claimed.pop()
}

#[tokio::test]
async fn claims_take_the_oldest_due_messages_in_batches_and_lease_them() {
    let (_dir, store) = store();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store.enqueue(outbound(&[&format!("+{n}")])).await.unwrap());
    }
    let now = now_ms();
    // Not due yet at an earlier time.
    assert!(store.claim_due(ClaimRequest::any(now - 60_000, now + 60_000, 10)).await.unwrap().is_empty());
    let first: Vec<_> =
        store.claim_due(ClaimRequest::any(now, now + 60_000, 3)).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(first, ids[..3]);
    let rest: Vec<_> =
        store.claim_due(ClaimRequest::any(now, now + 60_000, 10)).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(rest, ids[3..], "leased messages are not claimed twice");
    assert!(store.claim_due(ClaimRequest::any(now, now + 60_000, 10)).await.unwrap().is_empty());
}

#[tokio::test]
async fn partial_failure_retries_only_the_rest_and_never_resends() {
    let (_dir, store) = store();
    let id = store.enqueue(outbound(&["a", "b", "c"])).await.unwrap();
    let now = now_ms();
    let claim = claim_one(&store, now, now + 60_000).await.unwrap();
    assert_eq!(claim.identities, vec!["a", "b", "c"]);
    // Leased: nobody else gets it.
    assert!(claim_one(&store, now, now + 60_000).await.is_none());

    let result = AttemptResult {
        sent: vec![("a".into(), Some("p-1".into()))],
        failed: vec![("b".into(), "bad number".into())],
        retry: vec!["c".into()],
        retry_at: Some(now),
        error: Some("c: 503".into()),
        throttled: false,
    };
    store.finish_attempt(id, result).await.unwrap();
    let claim = claim_one(&store, now_ms(), now + 60_000).await.unwrap();
    assert_eq!(claim.identities, vec!["c"], "sent and failed identities are not retried");
    assert_eq!(claim.attempts, 1);

    let done = AttemptResult { sent: vec![("c".into(), None)], ..Default::default() };
    store.finish_attempt(id, done).await.unwrap();
    let m = store.get(id).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "partially-failed");
    assert_eq!(m.attempts, 2);
    let statuses: Vec<_> = m.recipients.iter().map(|r| (r.identity.as_str(), r.status)).collect();
    assert_eq!(
        statuses,
        vec![("a", RecipientStatus::Sent), ("b", RecipientStatus::Failed), ("c", RecipientStatus::Sent)]
    );
}

#[tokio::test]
async fn giving_up_fails_the_remaining_identities() {
    let (_dir, store) = store();
    let id = store.enqueue(outbound(&["a"])).await.unwrap();
    let now = now_ms();
    claim_one(&store, now, now + 1000).await.unwrap();
    let result = AttemptResult { retry: vec!["a".into()], error: Some("503".into()), ..Default::default() };
    store.finish_attempt(id, result).await.unwrap();
    let m = store.get(id).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "failed");
    assert_eq!(m.recipients[0].error.as_deref(), Some("503"));
    assert_eq!(store.next_due(&[]).await.unwrap(), None);
}

#[tokio::test]
async fn reports_update_recipients_by_gateway_or_provider_id_and_never_regress() {
    let (_dir, store) = store();
    let id = store.enqueue(outbound(&["a", "b"])).await.unwrap();
    let now = now_ms();
    claim_one(&store, now, now + 1000).await.unwrap();
    let sent = AttemptResult { sent: vec![("a".into(), Some("SM1".into())), ("b".into(), None)], ..Default::default() };
    store.finish_attempt(id, sent).await.unwrap();

    let by_gateway_id = NewReport {
        message_id: Some(id.to_string()),
        external_id: None,
        identity: Some("b".into()),
        status: RecipientStatus::Delivered,
        detail: None,
    };
    let by_provider_id = NewReport {
        message_id: None,
        external_id: Some("SM1".into()),
        identity: None,
        status: RecipientStatus::Delivered,
        detail: None,
    };
    let late_sent = NewReport { status: RecipientStatus::Sent, ..by_provider_id.clone() };
    let unknown = NewReport { external_id: Some("nope".into()), ..by_provider_id.clone() };
    let r = store
        .record_inbound("http", vec![], vec![by_gateway_id, by_provider_id, late_sent, unknown], DedupWindows::OFF)
        .await
        .unwrap();
    assert_eq!((r.reports_matched, r.reports_unmatched), (3, 1));
    let m = store.get(id).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "delivered");
    assert!(m.recipients.iter().all(|r| r.status == RecipientStatus::Delivered));
}

#[tokio::test]
async fn leases_are_released_after_a_restart_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let id = store.enqueue(outbound(&["a"])).await.unwrap();
        let now = now_ms();
        claim_one(&store, now, now + 3_600_000).await.unwrap();
        id
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.release_leases().await.unwrap(), 1);
    let claim = claim_one(&store, now_ms(), now_ms() + 1000).await.unwrap();
    assert_eq!(claim.id, id);
}

#[tokio::test]
async fn backend_versions_activate_roll_back_and_delete() {
    let (_dir, store) = store();
    let v1 = store.add_backend_version("up", "aa", 10, "{}".into(), "0.1.0").await.unwrap();
    let v2 = store.add_backend_version("up", "bb", 20, "{}".into(), "0.1.0").await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    let active = store.active_backend_versions().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].sha256, "bb");

    assert!(store.activate_backend_version("up", 1).await.unwrap());
    assert!(!store.activate_backend_version("up", 9).await.unwrap());
    assert_eq!(store.active_backend_versions().await.unwrap()[0].version, 1);

    let queued = store.enqueue(NewOutbound { backend: "up".into(), ..outbound(&["a"]) }).await.unwrap();
    assert_eq!(store.delete_backend("up", "backend 'up' was deleted".into()).await.unwrap(), 1);
    assert!(store.active_backend_versions().await.unwrap().is_empty());
    assert!(store.backend_versions("up").await.unwrap().is_empty());
    let m = store.get(queued).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "failed");
    assert_eq!(m.recipients[0].error.as_deref(), Some("backend 'up' was deleted"));

    // A later upload under the same name never reuses a version number.
    assert_eq!(store.add_backend_version("up", "cc", 5, "{}".into(), "0.1.0").await.unwrap().version, 3);
}

#[tokio::test]
async fn a_report_arriving_before_the_attempt_is_recorded_still_counts() {
    let (_dir, store) = store();
    let id = store.enqueue(outbound(&["a"])).await.unwrap();
    let now = now_ms();
    claim_one(&store, now, now + 1000).await.unwrap();
    // The provider reports delivery while the send call is still returning.
    let report = NewReport {
        message_id: Some(id.to_string()),
        external_id: None,
        identity: Some("a".into()),
        status: RecipientStatus::Delivered,
        detail: None,
    };
    store.record_inbound("http", vec![], vec![report], DedupWindows::OFF).await.unwrap();
    let sent = AttemptResult { sent: vec![("a".into(), Some("ext".into()))], ..Default::default() };
    store.finish_attempt(id, sent).await.unwrap();
    let m = store.get(id).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "delivered");
    assert_eq!(m.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(m.recipients[0].external_id.as_deref(), Some("ext"), "the provider id is still recorded");
    assert!(claim_one(&store, now_ms(), now_ms() + 1000).await.is_none(), "not sent again");
}

#[tokio::test]
async fn claims_take_turns_across_backends_and_skip_busy_ones() {
    let (_dir, store) = store();
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(store.enqueue(NewOutbound { backend: "slow".into(), ..outbound(&["1"]) }).await.unwrap());
    }
    let fast: Vec<_> = futures_ids(&store, "fast", 2).await;
    let now = now_ms() + 1;
    let claim = ClaimRequest { now, lease_until: now + 60_000, limit: 10, per_backend: 3, skip: Vec::new() };
    let order: Vec<_> = store.claim_due(claim).await.unwrap().into_iter().map(|c| c.backend).collect();
    assert_eq!(order, ["fast", "slow", "fast", "slow", "slow"], "backends take turns, each capped");
    let claim = ClaimRequest { now, lease_until: now + 60_000, limit: 10, per_backend: 10, skip: vec!["slow".into()] };
    assert!(store.claim_due(claim).await.unwrap().is_empty(), "the only backend with due messages is skipped");
    assert!(store.next_due(&["slow".to_string()]).await.unwrap().is_none(), "nothing due outside the skipped backend");
    assert!(store.next_due(&[]).await.unwrap().is_some());
    assert_eq!(fast.len(), 2);
}

async fn futures_ids(store: &SqliteStore, backend: &str, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(store.enqueue(NewOutbound { backend: backend.into(), ..outbound(&["1"]) }).await.unwrap());
    }
    ids
}

#[tokio::test]
async fn repeated_callbacks_are_stored_once() {
    let (_dir, store) = store();
    let windows = DedupWindows { provider_id_ms: 60_000, same_text_ms: 60_000 };
    let with_id = |id: &str| NewInbound {
        identity: "+1".into(),
        text: "hi".into(),
        external_id: Some(id.into()),
        received_at: None,
        fields: Vec::new(),
        decided: None,
    };
    let first = store.record_inbound("k", vec![with_id("a")], vec![], windows).await.unwrap();
    let again = store.record_inbound("k", vec![with_id("a"), with_id("b")], vec![], windows).await.unwrap();
    assert_eq!((first.messages.len(), again.messages.len(), again.duplicates), (1, 1, 1));
    let other_backend = store.record_inbound("v", vec![with_id("a")], vec![], windows).await.unwrap();
    assert_eq!(other_backend.duplicates, 0, "ids are per backend");
    let no_id = NewInbound { external_id: None, ..with_id("") };
    let once = store.record_inbound("k", vec![no_id.clone(), no_id.clone()], vec![], windows).await.unwrap();
    assert_eq!((once.messages.len(), once.duplicates), (1, 1), "same sender and text, no id");
    let off = store.record_inbound("k", vec![no_id], vec![], DedupWindows::OFF).await.unwrap();
    assert_eq!(off.duplicates, 0);
}

#[tokio::test]
async fn an_idempotency_key_queues_once() {
    let (_dir, store) = store();
    let first = store.enqueue_idempotent(outbound(&["1"]), "k1", "h1", 60_000).await.unwrap();
    let Enqueued::New(id) = first else { panic!("{first:?}") };
    assert_eq!(store.enqueue_idempotent(outbound(&["1"]), "k1", "h1", 60_000).await.unwrap(), Enqueued::Replayed(id));
    assert_eq!(store.enqueue_idempotent(outbound(&["2"]), "k1", "h2", 60_000).await.unwrap(), Enqueued::KeyReused);
    assert!(matches!(store.enqueue_idempotent(outbound(&["1"]), "k2", "h1", 60_000).await.unwrap(), Enqueued::New(_)));
}

/// An exchange as the channel log's tests record it.
pub(super) fn exchange(backend: &str, created_at: Millis, body: &str, messages: Vec<MessageId>) -> Exchange {
    Exchange {
        backend: backend.into(),
        kind: "provider".into(),
        method: "GET".into(),
        url: "http://p/send?key={{secret:k}}".into(),
        request_headers: Vec::new(),
        request_body: body.into(),
        status: Some(200),
        response_headers: Vec::new(),
        response_body: String::new(),
        duration_us: 1,
        log: Vec::new(),
        outcome: "answered 200".into(),
        message_ids: messages,
        created_at,
    }
}

#[tokio::test]
async fn the_channel_log_links_messages_and_keeps_to_its_retention() {
    let (_dir, store) = store();
    let now = now_ms();
    let entries = vec![
        exchange("a", now - 10_000, "old", vec![1]),
        exchange("a", now, &"x".repeat(5000), vec![2]),
        exchange("b", now, "small", vec![2, 3]),
    ];
    store.record_exchanges(entries).await.unwrap();
    let all = |filter| store.exchanges(filter);
    let by_message = all(ExchangeFilter { message_id: Some(2), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(by_message.len(), 2);
    let by_backend = all(ExchangeFilter { backend: Some("a".into()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(by_backend.iter().map(|e| e.exchange.request_body.len()).collect::<Vec<_>>(), [5000, 3], "newest first");

    // By age: the old one goes.
    assert_eq!(store.prune_exchanges(now - 5_000, u64::MAX).await.unwrap(), 1);
    // By size: the newest that fit stay.
    assert_eq!(store.prune_exchanges(0, 1000).await.unwrap(), 1);
    let left = all(ExchangeFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(left.iter().map(|e| e.exchange.backend.as_str()).collect::<Vec<_>>(), ["b"]);
    let linked = all(ExchangeFilter { message_id: Some(1), limit: 10, ..Default::default() }).await.unwrap();
    assert!(linked.is_empty(), "links go with their entries");
}

/// The provider-id de-dup lookup runs on every inbound message with an id:
/// one index seek on all its equalities (a sender's recent messages used to be
/// scanned one by one: 226 µs of CPU per request with 100 recurring senders;
/// sender+text de-dup is in memory now, see `recent`).
#[tokio::test]
async fn dedup_lookups_seek_instead_of_scanning() {
    let (dir, _store) = store();
    let conn = rusqlite::Connection::open(dir.path().join("smsgw.db")).unwrap();
    let same_id = query_plan(&conn, super::messages::SAME_PROVIDER_ID).join("; ");
    assert!(same_id.contains("backend=? AND external_id=? AND created_at>?"), "{same_id}");
}

/// Operations arriving while an fsync is in flight join the next transaction:
/// many at once are all answered, each exactly once, and all of them are in
/// the database after it is closed and opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_answered_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..300 {
        let store = store.clone();
        tasks.spawn(async move {
            let msg = inbound(&format!("+1555{n:04}"), &format!("m{n}"));
            store.record_inbound("http", vec![msg], vec![], DedupWindows::OFF).await
        });
    }
    let mut stored = 0;
    while let Some(done) = tasks.join_next().await {
        stored += done.unwrap().unwrap().messages.len();
    }
    assert_eq!(stored, 300);
    drop(store);
    let reopened = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(reopened.unprocessed_inbound(1000).await.unwrap().len(), 300);
}

/// The syncer holds the writer's channel open, so a dropped store must tell
/// its writer to stop: otherwise the thread, its connection and its
/// write-ahead log would outlive the store (SQLite removes the log when the
/// last connection closes).
#[tokio::test]
async fn dropping_the_store_closes_its_database() {
    let (dir, store) = store();
    store.record_inbound("http", vec![inbound("+1555", "ping")], vec![], DedupWindows::OFF).await.unwrap();
    let wal = dir.path().join("smsgw.db-wal");
    assert!(wal.exists());
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!wal.exists(), "the writer kept the database open after the store was dropped");
}

/// The steps of `sql`'s query plan, its parameters unbound.
pub(super) fn query_plan(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    explain(conn, &format!("EXPLAIN QUERY PLAN {sql}"), 3)
}

/// Column `column` of every row `explain` (an `EXPLAIN ...` statement) gives,
/// its parameters unbound.
pub(super) fn explain(conn: &rusqlite::Connection, explain: &str, column: usize) -> Vec<String> {
    let mut stmt = conn.prepare(explain).unwrap();
    let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
    let rows = stmt.query_map(rusqlite::params_from_iter(unbound), |r| r.get::<_, String>(column)).unwrap();
    rows.collect::<Result<Vec<_>, _>>().unwrap()
}

fn inbound(identity: &str, text: &str) -> NewInbound {
    NewInbound { identity: identity.into(), text: text.into(), ..Default::default() }
}
