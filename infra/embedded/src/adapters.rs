//! The ports' adapters: state projection, registry and dead letters, as JSON records.
//!
//! Writes are committed (a killed process loses none of them) but not fsynced one by one: they
//! share the journal with the queues, so a crash that keeps a queue's delete of a message also
//! keeps every write the handler made before it, and anything else is redone when the message
//! is redelivered. Dead letters are the exception: `send` returns once they are fsynced.
//!
//! | keyspace | key | value |
//! |---|---|---|
//! | `state` | `<thing>` | `DeviceState` |
//! | `registry` | `d 0x00 <thing>` | `Device` |
//! | `registry` | `h 0x00 <household>` | `Household` |
//! | `registry` | `hd 0x00 <household> 0x00 <thing>` | `Device` (the household's devices) |
//! | `registry` | `m 0x00 <user> 0x00 <household>` | `Membership` |
//! | `registry` | `hm 0x00 <household> 0x00 <user>` | `Membership` (the household's members) |
//! | `registry` | `s 0x00 <product> 0x00 <serial>` | thing name (a serial is registered once) |
//! | `registry` | `c 0x00 <claim code hash>` | thing name (while the device is claimable) |
//! | `registry` | `i 0x00 <invitation>` | `Invitation` |
//! | `registry` | `hi 0x00 <household> 0x00 <invitation>` | invitation id (the household's) |
//! | `registry` | `ei 0x00 <email> 0x00 <invitation>` | invitation id (the address's) |
//! | `dead-letters` | `<id: u64 BE>` | `DeadLetter` |
//!
//! Identifiers never contain `0x00`, so a prefix ending in `0x00` selects exactly one parent.

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use fjall::Keyspace;
use hearth_domain::device::InvitationId;
use hearth_domain::device::{Device, DeviceId, Household, HouseholdId, Membership, UserId};
use hearth_domain::projection::{Changes, DeviceState};
use hearth_domain::sharing::{Invitation, InvitationStatus};
use hearth_ports::{
    DeadLetter, DeadLetterSink, DeviceRegistry, EnrollError, Enrollment, InvitationError,
    Invitations, Page, StateStore, StoreError,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::EmbeddedError;
use crate::db::Shared;

pub(crate) fn encode<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, EmbeddedError> {
    serde_json::to_vec(value).map_err(|e| EmbeddedError::encode(what, e))
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, EmbeddedError> {
    serde_json::from_slice(bytes).map_err(|e| EmbeddedError::corrupt(what, e))
}

pub(crate) fn get<T: DeserializeOwned>(
    keyspace: &Keyspace,
    what: &'static str,
    key: &[u8],
) -> Result<Option<T>, EmbeddedError> {
    match keyspace.get(key).map_err(EmbeddedError::storage)? {
        Some(bytes) => decode(what, &bytes).map(Some),
        None => Ok(None),
    }
}

/// `parts` joined by `0x00`.
fn key(parts: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    key
}

/// The values of the keys under `prefix` (which ends in `0x00`) after `prefix + after`, in key
/// order.
fn scan<T: DeserializeOwned>(
    keyspace: &Keyspace,
    what: &'static str,
    prefix: Vec<u8>,
    after: Option<&str>,
) -> impl Iterator<Item = Result<T, EmbeddedError>> {
    let mut end = prefix.clone();
    if let Some(last) = end.last_mut() {
        *last = 1; // the first key past every `prefix ...`
    }
    let start = match after {
        Some(after) => {
            let mut start = prefix;
            start.extend_from_slice(after.as_bytes());
            Bound::Excluded(start)
        }
        None => Bound::Included(prefix),
    };
    keyspace
        .range::<Vec<u8>, _>((start, Bound::Excluded(end)))
        .map(move |item| {
            let value = item.value().map_err(EmbeddedError::storage)?;
            decode(what, &value)
        })
}

/// The [`StateStore`]: read, [`DeviceState::merge`], write, under a per-device lock; with
/// deferred writes (see [`Db::deferred_state_store`](crate::Db::deferred_state_store)), the
/// write waits for the next [`checkpoint`](Self::checkpoint).
#[derive(Clone)]
pub struct EmbeddedStateStore {
    shared: Arc<Shared>,
    deferred: bool,
}

impl std::fmt::Debug for EmbeddedStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStateStore").finish_non_exhaustive()
    }
}

impl EmbeddedStateStore {
    pub(crate) fn new(shared: Arc<Shared>, deferred: bool) -> Self {
        Self { shared, deferred }
    }

    /// Writes every state applied with deferred writes and not yet written (by any adapter of
    /// this database) in one batch; returns how many devices were written. Once it returns,
    /// those writes survive a crash of the process (an fsync, [`Db::persist`](crate::Db::persist),
    /// also survives a power loss).
    pub fn checkpoint(&self) -> Result<usize, EmbeddedError> {
        self.shared.checkpoint_state()
    }

    fn apply_now(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, EmbeddedError> {
        let key = thing.as_str().as_bytes();
        let mut cache = self.shared.state_cache(key);
        let existed = match cache.get(key) {
            Some(_) => true,
            None => match get::<DeviceState>(&self.shared.state, "state", key)? {
                Some(stored) => {
                    cache.insert(key, stored, false);
                    true
                }
                None => false,
            },
        };
        let mut fresh = DeviceState::default();
        let state = match cache.get_mut(key) {
            Some(cached) => cached,
            None => &mut fresh,
        };
        let changes = state.merge(update);
        if self.deferred {
            if !existed {
                cache.insert(key, fresh, true);
            } else if changes.any() {
                cache.set_dirty(key, true);
            }
            return Ok(changes);
        }
        if changes.any() || !existed {
            let written = encode("state", &*state).and_then(|value| {
                self.shared
                    .state
                    .insert(key, value)
                    .map_err(EmbeddedError::storage)
            });
            match written {
                Ok(()) if !existed => cache.insert(key, fresh, false),
                // The write holds whatever deferred changes the entry had.
                Ok(()) => cache.set_dirty(key, false),
                Err(e) => {
                    // The cached entry was merged in place: drop it so it never runs ahead of
                    // the database, unless it holds deferred changes, which the next checkpoint
                    // must still write (with this update: merging it again is a no-op).
                    if !cache.is_dirty(key) {
                        cache.remove(key);
                    }
                    return Err(e);
                }
            }
        }
        Ok(changes)
    }
}

#[async_trait]
impl StateStore for EmbeddedStateStore {
    async fn apply(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, StoreError> {
        Ok(self.apply_now(thing, update)?)
    }

    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError> {
        let key = thing.as_str().as_bytes();
        if let Some(cached) = self.shared.state_cache(key).get(key) {
            return Ok(Some(cached.clone()));
        }
        Ok(get(&self.shared.state, "state", key)?)
    }
}

/// The [`DeviceRegistry`]: records plus index entries per household, written atomically.
#[derive(Clone)]
pub struct EmbeddedRegistry {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRegistry").finish_non_exhaustive()
    }
}

impl EmbeddedRegistry {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn put_device_now(&self, device: &Device) -> Result<(), EmbeddedError> {
        let record = key(&["d", device.id.as_str()]);
        let _guard = self.shared.stripe(&record);
        let old: Option<Device> = get(&self.shared.registry, "device", &record)?;
        self.write_device(old.and_then(|d| d.household).as_ref(), device)
    }

    /// Writes `device` (its record and its household index entry) over a stored version whose
    /// household was `old`; the caller holds the device's stripe.
    fn write_device(
        &self,
        old: Option<&HouseholdId>,
        device: &Device,
    ) -> Result<(), EmbeddedError> {
        let registry = &self.shared.registry;
        let id = device.id.as_str();
        let value = encode("device", device)?;
        let mut batch = self.shared.batch();
        if let Some(old) = old
            && Some(old) != device.household.as_ref()
        {
            batch.remove(registry, key(&["hd", old.as_str(), id]));
        }
        if let Some(household) = &device.household {
            batch.insert(
                registry,
                key(&["hd", household.as_str(), id]),
                value.clone(),
            );
        }
        batch.insert(registry, key(&["d", id]), value);
        batch.commit().map_err(EmbeddedError::storage)
    }

    /// Applies `change` to the device only while it is in `household`: the changed device, or
    /// `None`.
    fn update_device_in(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        change: impl FnOnce(&mut Device),
    ) -> Result<Option<Device>, EmbeddedError> {
        let record = key(&["d", id.as_str()]);
        let _guard = self.shared.stripe(&record);
        let Some(mut device) = get::<Device>(&self.shared.registry, "device", &record)?
            .filter(|d| d.household.as_ref() == Some(household))
        else {
            return Ok(None);
        };
        change(&mut device);
        self.write_device(Some(household), &device)?;
        Ok(Some(device))
    }

    /// The invitations whose ids are indexed under `parts`, by id.
    fn indexed_invitations(&self, parts: &[&str]) -> Result<Vec<Invitation>, EmbeddedError> {
        let registry = &self.shared.registry;
        let mut prefix = key(parts);
        prefix.push(0);
        let mut out = Vec::new();
        for guard in registry.prefix(&prefix) {
            let id = guard.value().map_err(EmbeddedError::storage)?;
            let id = String::from_utf8(id.to_vec())
                .map_err(|e| EmbeddedError::corrupt("invitation index", e))?;
            if let Some(invitation) = get::<Invitation>(registry, "invitation", &key(&["i", &id]))?
            {
                out.push(invitation);
            }
        }
        Ok(out)
    }

    fn close_invitation_now(
        &self,
        id: &InvitationId,
        status: InvitationStatus,
        now: u64,
    ) -> Result<Invitation, InvitationError> {
        let registry = &self.shared.registry;
        let record = key(&["i", id.as_str()]);
        let _guard = self.shared.stripe(&record);
        let mut invitation: Invitation =
            get(registry, "invitation", &record)?.ok_or(InvitationError::Unknown)?;
        if !invitation.is_open(now) {
            return Err(InvitationError::NotOpen);
        }
        invitation.status = status;
        let mut batch = self.shared.batch();
        if let InvitationStatus::Accepted { by, .. } = &invitation.status {
            let membership = Membership {
                user: by.clone(),
                household: invitation.household.clone(),
                role: invitation.role,
            };
            let value = encode("membership", &membership)?;
            let (user, household) = (by.as_str(), invitation.household.as_str());
            batch.insert(registry, key(&["m", user, household]), value.clone());
            batch.insert(registry, key(&["hm", household, user]), value);
        }
        batch.insert(registry, record, encode("invitation", &invitation)?);
        batch.commit().map_err(EmbeddedError::storage)?;
        Ok(invitation)
    }

    fn household_devices_now(
        &self,
        household: &HouseholdId,
        limit: u16,
        after: Option<&str>,
    ) -> Result<Page<Device>, EmbeddedError> {
        let limit = usize::from(limit.max(1));
        let mut prefix = key(&["hd", household.as_str()]);
        prefix.push(0);
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        for device in scan::<Device>(&self.shared.registry, "device", prefix, after) {
            let device = device?;
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(device);
        }
        let next = if more {
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn list<T: DeserializeOwned>(&self, parts: &[&str]) -> Result<Vec<T>, EmbeddedError> {
        let mut prefix = key(parts);
        prefix.push(0);
        scan(&self.shared.registry, "membership", prefix, None).collect()
    }

    fn put_membership_now(&self, membership: &Membership) -> Result<(), EmbeddedError> {
        let registry = &self.shared.registry;
        let (user, household) = (membership.user.as_str(), membership.household.as_str());
        let value = encode("membership", membership)?;
        let mut batch = self.shared.batch();
        batch.insert(registry, key(&["m", user, household]), value.clone());
        batch.insert(registry, key(&["hm", household, user]), value);
        batch.commit().map_err(EmbeddedError::storage)
    }
}

impl EmbeddedRegistry {
    fn register_now(&self, device: &Device) -> Result<(), EnrollError> {
        let registry = &self.shared.registry;
        let _enroll = crate::sync::lock(&self.shared.enroll);
        let record = key(&["d", device.id.as_str()]);
        let _guard = self.shared.stripe(&record);
        let serial = device
            .serial
            .as_deref()
            .map(|serial| key(&["s", device.product.as_str(), serial]));
        let exists = |k: &[u8]| registry.get(k).map(|v| v.is_some());
        let taken = exists(&record).map_err(EmbeddedError::storage)?
            || match &serial {
                Some(serial) => exists(serial).map_err(EmbeddedError::storage)?,
                None => false,
            };
        if taken {
            return Err(EnrollError::AlreadyRegistered);
        }
        let value = encode("device", device)?;
        let mut batch = self.shared.batch();
        if let Some(serial) = serial {
            batch.insert(registry, serial, device.id.as_str());
        }
        if let (Some(hash), None) = (&device.claim_code_hash, &device.household) {
            batch.insert(registry, key(&["c", hash]), device.id.as_str());
        }
        if let Some(household) = &device.household {
            batch.insert(
                registry,
                key(&["hd", household.as_str(), device.id.as_str()]),
                value.clone(),
            );
        }
        batch.insert(registry, record, value);
        batch.commit().map_err(EmbeddedError::storage)?;
        Ok(())
    }

    fn claim_now(
        &self,
        code_hash: &str,
        household: &HouseholdId,
        name: Option<&str>,
        now: u64,
    ) -> Result<Device, EnrollError> {
        let registry = &self.shared.registry;
        let _enroll = crate::sync::lock(&self.shared.enroll);
        let index = key(&["c", code_hash]);
        let thing = registry
            .get(&index)
            .map_err(EmbeddedError::storage)?
            .ok_or(EnrollError::UnknownCode)?;
        let thing = String::from_utf8(thing.to_vec())
            .map_err(|e| EmbeddedError::corrupt("claim code index", e))?;
        let record = key(&["d", &thing]);
        let _guard = self.shared.stripe(&record);
        let device = get::<Device>(registry, "device", &record)?
            .ok_or(EnrollError::UnknownCode)?
            .claim(code_hash, household, name, now)
            .map_err(|_| EnrollError::UnknownCode)?;
        let value = encode("device", &device)?;
        let mut batch = self.shared.batch();
        batch.remove(registry, index);
        batch.insert(
            registry,
            key(&["hd", household.as_str(), device.id.as_str()]),
            value.clone(),
        );
        batch.insert(registry, record, value);
        batch.commit().map_err(EmbeddedError::storage)?;
        Ok(device)
    }

    fn release_now(&self, id: &DeviceId, household: &HouseholdId) -> Result<Device, EnrollError> {
        let registry = &self.shared.registry;
        let _enroll = crate::sync::lock(&self.shared.enroll);
        let record = key(&["d", id.as_str()]);
        let _guard = self.shared.stripe(&record);
        let device = get::<Device>(registry, "device", &record)?
            .ok_or(EnrollError::UnknownDevice)?
            .release(household)
            .map_err(|_| EnrollError::UnknownDevice)?;
        let value = encode("device", &device)?;
        let mut batch = self.shared.batch();
        batch.remove(registry, key(&["hd", household.as_str(), id.as_str()]));
        if let Some(hash) = &device.claim_code_hash {
            batch.insert(registry, key(&["c", hash]), id.as_str());
        }
        batch.insert(registry, record, value);
        batch.commit().map_err(EmbeddedError::storage)?;
        Ok(device)
    }
}

#[async_trait]
impl Invitations for EmbeddedRegistry {
    async fn create_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        let registry = &self.shared.registry;
        let id = invitation.id.as_str();
        let mut batch = self.shared.batch();
        batch.insert(
            registry,
            key(&["hi", invitation.household.as_str(), id]),
            id,
        );
        batch.insert(registry, key(&["ei", &invitation.email, id]), id);
        batch.insert(registry, key(&["i", id]), encode("invitation", invitation)?);
        batch.commit().map_err(EmbeddedError::storage)?;
        Ok(())
    }

    async fn invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        Ok(get(
            &self.shared.registry,
            "invitation",
            &key(&["i", id.as_str()]),
        )?)
    }

    async fn household_invitations(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Invitation>, StoreError> {
        Ok(self.indexed_invitations(&["hi", household.as_str()])?)
    }

    async fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError> {
        Ok(self.indexed_invitations(&["ei", email])?)
    }

    async fn close_invitation(
        &self,
        id: &InvitationId,
        status: InvitationStatus,
        now: u64,
    ) -> Result<Invitation, InvitationError> {
        self.close_invitation_now(id, status, now)
    }
}

#[async_trait]
impl Enrollment for EmbeddedRegistry {
    async fn register(&self, device: &Device) -> Result<(), EnrollError> {
        self.register_now(device)
    }

    async fn claim(
        &self,
        code_hash: &str,
        household: &HouseholdId,
        name: Option<&str>,
        now: u64,
    ) -> Result<Device, EnrollError> {
        self.claim_now(code_hash, household, name, now)
    }

    async fn release(&self, id: &DeviceId, household: &HouseholdId) -> Result<Device, EnrollError> {
        self.release_now(id, household)
    }
}

#[async_trait]
impl DeviceRegistry for EmbeddedRegistry {
    async fn put_device(&self, device: &Device) -> Result<(), StoreError> {
        Ok(self.put_device_now(device)?)
    }

    async fn rename_device(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        name: &str,
    ) -> Result<Option<Device>, StoreError> {
        Ok(self.update_device_in(id, household, |device| {
            device.name = name.to_owned();
        })?)
    }

    async fn move_device(
        &self,
        id: &DeviceId,
        from: &HouseholdId,
        to: &HouseholdId,
    ) -> Result<Option<Device>, StoreError> {
        Ok(self.update_device_in(id, from, |device| {
            device.household = Some(to.clone());
        })?)
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        Ok(get(
            &self.shared.registry,
            "device",
            &key(&["d", id.as_str()]),
        )?)
    }

    async fn household_devices(
        &self,
        household: &HouseholdId,
        limit: u16,
        after: Option<&str>,
    ) -> Result<Page<Device>, StoreError> {
        Ok(self.household_devices_now(household, limit, after)?)
    }

    async fn put_household(&self, household: &Household) -> Result<(), StoreError> {
        let value = encode("household", household)?;
        self.shared
            .registry
            .insert(key(&["h", household.id.as_str()]), value)
            .map_err(EmbeddedError::storage)?;
        Ok(())
    }

    async fn get_household(&self, id: &HouseholdId) -> Result<Option<Household>, StoreError> {
        Ok(get(
            &self.shared.registry,
            "household",
            &key(&["h", id.as_str()]),
        )?)
    }

    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError> {
        Ok(self.put_membership_now(membership)?)
    }

    async fn remove_membership(
        &self,
        user: &UserId,
        household: &HouseholdId,
    ) -> Result<bool, StoreError> {
        let registry = &self.shared.registry;
        let record = key(&["m", user.as_str(), household.as_str()]);
        let _guard = self.shared.stripe(&record);
        let existed = registry
            .get(&record)
            .map_err(EmbeddedError::storage)?
            .is_some();
        let mut batch = self.shared.batch();
        batch.remove(registry, record);
        batch.remove(registry, key(&["hm", household.as_str(), user.as_str()]));
        batch.commit().map_err(EmbeddedError::storage)?;
        Ok(existed)
    }

    async fn memberships(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        Ok(self.list(&["m", user.as_str()])?)
    }

    async fn household_members(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Membership>, StoreError> {
        Ok(self.list(&["hm", household.as_str()])?)
    }
}

/// A dead letter as stored.
#[derive(Serialize)]
struct LetterRecord<'a> {
    message_id: &'a str,
    body: &'a str,
    reason: &'a str,
    detail: &'a str,
}

/// A dead letter as read back.
#[derive(Deserialize)]
struct StoredLetter {
    message_id: String,
    body: String,
    reason: String,
    detail: String,
}

/// The [`DeadLetterSink`]: letters kept in send order; `send` returns once they are fsynced.
#[derive(Clone)]
pub struct EmbeddedDeadLetters {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedDeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDeadLetters")
            .finish_non_exhaustive()
    }
}

impl EmbeddedDeadLetters {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Every letter sent so far, oldest first.
    pub fn letters(&self) -> Result<Vec<DeadLetter>, EmbeddedError> {
        self.shared
            .letters
            .iter()
            .map(|item| {
                let value = item.value().map_err(EmbeddedError::storage)?;
                let letter: StoredLetter = decode("dead letter", &value)?;
                Ok(DeadLetter {
                    message_id: letter.message_id,
                    body: letter.body,
                    reason: letter.reason,
                    detail: letter.detail,
                })
            })
            .collect()
    }

    async fn send_now(&self, letters: &[DeadLetter]) -> Result<(), EmbeddedError> {
        let values = letters
            .iter()
            .map(|l| {
                let record = LetterRecord {
                    message_id: &l.message_id,
                    body: &l.body,
                    reason: &l.reason,
                    detail: &l.detail,
                };
                encode("dead letter", &record)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keyspace = &self.shared.letters;
        self.shared
            .commit_with_ids(values.len() as u64, |first, batch| {
                for (id, value) in (first..).zip(values) {
                    batch.insert(keyspace, id.to_be_bytes(), value);
                }
            })?;
        self.shared.syncer.barrier().await
    }
}

#[async_trait]
impl DeadLetterSink for EmbeddedDeadLetters {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>> {
        if letters.is_empty() {
            return Vec::new();
        }
        match self.send_now(letters).await {
            Ok(()) => letters.iter().map(|_| Ok(())).collect(),
            Err(e) => {
                let e = StoreError::from(e);
                letters.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }
}
