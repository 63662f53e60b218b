//! Devices as a user sees them: list, read (registry record, shadow and state projection),
//! rename, transfer, command.

use hearth_domain::command::Cause;
use hearth_domain::device::{Device, DeviceId, HouseholdId, Membership, UserId};
use hearth_domain::projection::{Connectivity, DeviceState, Telemetry};
use hearth_domain::shadow::{self, MAX_DEPTH, MAX_STATE_BYTES, Object};
use hearth_ports::IotError;
use serde_json::Value;

use crate::access::{self, Visible};
use crate::{AppError, AppPorts};

/// Where a listing of a user's devices continues: a household and the registry's cursor within
/// it. Opaque to clients ([`ListCursor::encode`] / [`ListCursor::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    household: HouseholdId,
    after: Option<String>,
}

impl ListCursor {
    /// The cursor as an opaque, URL-safe string (hex).
    pub fn encode(&self) -> String {
        let raw = format!(
            "{}\n{}",
            self.household.as_str(),
            self.after.as_deref().unwrap_or("")
        );
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// A cursor [`encode`](Self::encode) made, `None` for anything else.
    pub fn decode(cursor: &str) -> Option<Self> {
        if !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..cursor.len())
            .step_by(2)
            .map(|i| {
                cursor
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        let raw = String::from_utf8(bytes?).ok()?;
        let (household, after) = raw.split_once('\n')?;
        let household = HouseholdId::parse(household).ok()?;
        // The registry's cursor is a device id: anything else was not issued here.
        let after = match after {
            "" => None,
            after => Some(DeviceId::parse(after).ok()?.as_str().to_owned()),
        };
        Some(Self { household, after })
    }
}

/// One page of a user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePage {
    /// The devices, by household then id.
    pub items: Vec<Device>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListCursor>,
}

/// Why a listing's cursor was refused: it does not continue a listing of this user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor does not continue a listing of this user's devices")]
pub struct ForeignCursor;

/// The devices of every household of `user`, by household then device id, `limit` (≥ 1) at a
/// time, from `cursor`. `Ok(Err(ForeignCursor))` when the cursor names a household the user is
/// no longer in.
pub async fn list(
    ports: AppPorts<'_>,
    user: &UserId,
    limit: u16,
    cursor: Option<ListCursor>,
) -> Result<Result<DevicePage, ForeignCursor>, AppError> {
    let limit = limit.max(1);
    let memberships = access::memberships(ports.registry, user).await?;
    let households: Vec<&HouseholdId> = memberships.iter().map(|m| &m.household).collect();
    let (mut index, mut after) = match cursor {
        None => (0, None),
        Some(ListCursor { household, after }) => {
            match households.iter().position(|h| **h == household) {
                Some(index) => (index, after),
                None => return Ok(Err(ForeignCursor)),
            }
        }
    };
    let mut items = Vec::new();
    let mut next = None;
    while let Some(household) = households.get(index) {
        let wanted = limit - u16::try_from(items.len()).unwrap_or(limit);
        let page = ports
            .registry
            .household_devices(household, wanted, after.as_deref())
            .await?;
        items.extend(page.items);
        match page.next {
            Some(cursor) => {
                after = Some(cursor);
                if items.len() >= usize::from(limit) {
                    next = Some(ListCursor {
                        household: (*household).clone(),
                        after,
                    });
                    break;
                }
            }
            None => {
                index += 1;
                after = None;
                if items.len() >= usize::from(limit) {
                    next = households.get(index).map(|h| ListCursor {
                        household: (*h).clone(),
                        after: None,
                    });
                    break;
                }
            }
        }
    }
    Ok(Ok(DevicePage { items, next }))
}

/// A device as its user sees it: registry record, role, the shadow document (from the shadow
/// service: a command shows at once) and the state projection.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceView {
    /// The device and the user's role in its household.
    pub visible: Visible,
    /// The shadow document as the shadow service returns it, `None` if it has none.
    pub shadow: Option<Object>,
    /// The state projection, `None` if nothing was ever stored for the device.
    pub state: Option<DeviceState>,
}

impl DeviceView {
    /// When the current household claimed the device: the projection's concerns older than
    /// that belong to a previous owner and are never shown.
    fn since(&self) -> u64 {
        self.visible.device.claimed_at.unwrap_or(0)
    }

    /// Connectivity since the current claim.
    pub fn connectivity(&self) -> Option<&Connectivity> {
        self.state
            .as_ref()?
            .connectivity
            .as_ref()
            .filter(|c| c.timestamp > self.since())
    }

    /// When the device was last seen, since the current claim.
    pub fn last_seen(&self) -> Option<u64> {
        self.state
            .as_ref()?
            .last_seen
            .filter(|seen| *seen > self.since())
    }

    /// The latest telemetry, since the current claim.
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.state
            .as_ref()?
            .telemetry
            .as_ref()
            .filter(|t| t.received_at > self.since())
    }

    /// A section (`desired`, `reported`, `delta`) of the shadow's state.
    pub fn shadow_section(&self, name: &str) -> Option<&Value> {
        self.shadow.as_ref()?.get("state")?.get(name)
    }

    /// The shadow's version.
    pub fn shadow_version(&self) -> Option<u64> {
        self.shadow.as_ref()?.get("version")?.as_u64()
    }
}

/// Reads the device `id` if `user` may see it.
pub async fn read(ports: AppPorts<'_>, user: &UserId, id: &str) -> Result<DeviceView, AppError> {
    let visible = access::visible(ports.registry, user, id).await?;
    let shadow = ports.shadows.get_shadow(&visible.device.id).await?;
    let state = ports.state.get_state(&visible.device.id).await?;
    Ok(DeviceView {
        visible,
        shadow,
        state,
    })
}

/// Renames the device `id` (owners only).
pub async fn rename(
    ports: AppPorts<'_>,
    user: &UserId,
    id: &str,
    name: &str,
) -> Result<Device, AppError> {
    let visible = access::visible(ports.registry, user, id).await?;
    rename_visible(ports, &visible, name).await
}

/// [`rename`] for a device already resolved. Conditional on its household: a concurrent delete
/// or transfer is never undone by a rename.
pub async fn rename_visible(
    ports: AppPorts<'_>,
    visible: &Visible,
    name: &str,
) -> Result<Device, AppError> {
    visible.owners_only("rename a device")?;
    hearth_domain::device::validate_name(name)
        .map_err(|reason| AppError::invalid("/name", format!("name {reason}.")))?;
    ports
        .registry
        .rename_device(&visible.device.id, visible.household()?, name)
        .await?
        .ok_or_else(AppError::not_found)
}

/// Moves the device `id` into the household `target`, which the user also owns (owners of both).
pub async fn transfer(
    ports: AppPorts<'_>,
    user: &UserId,
    id: &str,
    target: &str,
) -> Result<Device, AppError> {
    let memberships = access::memberships(ports.registry, user).await?;
    let visible = access::visible_among(ports.registry, &memberships, id).await?;
    transfer_visible(ports, &memberships, &visible, target).await
}

/// [`transfer`] for a device already resolved among the user's `memberships`.
pub async fn transfer_visible(
    ports: AppPorts<'_>,
    memberships: &[Membership],
    visible: &Visible,
    target: &str,
) -> Result<Device, AppError> {
    visible.owners_only("transfer a device")?;
    let from = visible.household()?;
    let target = memberships
        .iter()
        .find(|m| m.household.as_str() == target)
        .ok_or(AppError::NotFound {
            field: Some("/householdId"),
        })?;
    access::owners_only(target.role, "move devices into that household")?;
    if &target.household == from {
        return Err(AppError::invalid(
            "/householdId",
            "The device is already in that household.",
        ));
    }
    ports
        .registry
        .move_device(&visible.device.id, from, &target.household)
        .await?
        .ok_or_else(AppError::not_found)
}

/// A command: a partial desired document, optionally only at an expected shadow version.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The desired fields to set (`null` deletes one).
    pub desired: Object,
    /// Apply only if the shadow is at this version.
    pub expected_version: Option<u64>,
    /// Who asked: recorded in the shadow update and, through it, in the state projection.
    pub cause: Cause,
}

/// Checks a desired document against the shadow service's limits and the device type's
/// capabilities, before anything is sent.
fn validate_command(device: &Device, desired: &Object) -> Result<(), AppError> {
    if desired.is_empty() {
        return Err(AppError::invalid(
            "/desired",
            "desired must set at least one field.",
        ));
    }
    let depth = shadow::nesting(desired);
    if depth > MAX_DEPTH {
        return Err(AppError::invalid(
            "/desired",
            format!("desired is nested {depth} levels deep; the limit is {MAX_DEPTH}."),
        ));
    }
    let bytes = Value::Object(desired.clone()).to_string().len();
    if bytes > MAX_STATE_BYTES {
        return Err(AppError::invalid(
            "/desired",
            format!("desired is {bytes} bytes; the limit is {MAX_STATE_BYTES}."),
        ));
    }
    device
        .device_type
        .validate_desired(desired)
        .map_err(|e| AppError::invalid(format!("/desired/{}", e.field), e.to_string()))
}

/// Commands the device `id` (any member may): merges the desired document into its shadow; the
/// device receives the delta. Returns the shadow's new version.
pub async fn command(
    ports: AppPorts<'_>,
    user: &UserId,
    id: &str,
    command: &Command,
) -> Result<u64, AppError> {
    let visible = access::visible(ports.registry, user, id).await?;
    command_visible(ports, &visible.device, command).await
}

/// [`command`] for a device the caller already resolved (an automation acting for a household).
pub async fn command_visible(
    ports: AppPorts<'_>,
    device: &Device,
    command: &Command,
) -> Result<u64, AppError> {
    validate_command(device, &command.desired)?;
    ports
        .shadows
        .update_desired(
            &device.id,
            &command.desired,
            command.expected_version,
            &command.cause,
        )
        .await
        .map_err(|e| match e {
            IotError::Conflict => AppError::VersionConflict,
            IotError::Rejected(detail) => {
                tracing::warn!(detail, "the shadow service refused a desired document");
                AppError::invalid(
                    "/desired",
                    "The device shadow service refused the desired document.",
                )
            }
            other => AppError::Iot(other),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let home = HouseholdId::parse("home-1").unwrap_or_else(|e| panic!("{e}"));
        for after in [None, Some("dev-9")] {
            let cursor = ListCursor {
                household: home.clone(),
                after: after.map(str::to_owned),
            };
            assert_eq!(ListCursor::decode(&cursor.encode()), Some(cursor));
        }
        for garbage in ["", "0", "zz", "6869", &"00".repeat(600)] {
            assert_eq!(ListCursor::decode(garbage), None, "{garbage}");
        }
    }
}
