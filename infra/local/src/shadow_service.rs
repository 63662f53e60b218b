//! The device shadow service on the AWS shadow topics, with the domain's shadow semantics.
//!
//! A device (or app) publishes to `$aws/things/<thing>/shadow/update`, `/get` or `/delete`; the
//! service answers on `<request topic>/accepted` or `/rejected` (AWS error codes), and after an
//! accepted update also on `update/documents` and, when the desired state changed and differs
//! from the reported one, `update/delta`. Requests for one thing are serialised so versions are
//! assigned exactly as the shadow service does.

use std::sync::Arc;

use async_trait::async_trait;
use hearth_domain::shadow::{Shadow, ShadowError, UpdateRequest, parse_client_token};
use hearth_ports::StoreError;
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::error;

/// Durable storage of device shadows.
#[async_trait]
pub trait ShadowStorage: Send + Sync {
    /// The thing's shadow, if it has one.
    async fn get(&self, thing: &str) -> Result<Option<Shadow>, StoreError>;
    /// Stores the thing's shadow (durably, before returning).
    async fn put(&self, thing: &str, shadow: &Shadow) -> Result<(), StoreError>;
    /// Deletes the thing's shadow.
    async fn delete(&self, thing: &str) -> Result<(), StoreError>;
}

/// A shadow request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `.../shadow/update`
    Update,
    /// `.../shadow/get`
    Get,
    /// `.../shadow/delete`
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Get => "get",
            Self::Delete => "delete",
        }
    }
}

/// The thing and operation of a classic-shadow request topic.
pub fn request_topic(topic: &str) -> Option<(&str, Operation)> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, op) = rest.split_once("/shadow/")?;
    if thing.is_empty() || thing.contains('/') {
        return None;
    }
    let op = match op {
        "update" => Operation::Update,
        "get" => Operation::Get,
        "delete" => Operation::Delete,
        _ => return None,
    };
    Some((thing, op))
}

/// A message the service publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Topic.
    pub topic: String,
    /// JSON payload.
    pub payload: Vec<u8>,
}

/// Number of lock stripes serialising requests per thing.
const STRIPES: usize = 256;

/// The shadow service.
pub struct ShadowService {
    storage: Arc<dyn ShadowStorage>,
    stripes: Vec<Mutex<()>>,
}

impl ShadowService {
    /// A service storing shadows in `storage`.
    pub fn new(storage: Arc<dyn ShadowStorage>) -> Self {
        Self {
            storage,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, thing: &str) -> &Mutex<()> {
        let hash = thing.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let index = usize::try_from(hash % STRIPES as u64).unwrap_or(0);
        &self.stripes[index]
    }

    /// Handles one request at time `now` (seconds); returns the replies to publish, in order.
    pub async fn handle(&self, thing: &str, op: Operation, payload: &[u8], now: u64) -> Vec<Reply> {
        let base = format!("$aws/things/{thing}/shadow/{}", op.name());
        let token = client_token(payload);
        let _guard = self.stripe(thing).lock().await;
        match self.apply(thing, op, payload, now, token.as_deref()).await {
            Ok(replies) => replies,
            Err(e) => vec![reply(
                format!("{base}/rejected"),
                &serde_json::to_value(e.response(now, token)).unwrap_or(Value::Null),
            )],
        }
    }

    async fn apply(
        &self,
        thing: &str,
        op: Operation,
        payload: &[u8],
        now: u64,
        token: Option<&str>,
    ) -> Result<Vec<Reply>, ShadowError> {
        let prefix = format!("$aws/things/{thing}/shadow");
        // `current` may be the tombstone of a deleted shadow (it keeps the version).
        let current = self.storage.get(thing).await.map_err(internal)?;
        match op {
            Operation::Update => {
                let request = UpdateRequest::parse(payload)?;
                let outcome = Shadow::update(current.as_ref(), &request, now)?;
                self.storage
                    .put(thing, &outcome.shadow)
                    .await
                    .map_err(internal)?;
                let mut replies = vec![
                    reply(format!("{prefix}/update/accepted"), &outcome.accepted),
                    reply(
                        format!("{prefix}/update/documents"),
                        &serde_json::to_value(&outcome.documents).unwrap_or(Value::Null),
                    ),
                ];
                if let Some(delta) = &outcome.delta {
                    replies.push(reply(
                        format!("{prefix}/update/delta"),
                        &serde_json::to_value(delta).unwrap_or(Value::Null),
                    ));
                }
                Ok(replies)
            }
            Operation::Get => {
                let shadow = current
                    .filter(Shadow::is_live)
                    .ok_or_else(|| ShadowError::NotFound(thing.to_owned()))?;
                Ok(vec![reply(
                    format!("{prefix}/get/accepted"),
                    &shadow.document(token),
                )])
            }
            Operation::Delete => {
                let accepted =
                    Shadow::delete(current.as_ref(), thing, token.map(str::to_owned), now)?;
                if let Some(shadow) = &current {
                    self.storage
                        .put(thing, &shadow.tombstone(now))
                        .await
                        .map_err(internal)?;
                }
                Ok(vec![reply(
                    format!("{prefix}/delete/accepted"),
                    &serde_json::to_value(&accepted).unwrap_or(Value::Null),
                )])
            }
        }
    }
}

fn internal(e: StoreError) -> ShadowError {
    error!(error = %e, "shadow storage failed");
    ShadowError::Internal
}

/// The request's `clientToken`, when the payload is JSON with a valid one (echoed even in
/// rejections, as AWS does).
fn client_token(payload: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    parse_client_token(value.get("clientToken")).ok().flatten()
}

fn reply(topic: String, value: &Value) -> Reply {
    Reply {
        topic,
        payload: serde_json::to_vec(value).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex as StdMutex;

    #[derive(Default)]
    struct Memory(StdMutex<HashMap<String, Shadow>>);

    #[async_trait]
    impl ShadowStorage for Memory {
        async fn get(&self, thing: &str) -> Result<Option<Shadow>, StoreError> {
            Ok(self
                .0
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?
                .get(thing)
                .cloned())
        }
        async fn put(&self, thing: &str, shadow: &Shadow) -> Result<(), StoreError> {
            self.0
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?
                .insert(thing.to_owned(), shadow.clone());
            Ok(())
        }
        async fn delete(&self, thing: &str) -> Result<(), StoreError> {
            self.0
                .lock()
                .map_err(|_| StoreError::Transient("poisoned".into()))?
                .remove(thing);
            Ok(())
        }
    }

    fn json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.payload).unwrap_or(Value::Null)
    }

    #[test]
    fn recognises_classic_shadow_request_topics() {
        assert_eq!(
            request_topic("$aws/things/lamp-1/shadow/update"),
            Some(("lamp-1", Operation::Update))
        );
        assert_eq!(
            request_topic("$aws/things/lamp-1/shadow/get"),
            Some(("lamp-1", Operation::Get))
        );
        assert_eq!(
            request_topic("$aws/things/lamp-1/shadow/update/accepted"),
            None
        );
        assert_eq!(
            request_topic("$aws/things/lamp-1/shadow/name/x/update"),
            None
        );
        assert_eq!(request_topic("dt/p/lamp-1/telemetry"), None);
    }

    #[tokio::test]
    async fn update_get_delete_round_trip() {
        let service = ShadowService::new(Arc::new(Memory::default()));
        let replies = service
            .handle(
                "lamp-1",
                Operation::Update,
                br#"{"state": {"desired": {"power": "on"}}, "clientToken": "t1"}"#,
                100,
            )
            .await;
        let topics: Vec<&str> = replies.iter().map(|r| r.topic.as_str()).collect();
        assert_eq!(
            topics,
            vec![
                "$aws/things/lamp-1/shadow/update/accepted",
                "$aws/things/lamp-1/shadow/update/documents",
                "$aws/things/lamp-1/shadow/update/delta",
            ]
        );
        assert_eq!(
            json(&replies[2])["state"],
            serde_json::json!({"power": "on"})
        );

        let stale = service
            .handle(
                "lamp-1",
                Operation::Update,
                br#"{"state": {"reported": {"power": "on"}}, "version": 7, "clientToken": "t2"}"#,
                101,
            )
            .await;
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].topic, "$aws/things/lamp-1/shadow/update/rejected");
        assert_eq!(json(&stale[0])["code"], 409);
        assert_eq!(json(&stale[0])["clientToken"], "t2");

        let bad = service
            .handle("lamp-1", Operation::Update, b"{oops", 102)
            .await;
        assert_eq!(json(&bad[0])["code"], 400);

        let got = service.handle("lamp-1", Operation::Get, b"", 103).await;
        assert_eq!(got[0].topic, "$aws/things/lamp-1/shadow/get/accepted");
        assert_eq!(json(&got[0])["version"], 1);

        let deleted = service.handle("lamp-1", Operation::Delete, b"", 104).await;
        assert_eq!(
            deleted[0].topic,
            "$aws/things/lamp-1/shadow/delete/accepted"
        );
        assert_eq!(json(&deleted[0])["version"], 1);
        let missing = service.handle("lamp-1", Operation::Get, b"", 105).await;
        assert_eq!(missing[0].topic, "$aws/things/lamp-1/shadow/get/rejected");
        assert_eq!(json(&missing[0])["code"], 404);
        let again = service.handle("lamp-1", Operation::Delete, b"", 106).await;
        assert_eq!(json(&again[0])["code"], 404);

        // Recreated within 48 hours: the version continues (AWS IoT).
        let recreated = service
            .handle(
                "lamp-1",
                Operation::Update,
                br#"{"state": {"reported": {"power": "off"}}}"#,
                107,
            )
            .await;
        assert_eq!(json(&recreated[0])["version"], 2);
    }
}
