//! Messages the in-process apps decide at once are stored with their outcome;
//! every other message is stored, then routed, as before.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::Dispatch;
use crate::apps::{App, Echo, Handled, InboundMessage, Ping};
use crate::store::sqlite::SqliteStore;
use crate::store::{DedupWindows, Direction, MessageFilter, MessageStatus, MessageStore, NewInbound};

/// An app that must see the stored message (as the webhook does): it
/// handles everything, replying with the message's gateway id.
struct NeedsTheId;

#[async_trait::async_trait]
impl App for NeedsTheId {
    fn name(&self) -> &'static str {
        "needs-the-id"
    }

    async fn handle(&self, message: &InboundMessage) -> anyhow::Result<Handled> {
        Ok(Handled::Yes(vec![format!("stored as {}", message.id)]))
    }
}

fn inbound(text: &str) -> NewInbound {
    NewInbound { identity: "+255700000001".into(), text: text.into(), ..Default::default() }
}

async fn dispatch(apps: Vec<Box<dyn App>>) -> (tempfile::TempDir, Arc<SqliteStore>, Arc<Dispatch>, Arc<Notify>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let outbound = Arc::new(Notify::new());
    let dispatch = Arc::new(Dispatch::new(store.clone(), apps, None, outbound.clone(), DedupWindows::OFF));
    (dir, store, dispatch, outbound)
}

/// Outbound messages replying to `id`.
async fn replies_to(store: &SqliteStore, id: i64) -> Vec<String> {
    let filter = MessageFilter { direction: Some(Direction::Out), limit: 100, ..Default::default() };
    let all = store.list(filter).await.unwrap();
    all.into_iter().filter(|m| m.in_response_to == Some(id)).map(|m| m.text).collect()
}

#[tokio::test]
async fn a_message_echo_decides_is_stored_handled_with_its_reply_and_wakes_the_queue() {
    let (_dir, store, dispatch, outbound) = dispatch(vec![Box::new(Echo), Box::new(Ping)]).await;
    let woken = outbound.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let recorded = dispatch.accept("kannel", vec![inbound("echo hi there"), inbound("hello")], vec![]).await.unwrap();
    assert_eq!(recorded.messages.len(), 2);
    assert_eq!(recorded.settled.len(), 2, "both decided: one echoed, one nobody's");
    assert_eq!(recorded.replies_queued, 1);
    tokio::time::timeout(Duration::from_secs(1), woken).await.expect("the queue is woken for the reply");

    // Already final when accept returns: nothing for the router or recovery.
    let (echoed, ignored) = (recorded.messages[0].id, recorded.messages[1].id);
    assert_eq!(store.get(echoed).await.unwrap().unwrap().status, MessageStatus::Handled);
    assert_eq!(store.get(ignored).await.unwrap().unwrap().status, MessageStatus::Handled);
    assert_eq!(replies_to(&store, echoed).await, vec!["hi there".to_string()]);
    assert!(replies_to(&store, ignored).await.is_empty());
    assert!(store.unprocessed_inbound(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_app_that_needs_the_stored_message_gets_it_after_storing() {
    // Ping decides "not mine" at once, the next app cannot decide before storing.
    let (_dir, store, dispatch, _outbound) = dispatch(vec![Box::new(Ping), Box::new(NeedsTheId)]).await;
    let recorded = dispatch.accept("kannel", vec![inbound("hello"), inbound("ping")], vec![]).await.unwrap();
    let (routed, ponged) = (recorded.messages[0].id, recorded.messages[1].id);
    assert_eq!(recorded.settled, vec![ponged], "only ping's own message is decided at once");
    assert_eq!(replies_to(&store, ponged).await, vec!["pong".to_string()]);

    // The other is routed in the background, and its app sees its real id.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.get(routed).await.unwrap().unwrap().status != MessageStatus::Handled {
        assert!(tokio::time::Instant::now() < deadline, "never routed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(replies_to(&store, routed).await, vec![format!("stored as {routed}")]);
}
