//! `/v1/devices`: list, read, rename and command the caller's devices.

use bytes::Bytes;
use hearth_domain::device::{Device, DeviceId, HouseholdId, Membership, Role};
use hearth_domain::projection::DeviceState;
use hearth_domain::shadow::{self, MAX_DEPTH, MAX_STATE_BYTES, Object};
use hearth_ports::{IotError, StoreError};
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::request::{json, json_body, name_body, query};
use crate::{Caller, Kind, Ports, Problem};

/// Page size when the caller gives none.
const DEFAULT_LIMIT: u16 = 25;
/// Largest page.
const MAX_LIMIT: u16 = 100;

pub(crate) fn store(e: StoreError) -> Problem {
    if e.is_retryable() {
        Problem::unavailable(&e)
    } else {
        Problem::internal(&e)
    }
}

pub(crate) fn iot(e: IotError) -> Problem {
    match e {
        IotError::NotFound(_) => Problem::not_found(),
        IotError::Transient(_) => Problem::unavailable(&e),
        other => Problem::internal(&other),
    }
}

/// The caller's memberships, ordered by household.
async fn memberships(ports: Ports<'_>, caller: &Caller) -> Result<Vec<Membership>, Problem> {
    let mut memberships = ports
        .registry
        .memberships(&caller.user)
        .await
        .map_err(store)?;
    memberships.sort_by(|a, b| a.household.cmp(&b.household));
    Ok(memberships)
}

/// The device at `id` with the caller's role in its household, or a 404.
pub(crate) async fn visible(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<(Device, Role), Problem> {
    let memberships = memberships(ports, caller).await?;
    visible_among(ports, &memberships, id).await
}

/// [`visible`], with the caller's memberships already read.
async fn visible_among(
    ports: Ports<'_>,
    memberships: &[Membership],
    id: &str,
) -> Result<(Device, Role), Problem> {
    let id = DeviceId::parse(id).map_err(|_| Problem::not_found())?;
    if memberships.is_empty() {
        return Err(Problem::not_found());
    }
    let device = ports
        .registry
        .get_device(&id)
        .await
        .map_err(store)?
        .ok_or_else(Problem::not_found)?;
    let role = memberships
        .iter()
        .find(|m| Some(&m.household) == device.household.as_ref())
        .map(|m| m.role)
        .ok_or_else(Problem::not_found)?;
    Ok((device, role))
}

/// A 403 unless `role` is owner: `action` says what only owners may do ("rename a device").
pub(crate) fn owners_only(role: Role, action: &str) -> Result<(), Problem> {
    if role == Role::Owner {
        Ok(())
    } else {
        Err(Problem::new(
            Kind::Forbidden,
            format!("Only an owner of the household can {action}."),
        ))
    }
}

pub(crate) fn summary(device: &Device) -> Value {
    json!({
        "id": device.id.as_str(),
        "name": device.name,
        "productId": device.product.as_str(),
        "deviceType": device.device_type,
        "householdId": device.household.as_ref().map(HouseholdId::as_str),
        "createdAt": device.created_at,
    })
}

/// A listing cursor: the household and the registry's cursor within it, hex-encoded so that it
/// is opaque to clients.
fn encode_cursor(household: &HouseholdId, after: Option<&str>) -> String {
    let raw = format!("{}\n{}", household.as_str(), after.unwrap_or(""));
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<(HouseholdId, Option<String>)> {
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
    Some((household, after))
}

/// `GET /v1/devices?limit=&cursor=`: the devices of every household of the caller, by household
/// then device id.
pub async fn list(
    ports: Ports<'_>,
    caller: &Caller,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let limit = match query(request, "limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| Problem {
                field: Some("limit".to_owned()),
                ..Problem::new(
                    Kind::BadRequest,
                    format!("limit must be an integer from 1 to {MAX_LIMIT}."),
                )
            })?,
    };
    let memberships = memberships(ports, caller).await?;
    let households: Vec<&HouseholdId> = memberships.iter().map(|m| &m.household).collect();
    let bad_cursor = || Problem {
        field: Some("cursor".to_owned()),
        ..Problem::new(Kind::BadRequest, "cursor is not one this API returned.")
    };
    let (mut index, mut after) = match query(request, "cursor") {
        None => (0, None),
        Some(cursor) => {
            let (household, after) = decode_cursor(&cursor).ok_or_else(bad_cursor)?;
            let index = households
                .iter()
                .position(|h| **h == household)
                .ok_or_else(bad_cursor)?;
            (index, after)
        }
    };
    let mut items = Vec::new();
    let mut next = None;
    while let Some(household) = households.get(index) {
        let wanted = limit - u16::try_from(items.len()).unwrap_or(limit);
        let page = ports
            .registry
            .household_devices(household, wanted, after.as_deref())
            .await
            .map_err(store)?;
        items.extend(page.items.iter().map(summary));
        match page.next {
            Some(cursor) => {
                after = Some(cursor);
                if items.len() >= usize::from(limit) {
                    next = Some(encode_cursor(household, after.as_deref()));
                    break;
                }
            }
            None => {
                index += 1;
                after = None;
                if items.len() >= usize::from(limit) {
                    next = households.get(index).map(|h| encode_cursor(h, None));
                    break;
                }
            }
        }
    }
    let mut body = json!({ "items": items });
    if let (Some(next), Some(object)) = (next, body.as_object_mut()) {
        object.insert("nextCursor".to_owned(), Value::String(next));
    }
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v1/devices/{id}`: metadata, the shadow's desired / reported / delta, connectivity,
/// last seen and the latest telemetry.
pub async fn get(ports: Ports<'_>, caller: &Caller, id: &str) -> Result<Response<Bytes>, Problem> {
    let (device, role) = visible(ports, caller, id).await?;
    // The shadow is read from the shadow service (it reflects a command at once); the rest
    // from the projection the state processor keeps.
    let document = ports.shadows.get_shadow(&device.id).await.map_err(iot)?;
    let state = ports.state.get_state(&device.id).await.map_err(store)?;
    let mut body = summary(&device);
    if let Some(object) = body.as_object_mut() {
        object.insert("role".to_owned(), json!(role));
        object.insert("shadow".to_owned(), shadow_view(document.as_ref()));
        object.extend(state_view(state.as_ref(), device.claimed_at.unwrap_or(0)));
    }
    Ok(json(StatusCode::OK, &body))
}

fn shadow_view(document: Option<&Object>) -> Value {
    let Some(document) = document else {
        return Value::Null;
    };
    let state = document.get("state");
    let part = |name: &str| {
        state
            .and_then(|s| s.get(name))
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    json!({
        "desired": part("desired"),
        "reported": part("reported"),
        "delta": part("delta"),
        "version": document.get("version").cloned().unwrap_or(Value::Null),
    })
}

/// The projection's concerns, each only if it is newer than the current claim (`since`): the
/// device has no credentials before it, so a next owner never sees the previous owner's
/// telemetry or presence.
fn state_view(state: Option<&DeviceState>, since: u64) -> Vec<(String, Value)> {
    let connectivity = state
        .and_then(|s| s.connectivity.as_ref())
        .filter(|c| c.timestamp > since)
        .map(|c| {
            json!({
                "connected": c.connected,
                "since": c.timestamp,
                "disconnectReason": c.disconnect_reason,
            })
        });
    let telemetry = state
        .and_then(|s| s.telemetry.as_ref())
        .filter(|t| t.received_at > since)
        .map(|t| {
            json!({
                "receivedAt": t.received_at,
                "payload": t.payload,
            })
        });
    vec![
        (
            "connectivity".to_owned(),
            connectivity.unwrap_or(Value::Null),
        ),
        (
            "lastSeen".to_owned(),
            state
                .and_then(|s| s.last_seen)
                .filter(|t| *t > since)
                .map_or(Value::Null, Value::from),
        ),
        ("telemetry".to_owned(), telemetry.unwrap_or(Value::Null)),
    ]
}

/// `PATCH /v1/devices/{id}` `{"name": ...}`: owners only.
pub async fn rename(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let (device, role) = visible(ports, caller, id).await?;
    owners_only(role, "rename a device")?;
    let name = name_body(request)?;
    // Conditional on the household: a concurrent delete is never undone by a rename.
    let household = device.household.ok_or_else(Problem::not_found)?;
    let renamed = ports
        .registry
        .rename_device(&device.id, &household, &name)
        .await
        .map_err(store)?
        .ok_or_else(Problem::not_found)?;
    Ok(json(StatusCode::OK, &summary(&renamed)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Transfer {
    household_id: String,
}

/// `POST /v1/devices/{id}/transfer` `{"householdId"}`: moves a device to another household the
/// caller owns (owners of both).
pub async fn transfer(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let memberships = memberships(ports, caller).await?;
    let (device, role) = visible_among(ports, &memberships, id).await?;
    owners_only(role, "transfer a device")?;
    let Transfer { household_id } = json_body(request)?;
    let from = device.household.clone().ok_or_else(Problem::not_found)?;
    let target = memberships
        .into_iter()
        .find(|m| m.household.as_str() == household_id)
        .ok_or_else(|| Problem {
            field: Some("/householdId".to_owned()),
            ..Problem::not_found()
        })?;
    owners_only(target.role, "move devices into that household")?;
    if target.household == from {
        return Err(Problem::invalid(
            "/householdId",
            "The device is already in that household.",
        ));
    }
    let moved = ports
        .registry
        .move_device(&device.id, &from, &target.household)
        .await
        .map_err(store)?
        .ok_or_else(Problem::not_found)?;
    Ok(json(StatusCode::OK, &summary(&moved)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Command {
    desired: Object,
    expected_version: Option<u64>,
}

/// `POST /v1/devices/{id}/commands` `{"desired": {...}, "expectedVersion": n}`: merges the
/// partial desired document into the shadow (nested objects merge, `null` deletes); the device
/// receives the delta.
pub async fn command(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let (device, _role) = visible(ports, caller, id).await?;
    let Command {
        desired,
        expected_version,
    } = json_body(request)?;
    if desired.is_empty() {
        return Err(Problem::invalid(
            "/desired",
            "desired must set at least one field.",
        ));
    }
    let depth = shadow::nesting(&desired);
    if depth > MAX_DEPTH {
        return Err(Problem::invalid(
            "/desired",
            format!("desired is nested {depth} levels deep; the limit is {MAX_DEPTH}."),
        ));
    }
    let bytes = Value::Object(desired.clone()).to_string().len();
    if bytes > MAX_STATE_BYTES {
        return Err(Problem::invalid(
            "/desired",
            format!("desired is {bytes} bytes; the limit is {MAX_STATE_BYTES}."),
        ));
    }
    device
        .device_type
        .validate_desired(&desired)
        .map_err(|e| Problem::invalid(format!("/desired/{}", e.field), e.to_string()))?;
    let version = ports
        .shadows
        .update_desired(&device.id, &desired, expected_version)
        .await
        .map_err(|e| match e {
            IotError::Conflict => Problem::new(
                Kind::VersionConflict,
                "The device's shadow is no longer at expectedVersion; read the device and retry.",
            ),
            IotError::Rejected(detail) => {
                tracing::warn!(detail, "the shadow service refused a desired document");
                Problem::invalid(
                    "/desired",
                    "The device shadow service refused the desired document.",
                )
            }
            other => iot(other),
        })?;
    Ok(json(StatusCode::ACCEPTED, &json!({ "version": version })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let home = HouseholdId::parse("home-1").unwrap_or_else(|e| panic!("{e}"));
        for after in [None, Some("dev-9")] {
            let cursor = encode_cursor(&home, after);
            assert_eq!(
                decode_cursor(&cursor),
                Some((home.clone(), after.map(str::to_owned)))
            );
        }
        for garbage in ["", "0", "zz", "6869", &"00".repeat(600)] {
            assert_eq!(decode_cursor(garbage), None, "{garbage}");
        }
    }
}
