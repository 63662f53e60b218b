//! The owners' and makers' REST API (`/v1/...`): a handler from an HTTP request and the
//! authenticated [`Caller`] to an HTTP response, over the ports.
//!
//! The handler knows nothing of Lambda or of a web framework: the Lambda binary adapts API
//! Gateway's HTTP API events to it (the caller from the JWT authorizer's claims), and the local
//! stack serves the same function from its HTTP listener. Every error is an RFC 9457 problem
//! ([`problem`]); `openapi.yaml` at the repository root documents every route and status code.
//!
//! Routes: `devices` (list, read, rename, transfer, command: HTTP over the use cases of
//! `hearth-app`, which Alexa, Google Home and automations share), `enroll` (makers' registration, claims,
//! credentials, delete), `households` (list, rename, members, roles, leaving).
//!
//! Scoping: a caller sees the devices of the households they belong to. Anything else is a 404
//! — never a 403 that would reveal it exists. A 403 is only for an action on a device the caller
//! can see but whose role does not allow it (members cannot rename, delete or re-issue
//! credentials), and for the makers' routes to callers outside the makers group.

pub mod caller;
mod devices;
mod enroll;
mod households;
mod invitations;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod problem;
mod request;

use bytes::Bytes;
use hearth_ports::{
    Clock, DeviceRegistry, Enrollment, Invitations, ShadowGateway, StateStore, ThingProvisioner,
};
use http::{Method, Request, Response};

pub use caller::Caller;
pub use problem::{Kind, Problem};
pub use request::MAX_BODY_BYTES;

/// What the handler needs.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// Devices, households, memberships.
    pub registry: &'a dyn DeviceRegistry,
    /// The state projection (connectivity, last seen, telemetry).
    pub state: &'a dyn StateStore,
    /// Pre-registration and claims (the same store as `registry`).
    pub enrollment: &'a dyn Enrollment,
    /// Invitations to households (the same store as `registry`).
    pub invitations: &'a dyn Invitations,
    /// The device shadows (desired and reported state, commands).
    pub shadows: &'a dyn ShadowGateway,
    /// IoT things and certificates.
    pub provisioner: &'a dyn ThingProvisioner,
    /// The time (invitation expiry, claim and registration times).
    pub clock: &'a dyn Clock,
}

/// Handles one request. `caller` is `None` when the request carried no verified identity.
pub async fn handle(
    ports: Ports<'_>,
    caller: Option<&Caller>,
    request: Request<Bytes>,
) -> Response<Bytes> {
    match route(ports, caller, &request).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn route(
    ports: Ports<'_>,
    caller: Option<&Caller>,
    request: &Request<Bytes>,
) -> Result<Response<Bytes>, Problem> {
    let path = request.uri().path();
    let segments: Vec<&str> = path
        .strip_prefix("/v1/")
        .map(|rest| rest.split('/').collect())
        .unwrap_or_default();
    let method = request.method();
    let allowed = match segments.as_slice() {
        ["devices"] => "GET",
        ["devices", _] => "GET, PATCH, DELETE",
        ["devices", _, "commands" | "credentials"] | ["claims"] | ["maker", "devices"] => "POST",
        ["households"] | ["households", _, "members"] | ["invitations"] => "GET",
        ["households", _, "invitations"] => "GET, POST",
        ["households", _, "invitations", _] => "DELETE",
        ["invitations", _, "accept" | "decline"] | ["devices", _, "transfer"] => "POST",
        ["households", _] => "PATCH",
        ["households", _, "members", _] => "PATCH, DELETE",
        _ => return Err(Problem::not_found()),
    };
    let caller = caller.ok_or_else(|| {
        Problem::new(
            Kind::Unauthenticated,
            "Send a valid bearer token in the Authorization header.",
        )
    })?;
    match (segments.as_slice(), method) {
        (["devices"], &Method::GET) => devices::list(ports, caller, request).await,
        (["devices", id], &Method::GET) => devices::get(ports, caller, id).await,
        (["devices", id], &Method::PATCH) => devices::rename(ports, caller, id, request).await,
        (["devices", id], &Method::DELETE) => enroll::delete(ports, caller, id).await,
        (["devices", id, "commands"], &Method::POST) => {
            devices::command(ports, caller, id, request).await
        }
        (["devices", id, "credentials"], &Method::POST) => {
            enroll::reissue(ports, caller, id, request).await
        }
        (["claims"], &Method::POST) => enroll::claim(ports, caller, request).await,
        (["maker", "devices"], &Method::POST) => enroll::register(ports, caller, request).await,
        (["households"], &Method::GET) => households::list(ports, caller).await,
        (["households", id, "invitations"], &Method::POST) => {
            invitations::create(ports, caller, id, request).await
        }
        (["households", id, "invitations"], &Method::GET) => {
            invitations::list_for_household(ports, caller, id).await
        }
        (["households", id, "invitations", invitation], &Method::DELETE) => {
            invitations::revoke(ports, caller, id, invitation).await
        }
        (["invitations"], &Method::GET) => invitations::mine(ports, caller).await,
        (["invitations", id, "accept"], &Method::POST) => {
            invitations::accept(ports, caller, id).await
        }
        (["invitations", id, "decline"], &Method::POST) => {
            invitations::decline(ports, caller, id).await
        }
        (["devices", id, "transfer"], &Method::POST) => {
            devices::transfer(ports, caller, id, request).await
        }
        (["households", id], &Method::PATCH) => {
            households::rename(ports, caller, id, request).await
        }
        (["households", id, "members"], &Method::GET) => {
            households::members(ports, caller, id).await
        }
        (["households", id, "members", user], &Method::PATCH) => {
            households::change_role(ports, caller, id, user, request).await
        }
        (["households", id, "members", user], &Method::DELETE) => {
            households::remove(ports, caller, id, user).await
        }
        _ => Err(Problem {
            allow: Some(allowed),
            ..Problem::new(
                Kind::MethodNotAllowed,
                format!("{path} supports {allowed}."),
            )
        }),
    }
}
