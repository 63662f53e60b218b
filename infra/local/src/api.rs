//! What the owner REST API needs locally besides its handler (which the function registry hosts,
//! [`crate::lambda::functions::owner_api`]): the local shadow service as the IoT Data Plane
//! ([`LocalShadows`]) and development tokens in place of Cognito ([`LocalApi`]: `POST
//! /dev/tokens`, and the JWT authorizer's check).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use hearth_api::{Kind, Problem};
use hearth_domain::command::Cause;
use hearth_domain::device::DeviceId;
use hearth_domain::shadow::Object;
use hearth_ports::{IotError, ShadowGateway};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::broker::Hooks;
use crate::lambda::http_api::Authorizer;
use crate::shadow_service::{Operation, Reply};
use crate::tokens::{DEFAULT_TTL, DevTokens};

/// The IoT Data Plane's shadow calls, answered by the local shadow service; updates and
/// deletes publish the same MQTT messages as in AWS (the device gets its delta).
pub struct LocalShadows {
    hooks: Arc<Hooks>,
}

impl LocalShadows {
    /// Requests through `hooks` (the broker's platform side).
    pub fn new(hooks: Arc<Hooks>) -> Self {
        Self { hooks }
    }

    async fn request(
        &self,
        thing: &DeviceId,
        op: Operation,
        payload: &[u8],
    ) -> Result<Reply, IotError> {
        self.hooks
            .shadow_request(thing.as_str(), op, payload)
            .await
            .and_then(|replies| replies.into_iter().next())
            .ok_or_else(|| IotError::Transient("the local stack is stopping".to_owned()))
    }
}

/// A rejected reply's `code` and `message`.
fn rejection(reply: &Reply) -> Option<(u64, String)> {
    if !reply.topic.ends_with("/rejected") {
        return None;
    }
    let body: Value = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
    Some((
        body["code"].as_u64().unwrap_or(500),
        body["message"].as_str().unwrap_or("").to_owned(),
    ))
}

fn rejected(code: u64, message: String) -> IotError {
    match code {
        404 => IotError::NotFound(message),
        409 => IotError::Conflict,
        400..=499 => IotError::Rejected(message),
        _ => IotError::Transient(message),
    }
}

#[async_trait]
impl ShadowGateway for LocalShadows {
    async fn update_desired(
        &self,
        thing: &DeviceId,
        desired: &Object,
        expected_version: Option<u64>,
        cause: &Cause,
    ) -> Result<u64, IotError> {
        let mut request =
            json!({"state": {"desired": desired}, "clientToken": cause.client_token()});
        if let (Some(version), Some(object)) = (expected_version, request.as_object_mut()) {
            object.insert("version".to_owned(), json!(version));
        }
        let reply = self
            .request(thing, Operation::Update, request.to_string().as_bytes())
            .await?;
        if let Some((code, message)) = rejection(&reply) {
            return Err(rejected(code, message));
        }
        let accepted: Value = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
        accepted["version"]
            .as_u64()
            .ok_or_else(|| IotError::Transient("no version in update/accepted".to_owned()))
    }

    async fn get_shadow(&self, thing: &DeviceId) -> Result<Option<Object>, IotError> {
        let reply = self.request(thing, Operation::Get, b"{}").await?;
        match rejection(&reply) {
            Some((404, _)) => Ok(None),
            Some((code, message)) => Err(rejected(code, message)),
            None => match serde_json::from_slice(&reply.payload) {
                Ok(Value::Object(document)) => Ok(Some(document)),
                _ => Err(IotError::Transient(
                    "get/accepted is not an object".to_owned(),
                )),
            },
        }
    }

    async fn delete_shadow(&self, thing: &DeviceId) -> Result<(), IotError> {
        let reply = self.request(thing, Operation::Delete, b"{}").await?;
        match rejection(&reply) {
            None | Some((404, _)) => Ok(()),
            Some((code, message)) => Err(rejected(code, message)),
        }
    }
}

/// The development tokens: issued by `POST /dev/tokens`, checked as API Gateway's JWT
/// authorizer checks Cognito's ([`crate::lambda::http_api`]).
pub struct LocalApi {
    /// Development tokens.
    pub tokens: DevTokens,
}

impl Authorizer for LocalApi {
    /// The claims of a valid development token in `Authorization: Bearer`.
    fn claims(&self, headers: &HeaderMap) -> Option<HashMap<String, String>> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?
            .trim();
        match self.tokens.verify(token) {
            Ok(claims) => Some(claims),
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                None
            }
        }
    }
}

/// `POST /dev/tokens` and the tokens' public key at `GET /.well-known/jwks.json`. The owner
/// API's routes (`/v1/...`) are the template's `HttpApi` events, served by
/// [`crate::lambda::http_api`].
pub fn router(api: Arc<LocalApi>) -> Router {
    Router::new()
        .route("/dev/tokens", axum::routing::post(token))
        .route(crate::tokens::JWKS_PATH, axum::routing::get(jwks))
        .with_state(api)
}

fn problem(problem: Problem) -> Response {
    problem.into_response().map(Body::from).into_response()
}

/// `GET /.well-known/jwks.json`: the development tokens' public key (a JWKS document).
async fn jwks(State(api): State<Arc<LocalApi>>) -> Response {
    api.tokens.jwks_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    email: Option<String>,
    ttl_seconds: Option<u64>,
}

/// `POST /dev/tokens` `{"user": "alice", "groups": ["makers"], "email": "...", "ttl_seconds":
/// 3600}` → `{"token": "...", "expiresAt": <seconds>}`.
async fn token(State(api): State<Arc<LocalApi>>, body: Bytes) -> Response {
    let request: TokenRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return problem(Problem::new(Kind::BadRequest, format!("{e}."))),
    };
    let ttl = request.ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
    match api.tokens.issue(
        &request.user,
        &request.groups,
        request.email.as_deref(),
        ttl,
    ) {
        Ok((token, expires_at)) => {
            let mut response =
                Json(json!({"token": token, "expiresAt": expires_at})).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            *response.status_mut() = StatusCode::CREATED;
            response
        }
        Err(e) => problem(Problem::new(Kind::Validation, e.to_string())),
    }
}
