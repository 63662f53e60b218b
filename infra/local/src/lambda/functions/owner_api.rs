//! `hearth-api`: the owners' REST API, fed API Gateway HTTP API (payload 2.0) events as in
//! Lambda (the caller only from the JWT authorizer's claims), with the embedded registry and
//! state, the local shadow service as the IoT Data Plane and the local IoT registry.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hearth_api::{Caller, Ports};
use hearth_embedded::{EmbeddedRegistry, EmbeddedStateStore};
use hearth_iot_rules::template::Function;
use hearth_ports::Clock;
use http::header::{COOKIE, HeaderValue};
use serde_json::Value;

use crate::api::LocalShadows;
use crate::lambda::registry::{Resources, env, table};
use crate::lambda::{Invocation, InvokeError, LocalFunction};
use crate::provisioner::LocalProvisioner;
use crate::stack::StackError;

/// The owner API with its local adapters.
struct OwnerApi {
    registry: EmbeddedRegistry,
    state: EmbeddedStateStore,
    shadows: LocalShadows,
    provisioner: Arc<LocalProvisioner>,
    clock: Arc<dyn Clock>,
}

/// Wires the API to the table its environment names and the stack's IoT emulation.
pub fn build(
    function: &Function,
    resources: &Resources,
) -> Result<Arc<dyn LocalFunction>, StackError> {
    table(function, "HEARTH_TABLE_NAME")?;
    // The local IoT registry attaches the template's one device policy itself.
    env(function, "HEARTH_DEVICE_POLICY")?;
    Ok(Arc::new(OwnerApi {
        registry: resources.storage.registry(),
        state: resources.storage.state_store(),
        shadows: LocalShadows::new(resources.hooks.clone()),
        provisioner: resources.provisioner.clone(),
        clock: resources.clock.clock(),
    }))
}

impl OwnerApi {
    fn ports(&self) -> Ports<'_> {
        Ports {
            registry: &self.registry,
            state: &self.state,
            enrollment: &self.registry,
            invitations: &self.registry,
            shadows: &self.shadows,
            provisioner: &*self.provisioner,
            clock: &*self.clock,
        }
    }
}

/// An API Gateway request as the handler's `http::Request` (what `lambda_http` does in AWS).
fn request(event: ApiGatewayV2httpRequest) -> Result<http::Request<Bytes>, InvokeError> {
    let path = event
        .raw_path
        .or(event.request_context.http.path)
        .unwrap_or_else(|| "/".to_owned());
    let uri = match event.raw_query_string.as_deref() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path,
    };
    let body = match event.body {
        None => Bytes::new(),
        Some(body) if event.is_base64_encoded => Bytes::from(
            STANDARD
                .decode(body)
                .map_err(|e| InvokeError::invalid_event(format!("body: {e}")))?,
        ),
        Some(body) => Bytes::from(body),
    };
    let mut request = http::Request::builder()
        .method(event.request_context.http.method)
        .uri(uri)
        .body(body)
        .map_err(InvokeError::invalid_event)?;
    *request.headers_mut() = event.headers;
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty())
        && let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
    {
        request.headers_mut().insert(COOKIE, value);
    }
    Ok(request)
}

/// The handler's response as API Gateway's payload 2.0 response.
fn response(response: http::Response<Bytes>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    if !body.is_empty() {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => out.body = Some(Body::Text(text)),
            Err(e) => {
                out.body = Some(Body::Binary(e.into_bytes()));
                out.is_base64_encoded = true;
            }
        }
    }
    out
}

#[async_trait]
impl LocalFunction for OwnerApi {
    async fn invoke(&self, event: Invocation) -> Result<Value, InvokeError> {
        let event: ApiGatewayV2httpRequest =
            serde_json::from_value(event.payload).map_err(InvokeError::invalid_event)?;
        let caller = event
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| Caller::from_claims(&jwt.claims));
        let request = request(event)?;
        let answer = hearth_api::handle(self.ports(), caller.as_ref(), request).await;
        serde_json::to_value(response(answer))
            .map_err(|e| InvokeError::new("InvalidResponse", e.to_string()))
    }
}
