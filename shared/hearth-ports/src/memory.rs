//! In-memory adapters: for handler tests and as the reference behaviour of each port.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use hearth_domain::device::{Device, DeviceId, Household, HouseholdId, Membership, UserId};
use hearth_domain::projection::{Changes, DeviceState};

use crate::{DeadLetter, DeadLetterSink, DeviceRegistry, Page, StateStore, StoreError};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A [`StateStore`] in a map.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    states: Mutex<HashMap<DeviceId, DeviceState>>,
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn apply(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, StoreError> {
        let mut states = lock(&self.states);
        let state = states.entry(thing.clone()).or_default();
        Ok(state.merge(update))
    }

    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError> {
        Ok(lock(&self.states).get(thing).cloned())
    }
}

/// A [`DeviceRegistry`] in maps.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    devices: BTreeMap<DeviceId, Device>,
    households: HashMap<HouseholdId, Household>,
    memberships: BTreeMap<(UserId, HouseholdId), Membership>,
}

#[async_trait]
impl DeviceRegistry for MemoryRegistry {
    async fn put_device(&self, device: &Device) -> Result<(), StoreError> {
        lock(&self.inner)
            .devices
            .insert(device.id.clone(), device.clone());
        Ok(())
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        Ok(lock(&self.inner).devices.get(id).cloned())
    }

    async fn household_devices(
        &self,
        household: &HouseholdId,
        limit: u16,
        after: Option<&str>,
    ) -> Result<Page<Device>, StoreError> {
        let inner = lock(&self.inner);
        let limit = usize::from(limit.max(1));
        let mut matching = inner
            .devices
            .values()
            .filter(|d| d.household.as_ref() == Some(household))
            .filter(|d| after.is_none_or(|a| d.id.as_str() > a));
        let items: Vec<Device> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        let next = if more {
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn put_household(&self, household: &Household) -> Result<(), StoreError> {
        lock(&self.inner)
            .households
            .insert(household.id.clone(), household.clone());
        Ok(())
    }

    async fn get_household(&self, id: &HouseholdId) -> Result<Option<Household>, StoreError> {
        Ok(lock(&self.inner).households.get(id).cloned())
    }

    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError> {
        lock(&self.inner).memberships.insert(
            (membership.user.clone(), membership.household.clone()),
            membership.clone(),
        );
        Ok(())
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        Ok(lock(&self.inner)
            .memberships
            .values()
            .filter(|m| &m.user == user)
            .cloned()
            .collect())
    }

    async fn household_members(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Membership>, StoreError> {
        Ok(lock(&self.inner)
            .memberships
            .values()
            .filter(|m| &m.household == household)
            .cloned()
            .collect())
    }
}

/// A [`DeadLetterSink`] that keeps what it was sent.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
}

impl MemoryDeadLetters {
    /// Everything sent so far.
    pub fn letters(&self) -> Vec<DeadLetter> {
        lock(&self.letters).clone()
    }
}

#[async_trait]
impl DeadLetterSink for MemoryDeadLetters {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>> {
        lock(&self.letters).extend_from_slice(letters);
        letters.iter().map(|_| Ok(())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_state_store_passes_the_contract() {
        crate::contract::state_store(&MemoryStateStore::default(), "mem").await;
    }

    #[tokio::test]
    async fn memory_registry_passes_the_contract() {
        crate::contract::registry(&MemoryRegistry::default(), "mem").await;
    }

    #[tokio::test]
    async fn memory_dead_letters_pass_the_contract() {
        let sink = MemoryDeadLetters::default();
        let sent = crate::contract::dead_letters(&sink).await;
        assert_eq!(sink.letters(), sent);
    }
}
