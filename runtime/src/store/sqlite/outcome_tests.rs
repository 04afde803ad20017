//! Recording the apps' outcomes many at a time.

use super::SqliteStore;
use crate::store::*;

fn inbound(identity: &str, text: &str) -> NewInbound {
    NewInbound { identity: identity.into(), text: text.into(), ..Default::default() }
}

fn reply_to(id: MessageId) -> NewOutbound {
    NewOutbound {
        backend: "http".into(),
        text: "re".into(),
        identities: vec!["+1555".into()],
        in_response_to: Some(id),
        ..Default::default()
    }
}

async fn store_three(store: &SqliteStore) -> Vec<MessageId> {
    let messages = vec![inbound("+1", "a"), inbound("+2", "b"), inbound("+3", "c")];
    let recorded = store.record_inbound("http", messages, vec![], DedupWindows::OFF).await.unwrap();
    recorded.messages.iter().map(|m| m.id).collect()
}

/// Outcomes are recorded all or nothing: one that cannot be (its reply
/// names a message that does not exist) leaves no trace of the others, so
/// that the dispatcher can record them one by one; alone, the others go
/// through and the failing one stays unprocessed, for recovery.
#[tokio::test]
async fn outcomes_are_recorded_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let ids = store_three(&store).await;
    let outcomes = vec![
        InboundOutcome { id: ids[0], replies: vec![reply_to(ids[0])], error: None },
        InboundOutcome { id: ids[1], replies: vec![reply_to(MessageId::MAX)], error: None },
        InboundOutcome { id: ids[2], replies: vec![], error: Some("app failed".into()) },
    ];
    assert!(store.complete_inbound(outcomes.clone()).await.is_err());
    assert_eq!(store.unprocessed_inbound(10).await.unwrap().len(), 3, "a failed batch left changes behind");
    let outbound = MessageFilter { direction: Some(Direction::Out), limit: 10, ..Default::default() };
    assert!(store.list(outbound.clone()).await.unwrap().is_empty());

    let mut results = Vec::new();
    for outcome in outcomes {
        results.push(store.complete_inbound(vec![outcome]).await);
    }
    assert_eq!(results[0].as_ref().unwrap()[0].len(), 1);
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert!(results[2].as_ref().unwrap()[0].is_empty());
    let unprocessed: Vec<MessageId> = store.unprocessed_inbound(10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(unprocessed, vec![ids[1]]);
    assert_eq!(store.get(ids[0]).await.unwrap().unwrap().status.as_str(), "handled");
    assert_eq!(store.get(ids[2]).await.unwrap().unwrap().status.as_str(), "app-error");
    assert_eq!(store.list(outbound).await.unwrap().len(), 1, "the failed outcome's reply must not be queued");
}

/// Recovery reads unprocessed messages oldest first through the pending
/// index (the index of their own is gone), so the query must stay usable
/// with it: `INDEXED BY` fails rather than scanning if it is not.
#[tokio::test]
async fn unprocessed_messages_come_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let ids = store_three(&store).await;
    let more = store.record_inbound("http", vec![inbound("+4", "d")], vec![], DedupWindows::OFF).await.unwrap();
    let outcome = InboundOutcome { id: ids[1], replies: vec![], error: None };
    store.complete_inbound(vec![outcome]).await.unwrap();
    let unprocessed: Vec<MessageId> = store.unprocessed_inbound(2).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(unprocessed, vec![ids[0], ids[2]]);
    let all: Vec<MessageId> = store.unprocessed_inbound(10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(all, vec![ids[0], ids[2], more.messages[0].id]);
}
