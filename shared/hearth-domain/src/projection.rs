//! The device state projection and the forward-only rules that advance it.
//!
//! The projection is what the owner API and the voice assistants read about a device's state.
//! It has four independent *concerns*, each advanced by its own rule so that a duplicate or an
//! older message is a no-op for its concern and never blocks another concern:
//!
//! | concern | ordered by |
//! |---|---|
//! | shadow (desired, reported, version) | shadow version; a delete starts a new version epoch |
//! | connectivity | presence `versionNumber`, then event timestamp, then disconnect after connect |
//! | last seen | receive time |
//! | latest telemetry | receive time, then the payload's `seq` number if any |
//!
//! A [`DeviceState`] is used both for the stored projection and for an update (a partial state
//! built from messages): [`DeviceState::merge`] folds a newer partial state in, concern by
//! concern. Coalescing a batch and applying it to the store are the same operation.
//!
//! Shadow epochs: AWS continues a recreated shadow's version within 48 hours of its delete and
//! restarts at 1 after that, so both must be accepted. A delete records
//! its receive time (`shadow_deleted_at`) and clears any document received before it; a document
//! received at or before the latest delete is stale. A version-1 document always starts a new
//! epoch, so it replaces any document received before it even when the delete message is late.

use serde::{Deserialize, Serialize};

use crate::device::ProductId;
use crate::shadow::{self, Object};

/// The shadow as projected: the state halves of the latest shadow document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowProjection {
    /// Shadow document version.
    pub version: u64,
    /// When the rules engine received the document (milliseconds).
    pub received_at: u64,
    /// When the shadow service accepted the update (seconds, AWS's timestamp).
    pub timestamp: u64,
    /// Desired state, if any.
    pub desired: Option<Object>,
    /// Reported state, if any.
    pub reported: Option<Object>,
    /// The `clientToken` of the update that produced this version, if it had one: Hearth's
    /// commands name their cause there ([`crate::command::Cause::from_client_token`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl ShadowProjection {
    /// What caused this version: a Hearth command's cause, `None` for the device's own update.
    pub fn cause(&self) -> Option<crate::command::Cause> {
        crate::command::Cause::from_client_token(self.client_token.as_deref()?)
    }

    /// The desired fields the device has not reported yet.
    pub fn delta(&self) -> Option<Object> {
        let delta = shadow::delta(self.desired.as_ref()?, self.reported.as_ref());
        (!delta.is_empty()).then_some(delta)
    }
}

/// Which presence event set the connectivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceKind {
    /// `$aws/events/presence/connected/<clientId>`.
    Connected,
    /// `$aws/events/presence/disconnected/<clientId>` (orders after a connect of the same
    /// session).
    Disconnected,
}

/// Whether the device is connected, from the latest presence event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connectivity {
    /// Connected now. A `DUPLICATE_CLIENTID` disconnect leaves this `true`: another session of
    /// the same client took over.
    pub connected: bool,
    /// The event that set it.
    pub event: PresenceKind,
    /// The event's `versionNumber`.
    pub version_number: u64,
    /// The event's timestamp (milliseconds).
    pub timestamp: u64,
    /// The `disconnectReason` of a disconnect.
    pub disconnect_reason: Option<String>,
}

impl Connectivity {
    /// The order of presence events: `versionNumber`, then timestamp, then disconnect after
    /// connect.
    pub fn order(&self) -> (u64, u64, PresenceKind) {
        (self.version_number, self.timestamp, self.event)
    }
}

/// The latest telemetry message of a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// When the rules engine received it (milliseconds).
    pub received_at: u64,
    /// The product from the topic.
    pub product: ProductId,
    /// The device's payload, without the envelope fields.
    pub payload: Object,
}

impl Telemetry {
    /// The order of telemetry messages: receive time, then the payload's own `seq` number when
    /// it has one (two messages of a device received in the same millisecond are otherwise
    /// indistinguishable; the first one stored wins).
    pub fn order(&self) -> (u64, u64) {
        let seq = self
            .payload
            .get("seq")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        (self.received_at, seq)
    }
}

/// A device's state projection, or a partial state to merge into one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceState {
    /// The latest shadow document, `None` if never seen or deleted.
    pub shadow: Option<ShadowProjection>,
    /// Receive time of the latest shadow delete (milliseconds).
    pub shadow_deleted_at: Option<u64>,
    /// Connectivity from the latest presence event.
    pub connectivity: Option<Connectivity>,
    /// Latest receive time of a message the device sent (milliseconds).
    pub last_seen: Option<u64>,
    /// The latest telemetry.
    pub telemetry: Option<Telemetry>,
}

/// Which concerns a merge changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changes {
    /// The shadow document or its delete marker.
    pub shadow: bool,
    /// Connectivity.
    pub connectivity: bool,
    /// Last seen.
    pub last_seen: bool,
    /// Latest telemetry.
    pub telemetry: bool,
}

impl Changes {
    /// Whether anything changed.
    pub fn any(self) -> bool {
        self.shadow || self.connectivity || self.last_seen || self.telemetry
    }
}

impl DeviceState {
    /// Whether the state says nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == DeviceState::default()
    }

    /// Folds a newer partial state in, concern by concern: each concern of `update` replaces this
    /// one's only if it is newer by that concern's order. Returns what changed.
    pub fn merge(&mut self, update: &DeviceState) -> Changes {
        let mut changes = Changes::default();
        if let Some(deleted_at) = update.shadow_deleted_at
            && self.shadow_deleted_at.is_none_or(|d| d < deleted_at)
        {
            self.shadow_deleted_at = Some(deleted_at);
            if self
                .shadow
                .as_ref()
                .is_some_and(|s| s.received_at <= deleted_at)
            {
                self.shadow = None;
            }
            changes.shadow = true;
        }
        if let Some(doc) = &update.shadow
            && self.shadow_supersedes(doc)
        {
            self.shadow = Some(doc.clone());
            changes.shadow = true;
        }
        if let Some(conn) = &update.connectivity
            && self
                .connectivity
                .as_ref()
                .is_none_or(|c| c.order() < conn.order())
        {
            self.connectivity = Some(conn.clone());
            changes.connectivity = true;
        }
        if let Some(seen) = update.last_seen
            && self.last_seen.is_none_or(|s| s < seen)
        {
            self.last_seen = Some(seen);
            changes.last_seen = true;
        }
        if let Some(t) = &update.telemetry
            && self
                .telemetry
                .as_ref()
                .is_none_or(|have| have.order() < t.order())
        {
            self.telemetry = Some(t.clone());
            changes.telemetry = true;
        }
        changes
    }

    /// Whether `doc` is newer than this state's shadow concern.
    fn shadow_supersedes(&self, doc: &ShadowProjection) -> bool {
        if self.shadow_deleted_at.is_some_and(|d| d >= doc.received_at) {
            return false;
        }
        match &self.shadow {
            None => true,
            Some(have) if doc.version == 1 => have.received_at < doc.received_at,
            Some(have) => have.version < doc.version,
        }
    }
}

#[cfg(test)]
mod tests;
