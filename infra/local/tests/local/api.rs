//! The owner API on the local stack, end to end over HTTP and MQTT.

use serde_json::json;

use crate::support::{Device, http, start, state_until, tempdir, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_claim_report_read_command_delete() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let api = stack.http_addr();
    let maker = token(api, "acme-line", &["makers"]).await;
    let alice = token(api, "alice", &[]).await;

    // The maker registers a device and prints its claim code on the box.
    let (status, registered) = http(
        api,
        "POST",
        "/v1/maker/devices",
        Some(&maker),
        Some(&json!({"productId": "acme-lamp", "serial": "SN-1", "deviceType": "light"})),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let thing = registered["id"].as_str().unwrap_or_default().to_owned();

    // The owner claims it: a certificate signed by the local CA, and where to connect.
    let (status, claimed) = http(
        api,
        "POST",
        "/v1/claims",
        Some(&alice),
        Some(&json!({"claimCode": registered["claimCode"], "name": "Desk lamp"})),
    )
    .await;
    assert_eq!(status, 201, "{claimed}");
    let credentials = &claimed["credentials"];
    assert!(
        credentials["certificatePem"]
            .as_str()
            .unwrap_or("")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        credentials["privateKeyPem"]
            .as_str()
            .unwrap_or("")
            .contains("PRIVATE KEY")
    );
    let ca = std::fs::read_to_string(dir.path().join("ca/ca-cert.pem")).unwrap_or_default();
    assert_eq!(credentials["rootCaPem"], ca.as_str());
    assert_eq!(credentials["endpoint"], stack.mqtt_addr().to_string());
    assert_eq!(credentials["mqttUsername"], thing.as_str());
    assert!(
        credentials["mqttPassword"]
            .as_str()
            .is_some_and(|p| p.len() >= 32)
    );

    // The device connects with its thing name and reports its state.
    let shadow = format!("$aws/things/{thing}/shadow");
    let mut device = Device::connect(
        stack.mqtt_addr(),
        &thing,
        &[
            &format!("{shadow}/update/delta"),
            &format!("{shadow}/get/rejected"),
            &format!("{shadow}/delete/accepted"),
        ],
    )
    .await;
    device
        .publish(
            &format!("{shadow}/update"),
            json!({"state": {"reported": {"power": "off", "brightness": 10}}}).to_string(),
        )
        .await;
    device.acked().await;

    let path = format!("/v1/devices/{thing}");
    let (status, read) = http(api, "GET", &path, Some(&alice), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["name"], "Desk lamp");
    assert_eq!(
        read["shadow"]["reported"],
        json!({"power": "off", "brightness": 10})
    );
    let (_, listed) = http(api, "GET", "/v1/devices", Some(&alice), None).await;
    assert_eq!(listed["items"][0]["id"], thing.as_str());

    // A command reaches the device as a shadow delta over MQTT.
    let (status, commanded) = http(
        api,
        "POST",
        &format!("{path}/commands"),
        Some(&alice),
        Some(&json!({"desired": {"power": "on"}})),
    )
    .await;
    assert_eq!(status, 202, "{commanded}");
    let delta = device.expect(&format!("{shadow}/update/delta")).await;
    assert_eq!(delta["state"], json!({"power": "on"}));
    assert_eq!(delta["version"], commanded["version"]);
    // The command's cause travels with it: to the device in the delta, and through the shadow's
    // update/documents message, the rules and the state processor into the projection, next
    // to the version it produced.
    assert_eq!(delta["clientToken"], "hearth:api:alice");
    let state = state_until(api, &thing, |s| {
        s["shadow"]["version"] == commanded["version"]
    })
    .await;
    assert_eq!(
        state["shadow"]["client_token"], "hearth:api:alice",
        "{state}"
    );
    // A stale expectedVersion is a 409; another household's user sees nothing.
    let (status, _) = http(
        api,
        "POST",
        &format!("{path}/commands"),
        Some(&alice),
        Some(&json!({"desired": {"power": "off"}, "expectedVersion": 1})),
    )
    .await;
    assert_eq!(status, 409);
    let mallory = token(api, "mallory", &[]).await;
    let (status, hidden) = http(api, "GET", &path, Some(&mallory), None).await;
    assert_eq!(status, 404, "{hidden}");

    // Deleting removes the shadow (the device hears it) and the thing.
    let (status, _) = http(api, "DELETE", &path, Some(&alice), None).await;
    assert_eq!(status, 204);
    device.expect(&format!("{shadow}/delete/accepted")).await;
    device.publish(&format!("{shadow}/get"), "{}").await;
    let rejected = device.expect(&format!("{shadow}/get/rejected")).await;
    assert_eq!(rejected["code"], 404);
    let (status, _) = http(api, "GET", &path, Some(&alice), None).await;
    assert_eq!(status, 404);
    let (status, _) = http(
        api,
        "POST",
        &format!("{path}/credentials"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The code on the box works for the next owner, who starts clean.
    let bob = token(api, "bob", &[]).await;
    let (status, again) = http(
        api,
        "POST",
        "/v1/claims",
        Some(&bob),
        Some(&json!({"claimCode": registered["claimCode"]})),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    let (_, fresh) = http(api, "GET", &path, Some(&bob), None).await;
    assert_eq!(fresh["name"], "Light");
    assert_eq!(fresh["shadow"], json!(null));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_401_problems() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let api = stack.http_addr();
    for token in [
        None,
        Some("garbage"),
        Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."),
    ] {
        let (status, body) = http(api, "GET", "/v1/devices", token, None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["type"], "urn:hearth:problem:unauthenticated");
    }
    let (status, body) = http(
        api,
        "POST",
        "/dev/tokens",
        None,
        Some(&json!({"user": "a b"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    stack.stop().await;
}
