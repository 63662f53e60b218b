//! The Lambda adapter on the API Gateway events in `events/api/`.

use serde_json::Value;

use crate::support::{World, ok};

fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/api/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = ok(std::fs::read_to_string(&path));
    ok(lambda_http::request::from_str(&text))
}

fn body(response: &lambda_http::Response<lambda_http::Body>) -> Value {
    ok(serde_json::from_slice(response.body().as_ref()))
}

#[tokio::test]
async fn the_caller_comes_from_the_jwt_authorizer_claims() {
    let list = event("list-devices.json");
    let caller = hearth_api::lambda::caller(&list).unwrap_or_else(|| panic!("no caller"));
    assert_eq!(caller.user.as_str(), "alice");
    assert_eq!(caller.groups, ["owners-beta"]);
    assert_eq!(caller.email.as_deref(), Some("alice@example.com"));
    assert!(!caller.is_maker());
    let register = event("register-device.json");
    let maker = hearth_api::lambda::caller(&register).unwrap_or_else(|| panic!("no caller"));
    assert!(maker.is_maker(), "{:?}", maker.groups);
}

#[tokio::test]
async fn events_are_served_through_the_handler() {
    let world = World::seeded().await;
    let response = hearth_api::lambda::serve(world.ports(), event("list-devices.json")).await;
    assert_eq!(response.status(), 200);
    let listed = body(&response);
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert!(
        listed["nextCursor"].is_string(),
        "limit=2 came from the query string"
    );

    let response = hearth_api::lambda::serve(world.ports(), event("register-device.json")).await;
    assert_eq!(response.status(), 201);
    let registered = body(&response);
    assert_eq!(registered["serial"], "SN-0001");

    // Without an authorizer context (e.g. a misconfigured route) nothing is served.
    let mut anonymous = event("list-devices.json");
    anonymous.extensions_mut().clear();
    let response = hearth_api::lambda::serve(world.ports(), anonymous).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn every_request_writes_one_metrics_line_by_status_class() {
    let world = World::seeded().await;
    let clock = hearth_ports::ManualClock::new(1_700_000_000_000);
    let metrics = ok(hearth_metrics::Emitter::new(
        &hearth_metrics::HTTP_API,
        "Hearth",
        vec![hearth_api::lambda::FUNCTION_NAME.to_owned()],
    ));
    let mut anonymous = event("list-devices.json");
    anonymous.extensions_mut().clear();
    let mut out = Vec::new();
    for (request, status) in [
        (event("list-devices.json"), 200),
        (event("register-device.json"), 201),
        (anonymous, 401),
    ] {
        let response = hearth_api::lambda::serve_measured(
            hearth_api::Ports {
                clock: &clock,
                ..world.ports()
            },
            &metrics,
            &mut out,
            request,
        )
        .await;
        assert_eq!(response.status(), status);
    }
    let text = ok(String::from_utf8(out));
    let lines: Vec<Value> = text
        .split_terminator('\n')
        .map(|line| ok(serde_json::from_str(line)))
        .collect();
    assert_eq!(lines.len(), 3, "one line per request: {text}");
    for (line, client_errors) in lines.iter().zip([0.0, 0.0, 1.0]) {
        assert_eq!(line["Function"], "hearth-api");
        assert_eq!(line["Requests"], 1.0);
        assert_eq!(line["ServerErrors"], 0.0);
        assert_eq!(line["ClientErrors"], client_errors, "{line}");
        assert!(line["Duration"].is_number());
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000_u64);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            serde_json::json!({"Name": "ServerErrors", "Unit": "Count"})
        );
    }
}
