//! The ports of Hearth: the small `Send + Sync` traits handlers take as `&dyn Trait`, one per
//! capability, with an in-memory adapter for each ([`memory`]) and the contract test suite that
//! every adapter of a port must pass (`contract`, behind the `contract` feature).
//!
//! Ports speak domain types only. This crate never imports an AWS SDK, an async runtime or a
//! Lambda type: adapters live in their own crates (`hearth-aws`, the local stack).

use async_trait::async_trait;
use hearth_domain::command::Cause;
use hearth_domain::device::{
    Device, DeviceId, Household, HouseholdId, InvitationId, Membership, ProductId, UserId,
};
use hearth_domain::projection::{Changes, DeviceState};
use hearth_domain::shadow::Object;
use hearth_domain::sharing::{Invitation, InvitationStatus};

pub mod clock;
pub mod memory;

pub use clock::{Clock, ManualClock, SystemClock};

#[cfg(any(test, feature = "contract"))]
pub mod contract;

/// A storage failure, split by whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Throttling, timeouts, unavailable service, a lost race: retry later.
    #[error("transient storage failure: {0}")]
    Transient(String),
    /// The store refused the data itself (too large, invalid): retrying cannot help.
    #[error("storage rejected the write: {0}")]
    Rejected(String),
}

impl StoreError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// The device state projection, advanced only forward (see
/// [`hearth_domain::projection`]).
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Merges a partial state into the device's projection, concern by concern: each concern
    /// advances only if the update is newer by that concern's order; a stale concern is a no-op
    /// and never blocks another. Works whether or not the device is registered. Returns what
    /// changed.
    async fn apply(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, StoreError>;

    /// The device's projection, `None` if nothing was ever stored for it.
    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError>;
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Pass to the next call to continue; `None` on the last page.
    pub next: Option<String>,
}

/// Registry data: devices, households and memberships. Separate from state: neither ever
/// overwrites the other.
#[async_trait]
pub trait DeviceRegistry: Send + Sync {
    /// Creates or replaces a device's registry record.
    async fn put_device(&self, device: &Device) -> Result<(), StoreError>;
    /// Renames the device only while it belongs to `household` (a rename can never put a
    /// released or moved device back). The renamed device, or `None` if there is no such device
    /// in that household.
    async fn rename_device(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        name: &str,
    ) -> Result<Option<Device>, StoreError>;
    /// Moves the device from household `from` to `to`, only while it is in `from`. The moved
    /// device, or `None` if there is no such device in `from`.
    async fn move_device(
        &self,
        id: &DeviceId,
        from: &HouseholdId,
        to: &HouseholdId,
    ) -> Result<Option<Device>, StoreError>;
    /// A device's registry record.
    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError>;
    /// A household's devices ordered by id, `limit` at a time, after the cursor `after`.
    async fn household_devices(
        &self,
        household: &HouseholdId,
        limit: u16,
        after: Option<&str>,
    ) -> Result<Page<Device>, StoreError>;
    /// Creates or replaces a household.
    async fn put_household(&self, household: &Household) -> Result<(), StoreError>;
    /// A household.
    async fn get_household(&self, id: &HouseholdId) -> Result<Option<Household>, StoreError>;
    /// Creates or replaces a user's membership of a household.
    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError>;
    /// Removes a user's membership of a household; whether there was one.
    async fn remove_membership(
        &self,
        user: &UserId,
        household: &HouseholdId,
    ) -> Result<bool, StoreError>;
    /// The households a user belongs to, with the role held in each.
    async fn memberships(&self, user: &UserId) -> Result<Vec<Membership>, StoreError>;
    /// The members of a household, with their roles.
    async fn household_members(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Membership>, StoreError>;
}

/// Why an enrollment step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The product already has a device with this serial, or the thing name is taken.
    #[error("already registered")]
    AlreadyRegistered,
    /// No unclaimed device has this claim code (unknown, or already used).
    #[error("no unclaimed device has this claim code")]
    UnknownCode,
    /// No such device.
    #[error("no such device")]
    UnknownDevice,
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pre-registration and claiming, atomic with the registry records they change. Implemented by
/// the same adapters as [`DeviceRegistry`] (the claim index lives beside the devices).
#[async_trait]
pub trait Enrollment: Send + Sync {
    /// Registers an unclaimed device (no household) claimable with the code whose hash the
    /// device carries (`claim_code_hash`). `AlreadyRegistered` if its product already has a
    /// device with its serial, or its thing name exists; then nothing is written.
    async fn register(&self, device: &Device) -> Result<(), EnrollError>;

    /// Moves the unclaimed device whose claim code hashes to `code_hash` into `household`,
    /// named `name` (`None` keeps its name), claimed at `now`, and consumes the code —
    /// atomically: of two concurrent claims with one code, exactly one succeeds. `UnknownCode`
    /// otherwise.
    async fn claim(
        &self,
        code_hash: &str,
        household: &HouseholdId,
        name: Option<&str>,
        now: u64,
    ) -> Result<Device, EnrollError>;

    /// Releases a device from `household` (its owner deleted it): it becomes unclaimed, its
    /// name goes back to its type's default, and its claim code works again, for the next
    /// owner. Only while it is in `household` — a late or repeated delete can never release it
    /// from a next owner — else `UnknownDevice`.
    async fn release(
        &self,
        device: &DeviceId,
        household: &HouseholdId,
    ) -> Result<Device, EnrollError>;
}

/// Why an invitation could not be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvitationError {
    /// No such invitation.
    #[error("no such invitation")]
    Unknown,
    /// It was already accepted, declined or revoked, or it expired.
    #[error("the invitation is no longer open")]
    NotOpen,
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Invitations to households. Implemented by the registry adapters: accepting creates the
/// membership atomically with closing the invitation.
#[async_trait]
pub trait Invitations: Send + Sync {
    /// Stores a new (pending) invitation.
    async fn create_invitation(&self, invitation: &Invitation) -> Result<(), StoreError>;
    /// An invitation by id.
    async fn invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError>;
    /// A household's invitations, every status, by id.
    async fn household_invitations(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Invitation>, StoreError>;
    /// The invitations to a normalised e-mail address, every status, by id.
    async fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError>;
    /// Closes an open invitation (pending, and `now` before its expiry) with `status`; when
    /// that is `Accepted { by, .. }`, `by` becomes a member with the invitation's role in the
    /// same atomic step. Of two concurrent closes, one wins; the other gets `NotOpen`.
    async fn close_invitation(
        &self,
        id: &InvitationId,
        status: InvitationStatus,
        now: u64,
    ) -> Result<Invitation, InvitationError>;
}

/// A message that can never be processed, on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The source queue's message id.
    pub message_id: String,
    /// The original body, unchanged.
    pub body: String,
    /// A stable reason code (e.g. `not-json`, `store-rejected`).
    pub reason: String,
    /// A human-readable explanation.
    pub detail: String,
}

/// A dead-letter queue that permanently bad messages are sent to, with their reason.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Sends the letters; one result per letter, in order. A failed letter must be retried
    /// (its message stays on the source queue).
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>>;
}

/// A failure of AWS IoT (registry or device shadow), split by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IotError {
    /// The thing, certificate or shadow does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The shadow is not at the expected version.
    #[error("version conflict")]
    Conflict,
    /// The request itself is invalid (bad CSR, document too large, ...): retrying cannot help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The platform's own credentials may not do this (IAM): a configuration error for an
    /// operator, never the caller's fault.
    #[error("not authorized: {0}")]
    Denied(String),
    /// Throttling, timeouts, service errors: retry later.
    #[error("transient IoT failure: {0}")]
    Transient(String),
}

/// A device certificate just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The certificate's id.
    pub certificate_id: String,
    /// The certificate's ARN (the principal attached to the thing).
    pub certificate_arn: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The private key, PEM, when the platform generated the key pair (no CSR). Returned once,
    /// never stored.
    pub private_key_pem: Option<String>,
    /// A password for MQTT without TLS (username = thing name), tied to this certificate: only
    /// where the broker takes one (the local stack); AWS IoT Core authenticates by the
    /// certificate alone. Returned once, stored only as a hash.
    pub mqtt_password: Option<String>,
}

/// The IoT registry side of a device's life: its thing, certificates and policy.
#[async_trait]
pub trait ThingProvisioner: Send + Sync {
    /// Creates the thing (a no-op if it exists), recording its product as an attribute.
    async fn create_thing(&self, thing: &DeviceId, product: &ProductId) -> Result<(), IotError>;
    /// Issues an active certificate for the thing — from the device's CSR when given (the
    /// private key never leaves the device), else with a new key pair — attaches the device
    /// policy to it and it to the thing.
    async fn issue_certificate(
        &self,
        thing: &DeviceId,
        csr_pem: Option<&str>,
    ) -> Result<IssuedCertificate, IotError>;
    /// The ids of the certificates attached to the thing.
    async fn certificates(&self, thing: &DeviceId) -> Result<Vec<String>, IotError>;
    /// Detaches a certificate from the thing and the policy, and deactivates it.
    async fn revoke_certificate(
        &self,
        thing: &DeviceId,
        certificate_id: &str,
    ) -> Result<(), IotError>;
    /// Revokes and deletes every certificate of the thing, then deletes the thing.
    async fn delete_thing(&self, thing: &DeviceId) -> Result<(), IotError>;
    /// The account's device data endpoint (`iot:Data-ATS`).
    async fn data_endpoint(&self) -> Result<String, IotError>;
    /// The root CA certificate (PEM) devices trust for that endpoint.
    fn root_ca_pem(&self) -> String;
}

/// Commands through the device shadow (the IoT Data Plane).
#[async_trait]
pub trait ShadowGateway: Send + Sync {
    /// Merges a partial desired document into the thing's shadow (nested objects merge, `null`
    /// deletes), optionally only if the shadow is at `expected_version`, with `cause` as the
    /// update's `clientToken` (echoed to the device in the delta and to the state processor in
    /// the `update/documents` message). Returns the new version.
    async fn update_desired(
        &self,
        thing: &DeviceId,
        desired: &Object,
        expected_version: Option<u64>,
        cause: &Cause,
    ) -> Result<u64, IotError>;
    /// The thing's shadow document as the service returns it, `None` if it has none.
    async fn get_shadow(&self, thing: &DeviceId) -> Result<Option<Object>, IotError>;
    /// Deletes the thing's shadow (a no-op if it has none).
    async fn delete_shadow(&self, thing: &DeviceId) -> Result<(), IotError>;
}
