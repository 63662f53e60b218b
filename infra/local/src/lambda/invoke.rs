//! Direct invokes in the Lambda Invoke API's shape: `POST
//! /2015-03-31/functions/{FunctionName}/invocations`, the body the event, the function's JSON
//! result the response (`aws lambda invoke --endpoint-url http://<stack>`, or Alexa invoking a
//! skill). `FunctionName` is the logical id, the `FunctionName` or the local ARN.
//! `X-Amz-Invocation-Type: Event` answers 202 at once and runs the function behind;
//! `DryRun` answers 204. A function error is a 200 with `X-Amz-Function-Error: Unhandled` and
//! `{"errorType", "errorMessage"}`, as Lambda answers. The invocation returns once the
//! function's checkpoint made its effects durable.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use tracing::error;

use super::registry::Registry;
use super::{Invocation, InvokeError, LocalFunction, Source};

/// The route.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(invoke),
        )
        .with_state(registry)
}

fn lambda_error(status: StatusCode, error_type: &'static str, message: String) -> Response {
    let mut response = (status, Json(json!({"Type": "User", "message": message}))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
    response
}

/// Runs one invocation and then the function's checkpoint.
pub async fn run(handler: &dyn LocalFunction, event: Invocation) -> Result<Value, InvokeError> {
    let result = handler.invoke(event).await?;
    handler
        .checkpoint()
        .await
        .map_err(|e| InvokeError::new("Retryable", format!("checkpoint: {e}")))?;
    Ok(result)
}

async fn invoke(
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(hosted) = registry.get(&name) else {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: arn:aws:lambda:local:000000000000:function:{name}"),
        );
    };
    let payload: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(payload) => payload,
            Err(e) => {
                return lambda_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    format!("Could not parse request body into json: {e}"),
                );
            }
        }
    };
    let event = Invocation {
        source: Source::Direct,
        payload,
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    match invocation_type {
        "RequestResponse" => {}
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            let handler = hosted.handler.clone();
            let function = hosted.function.logical_id.clone();
            tokio::spawn(async move {
                if let Err(e) = run(&*handler, event).await {
                    error!(%function, error = %e, "asynchronous invocation failed");
                }
            });
            return StatusCode::ACCEPTED.into_response();
        }
        other => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!("X-Amz-Invocation-Type {other} (RequestResponse, Event or DryRun)"),
            );
        }
    }
    let mut response = match run(&*hosted.handler, event).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => {
            let mut response = Json(json!({
                "errorType": e.error_type,
                "errorMessage": e.message,
            }))
            .into_response();
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
    };
    response.headers_mut().insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    response
}
