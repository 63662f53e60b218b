//! `/v1/households`: the caller's households, their names and members.
//!
//! Any member sees a household and its members; only owners rename it and change or remove
//! members; any member may leave. A household always keeps an owner while it has other members
//! or devices: its last owner can be neither demoted nor removed, nor leave, until then (409).

use bytes::Bytes;
use hearth_domain::device::{Household, HouseholdId, Membership, Role, UserId};
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::devices::{app_error, owners_only, store};
use crate::request::{json, json_body, name_body};
use crate::{Caller, Kind, Ports, Problem};

/// The caller's membership of household `id`, or a 404 (another household does not exist).
pub(crate) async fn membership(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<Membership, Problem> {
    let id = HouseholdId::parse(id).map_err(|_| Problem::not_found())?;
    hearth_app::access::membership(ports.registry, &caller.user, &id)
        .await
        .map_err(app_error)
}

fn view(household: &Household, role: Role) -> Value {
    json!({"id": household.id.as_str(), "name": household.name, "role": role})
}

async fn household(ports: Ports<'_>, id: &HouseholdId) -> Result<Household, Problem> {
    ports
        .registry
        .get_household(id)
        .await
        .map_err(store)?
        // A membership without its household record: answer with the id as its name.
        .map_or_else(
            || {
                Ok(Household {
                    id: id.clone(),
                    name: id.as_str().to_owned(),
                })
            },
            Ok,
        )
}

/// `GET /v1/households`: every household of the caller, with the caller's role.
pub async fn list(ports: Ports<'_>, caller: &Caller) -> Result<Response<Bytes>, Problem> {
    let memberships = hearth_app::access::memberships(ports.registry, &caller.user)
        .await
        .map_err(app_error)?;
    let mut items = Vec::with_capacity(memberships.len());
    for membership in &memberships {
        let household = household(ports, &membership.household).await?;
        items.push(view(&household, membership.role));
    }
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

/// `PATCH /v1/households/{id}` `{"name": ...}`: owners only.
pub async fn rename(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let membership = membership(ports, caller, id).await?;
    owners_only(membership.role, "rename the household")?;
    let name = name_body(request)?;
    let renamed = Household {
        id: membership.household.clone(),
        name,
    };
    ports
        .registry
        .put_household(&renamed)
        .await
        .map_err(store)?;
    Ok(json(StatusCode::OK, &view(&renamed, membership.role)))
}

/// `GET /v1/households/{id}/members`: any member.
pub async fn members(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<Response<Bytes>, Problem> {
    let membership = membership(ports, caller, id).await?;
    let mut members = ports
        .registry
        .household_members(&membership.household)
        .await
        .map_err(store)?;
    members.sort_by(|a, b| a.user.cmp(&b.user));
    let items: Vec<Value> = members
        .iter()
        .map(|m| json!({"userId": m.user.as_str(), "role": m.role}))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

/// The member `user` of the caller's household, or a 404.
async fn member(
    ports: Ports<'_>,
    household: &HouseholdId,
    user: &str,
) -> Result<(Membership, Vec<Membership>), Problem> {
    let user = UserId::parse(user).map_err(|_| Problem::not_found())?;
    let members = ports
        .registry
        .household_members(household)
        .await
        .map_err(store)?;
    let target = members
        .iter()
        .find(|m| m.user == user)
        .cloned()
        .ok_or_else(Problem::not_found)?;
    Ok((target, members))
}

/// Whether the household would be left without an owner while it still has other members or
/// devices, if `leaving` stopped being an owner.
async fn orphaned(
    ports: Ports<'_>,
    leaving: &Membership,
    members: &[Membership],
) -> Result<bool, Problem> {
    if leaving.role != Role::Owner {
        return Ok(false);
    }
    let other_owner = members
        .iter()
        .any(|m| m.role == Role::Owner && m.user != leaving.user);
    if other_owner {
        return Ok(false);
    }
    let others = members.iter().any(|m| m.user != leaving.user);
    let devices = ports
        .registry
        .household_devices(&leaving.household, 1, None)
        .await
        .map_err(store)?;
    Ok(others || !devices.items.is_empty())
}

fn last_owner() -> Problem {
    Problem::new(
        Kind::LastOwner,
        "The household's last owner must stay while it has other members or devices: make \
         another member an owner first, or delete its devices.",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: Role,
}

/// `PATCH /v1/households/{id}/members/{userId}` `{"role": "owner"|"member"}`: owners only.
pub async fn change_role(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    user: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let membership = membership(ports, caller, id).await?;
    owners_only(membership.role, "change members' roles")?;
    let RoleChange { role } = json_body(request)?;
    let (target, members) = member(ports, &membership.household, user).await?;
    if role == Role::Member && orphaned(ports, &target, &members).await? {
        return Err(last_owner());
    }
    let changed = Membership { role, ..target };
    ports
        .registry
        .put_membership(&changed)
        .await
        .map_err(store)?;
    Ok(json(
        StatusCode::OK,
        &json!({"userId": changed.user.as_str(), "role": changed.role}),
    ))
}

/// `DELETE /v1/households/{id}/members/{userId}`: owners remove members; anyone may remove
/// themselves (leave).
pub async fn remove(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    user: &str,
) -> Result<Response<Bytes>, Problem> {
    let membership = membership(ports, caller, id).await?;
    let (target, members) = member(ports, &membership.household, user).await?;
    if target.user != caller.user {
        owners_only(membership.role, "remove other members")?;
    }
    if orphaned(ports, &target, &members).await? {
        return Err(last_owner());
    }
    ports
        .registry
        .remove_membership(&target.user, &target.household)
        .await
        .map_err(store)?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
