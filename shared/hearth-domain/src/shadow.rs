//! AWS IoT Device Shadow semantics for the classic (unnamed) shadow.
//!
//! A shadow holds a `desired` and a `reported` section, per-field metadata timestamps, a document
//! `version` and the time of its last update. An update request merges into it: nested objects
//! merge, arrays and scalars replace, `null` deletes a field (or, on a whole section, the section).
//! The `delta` is every desired field whose value differs from the reported one, recursively.
//!
//! Limits follow AWS IoT Core: the desired and reported data together at most
//! [`MAX_STATE_BYTES`] (metadata does not count), at most [`MAX_DEPTH`] levels of nesting in a
//! section, client tokens of at most [`MAX_CLIENT_TOKEN_BYTES`], requests of at most
//! [`MAX_REQUEST_BYTES`]. Violations are [`ShadowError`]s carrying AWS's code and message, which
//! become the `rejected` reply ([`ErrorResponse`]).
//!
//! A deleted shadow leaves a [`Shadow::tombstone`]: recreated within 48 hours, its version
//! continues from the deleted one; later it starts again (AWS IoT's documented behaviour).
//!
//! Two choices where AWS's documentation is silent: an object emptied by `null` deletions is
//! removed (a section emptied that way disappears), and an array's metadata mirrors the array
//! (one timestamp per element).
//!
//! Timestamps here are AWS's: whole seconds since the Unix epoch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object.
pub type Object = Map<String, Value>;

/// Largest `desired` plus `reported` data a shadow may hold, in bytes of compact JSON.
pub const MAX_STATE_BYTES: usize = 8 * 1024;
/// Deepest nesting of objects and arrays inside a `desired` or `reported` section (the section
/// object itself is level 1).
pub const MAX_DEPTH: usize = 6;
/// Longest accepted `clientToken`, in bytes.
pub const MAX_CLIENT_TOKEN_BYTES: usize = 64;
/// Largest request payload: AWS IoT Core's MQTT payload limit.
pub const MAX_REQUEST_BYTES: usize = 128 * 1024;

/// Why the shadow service rejected a request: AWS's error codes and messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowError {
    /// The payload is not JSON.
    #[error("Invalid JSON")]
    InvalidJson,
    /// The request has no `state` node.
    #[error("Missing required node: state")]
    MissingState,
    /// `state` is not an object.
    #[error("State node must be an object")]
    StateNotObject,
    /// `state.desired` is neither an object nor `null`.
    #[error("Desired node must be an object")]
    DesiredNotObject,
    /// `state.reported` is neither an object nor `null`.
    #[error("Reported node must be an object")]
    ReportedNotObject,
    /// `version` is not a non-negative integer.
    #[error("Invalid version")]
    InvalidVersion,
    /// `clientToken` is not a string of at most 64 bytes.
    #[error("Invalid clientToken")]
    InvalidClientToken,
    /// A section nests deeper than [`MAX_DEPTH`].
    #[error("JSON contains too many levels of nesting; maximum is 6")]
    TooDeep,
    /// `state` holds something other than `desired` and `reported`, or neither of them.
    #[error("State contains an invalid node")]
    InvalidNode,
    /// The request's `version` is not the shadow's current version.
    #[error("Version conflict")]
    VersionConflict,
    /// The request, or the shadow after the update, is larger than allowed.
    #[error("The payload exceeds the maximum size allowed")]
    PayloadTooLarge,
    /// The payload is not UTF-8.
    #[error("Unsupported documented encoding; supported encoding is UTF-8")]
    UnsupportedEncoding,
    /// The thing has no shadow (get or delete of a missing shadow).
    #[error("No shadow exists with name: '{0}'")]
    NotFound(String),
    /// The service failed (storage); the request may be retried.
    #[error("Internal service failure")]
    Internal,
}

impl ShadowError {
    /// The HTTP-style status code AWS puts in `rejected` replies.
    pub fn code(&self) -> u16 {
        match self {
            Self::InvalidJson
            | Self::MissingState
            | Self::StateNotObject
            | Self::DesiredNotObject
            | Self::ReportedNotObject
            | Self::InvalidVersion
            | Self::InvalidClientToken
            | Self::TooDeep
            | Self::InvalidNode => 400,
            Self::NotFound(_) => 404,
            Self::VersionConflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedEncoding => 415,
            Self::Internal => 500,
        }
    }

    /// The `rejected` reply for this error.
    pub fn response(&self, timestamp: u64, client_token: Option<String>) -> ErrorResponse {
        ErrorResponse {
            code: self.code(),
            message: self.to_string(),
            timestamp,
            client_token,
        }
    }
}

/// The body of an `update/rejected`, `get/rejected` or `delete/rejected` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// AWS's error code (400, 404, 409, 413, 415, ...).
    pub code: u16,
    /// AWS's error message.
    pub message: String,
    /// When the request was rejected (seconds).
    pub timestamp: u64,
    /// The request's client token, echoed.
    #[serde(
        rename = "clientToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_token: Option<String>,
}

/// What an update request does to one section.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SectionUpdate {
    /// The request does not mention the section.
    #[default]
    Absent,
    /// `"desired": null`: delete the whole section.
    Clear,
    /// Merge these fields (a `null` value deletes its field).
    Merge(Object),
}

impl SectionUpdate {
    fn as_value(&self) -> Option<Value> {
        match self {
            Self::Absent => None,
            Self::Clear => Some(Value::Null),
            Self::Merge(o) => Some(Value::Object(o.clone())),
        }
    }
}

/// A validated shadow update request (`$aws/things/<thing>/shadow/update`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateRequest {
    /// The change to `desired`.
    pub desired: SectionUpdate,
    /// The change to `reported`.
    pub reported: SectionUpdate,
    /// Optimistic locking: apply only if the shadow is at this version.
    pub version: Option<u64>,
    /// Echoed in the replies.
    pub client_token: Option<String>,
}

impl UpdateRequest {
    /// Parses and validates a request payload as the shadow service would.
    pub fn parse(payload: &[u8]) -> Result<Self, ShadowError> {
        if payload.len() > MAX_REQUEST_BYTES {
            return Err(ShadowError::PayloadTooLarge);
        }
        let text = std::str::from_utf8(payload).map_err(|_| ShadowError::UnsupportedEncoding)?;
        let value: Value = serde_json::from_str(text).map_err(|_| ShadowError::InvalidJson)?;
        Self::from_value(value)
    }

    /// Validates an already parsed request document.
    pub fn from_value(value: Value) -> Result<Self, ShadowError> {
        let Value::Object(mut root) = value else {
            return Err(ShadowError::MissingState);
        };
        let client_token = parse_client_token(root.get("clientToken"))?;
        let version = match root.get("version") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or(ShadowError::InvalidVersion)?),
        };
        let state = match root.remove("state") {
            None => return Err(ShadowError::MissingState),
            Some(Value::Object(state)) => state,
            Some(_) => return Err(ShadowError::StateNotObject),
        };
        let mut request = UpdateRequest {
            version,
            client_token,
            ..UpdateRequest::default()
        };
        for (key, value) in state {
            let (slot, not_object) = match key.as_str() {
                "desired" => (&mut request.desired, ShadowError::DesiredNotObject),
                "reported" => (&mut request.reported, ShadowError::ReportedNotObject),
                _ => return Err(ShadowError::InvalidNode),
            };
            *slot = match value {
                Value::Null => SectionUpdate::Clear,
                Value::Object(fields) => {
                    if nesting(&fields) > MAX_DEPTH {
                        return Err(ShadowError::TooDeep);
                    }
                    SectionUpdate::Merge(fields)
                }
                _ => return Err(not_object),
            };
        }
        if request.desired == SectionUpdate::Absent && request.reported == SectionUpdate::Absent {
            return Err(ShadowError::InvalidNode);
        }
        Ok(request)
    }
}

/// Reads a `clientToken` field, which must be a string of at most 64 bytes.
pub fn parse_client_token(value: Option<&Value>) -> Result<Option<String>, ShadowError> {
    match value {
        None => Ok(None),
        Some(Value::String(token)) if token.len() <= MAX_CLIENT_TOKEN_BYTES => {
            Ok(Some(token.clone()))
        }
        Some(_) => Err(ShadowError::InvalidClientToken),
    }
}

/// The `desired` and `reported` halves of a state or metadata document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sections {
    /// The desired half, absent when the shadow has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Object>,
    /// The reported half, absent when the shadow has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Object>,
}

/// A device shadow: state, metadata, version and the time of its last update.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Shadow {
    /// Desired and reported state.
    pub state: Sections,
    /// Per-field `{"timestamp": seconds}` metadata mirroring `state`.
    pub metadata: Sections,
    /// Document version: 1 after the first update, +1 per accepted update.
    pub version: u64,
    /// When the shadow was last updated (seconds).
    pub timestamp: u64,
    /// Set when the shadow was deleted (seconds): a tombstone that remembers the version, so a
    /// shadow recreated within [`VERSION_MEMORY_SECS`] continues from it, as AWS does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<u64>,
}

/// How long AWS remembers a deleted shadow's version: a shadow recreated within 48 hours of its
/// delete continues from the deleted version; later, versions start again.
pub const VERSION_MEMORY_SECS: u64 = 48 * 3600;

/// Everything an accepted update produces: the new shadow and the messages AWS publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The shadow after the update.
    pub shadow: Shadow,
    /// The `update/accepted` message.
    pub accepted: Value,
    /// The `update/documents` message.
    pub documents: DocumentsMessage,
    /// The `update/delta` message, when the request changed `desired` and a difference remains.
    pub delta: Option<DeltaMessage>,
}

impl Shadow {
    /// Applies an update request to the current shadow (`None` when the thing has none yet) at
    /// time `now` (seconds).
    pub fn update(
        current: Option<&Shadow>,
        request: &UpdateRequest,
        now: u64,
    ) -> Result<UpdateOutcome, ShadowError> {
        let live = current.filter(|s| s.is_live());
        let current_version = match current {
            Some(s) if s.is_live() => s.version,
            Some(s)
                if s.deleted_at
                    .is_some_and(|deleted| now.saturating_sub(deleted) <= VERSION_MEMORY_SECS) =>
            {
                s.version
            }
            _ => 0,
        };
        if let Some(expected) = request.version
            && expected != current_version
        {
            return Err(ShadowError::VersionConflict);
        }
        let mut next = live.cloned().unwrap_or_default();
        apply_section(
            &mut next.state.desired,
            &mut next.metadata.desired,
            &request.desired,
            now,
        );
        apply_section(
            &mut next.state.reported,
            &mut next.metadata.reported,
            &request.reported,
            now,
        );
        if next.state_bytes() > MAX_STATE_BYTES {
            return Err(ShadowError::PayloadTooLarge);
        }
        next.version = current_version + 1;
        next.timestamp = now;

        let mut accepted_state = Object::new();
        let mut accepted_metadata = Object::new();
        for (name, section) in [
            ("desired", &request.desired),
            ("reported", &request.reported),
        ] {
            if let Some(value) = section.as_value() {
                accepted_metadata.insert(name.to_owned(), metadata_of(&value, now));
                accepted_state.insert(name.to_owned(), value);
            }
        }
        let mut accepted = Object::new();
        accepted.insert("state".to_owned(), Value::Object(accepted_state));
        accepted.insert("metadata".to_owned(), Value::Object(accepted_metadata));
        accepted.insert("version".to_owned(), next.version.into());
        accepted.insert("timestamp".to_owned(), now.into());
        if let Some(token) = &request.client_token {
            accepted.insert("clientToken".to_owned(), token.clone().into());
        }

        let delta = match &request.desired {
            SectionUpdate::Merge(changed) => next.delta().and_then(|full| {
                let state = restrict(&full, changed);
                (!state.is_empty()).then(|| DeltaMessage {
                    metadata: project_metadata(
                        &state,
                        next.metadata.desired.as_ref().unwrap_or(&Object::new()),
                    ),
                    state,
                    version: next.version,
                    timestamp: now,
                    client_token: request.client_token.clone(),
                })
            }),
            SectionUpdate::Absent | SectionUpdate::Clear => None,
        };
        let documents = DocumentsMessage {
            previous: live.map(Shadow::snapshot),
            current: next.snapshot(),
            timestamp: now,
            client_token: request.client_token.clone(),
        };
        Ok(UpdateOutcome {
            shadow: next,
            accepted: Value::Object(accepted),
            documents,
            delta,
        })
    }

    /// Deletes the shadow: the `delete/accepted` reply, or 404 when there is none.
    pub fn delete(
        current: Option<&Shadow>,
        thing: &str,
        client_token: Option<String>,
        now: u64,
    ) -> Result<DeleteAccepted, ShadowError> {
        let shadow = current
            .filter(|s| s.is_live())
            .ok_or_else(|| ShadowError::NotFound(thing.to_owned()))?;
        Ok(DeleteAccepted {
            version: shadow.version,
            timestamp: now,
            client_token,
        })
    }

    /// Whether this is a shadow (not the tombstone of a deleted one).
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// What to keep of this shadow once deleted at `now`: its version, for
    /// [`VERSION_MEMORY_SECS`].
    pub fn tombstone(&self, now: u64) -> Shadow {
        Shadow {
            version: self.version,
            timestamp: now,
            deleted_at: Some(now),
            ..Shadow::default()
        }
    }

    /// The desired fields that differ from the reported ones, recursively; `None` when there
    /// are none.
    pub fn delta(&self) -> Option<Object> {
        let desired = self.state.desired.as_ref()?;
        let delta = delta(desired, self.state.reported.as_ref());
        (!delta.is_empty()).then_some(delta)
    }

    /// The full document: the `get/accepted` reply (`state` with `delta`, `metadata`,
    /// `version`, `timestamp`, `clientToken`).
    pub fn document(&self, client_token: Option<&str>) -> Value {
        let mut state = Object::new();
        if let Some(desired) = &self.state.desired {
            state.insert("desired".to_owned(), Value::Object(desired.clone()));
        }
        if let Some(reported) = &self.state.reported {
            state.insert("reported".to_owned(), Value::Object(reported.clone()));
        }
        if let Some(delta) = self.delta() {
            state.insert("delta".to_owned(), Value::Object(delta));
        }
        let mut doc = Object::new();
        doc.insert("state".to_owned(), Value::Object(state));
        doc.insert(
            "metadata".to_owned(),
            serde_json::to_value(&self.metadata).unwrap_or(Value::Null),
        );
        doc.insert("version".to_owned(), self.version.into());
        doc.insert("timestamp".to_owned(), self.timestamp.into());
        if let Some(token) = client_token {
            doc.insert("clientToken".to_owned(), token.into());
        }
        Value::Object(doc)
    }

    /// This shadow as it appears in `update/documents` (`previous` or `current`).
    pub fn snapshot(&self) -> DocumentSnapshot {
        DocumentSnapshot {
            state: self.state.clone(),
            metadata: self.metadata.clone(),
            version: self.version,
        }
    }

    /// Size of the desired and reported data, in bytes of compact JSON (what AWS limits).
    pub fn state_bytes(&self) -> usize {
        let section = |s: &Option<Object>| s.as_ref().map_or(0, json_len);
        section(&self.state.desired) + section(&self.state.reported)
    }
}

/// The `update/documents` message: the shadow before and after an accepted update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentsMessage {
    /// The shadow before the update; absent (or `null`) when the update created it.
    #[serde(default)]
    pub previous: Option<DocumentSnapshot>,
    /// The shadow after the update.
    pub current: DocumentSnapshot,
    /// When the update was accepted (seconds).
    pub timestamp: u64,
    /// The request's client token.
    #[serde(
        rename = "clientToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_token: Option<String>,
}

/// One side of an `update/documents` message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DocumentSnapshot {
    /// Desired and reported state.
    #[serde(default)]
    pub state: Sections,
    /// Per-field metadata.
    #[serde(default)]
    pub metadata: Sections,
    /// Document version.
    pub version: u64,
}

/// The `update/delta` message sent to the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaMessage {
    /// The desired values the device has not reported yet.
    pub state: Object,
    /// Metadata of those fields.
    pub metadata: Object,
    /// Shadow version after the update.
    pub version: u64,
    /// When the update was accepted (seconds).
    pub timestamp: u64,
    /// The request's client token.
    #[serde(
        rename = "clientToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_token: Option<String>,
}

/// The `delete/accepted` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAccepted {
    /// The version of the deleted document.
    pub version: u64,
    /// When it was deleted (seconds).
    pub timestamp: u64,
    /// The request's client token.
    #[serde(
        rename = "clientToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_token: Option<String>,
}

/// The desired fields that differ from `reported`, recursively.
pub fn delta(desired: &Object, reported: Option<&Object>) -> Object {
    let mut out = Object::new();
    for (key, wanted) in desired {
        match (wanted, reported.and_then(|r| r.get(key))) {
            (Value::Object(wanted), Some(Value::Object(have))) => {
                let sub = delta(wanted, Some(have));
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (wanted, Some(have)) if wanted == have => {}
            (wanted, _) => {
                out.insert(key.clone(), wanted.clone());
            }
        }
    }
    out
}

/// Levels of object/array nesting of an object (a flat object is 1).
pub fn nesting(object: &Object) -> usize {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + object.values().map(depth).max().unwrap_or(0)
}

fn json_len(object: &Object) -> usize {
    serde_json::to_vec(object).map_or(usize::MAX, |v| v.len())
}

fn apply_section(
    state: &mut Option<Object>,
    metadata: &mut Option<Object>,
    update: &SectionUpdate,
    now: u64,
) {
    match update {
        SectionUpdate::Absent => {}
        SectionUpdate::Clear => {
            *state = None;
            *metadata = None;
        }
        SectionUpdate::Merge(fields) => {
            let target = state.get_or_insert_with(Object::new);
            let meta = metadata.get_or_insert_with(Object::new);
            merge(target, meta, fields, now);
            if target.is_empty() && fields.values().any(Value::is_null) {
                *state = None;
                *metadata = None;
            }
        }
    }
}

/// Merges `update` into `target` and stamps `meta` with `now` for every field it sets.
fn merge(target: &mut Object, meta: &mut Object, update: &Object, now: u64) {
    for (key, value) in update {
        match value {
            Value::Null => {
                target.remove(key);
                meta.remove(key);
            }
            Value::Object(fields) => {
                let had_object = matches!(target.get(key), Some(Value::Object(_)));
                if !had_object {
                    target.insert(key.clone(), Value::Object(Object::new()));
                }
                if !matches!(meta.get(key), Some(Value::Object(_))) || !had_object {
                    meta.insert(key.clone(), Value::Object(Object::new()));
                }
                if let (Some(Value::Object(t)), Some(Value::Object(m))) =
                    (target.get_mut(key), meta.get_mut(key))
                {
                    merge(t, m, fields, now);
                    let emptied = t.is_empty() && fields.values().any(Value::is_null);
                    if emptied {
                        target.remove(key);
                        meta.remove(key);
                    }
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
                meta.insert(key.clone(), metadata_of(other, now));
            }
        }
    }
}

/// The metadata AWS records for a value set at `now`: a timestamp per leaf, mirroring
/// objects and arrays. `null` (a deletion) has `null` metadata.
fn metadata_of(value: &Value, now: u64) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), metadata_of(v, now)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| metadata_of(v, now)).collect()),
        _ => {
            let mut leaf = Object::new();
            leaf.insert("timestamp".to_owned(), now.into());
            Value::Object(leaf)
        }
    }
}

/// The part of `delta` whose fields the request set (non-null), recursively.
fn restrict(delta: &Object, request: &Object) -> Object {
    let mut out = Object::new();
    for (key, requested) in request {
        match (delta.get(key), requested) {
            (None, _) | (_, Value::Null) => {}
            (Some(Value::Object(d)), Value::Object(r)) => {
                let sub = restrict(d, r);
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (Some(d), _) => {
                out.insert(key.clone(), d.clone());
            }
        }
    }
    out
}

/// The metadata of the fields present in `state`.
fn project_metadata(state: &Object, metadata: &Object) -> Object {
    let mut out = Object::new();
    for (key, value) in state {
        match (value, metadata.get(key)) {
            (Value::Object(s), Some(Value::Object(m))) => {
                out.insert(key.clone(), Value::Object(project_metadata(s, m)));
            }
            (_, Some(m)) => {
                out.insert(key.clone(), m.clone());
            }
            (_, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
