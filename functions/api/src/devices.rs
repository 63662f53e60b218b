//! `/v1/devices`: list, read, rename, transfer and command the caller's devices — HTTP over the
//! use cases of [`hearth_app::devices`].

use bytes::Bytes;
use hearth_app::access::{self, Visible};
use hearth_app::devices::{self as app, Command, DeviceView, ListCursor};
use hearth_app::{AppError, AppPorts};
use hearth_domain::command::{Cause, CommandSource};
use hearth_domain::device::{Device, HouseholdId, Role};
use hearth_domain::shadow::Object;
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

/// The problem for a use case's error.
pub(crate) fn app_error(e: AppError) -> Problem {
    match e {
        AppError::NotFound { field } => Problem {
            field: field.map(str::to_owned),
            ..Problem::not_found()
        },
        AppError::OwnersOnly { action } => Problem::new(
            Kind::Forbidden,
            format!("Only an owner of the household can {action}."),
        ),
        AppError::Invalid { pointer, message } => Problem::invalid(pointer, message),
        AppError::VersionConflict => Problem::new(
            Kind::VersionConflict,
            "The device's shadow is no longer at expectedVersion; read the device and retry.",
        ),
        AppError::Store(e) => store(e),
        AppError::Iot(e) => iot(e),
        other => Problem::internal(&other),
    }
}

impl<'a> Ports<'a> {
    /// The ports of the application layer.
    pub(crate) fn app(self) -> AppPorts<'a> {
        AppPorts {
            registry: self.registry,
            state: self.state,
            shadows: self.shadows,
        }
    }
}

/// The device at `id` with the caller's role in its household, or a 404.
pub(crate) async fn visible(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<(Device, Role), Problem> {
    let Visible { device, role } = access::visible(ports.registry, &caller.user, id)
        .await
        .map_err(app_error)?;
    Ok((device, role))
}

/// A 403 unless `role` is owner: `action` says what only owners may do ("rename a device").
pub(crate) fn owners_only(role: Role, action: &'static str) -> Result<(), Problem> {
    access::owners_only(role, action).map_err(app_error)
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
    let bad_cursor = || Problem {
        field: Some("cursor".to_owned()),
        ..Problem::new(Kind::BadRequest, "cursor is not one this API returned.")
    };
    let cursor = match query(request, "cursor") {
        None => None,
        Some(cursor) => Some(ListCursor::decode(&cursor).ok_or_else(bad_cursor)?),
    };
    let page = app::list(ports.app(), &caller.user, limit, cursor)
        .await
        .map_err(app_error)?
        .map_err(|_| bad_cursor())?;
    let items: Vec<Value> = page.items.iter().map(summary).collect();
    let mut body = json!({ "items": items });
    if let (Some(next), Some(object)) = (page.next, body.as_object_mut()) {
        object.insert("nextCursor".to_owned(), Value::String(next.encode()));
    }
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v1/devices/{id}`: metadata, the shadow's desired / reported / delta, connectivity,
/// last seen and the latest telemetry.
pub async fn get(ports: Ports<'_>, caller: &Caller, id: &str) -> Result<Response<Bytes>, Problem> {
    let view = app::read(ports.app(), &caller.user, id)
        .await
        .map_err(app_error)?;
    let mut body = summary(&view.visible.device);
    if let Some(object) = body.as_object_mut() {
        object.insert("role".to_owned(), json!(view.visible.role));
        object.insert("shadow".to_owned(), shadow_view(&view));
        object.extend(state_view(&view));
    }
    Ok(json(StatusCode::OK, &body))
}

fn shadow_view(view: &DeviceView) -> Value {
    if view.shadow.is_none() {
        return Value::Null;
    }
    let part = |name: &str| {
        view.shadow_section(name)
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    json!({
        "desired": part("desired"),
        "reported": part("reported"),
        "delta": part("delta"),
        "version": view.shadow_version().map_or(Value::Null, Value::from),
    })
}

/// The projection's concerns since the current claim (a next owner never sees the previous
/// owner's telemetry or presence).
fn state_view(view: &DeviceView) -> Vec<(String, Value)> {
    let connectivity = view.connectivity().map(|c| {
        json!({
            "connected": c.connected,
            "since": c.timestamp,
            "disconnectReason": c.disconnect_reason,
        })
    });
    let telemetry = view.telemetry().map(|t| {
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
            view.last_seen().map_or(Value::Null, Value::from),
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
    let visible = access::visible(ports.registry, &caller.user, id)
        .await
        .map_err(app_error)?;
    visible.owners_only("rename a device").map_err(app_error)?;
    let name = name_body(request)?;
    let renamed = app::rename_visible(ports.app(), &visible, &name)
        .await
        .map_err(app_error)?;
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
    let memberships = access::memberships(ports.registry, &caller.user)
        .await
        .map_err(app_error)?;
    let visible = access::visible_among(ports.registry, &memberships, id)
        .await
        .map_err(app_error)?;
    visible
        .owners_only("transfer a device")
        .map_err(app_error)?;
    let Transfer { household_id } = json_body(request)?;
    let moved = app::transfer_visible(ports.app(), &memberships, &visible, &household_id)
        .await
        .map_err(app_error)?;
    Ok(json(StatusCode::OK, &summary(&moved)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CommandBody {
    desired: Object,
    expected_version: Option<u64>,
}

/// `POST /v1/devices/{id}/commands` `{"desired": {...}, "expectedVersion": n}`: merges the
/// partial desired document into the shadow (nested objects merge, `null` deletes); the device
/// receives the delta. The command's cause is the REST API and the caller.
pub async fn command(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let visible = access::visible(ports.registry, &caller.user, id)
        .await
        .map_err(app_error)?;
    let CommandBody {
        desired,
        expected_version,
    } = json_body(request)?;
    let command = Command {
        desired,
        expected_version,
        cause: Cause::new(CommandSource::Api, caller.user.as_str()),
    };
    let version = app::command_visible(ports.app(), &visible.device, &command)
        .await
        .map_err(app_error)?;
    Ok(json(StatusCode::ACCEPTED, &json!({ "version": version })))
}
