//! Device messages as they arrive on the platform's queues.
//!
//! Every topic rule that feeds a queue adds the same envelope to the device's JSON payload, in
//! its SQL: `topic() AS topic`, the thing name `AS thing` and `timestamp() AS received_at`
//! (milliseconds). For example:
//!
//! ```sql
//! SELECT *, topic(3) AS thing, topic() AS topic, timestamp() AS received_at
//! FROM '$aws/things/+/shadow/update/documents'
//! ```
//!
//! [`parse`] reads a queued message body, checks the envelope against the topic and classifies
//! the message by its topic:
//!
//! | topic | message |
//! |---|---|
//! | `$aws/things/<thing>/shadow/update/documents` | [`DeviceMessage::ShadowDocuments`] |
//! | `$aws/things/<thing>/shadow/delete/accepted` | [`DeviceMessage::ShadowDeleted`] |
//! | `dt/<product>/<thing>/telemetry`, also as `$aws/rules/<rule>/dt/...` (Basic Ingest) | [`DeviceMessage::Telemetry`] |
//! | `$aws/events/presence/connected\|disconnected/<clientId>` | [`DeviceMessage::Presence`] |
//!
//! A message that can never be processed is a [`MessageError`] with a stable
//! [`reason`](MessageError::reason) code; a presence event of a client that is not a thing is
//! [`Parsed::Ignored`].

use serde::Deserialize;
use serde_json::Value;

use crate::device::{DeviceId, InvalidId, ProductId};
use crate::projection::{Connectivity, DeviceState, PresenceKind, ShadowProjection, Telemetry};
use crate::shadow::{DeleteAccepted, DocumentsMessage, Object};

/// Largest message body accepted: AWS IoT Core's 128 KiB payload limit plus room for the
/// envelope fields.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024 + 1024;

/// The disconnect reason AWS gives when a new connection with the same client id replaced the
/// old one: the device is still connected.
pub const DUPLICATE_CLIENTID: &str = "DUPLICATE_CLIENTID";

/// Why a message can never be processed. Such messages go to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The body is larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {bytes} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    Oversize {
        /// Size of the body.
        bytes: usize,
    },
    /// The body is not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("body is not a JSON object")]
    NotAnObject,
    /// An envelope field is missing or has the wrong type.
    #[error("envelope field `{0}` is missing or has the wrong type")]
    MissingEnvelope(&'static str),
    /// The topic is not one the state processor handles.
    #[error("no handler for topic `{0}`")]
    UnknownTopic(String),
    /// The envelope's `thing` is not the thing named by the topic.
    #[error("envelope thing `{thing}` does not match topic `{topic}`")]
    ThingMismatch {
        /// The envelope's thing.
        thing: String,
        /// The envelope's topic.
        topic: String,
    },
    /// The topic names an invalid thing or product.
    #[error("{0}")]
    InvalidId(#[from] InvalidId),
    /// The payload does not have the shape its topic implies.
    #[error("{kind} payload has the wrong shape: {detail}")]
    InvalidShape {
        /// Which kind of message.
        kind: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl MessageError {
    /// A stable, machine-readable code for the reason (used as a message attribute on the
    /// dead-letter queue).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Oversize { .. } => "oversize",
            Self::NotJson(_) => "not-json",
            Self::NotAnObject => "not-an-object",
            Self::MissingEnvelope(_) => "missing-envelope",
            Self::UnknownTopic(_) => "unknown-topic",
            Self::ThingMismatch { .. } => "thing-mismatch",
            Self::InvalidId(_) => "invalid-id",
            Self::InvalidShape { .. } => "invalid-shape",
        }
    }
}

/// A presence (lifecycle) event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEvent {
    /// The client id (= thing name for devices).
    pub client_id: String,
    /// Event time (milliseconds).
    pub timestamp: u64,
    /// `connected` or `disconnected`.
    pub event_type: PresenceKind,
    /// Monotonically increasing per client id connection.
    pub version_number: u64,
    /// Why the client disconnected.
    #[serde(default)]
    pub disconnect_reason: Option<String>,
    /// Whether the client initiated the disconnect.
    #[serde(default)]
    pub client_initiated_disconnect: Option<bool>,
}

/// A classified device message.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceMessage {
    /// `update/documents`: the shadow before and after an update.
    ShadowDocuments {
        /// The thing.
        thing: DeviceId,
        /// The documents.
        documents: Box<DocumentsMessage>,
        /// Receive time (milliseconds).
        received_at: u64,
    },
    /// `delete/accepted`: the shadow was deleted.
    ShadowDeleted {
        /// The thing.
        thing: DeviceId,
        /// The reply.
        deleted: DeleteAccepted,
        /// Receive time (milliseconds).
        received_at: u64,
    },
    /// Device telemetry.
    Telemetry {
        /// The thing.
        thing: DeviceId,
        /// The product from the topic.
        product: ProductId,
        /// The payload without the envelope.
        payload: Object,
        /// Receive time (milliseconds).
        received_at: u64,
    },
    /// A connect or disconnect.
    Presence {
        /// The thing (= client id).
        thing: DeviceId,
        /// The event.
        event: PresenceEvent,
        /// Receive time (milliseconds).
        received_at: u64,
    },
}

/// The outcome of parsing a message that is not broken.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A message to process.
    Message(DeviceMessage),
    /// A well-formed message that concerns no device (why).
    Ignored(&'static str),
}

impl DeviceMessage {
    /// The device the message is about.
    pub fn thing(&self) -> &DeviceId {
        match self {
            Self::ShadowDocuments { thing, .. }
            | Self::ShadowDeleted { thing, .. }
            | Self::Telemetry { thing, .. }
            | Self::Presence { thing, .. } => thing,
        }
    }

    /// The partial device state this message stands for (its payload moves into it).
    pub fn into_update(self) -> DeviceState {
        match self {
            Self::ShadowDocuments {
                documents,
                received_at,
                ..
            } => {
                let current = documents.current;
                // The device reported if the reported metadata changed in this update.
                let reported_touched = documents
                    .previous
                    .as_ref()
                    .map_or(current.state.reported.is_some(), |previous| {
                        previous.metadata.reported != current.metadata.reported
                    });
                DeviceState {
                    shadow: Some(ShadowProjection {
                        version: current.version,
                        received_at,
                        timestamp: documents.timestamp,
                        desired: current.state.desired,
                        reported: current.state.reported,
                        client_token: documents.client_token,
                    }),
                    last_seen: reported_touched.then_some(received_at),
                    ..DeviceState::default()
                }
            }
            Self::ShadowDeleted { received_at, .. } => DeviceState {
                shadow_deleted_at: Some(received_at),
                ..DeviceState::default()
            },
            Self::Telemetry {
                product,
                payload,
                received_at,
                ..
            } => DeviceState {
                telemetry: Some(Telemetry {
                    received_at,
                    product,
                    payload,
                }),
                last_seen: Some(received_at),
                ..DeviceState::default()
            },
            Self::Presence {
                event, received_at, ..
            } => {
                let duplicate = event.disconnect_reason.as_deref() == Some(DUPLICATE_CLIENTID);
                DeviceState {
                    connectivity: Some(Connectivity {
                        connected: event.event_type == PresenceKind::Connected || duplicate,
                        event: event.event_type,
                        version_number: event.version_number,
                        timestamp: event.timestamp,
                        disconnect_reason: event.disconnect_reason,
                    }),
                    last_seen: Some(received_at),
                    ..DeviceState::default()
                }
            }
        }
    }
}

/// Parses and classifies a queued message body.
pub fn parse(body: &str) -> Result<Parsed, MessageError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::Oversize { bytes: body.len() });
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(MessageError::NotAnObject);
    };
    let topic = take_string(&mut fields, "topic")?;
    let thing = take_string(&mut fields, "thing")?;
    let received_at = fields
        .remove("received_at")
        .and_then(|v| v.as_u64())
        .ok_or(MessageError::MissingEnvelope("received_at"))?;

    let route = Route::of(&topic).ok_or_else(|| MessageError::UnknownTopic(topic.clone()))?;
    if route.thing() != thing {
        return Err(MessageError::ThingMismatch { thing, topic });
    }
    let message = match route {
        Route::Presence { kind, client_id } => {
            let Ok(thing) = DeviceId::parse(client_id) else {
                return Ok(Parsed::Ignored(
                    "presence of a client id that is not a thing name",
                ));
            };
            let event: PresenceEvent = shape("presence", Value::Object(fields))?;
            if event.event_type != kind || event.client_id != client_id {
                return Err(MessageError::InvalidShape {
                    kind: "presence",
                    detail: "eventType or clientId disagrees with the topic".to_owned(),
                });
            }
            DeviceMessage::Presence {
                thing,
                event,
                received_at,
            }
        }
        Route::ShadowDocuments { thing } => DeviceMessage::ShadowDocuments {
            thing: DeviceId::parse(thing)?,
            documents: shape("shadow documents", Value::Object(fields))?,
            received_at,
        },
        Route::ShadowDeleted { thing } => DeviceMessage::ShadowDeleted {
            thing: DeviceId::parse(thing)?,
            deleted: shape("shadow delete", Value::Object(fields))?,
            received_at,
        },
        Route::Telemetry { product, thing } => DeviceMessage::Telemetry {
            thing: DeviceId::parse(thing)?,
            product: ProductId::parse(product)?,
            payload: fields,
            received_at,
        },
    };
    Ok(Parsed::Message(message))
}

fn take_string(fields: &mut Object, name: &'static str) -> Result<String, MessageError> {
    match fields.remove(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(MessageError::MissingEnvelope(name)),
    }
}

fn shape<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    value: Value,
) -> Result<T, MessageError> {
    serde_json::from_value(value).map_err(|e| MessageError::InvalidShape {
        kind,
        detail: e.to_string(),
    })
}

/// What a topic addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    ShadowDocuments {
        thing: &'a str,
    },
    ShadowDeleted {
        thing: &'a str,
    },
    Telemetry {
        product: &'a str,
        thing: &'a str,
    },
    Presence {
        kind: PresenceKind,
        client_id: &'a str,
    },
}

impl<'a> Route<'a> {
    fn of(topic: &'a str) -> Option<Self> {
        // Basic Ingest: `$aws/rules/<rule>/` prefixes the topic the device meant.
        let topic = match topic.strip_prefix("$aws/rules/") {
            Some(rest) => rest.split_once('/')?.1,
            None => topic,
        };
        let parts: Vec<&str> = topic.split('/').collect();
        match parts.as_slice() {
            ["$aws", "things", thing, "shadow", "update", "documents"] => {
                Some(Self::ShadowDocuments { thing })
            }
            ["$aws", "things", thing, "shadow", "delete", "accepted"] => {
                Some(Self::ShadowDeleted { thing })
            }
            ["dt", product, thing, "telemetry"] => Some(Self::Telemetry { product, thing }),
            ["$aws", "events", "presence", "connected", client_id] => Some(Self::Presence {
                kind: PresenceKind::Connected,
                client_id,
            }),
            ["$aws", "events", "presence", "disconnected", client_id] => Some(Self::Presence {
                kind: PresenceKind::Disconnected,
                client_id,
            }),
            _ => None,
        }
    }

    fn thing(&self) -> &'a str {
        match *self {
            Self::ShadowDocuments { thing }
            | Self::ShadowDeleted { thing }
            | Self::Telemetry { thing, .. } => thing,
            Self::Presence { client_id, .. } => client_id,
        }
    }
}

#[cfg(test)]
mod tests;
