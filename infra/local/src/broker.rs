//! IoT Core, emulated: the embedded MQTT broker (`mqtt5`, in-process) with the hooks that make it
//! behave like AWS IoT Core's message broker for Hearth.
//!
//! - Every publish, from a client or from the platform itself (shadow replies, presence events),
//!   goes through the [`Ingress`] (the topic rules read from `template.yaml`, the ingest log and
//!   the durable queues) *before* the broker acknowledges it, so a PUBACK means the message
//!   survives the stack being killed.
//! - Requests on the classic shadow topics are answered by the [`ShadowService`].
//! - Connects and disconnects publish AWS's lifecycle events on
//!   `$aws/events/presence/connected|disconnected/<clientId>`, with a `versionNumber` from a
//!   persisted counter, so it increases per client id across restarts.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use mqtt5::QoS;
use mqtt5::broker::events::{
    BrokerEventHandler, ClientConnectEvent, ClientDisconnectEvent, ClientPublishEvent,
    PublishAction,
};
use mqtt5::broker::router::{DeliveryLanes, LaneReceivers, MessageRouter, SubscriptionRequest};
use mqtt5::packet::publish::PublishPacket;
use mqtt5::types::ReasonCode;
use serde_json::json;
use tracing::{error, warn};

use hearth_ports::Clock;

use crate::shadow_service::{Operation, Reply, ShadowService, request_topic};

/// Where published messages enter the platform: the topic rules and their queues.
#[async_trait]
pub trait Ingress: Send + Sync {
    /// Routes one message through the rules; returns once every routed copy survives a crash
    /// of the process (in the ingest log, on its way to the queues).
    async fn accept(
        &self,
        topic: &str,
        payload: &[u8],
        client_id: &str,
        now_ms: u64,
    ) -> Result<(), String>;
}

/// Milliseconds since the Unix epoch, by the system clock: for measuring (latencies, rates).
/// What IoT Core stamps (rule `timestamp()`, shadow and presence times) comes from the stack's
/// clock instead ([`Hooks::new`]).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The broker's event hooks.
pub struct Hooks {
    router: RwLock<Option<Arc<MessageRouter>>>,
    /// The platform behind the broker; `None` once detached (the stack stopped), so broker tasks
    /// that outlive the stack hold no storage.
    platform: RwLock<Option<Arc<Platform>>>,
    sessions: Mutex<Sessions>,
    versions: Versions,
    /// IoT Core's clock: the stack's (a manual one in tests and demos).
    clock: Arc<dyn Clock>,
}

struct Platform {
    ingress: Arc<dyn Ingress>,
    shadows: ShadowService,
}

/// Presence bookkeeping: the version of each open session, oldest first, per client id.
struct Sessions {
    open: HashMap<String, VecDeque<u64>>,
}

/// Where presence `versionNumber`s come from: strictly increasing, across restarts too.
pub type Versions = Box<dyn Fn() -> Option<u64> + Send + Sync>;

impl Hooks {
    /// Hooks routing into `ingress`, answering shadow requests with `shadows`, numbering
    /// sessions with `versions`, stamping messages, shadows and presence events by `clock`.
    pub fn new(
        ingress: Arc<dyn Ingress>,
        shadows: ShadowService,
        versions: Versions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            router: RwLock::new(None),
            platform: RwLock::new(Some(Arc::new(Platform { ingress, shadows }))),
            sessions: Mutex::new(Sessions {
                open: HashMap::new(),
            }),
            versions,
            clock,
        }
    }

    /// Connects the hooks to the running broker's router (for the platform's own publishes).
    pub fn attach(&self, router: Arc<MessageRouter>) {
        *self.router.write().unwrap_or_else(PoisonError::into_inner) = Some(router);
    }

    /// Disconnects the platform: later events are dropped (the stack is stopping).
    pub fn detach(&self) {
        *self
            .platform
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        *self.router.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn router(&self) -> Option<Arc<MessageRouter>> {
        self.router
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn platform(&self) -> Option<Arc<Platform>> {
        self.platform
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes a message as the platform: through the rules, then to subscribers.
    pub async fn publish_internal(&self, topic: &str, payload: Vec<u8>, now: u64) {
        let Some(platform) = self.platform() else {
            return;
        };
        if let Err(e) = platform.ingress.accept(topic, &payload, "", now).await {
            error!(topic, error = %e, "could not queue a platform message");
        }
        if let Some(router) = self.router() {
            let packet = PublishPacket::new(topic, Bytes::from(payload), QoS::AtLeastOnce);
            router.route_message(&packet, None).await;
        }
    }

    /// A shadow request from the platform side (what the IoT Data Plane's HTTP API does for the
    /// owner API): handled by the shadow service like a device's request, and the same messages
    /// are published (`accepted`, `documents`, `delta`, `delete/accepted`, through the rules) —
    /// except a get's reply, which only goes back to the caller. `None` once detached.
    pub async fn shadow_request(
        &self,
        thing: &str,
        op: Operation,
        payload: &[u8],
    ) -> Option<Vec<Reply>> {
        let platform = self.platform()?;
        let now = self.clock.now_ms();
        let replies = platform
            .shadows
            .handle(thing, op, payload, now / 1000)
            .await;
        if op != Operation::Get {
            for reply in &replies {
                self.publish_internal(&reply.topic, reply.payload.clone(), now)
                    .await;
            }
        }
        Some(replies)
    }

    /// An in-process subscriber (no network, no credentials): what the broker routes to
    /// `filter` arrives on the returned lanes (QoS 1: a full lane holds the router back briefly,
    /// then the message waits in the session queue, which only a network client drains).
    /// `None` if the broker is not attached or refuses the subscription.
    pub async fn subscribe_in_process(
        &self,
        client_id: &str,
        filter: &str,
        capacity: usize,
    ) -> Option<InProcess> {
        let router = self.router()?;
        let (lanes, receivers) = DeliveryLanes::channel(capacity);
        let (takeover, _) = tokio::sync::oneshot::channel();
        router
            .register_client(
                client_id.to_owned(),
                lanes,
                router.queue_handle(client_id),
                takeover,
            )
            .await;
        if router
            .subscribe(SubscriptionRequest::new(
                client_id,
                filter,
                QoS::AtLeastOnce,
            ))
            .await
            .is_err()
        {
            router.unregister_client(client_id).await;
            return None;
        }
        Some(InProcess {
            router: Some(router),
            client_id: client_id.to_owned(),
            receivers,
        })
    }

    /// Disconnects a client (a policy violation), if the broker is attached.
    pub async fn disconnect(&self, client_id: &str) {
        if let Some(router) = self.router() {
            router.disconnect_client(client_id).await;
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        crate::lock(&self.sessions)
    }

    async fn connected(&self, client_id: &str) {
        let now = self.clock.now_ms();
        // A persisted counter; if it fails, the clock in microseconds still increases.
        let version = (self.versions)().unwrap_or_else(|| now.saturating_mul(1000));
        {
            let mut sessions = self.sessions();
            sessions
                .open
                .entry(client_id.to_owned())
                .or_default()
                .push_back(version);
        }
        let event = json!({
            "clientId": client_id,
            "timestamp": now,
            "eventType": "connected",
            "sessionIdentifier": format!("{version:032x}"),
            "principalIdentifier": client_id,
            "ipAddress": "127.0.0.1",
            "versionNumber": version,
        });
        let topic = format!("$aws/events/presence/connected/{client_id}");
        self.publish_internal(&topic, event.to_string().into_bytes(), now)
            .await;
    }

    async fn disconnected(&self, client_id: &str, reason: ReasonCode, unexpected: bool) {
        let now = self.clock.now_ms();
        let version = {
            let mut sessions = self.sessions();
            let version = sessions
                .open
                .get_mut(client_id)
                .and_then(VecDeque::pop_front);
            if sessions.open.get(client_id).is_some_and(VecDeque::is_empty) {
                sessions.open.remove(client_id);
            }
            version
        };
        let version =
            version.unwrap_or_else(|| (self.versions)().unwrap_or(now.saturating_mul(1000)));
        let reason_name = disconnect_reason(reason, unexpected);
        let event = json!({
            "clientId": client_id,
            "timestamp": now,
            "eventType": "disconnected",
            "sessionIdentifier": format!("{version:032x}"),
            "principalIdentifier": client_id,
            "clientInitiatedDisconnect": reason_name == "CLIENT_INITIATED_DISCONNECT",
            "disconnectReason": reason_name,
            "versionNumber": version,
        });
        let topic = format!("$aws/events/presence/disconnected/{client_id}");
        self.publish_internal(&topic, event.to_string().into_bytes(), now)
            .await;
    }

    async fn published(&self, event: ClientPublishEvent) -> PublishAction {
        if reserved_for_the_service(&event.topic) {
            // AWS IoT does not let devices publish what only the service publishes (shadow
            // replies, lifecycle events): such a message is neither routed nor delivered.
            warn!(topic = %event.topic, client_id = %event.client_id, "client publish on a service-only topic dropped");
            return PublishAction::Handled;
        }
        let Some(platform) = self.platform() else {
            return PublishAction::Continue;
        };
        let now = self.clock.now_ms();
        if let Err(e) = platform
            .ingress
            .accept(&event.topic, &event.payload, &event.client_id, now)
            .await
        {
            // The broker acknowledges after this hook whatever it returns; disconnecting the
            // client (best effort, before the PUBACK is written) makes it resend.
            error!(topic = %event.topic, client_id = %event.client_id, error = %e, "could not queue a device message; disconnecting the client");
            if let Some(router) = self.router() {
                router.disconnect_client(&event.client_id).await;
            }
            return PublishAction::Handled;
        }
        if event.topic.starts_with("$aws/rules/") {
            // Basic Ingest: for the rules engine only, never delivered to subscribers.
            return PublishAction::Handled;
        }
        if let Some((thing, op)) = request_topic(&event.topic) {
            for reply in platform
                .shadows
                .handle(thing, op, &event.payload, now / 1000)
                .await
            {
                self.publish_internal(&reply.topic, reply.payload, now)
                    .await;
            }
        }
        PublishAction::Continue
    }
}

/// A subscriber inside the stack's process (see [`Hooks::subscribe_in_process`]); unregistered
/// by [`InProcess::close`], or in the background when dropped (otherwise the broker would keep
/// queueing its messages).
pub struct InProcess {
    router: Option<Arc<MessageRouter>>,
    client_id: String,
    receivers: LaneReceivers,
}

impl InProcess {
    /// The next message routed to the subscriber; `None` once the broker dropped it.
    pub async fn recv(&mut self) -> Option<PublishPacket> {
        self.receivers.recv().await.map(|m| m.publish)
    }

    /// Unregisters the subscriber.
    pub async fn close(mut self) {
        if let Some(router) = self.router.take() {
            router.unregister_client(&self.client_id).await;
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let (Some(router), Ok(runtime)) =
            (self.router.take(), tokio::runtime::Handle::try_current())
        {
            let client_id = std::mem::take(&mut self.client_id);
            runtime.spawn(async move { router.unregister_client(&client_id).await });
        }
    }
}

/// Topics only AWS IoT itself publishes on: lifecycle events and the shadow service's replies.
fn reserved_for_the_service(topic: &str) -> bool {
    topic.starts_with("$aws/events/")
        || (topic.starts_with("$aws/things/")
            && topic.contains("/shadow/")
            && ["/accepted", "/rejected", "/delta", "/documents"]
                .iter()
                .any(|suffix| topic.ends_with(suffix)))
}

/// AWS's `disconnectReason` for an MQTT disconnect.
fn disconnect_reason(reason: ReasonCode, unexpected: bool) -> &'static str {
    match reason {
        ReasonCode::SessionTakenOver => "DUPLICATE_CLIENTID",
        ReasonCode::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
        ReasonCode::NotAuthorized | ReasonCode::BadUsernameOrPassword => "AUTH_ERROR",
        ReasonCode::ServerShuttingDown | ReasonCode::AdministrativeAction => {
            "SERVER_INITIATED_DISCONNECT"
        }
        ReasonCode::ProtocolError | ReasonCode::MalformedPacket | ReasonCode::PacketTooLarge => {
            "CLIENT_ERROR"
        }
        _ if unexpected => "CONNECTION_LOST",
        _ => "CLIENT_INITIATED_DISCONNECT",
    }
}

type Hook<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl BrokerEventHandler for Hooks {
    fn on_client_connect<'a>(&'a self, event: ClientConnectEvent) -> Hook<'a, ()> {
        Box::pin(async move { self.connected(&event.client_id).await })
    }

    fn on_client_disconnect<'a>(&'a self, event: ClientDisconnectEvent) -> Hook<'a, ()> {
        Box::pin(async move {
            self.disconnected(&event.client_id, event.reason, event.unexpected)
                .await;
        })
    }

    fn on_client_publish<'a>(&'a self, event: ClientPublishEvent) -> Hook<'a, PublishAction> {
        Box::pin(self.published(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_topics_are_reserved() {
        for topic in [
            "$aws/events/presence/connected/lamp-1",
            "$aws/things/lamp-1/shadow/update/accepted",
            "$aws/things/lamp-1/shadow/update/documents",
            "$aws/things/lamp-1/shadow/update/delta",
            "$aws/things/lamp-1/shadow/get/rejected",
            "$aws/things/lamp-1/shadow/delete/accepted",
            "$aws/things/lamp-1/shadow/name/cfg/update/delta",
        ] {
            assert!(reserved_for_the_service(topic), "{topic}");
        }
        for topic in [
            "$aws/things/lamp-1/shadow/update",
            "$aws/things/lamp-1/shadow/get",
            "$aws/things/lamp-1/shadow/delete",
            "dt/lamp-x/lamp-1/telemetry",
            "$aws/rules/hearth_telemetry/dt/lamp-x/lamp-1/telemetry",
        ] {
            assert!(!reserved_for_the_service(topic), "{topic}");
        }
    }
}
