use serde_json::json;

use crate::support::{Device, start, state_until, tempdir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_state_is_stored_and_a_desired_change_reaches_the_device_as_a_delta() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let shadow = "$aws/things/lamp-1/shadow";
    let mut lamp = Device::connect(
        stack.mqtt_addr(),
        "lamp-1",
        &[
            &format!("{shadow}/update/accepted"),
            &format!("{shadow}/update/delta"),
        ],
    )
    .await;
    lamp.publish(
        &format!("{shadow}/update"),
        json!({"state": {"reported": {"power": "off", "brightness": 10}}}).to_string(),
    )
    .await;
    let accepted = lamp.expect(&format!("{shadow}/update/accepted")).await;
    assert_eq!(accepted["version"], 1);

    let state = state_until(stack.http_addr(), "lamp-1", |s| {
        s["shadow"]["reported"]["power"] == "off"
    })
    .await;
    assert_eq!(state["shadow"]["version"], 1);
    assert_eq!(
        state["connectivity"]["connected"], true,
        "presence was projected too"
    );

    let app = Device::connect(stack.mqtt_addr(), "owner-app", &[]).await;
    app.publish(
        &format!("{shadow}/update"),
        json!({"state": {"desired": {"power": "on"}}}).to_string(),
    )
    .await;
    let delta = lamp.expect(&format!("{shadow}/update/delta")).await;
    assert_eq!(delta["state"], json!({"power": "on"}));
    assert_eq!(delta["version"], 2);
    state_until(stack.http_addr(), "lamp-1", |s| {
        s["shadow"]["desired"]["power"] == "on"
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_is_rejected_with_409_and_malformed_json_with_400() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let shadow = "$aws/things/plug-1/shadow";
    let mut plug = Device::connect(
        stack.mqtt_addr(),
        "plug-1",
        &[
            &format!("{shadow}/update/accepted"),
            &format!("{shadow}/update/rejected"),
        ],
    )
    .await;
    plug.publish(
        &format!("{shadow}/update"),
        json!({"state": {"reported": {"power": "on"}}}).to_string(),
    )
    .await;
    plug.expect(&format!("{shadow}/update/accepted")).await;
    plug.publish(
        &format!("{shadow}/update"),
        json!({"state": {"reported": {"power": "off"}}, "version": 7, "clientToken": "c-1"})
            .to_string(),
    )
    .await;
    let rejected = plug.expect(&format!("{shadow}/update/rejected")).await;
    assert_eq!(rejected["code"], 409);
    assert_eq!(rejected["message"], "Version conflict");
    assert_eq!(rejected["clientToken"], "c-1");
    plug.publish(&format!("{shadow}/update"), "{\"state\": ")
        .await;
    let rejected = plug.expect(&format!("{shadow}/update/rejected")).await;
    assert_eq!(rejected["code"], 400);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connects_and_disconnects() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let sensor = Device::connect(stack.mqtt_addr(), "sensor-1", &[]).await;
    state_until(stack.http_addr(), "sensor-1", |s| {
        s["connectivity"]["connected"] == true
    })
    .await;
    let _ = sensor.client.disconnect().await;
    let state = state_until(stack.http_addr(), "sensor-1", |s| {
        s["connectivity"]["connected"] == false
    })
    .await;
    assert_eq!(
        state["connectivity"]["disconnect_reason"],
        "CLIENT_INITIATED_DISCONNECT"
    );
    stack.stop().await;
}
