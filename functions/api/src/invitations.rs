//! Invitations: owners invite a person by e-mail address with a role; the person, signed in
//! with that (verified) address, accepts or declines; owners list and revoke them. Invitations
//! are single-use and expire after seven days; addresses match case-insensitively.

use bytes::Bytes;
use hearth_domain::device::{HouseholdId, InvitationId, Role};
use hearth_domain::enrollment::new_invitation_id;
use hearth_domain::sharing::{INVITATION_TTL_MS, Invitation, InvitationStatus, normalize_email};
use hearth_ports::InvitationError;
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::devices::{owners_only, store};
use crate::households;
use crate::request::{json, json_body, random};
use crate::{Caller, Kind, Ports, Problem};

fn view(invitation: &Invitation, now: u64) -> Value {
    let status = match &invitation.status {
        InvitationStatus::Pending if now >= invitation.expires_at => "expired",
        InvitationStatus::Pending => "pending",
        InvitationStatus::Accepted { .. } => "accepted",
        InvitationStatus::Declined { .. } => "declined",
        InvitationStatus::Revoked { .. } => "revoked",
    };
    json!({
        "id": invitation.id.as_str(),
        "householdId": invitation.household.as_str(),
        "email": invitation.email,
        "role": invitation.role,
        "invitedBy": invitation.invited_by.as_str(),
        "createdAt": invitation.created_at,
        "expiresAt": invitation.expires_at,
        "status": status,
    })
}

fn closed() -> Problem {
    Problem::new(
        Kind::InvitationClosed,
        "This invitation was already used, declined or revoked, or it expired.",
    )
}

fn close_error(e: InvitationError) -> Problem {
    match e {
        InvitationError::Unknown => Problem::not_found(),
        InvitationError::NotOpen => closed(),
        InvitationError::Store(e) => store(e),
        other => Problem::internal(&other),
    }
}

/// The caller's household `id` if they own it (404 if not a member, 403 if a member).
async fn owned(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
    action: &'static str,
) -> Result<HouseholdId, Problem> {
    let membership = households::membership(ports, caller, id).await?;
    owners_only(membership.role, action)?;
    Ok(membership.household)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    email: String,
    role: Role,
}

/// `POST /v1/households/{id}/invitations` `{"email", "role"}`: owners only.
pub async fn create(
    ports: Ports<'_>,
    caller: &Caller,
    household: &str,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let household = owned(ports, caller, household, "invite people").await?;
    let Invite { email, role } = json_body(request)?;
    let email = normalize_email(&email)
        .map_err(|reason| Problem::invalid("/email", format!("email {reason}.")))?;
    let id = new_invitation_id(random()?);
    let now = ports.clock.now_ms();
    let invitation = Invitation {
        id,
        household,
        email,
        role,
        invited_by: caller.user.clone(),
        created_at: now,
        expires_at: now + INVITATION_TTL_MS,
        status: InvitationStatus::Pending,
    };
    ports
        .invitations
        .create_invitation(&invitation)
        .await
        .map_err(store)?;
    Ok(json(StatusCode::CREATED, &view(&invitation, now)))
}

/// `GET /v1/households/{id}/invitations`: owners only; every status.
pub async fn list_for_household(
    ports: Ports<'_>,
    caller: &Caller,
    household: &str,
) -> Result<Response<Bytes>, Problem> {
    let household = owned(ports, caller, household, "see its invitations").await?;
    let now = ports.clock.now_ms();
    let items: Vec<Value> = ports
        .invitations
        .household_invitations(&household)
        .await
        .map_err(store)?
        .iter()
        .map(|i| view(i, now))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

/// `DELETE /v1/households/{id}/invitations/{invitationId}`: owners revoke an open invitation.
pub async fn revoke(
    ports: Ports<'_>,
    caller: &Caller,
    household: &str,
    id: &str,
) -> Result<Response<Bytes>, Problem> {
    let household = owned(ports, caller, household, "revoke invitations").await?;
    let id = InvitationId::parse(id).map_err(|_| Problem::not_found())?;
    let invitation = ports
        .invitations
        .invitation(&id)
        .await
        .map_err(store)?
        .filter(|i| i.household == household)
        .ok_or_else(Problem::not_found)?;
    let now = ports.clock.now_ms();
    ports
        .invitations
        .close_invitation(&invitation.id, InvitationStatus::Revoked { at: now }, now)
        .await
        .map_err(close_error)?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// The caller's verified address, normalised (none: no invitation is theirs).
fn caller_email(caller: &Caller) -> Option<String> {
    caller
        .email
        .as_deref()
        .and_then(|e| normalize_email(e).ok())
}

/// `GET /v1/invitations`: the open invitations to the caller's verified e-mail address.
pub async fn mine(ports: Ports<'_>, caller: &Caller) -> Result<Response<Bytes>, Problem> {
    let now = ports.clock.now_ms();
    let items: Vec<Value> = match caller_email(caller) {
        None => Vec::new(),
        Some(email) => ports
            .invitations
            .invitations_for(&email)
            .await
            .map_err(store)?
            .iter()
            .filter(|i| i.is_open(now))
            .map(|i| view(i, now))
            .collect(),
    };
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

/// The invitation `id` if it is addressed to the caller (else a 404: invitations to others
/// do not exist for them).
async fn addressed(ports: Ports<'_>, caller: &Caller, id: &str) -> Result<Invitation, Problem> {
    let id = InvitationId::parse(id).map_err(|_| Problem::not_found())?;
    let email = caller_email(caller).ok_or_else(Problem::not_found)?;
    ports
        .invitations
        .invitation(&id)
        .await
        .map_err(store)?
        .filter(|i| i.email == email)
        .ok_or_else(Problem::not_found)
}

/// `POST /v1/invitations/{id}/accept`: the invitee joins the household with the role.
pub async fn accept(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<Response<Bytes>, Problem> {
    let invitation = addressed(ports, caller, id).await?;
    let member = ports
        .registry
        .memberships(&caller.user)
        .await
        .map_err(store)?
        .into_iter()
        .any(|m| m.household == invitation.household);
    if member {
        return Err(Problem::new(
            Kind::InvitationClosed,
            "You are already a member of this household.",
        ));
    }
    let now = ports.clock.now_ms();
    let accepted = ports
        .invitations
        .close_invitation(
            &invitation.id,
            InvitationStatus::Accepted {
                by: caller.user.clone(),
                at: now,
            },
            now,
        )
        .await
        .map_err(close_error)?;
    Ok(json(StatusCode::OK, &view(&accepted, now)))
}

/// `POST /v1/invitations/{id}/decline`.
pub async fn decline(
    ports: Ports<'_>,
    caller: &Caller,
    id: &str,
) -> Result<Response<Bytes>, Problem> {
    let invitation = addressed(ports, caller, id).await?;
    let now = ports.clock.now_ms();
    let declined = ports
        .invitations
        .close_invitation(&invitation.id, InvitationStatus::Declined { at: now }, now)
        .await
        .map_err(close_error)?;
    Ok(json(StatusCode::OK, &view(&declined, now)))
}
