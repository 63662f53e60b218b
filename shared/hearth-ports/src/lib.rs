//! The ports of Hearth: the small `Send + Sync` traits handlers take as `&dyn Trait`, one per
//! capability, with an in-memory adapter for each ([`memory`]) and the contract test suite that
//! every adapter of a port must pass (`contract`, behind the `contract` feature).
//!
//! Ports speak domain types only. This crate never imports an AWS SDK, an async runtime or a
//! Lambda type: adapters live in their own crates (`hearth-aws`, the local stack).

use async_trait::async_trait;
use hearth_domain::device::{Device, DeviceId, Household, HouseholdId, Membership, UserId};
use hearth_domain::projection::{Changes, DeviceState};

pub mod memory;

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
    /// The households a user belongs to, with the role held in each.
    async fn memberships(&self, user: &UserId) -> Result<Vec<Membership>, StoreError>;
    /// The members of a household, with their roles.
    async fn household_members(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Membership>, StoreError>;
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
