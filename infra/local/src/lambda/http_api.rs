//! `HttpApi` events: the template's HTTP API routes, served from the stack's HTTP listener.
//! A request selects a route as API Gateway does (`hearth_iot_rules::route`), becomes an API
//! Gateway payload 2.0 event (with the JWT authorizer's claims when the route has an
//! authorizer and the request a valid development token; without, the function decides, as
//! the owner API does with its 401), and the function's response (a payload 2.0 response, or
//! any JSON, which API Gateway sends as a 200 `application/json`) becomes the HTTP response. A
//! request no route takes is API Gateway's 404 `{"message":"Not Found"}`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::event::apigw::ApiGatewayV2httpResponse;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hearth_iot_rules::route::{RouteKey, select};
use hearth_iot_rules::schedule::Utc;
use hearth_iot_rules::template::Trigger;
use serde_json::{Map, Value, json};
use tracing::error;

use super::registry::Registry;
use super::{Invocation, LocalFunction, Source, StackClock};

/// Turns a request's credentials into the claims API Gateway's JWT authorizer passes (strings).
pub trait Authorizer: Send + Sync {
    /// The verified claims of the request's bearer token, `None` without a valid one.
    fn claims(&self, headers: &HeaderMap) -> Option<HashMap<String, String>>;
}

struct Route {
    key: RouteKey,
    api: String,
    function: String,
    handler: Arc<dyn LocalFunction>,
    authorized: bool,
}

/// Every `HttpApi` route of the registry's functions.
pub struct HttpRoutes {
    routes: Vec<Route>,
    authorizer: Arc<dyn Authorizer>,
    clock: StackClock,
}

/// Largest request body read (API Gateway's payload limit is 10 MB; the functions' own limits
/// are smaller).
const READ_LIMIT: usize = 10 * 1024 * 1024;

impl HttpRoutes {
    /// The routes of `registry`'s functions.
    pub fn new(registry: &Registry, authorizer: Arc<dyn Authorizer>, clock: StackClock) -> Self {
        let mut routes = Vec::new();
        for hosted in registry.iter() {
            for event in &hosted.function.events {
                if let Trigger::HttpApi(trigger) = &event.trigger {
                    routes.push(Route {
                        key: trigger.route.clone(),
                        api: trigger.api.clone(),
                        function: hosted.function.logical_id.clone(),
                        handler: hosted.handler.clone(),
                        authorized: trigger.authorizer.is_some(),
                    });
                }
            }
        }
        Self {
            routes,
            authorizer,
            clock,
        }
    }

    /// The route keys served, for the banner.
    pub fn keys(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.key.key()).collect()
    }

    /// The router: every request no other route of the listener takes comes here.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(serve).with_state(self)
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"message": "Internal Server Error"})),
    )
        .into_response()
}

/// `a%20b+c` → `a b c` (query string decoding).
fn decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        char::from(byte)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A fresh request id.
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return "00000000-0000-0000-0000-000000000000".to_owned();
    }
    super::uuid_text(bytes)
}

/// The payload 2.0 event API Gateway sends for a request on `route`.
#[allow(clippy::too_many_arguments, reason = "one field of the event each")]
fn event(
    route: &Route,
    parameters: BTreeMap<String, String>,
    parts: &http::request::Parts,
    body: &[u8],
    claims: Option<HashMap<String, String>>,
    source_ip: String,
    now_ms: u64,
) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(value.split("; ").map(str::to_owned));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name), decode(value));
        match query.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name, Value::String(value));
            }
        }
    }
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    let t = Utc::from_ms(now_ms);
    let mut context = json!({
        "accountId": "000000000000",
        "apiId": route.api,
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(""),
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": format!("{:?}", parts.version),
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent").cloned().unwrap_or(Value::String(String::new())),
        },
        "requestId": request_id(),
        "routeKey": route.key.key(),
        "stage": "$default",
        "time": format!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            t.day, t.month_abbreviation(), t.year, t.hour, t.minute, t.second
        ),
        "timeEpoch": now_ms,
    });
    if let (Some(claims), Some(object)) = (claims, context.as_object_mut()) {
        object.insert(
            "authorizer".to_owned(),
            json!({"jwt": {"claims": claims, "scopes": null}}),
        );
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key.key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if let Some(object) = event.as_object_mut() {
        if !cookies.is_empty() {
            object.insert("cookies".to_owned(), json!(cookies));
        }
        if !query.is_empty() {
            object.insert("queryStringParameters".to_owned(), Value::Object(query));
        }
        if !parameters.is_empty() {
            object.insert("pathParameters".to_owned(), json!(parameters));
        }
        if !body.is_empty() {
            let (text, encoded) = match std::str::from_utf8(body) {
                Ok(text) => (text.to_owned(), false),
                Err(_) => (STANDARD.encode(body), true),
            };
            object.insert("body".to_owned(), Value::String(text));
            object.insert("isBase64Encoded".to_owned(), Value::Bool(encoded));
        }
    }
    event
}

/// The function's result as the HTTP response API Gateway sends.
fn http_response(result: Value) -> Response {
    let is_response = result
        .as_object()
        .is_some_and(|o| o.contains_key("statusCode"));
    if !is_response {
        return Json(result).into_response();
    }
    let response: ApiGatewayV2httpResponse = match serde_json::from_value(result) {
        Ok(response) => response,
        Err(e) => {
            error!(error = %e, "the function's response is not a payload 2.0 response");
            return internal_error();
        }
    };
    let body = match response.body {
        None | Some(LambdaBody::Empty) => Vec::new(),
        Some(LambdaBody::Text(text)) if response.is_base64_encoded => match STANDARD.decode(text) {
            Ok(bytes) => bytes,
            Err(e) => {
                error!(error = %e, "the function's base64 body does not decode");
                return internal_error();
            }
        },
        Some(LambdaBody::Text(text)) => text.into_bytes(),
        Some(LambdaBody::Binary(bytes)) => bytes,
        Some(_) => Vec::new(),
    };
    let Ok(status) = u16::try_from(response.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or(())
    else {
        error!(
            status = response.status_code,
            "the function's status code is not valid"
        );
        return internal_error();
    };
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (name, value) in &response.headers {
        headers.append(name, value.clone());
    }
    for (name, value) in &response.multi_value_headers {
        headers.append(name, value.clone());
    }
    for cookie in &response.cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    out
}

async fn serve(State(routes): State<Arc<HttpRoutes>>, request: Request) -> Response {
    let Some((index, parameters)) = select(
        routes.routes.iter().map(|r| &r.key),
        request.method().as_str(),
        request.uri().path(),
    ) else {
        return not_found();
    };
    let route = &routes.routes[index];
    let source_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_owned(), |c| c.0.ip().to_string());
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"message": "Request Entity Too Large"})),
        )
            .into_response();
    };
    let claims = if route.authorized {
        routes.authorizer.claims(&parts.headers)
    } else {
        None
    };
    let payload = event(
        route,
        parameters,
        &parts,
        &body,
        claims,
        source_ip,
        routes.clock.now_ms(),
    );
    let invocation = Invocation {
        source: Source::HttpApi,
        payload,
    };
    match super::invoke::run(&*route.handler, invocation).await {
        Ok(result) => http_response(result),
        Err(e) => {
            error!(function = %route.function, error = %e, "HTTP API invocation failed");
            internal_error()
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;

    use super::*;
    use crate::lambda::InvokeError;

    struct Echo;

    #[async_trait]
    impl LocalFunction for Echo {
        async fn invoke(&self, event: Invocation) -> Result<Value, InvokeError> {
            Ok(event.payload)
        }
    }

    fn route(key: &str) -> Route {
        Route {
            key: RouteKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
            api: "Api".to_owned(),
            function: "Fn".to_owned(),
            handler: Arc::new(Echo),
            authorized: true,
        }
    }

    #[test]
    fn a_request_becomes_a_payload_2_event_that_the_lambda_types_read() {
        let request = http::Request::builder()
            .method("PATCH")
            .uri("/v1/devices/d-1?a=1&b=x%20y&a=2")
            .header("host", "127.0.0.1:8080")
            .header("cookie", "c1=v1; c2=v2")
            .header("x-two", "a")
            .header("x-two", "b")
            .body(())
            .unwrap_or_else(|e| panic!("{e}"));
        let (parts, ()) = request.into_parts();
        let route = route("ANY /v1/{proxy+}");
        let Some((parameters, _)) = route.key.matches("PATCH", "/v1/devices/d-1") else {
            panic!("no match");
        };
        let claims: HashMap<String, String> = [("sub".to_owned(), "alice".to_owned())].into();
        let event = event(
            &route,
            parameters,
            &parts,
            b"{\"name\":\"x\"}",
            Some(claims),
            "10.0.0.1".to_owned(),
            1_700_000_000_000,
        );
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "ANY /v1/{proxy+}");
        assert_eq!(event["rawQueryString"], "a=1&b=x%20y&a=2");
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,2", "b": "x y"})
        );
        assert_eq!(event["pathParameters"], json!({"proxy": "devices/d-1"}));
        assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(event["headers"]["x-two"], "a,b");
        assert_eq!(
            event["requestContext"]["time"],
            "14/Nov/2023:22:13:20 +0000"
        );
        let typed: ApiGatewayV2httpRequest =
            serde_json::from_value(event).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(typed.request_context.http.method, http::Method::PATCH);
        assert_eq!(
            typed.request_context.http.source_ip.as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(typed.body.as_deref(), Some("{\"name\":\"x\"}"));
        assert!(!typed.is_base64_encoded);
        let claims = typed
            .request_context
            .authorizer
            .and_then(|a| a.jwt)
            .map(|jwt| jwt.claims);
        assert_eq!(
            claims.and_then(|c| c.get("sub").cloned()).as_deref(),
            Some("alice")
        );
    }

    #[tokio::test]
    async fn a_response_or_any_json_becomes_the_http_response() {
        let response = http_response(json!({
            "statusCode": 201,
            "headers": {"content-type": "text/plain"},
            "cookies": ["a=b"],
            "body": "aGk=",
            "isBase64Encoded": true,
        }));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::SET_COOKIE], "a=b");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap_or_default();
        assert_eq!(&body[..], b"hi");

        let response = http_response(json!({"ok": true}));
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<Value>(&body).ok(),
            Some(json!({"ok": true}))
        );
    }
}
