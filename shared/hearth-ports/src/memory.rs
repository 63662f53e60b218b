//! In-memory adapters: for handler tests and as the reference behaviour of each port.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use hearth_domain::command::Cause;
use hearth_domain::device::{
    Device, DeviceId, Household, HouseholdId, InvitationId, Membership, ProductId, UserId,
};
use hearth_domain::projection::{Changes, DeviceState};
use hearth_domain::shadow::{Object, SectionUpdate, Shadow, ShadowError, UpdateRequest};
use hearth_domain::sharing::{Invitation, InvitationStatus};

use crate::{
    DeadLetter, DeadLetterSink, DeviceRegistry, IotError, IssuedCertificate, Page, StateStore,
    StoreError,
};

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
    invitations: BTreeMap<InvitationId, Invitation>,
}

impl MemoryRegistry {
    /// Applies `change` to the device only while it is in `household`: the changed device, or
    /// `None`.
    fn update_device_in(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        change: impl FnOnce(&mut Device),
    ) -> Option<Device> {
        let mut inner = lock(&self.inner);
        let device = inner
            .devices
            .get_mut(id)
            .filter(|d| d.household.as_ref() == Some(household))?;
        change(device);
        Some(device.clone())
    }
}

#[async_trait]
impl DeviceRegistry for MemoryRegistry {
    async fn put_device(&self, device: &Device) -> Result<(), StoreError> {
        lock(&self.inner)
            .devices
            .insert(device.id.clone(), device.clone());
        Ok(())
    }

    async fn rename_device(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
        name: &str,
    ) -> Result<Option<Device>, StoreError> {
        Ok(self.update_device_in(id, household, |device| device.name = name.to_owned()))
    }

    async fn move_device(
        &self,
        id: &DeviceId,
        from: &HouseholdId,
        to: &HouseholdId,
    ) -> Result<Option<Device>, StoreError> {
        Ok(self.update_device_in(id, from, |device| device.household = Some(to.clone())))
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

    async fn remove_membership(
        &self,
        user: &UserId,
        household: &HouseholdId,
    ) -> Result<bool, StoreError> {
        Ok(lock(&self.inner)
            .memberships
            .remove(&(user.clone(), household.clone()))
            .is_some())
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

#[async_trait]
impl crate::Enrollment for MemoryRegistry {
    async fn register(&self, device: &Device) -> Result<(), crate::EnrollError> {
        let mut inner = lock(&self.inner);
        let taken = inner.devices.contains_key(&device.id)
            || (device.serial.is_some()
                && inner
                    .devices
                    .values()
                    .any(|d| d.product == device.product && d.serial == device.serial));
        if taken {
            return Err(crate::EnrollError::AlreadyRegistered);
        }
        inner.devices.insert(device.id.clone(), device.clone());
        Ok(())
    }

    async fn claim(
        &self,
        code_hash: &str,
        household: &HouseholdId,
        name: Option<&str>,
        now: u64,
    ) -> Result<Device, crate::EnrollError> {
        let mut inner = lock(&self.inner);
        let device = inner
            .devices
            .values_mut()
            .find(|d| d.household.is_none() && d.claim_code_hash.as_deref() == Some(code_hash))
            .ok_or(crate::EnrollError::UnknownCode)?;
        *device = device
            .claim(code_hash, household, name, now)
            .map_err(|_| crate::EnrollError::UnknownCode)?;
        Ok(device.clone())
    }

    async fn release(
        &self,
        id: &DeviceId,
        household: &HouseholdId,
    ) -> Result<Device, crate::EnrollError> {
        let mut inner = lock(&self.inner);
        let device = inner
            .devices
            .get_mut(id)
            .ok_or(crate::EnrollError::UnknownDevice)?;
        *device = device
            .release(household)
            .map_err(|_| crate::EnrollError::UnknownDevice)?;
        Ok(device.clone())
    }
}

#[async_trait]
impl crate::Invitations for MemoryRegistry {
    async fn create_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        lock(&self.inner)
            .invitations
            .insert(invitation.id.clone(), invitation.clone());
        Ok(())
    }

    async fn invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        Ok(lock(&self.inner).invitations.get(id).cloned())
    }

    async fn household_invitations(
        &self,
        household: &HouseholdId,
    ) -> Result<Vec<Invitation>, StoreError> {
        Ok(lock(&self.inner)
            .invitations
            .values()
            .filter(|i| &i.household == household)
            .cloned()
            .collect())
    }

    async fn invitations_for(&self, email: &str) -> Result<Vec<Invitation>, StoreError> {
        Ok(lock(&self.inner)
            .invitations
            .values()
            .filter(|i| i.email == email)
            .cloned()
            .collect())
    }

    async fn close_invitation(
        &self,
        id: &InvitationId,
        status: InvitationStatus,
        now: u64,
    ) -> Result<Invitation, crate::InvitationError> {
        let mut inner = lock(&self.inner);
        let invitation = inner
            .invitations
            .get_mut(id)
            .ok_or(crate::InvitationError::Unknown)?;
        if !invitation.is_open(now) {
            return Err(crate::InvitationError::NotOpen);
        }
        invitation.status = status;
        let closed = invitation.clone();
        if let InvitationStatus::Accepted { by, .. } = &closed.status {
            inner.memberships.insert(
                (by.clone(), closed.household.clone()),
                Membership {
                    user: by.clone(),
                    household: closed.household.clone(),
                    role: closed.role,
                },
            );
        }
        Ok(closed)
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
    async fn memory_invitations_pass_the_contract() {
        let registry = MemoryRegistry::default();
        crate::contract::invitations(
            &registry,
            &registry,
            "mem",
            crate::contract::Races::Concurrent,
        )
        .await;
    }

    #[tokio::test]
    async fn memory_enrollment_passes_the_contract() {
        let registry = MemoryRegistry::default();
        crate::contract::enrollment(
            &registry,
            &registry,
            "mem",
            crate::contract::Races::Concurrent,
        )
        .await;
    }

    #[tokio::test]
    async fn memory_dead_letters_pass_the_contract() {
        let sink = MemoryDeadLetters::default();
        let sent = crate::contract::dead_letters(&sink).await;
        assert_eq!(sink.letters(), sent);
    }
}

/// A [`ThingProvisioner`](crate::ThingProvisioner) in maps. Certificates are placeholders (it
/// signs nothing); a CSR must at least look like a PEM certificate request.
#[derive(Debug, Default)]
pub struct MemoryProvisioner {
    inner: Mutex<Provisioned>,
}

#[derive(Debug, Default)]
struct Provisioned {
    things: HashMap<DeviceId, ProductId>,
    /// Certificate id → (thing it is attached to, active).
    certificates: BTreeMap<String, (Option<DeviceId>, bool)>,
    next: u64,
}

#[async_trait]
impl crate::ThingProvisioner for MemoryProvisioner {
    async fn create_thing(&self, thing: &DeviceId, product: &ProductId) -> Result<(), IotError> {
        lock(&self.inner)
            .things
            .entry(thing.clone())
            .or_insert_with(|| product.clone());
        Ok(())
    }

    async fn issue_certificate(
        &self,
        thing: &DeviceId,
        csr_pem: Option<&str>,
    ) -> Result<IssuedCertificate, IotError> {
        if let Some(csr) = csr_pem
            && !csr.contains("-----BEGIN CERTIFICATE REQUEST-----")
        {
            return Err(IotError::Rejected(
                "not a PEM certificate request".to_owned(),
            ));
        }
        let mut inner = lock(&self.inner);
        if !inner.things.contains_key(thing) {
            return Err(IotError::NotFound(format!("thing {thing}")));
        }
        inner.next += 1;
        let id = format!("{:064x}", inner.next);
        inner
            .certificates
            .insert(id.clone(), (Some(thing.clone()), true));
        Ok(IssuedCertificate {
            certificate_arn: format!("arn:aws:iot:local:000000000000:cert/{id}"),
            certificate_pem: format!(
                "-----BEGIN CERTIFICATE-----\n{id}\n-----END CERTIFICATE-----\n"
            ),
            private_key_pem: csr_pem.is_none().then(|| {
                format!("-----BEGIN RSA PRIVATE KEY-----\n{id}\n-----END RSA PRIVATE KEY-----\n")
            }),
            certificate_id: id,
            mqtt_password: None,
        })
    }

    async fn certificates(&self, thing: &DeviceId) -> Result<Vec<String>, IotError> {
        let inner = lock(&self.inner);
        if !inner.things.contains_key(thing) {
            return Err(IotError::NotFound(format!("thing {thing}")));
        }
        Ok(inner
            .certificates
            .iter()
            .filter(|(_, (attached, _))| attached.as_ref() == Some(thing))
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn revoke_certificate(
        &self,
        thing: &DeviceId,
        certificate_id: &str,
    ) -> Result<(), IotError> {
        let mut inner = lock(&self.inner);
        match inner.certificates.get_mut(certificate_id) {
            Some((attached, active)) if attached.as_ref() == Some(thing) => {
                *attached = None;
                *active = false;
                Ok(())
            }
            _ => Err(IotError::NotFound(format!(
                "certificate {certificate_id} of {thing}"
            ))),
        }
    }

    async fn delete_thing(&self, thing: &DeviceId) -> Result<(), IotError> {
        let mut inner = lock(&self.inner);
        inner
            .certificates
            .retain(|_, (attached, _)| attached.as_ref() != Some(thing));
        inner.things.remove(thing);
        Ok(())
    }

    async fn data_endpoint(&self) -> Result<String, IotError> {
        Ok("127.0.0.1".to_owned())
    }

    fn root_ca_pem(&self) -> String {
        "-----BEGIN CERTIFICATE-----\nmemory-root\n-----END CERTIFICATE-----\n".to_owned()
    }
}

/// A [`ShadowGateway`](crate::ShadowGateway) keeping shadows with the domain's shadow semantics.
#[derive(Debug, Default)]
pub struct MemoryShadows {
    shadows: Mutex<HashMap<DeviceId, Shadow>>,
}

#[async_trait]
impl crate::ShadowGateway for MemoryShadows {
    async fn update_desired(
        &self,
        thing: &DeviceId,
        desired: &Object,
        expected_version: Option<u64>,
        cause: &Cause,
    ) -> Result<u64, IotError> {
        let request = UpdateRequest {
            desired: SectionUpdate::Merge(desired.clone()),
            version: expected_version,
            client_token: Some(cause.client_token()),
            ..UpdateRequest::default()
        };
        let mut shadows = lock(&self.shadows);
        let now = shadows.values().map(|s| s.timestamp).max().unwrap_or(0) + 1;
        match Shadow::update(shadows.get(thing), &request, now) {
            Ok(outcome) => {
                let version = outcome.shadow.version;
                shadows.insert(thing.clone(), outcome.shadow);
                Ok(version)
            }
            Err(ShadowError::VersionConflict) => Err(IotError::Conflict),
            Err(e) => Err(IotError::Rejected(e.to_string())),
        }
    }

    async fn get_shadow(&self, thing: &DeviceId) -> Result<Option<Object>, IotError> {
        Ok(lock(&self.shadows)
            .get(thing)
            .filter(|s| s.is_live())
            .and_then(|s| s.document(None).as_object().cloned()))
    }

    async fn delete_shadow(&self, thing: &DeviceId) -> Result<(), IotError> {
        let mut shadows = lock(&self.shadows);
        if let Some(shadow) = shadows.get(thing).filter(|s| s.is_live()) {
            let tombstone = shadow.tombstone(shadow.timestamp);
            shadows.insert(thing.clone(), tombstone);
        }
        Ok(())
    }
}

#[cfg(test)]
mod iot_tests {
    use super::*;

    #[tokio::test]
    async fn memory_iot_adapters_pass_the_contract() {
        let provisioner = MemoryProvisioner::default();
        let csr =
            "-----BEGIN CERTIFICATE REQUEST-----\nMII...\n-----END CERTIFICATE REQUEST-----\n";
        crate::contract::provisioner(&provisioner, "mem", Some(csr)).await;
        crate::contract::shadow_gateway(&MemoryShadows::default(), &provisioner, "mem").await;
    }
}
