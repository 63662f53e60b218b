use serde_json::json;

use hearth_local::simulator::get_json;

use crate::support::{Device, start, state_until, tempdir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_is_stored_and_a_poison_message_ends_in_the_dead_letter_queue() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let mut device = Device::connect(stack.mqtt_addr(), "th-1", &[]).await;
    device
        .publish(
            "dt/thermo-x/th-1/telemetry",
            json!({"seq": 1, "temperatureC": 20.5}).to_string(),
        )
        .await;
    device.acked().await;
    // Basic Ingest reaches the same rule.
    device
        .publish(
            "$aws/rules/hearth_telemetry/dt/thermo-x/th-1/telemetry",
            json!({"seq": 2, "temperatureC": 20.6}).to_string(),
        )
        .await;
    device.acked().await;
    state_until(stack.http_addr(), "th-1", |s| {
        s["telemetry"]["payload"]["seq"] == 2
    })
    .await;

    // A product id with a character Hearth does not allow: routed by the rule, refused by the
    // state processor as permanently bad.
    device
        .publish("dt/thermo!x/th-1/telemetry", json!({"seq": 3}).to_string())
        .await;
    device.acked().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let letters = get_json(stack.http_addr(), "/local/dead-letters")
            .await
            .unwrap_or_default();
        if let Some(letter) = letters.as_array().and_then(|l| l.first()) {
            assert_eq!(letter["reason"], "invalid-id");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The good state is untouched.
    let state = state_until(stack.http_addr(), "th-1", |_| true).await;
    assert_eq!(state["telemetry"]["payload"]["seq"], 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_forge_what_only_the_service_publishes() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let accepted = "$aws/things/door-1/shadow/update/accepted";
    let mut door = Device::connect(stack.mqtt_addr(), "door-1", &[accepted]).await;
    let report = |lock: &str| json!({"state": {"reported": {"lock": lock}}}).to_string();
    door.publish("$aws/things/door-1/shadow/update", report("locked"))
        .await;
    door.expect(accepted).await;
    state_until(stack.http_addr(), "door-1", |s| s["shadow"]["version"] == 1).await;

    // A forged documents message with a huge version would make every later version stale.
    let mut forger = Device::connect(stack.mqtt_addr(), "forger", &[]).await;
    let documents = json!({
        "previous": null,
        "current": {"state": {"reported": {"lock": "unlocked"}}, "version": 18_446_744_073_709_551_615_u64},
        "timestamp": 1
    });
    forger
        .publish(
            "$aws/things/door-1/shadow/update/documents",
            documents.to_string(),
        )
        .await;
    forger.acked().await;

    door.publish("$aws/things/door-1/shadow/update", report("unlocked"))
        .await;
    door.expect(accepted).await;
    let state = state_until(stack.http_addr(), "door-1", |s| s["shadow"]["version"] == 2).await;
    assert_eq!(state["shadow"]["reported"]["lock"], "unlocked");
    stack.stop().await;
}

/// The benchmark's raw-passthrough subscriber: in the stack's process, no network, every
/// message in publish order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_subscriber_receives_what_devices_publish() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let Some(mut subscriber) = stack
        .subscribe_in_process("counter", "bench/raw/#", 4)
        .await
    else {
        panic!("no in-process subscriber");
    };
    let device = Device::connect(stack.mqtt_addr(), "raw-1", &[]).await;
    for n in 0..20 {
        device.publish("bench/raw/raw-1", format!("{n}")).await;
    }
    device
        .publish("elsewhere/raw-1", "not for the counter")
        .await;
    for n in 0..20 {
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), subscriber.recv()).await;
        match got {
            Ok(Some(publish)) => {
                assert_eq!(publish.topic_name, "bench/raw/raw-1");
                assert_eq!(&publish.payload[..], format!("{n}").as_bytes());
            }
            other => panic!("message {n}: {other:?}"),
        }
    }
    let extra =
        tokio::time::timeout(std::time::Duration::from_millis(300), subscriber.recv()).await;
    assert!(
        extra.is_err(),
        "a message outside the filter arrived: {extra:?}"
    );
    subscriber.close().await;
    stack.stop().await;
}
