//! API Gateway (HTTP API, payload format 2.0) events to the handler and back.

use std::collections::HashMap;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::{Caller, Ports, handle};

/// The caller from the JWT authorizer's claims (strings, as API Gateway passes them).
pub fn caller(request: &lambda_http::Request) -> Option<Caller> {
    let context = request.request_context_ref()?;
    let claims: &HashMap<String, String> = match context {
        RequestContext::ApiGatewayV2(context) => &context.authorizer.as_ref()?.jwt.as_ref()?.claims,
        _ => return None,
    };
    Caller::from_claims(claims)
}

/// Serves one API Gateway request.
pub async fn serve(ports: Ports<'_>, request: lambda_http::Request) -> lambda_http::Response<Body> {
    let caller = caller(&request);
    let (parts, body) = request.into_parts();
    let body = Bytes::copy_from_slice(body.as_ref());
    let response = handle(
        ports,
        caller.as_ref(),
        http::Request::from_parts(parts, body),
    )
    .await;
    let (parts, body) = response.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    lambda_http::Response::from_parts(parts, body)
}
