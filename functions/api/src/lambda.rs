//! API Gateway (HTTP API, payload format 2.0) events to the handler and back, with one
//! CloudWatch metrics line (Embedded Metric Format, [`hearth_metrics::HTTP_API`]) per request.
//! Only the Lambda binary compiles this (feature `lambda`): the local stack serves the handler
//! over axum and keeps metrics of its own.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use hearth_metrics::{Emitter, HTTP_API, MetricsError};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::{Caller, Ports, handle};

/// The binary's name: the `Function` dimension outside Lambda.
pub const FUNCTION_NAME: &str = "hearth-api";

/// The emitter of this function's metrics: the namespace from `HEARTH_METRICS_NAMESPACE`
/// (`Hearth` by default), the `Function` dimension from Lambda's function name.
pub fn emitter() -> Result<Emitter<4>, MetricsError> {
    Emitter::new(
        &HTTP_API,
        hearth_metrics::namespace_from_env()?,
        vec![hearth_metrics::function_name(FUNCTION_NAME)],
    )
}

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

/// [`serve`], then the request's metrics line to `out` (stdout in Lambda:
/// [`hearth_metrics::Stdout`]): `Requests` 1, `ServerErrors` 1 for a 5xx, `ClientErrors` 1 for a
/// 4xx, and the time it took. A line that cannot be written is logged; the response is sent
/// regardless.
pub async fn serve_measured(
    ports: Ports<'_>,
    metrics: &Emitter<4>,
    out: &mut (dyn Write + Send),
    request: lambda_http::Request,
) -> lambda_http::Response<Body> {
    let started = Instant::now();
    let response = serve(ports, request).await;
    let status = response.status();
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    #[allow(clippy::cast_precision_loss)] // Milliseconds far below 2^52.
    let values = [
        1.0,
        f64::from(u8::from(status.is_server_error())),
        f64::from(u8::from(status.is_client_error())),
        duration_ms as f64,
    ];
    if let Err(e) = metrics.emit_to(out, ports.clock.now_ms(), values) {
        tracing::warn!(error = %e, "metrics line not written");
    }
    response
}
