//! Who may see what: a user's households and roles, and the visibility rule.
//!
//! A user sees the devices of the households they belong to. A device of another household is
//! [`AppError::NotFound`], exactly as a missing one — never a refusal that would reveal that it
//! exists. Only an action on a visible device that the user's role does not allow is
//! [`AppError::OwnersOnly`].

use hearth_domain::device::{Device, DeviceId, HouseholdId, Membership, Role, UserId};
use hearth_ports::DeviceRegistry;

use crate::AppError;

/// A device the user may see, with the role they hold in its household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible {
    /// The device's registry record.
    pub device: Device,
    /// The user's role in the device's household.
    pub role: Role,
}

impl Visible {
    /// The device's household (a visible device always has one).
    pub fn household(&self) -> Result<&HouseholdId, AppError> {
        self.device
            .household
            .as_ref()
            .ok_or_else(AppError::not_found)
    }

    /// `Ok` if the user owns the device's household, else [`AppError::OwnersOnly`].
    pub fn owners_only(&self, action: &'static str) -> Result<(), AppError> {
        owners_only(self.role, action)
    }
}

/// `Ok` if `role` is owner, else [`AppError::OwnersOnly`] for `action` ("rename a device").
pub fn owners_only(role: Role, action: &'static str) -> Result<(), AppError> {
    if role == Role::Owner {
        Ok(())
    } else {
        Err(AppError::OwnersOnly { action })
    }
}

/// The user's memberships, ordered by household.
pub async fn memberships(
    registry: &dyn DeviceRegistry,
    user: &UserId,
) -> Result<Vec<Membership>, AppError> {
    let mut memberships = registry.memberships(user).await?;
    memberships.sort_by(|a, b| a.household.cmp(&b.household));
    Ok(memberships)
}

/// The user's membership of `household`, or [`AppError::NotFound`] when they have none (the
/// household does not exist for them).
pub async fn membership(
    registry: &dyn DeviceRegistry,
    user: &UserId,
    household: &HouseholdId,
) -> Result<Membership, AppError> {
    memberships(registry, user)
        .await?
        .into_iter()
        .find(|m| &m.household == household)
        .ok_or_else(AppError::not_found)
}

/// The device `id` if the user may see it. `id` is taken as the caller wrote it: a malformed id
/// is as missing as an unknown one.
pub async fn visible(
    registry: &dyn DeviceRegistry,
    user: &UserId,
    id: &str,
) -> Result<Visible, AppError> {
    let memberships = memberships(registry, user).await?;
    visible_among(registry, &memberships, id).await
}

/// [`visible`], with the user's memberships already read.
pub async fn visible_among(
    registry: &dyn DeviceRegistry,
    memberships: &[Membership],
    id: &str,
) -> Result<Visible, AppError> {
    let id = DeviceId::parse(id).map_err(|_| AppError::not_found())?;
    if memberships.is_empty() {
        return Err(AppError::not_found());
    }
    let device = registry
        .get_device(&id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let role = memberships
        .iter()
        .find(|m| Some(&m.household) == device.household.as_ref())
        .map(|m| m.role)
        .ok_or_else(AppError::not_found)?;
    Ok(Visible { device, role })
}
