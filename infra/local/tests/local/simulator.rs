use std::time::{Duration, Instant};

use hearth_local::simulator::{self, Options};
use hearth_local::stack::Stack;
use serde_json::{Value, json};

use crate::support::{config, http, state_until, tempdir, token};

/// The simulator provisions its devices through the owner API (maker registration, claim),
/// connects them with their credentials to a stack that enforces the device policy, publishes
/// telemetry with sequence numbers, reports state through shadows, answers an owner's command
/// like a device, and its loss check sees every last message stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_devices_report_answer_deltas_and_lose_nothing() {
    let dir = tempdir();
    let mut config = config(dir.path());
    config.allow_anonymous = false;
    let stack = match Stack::start(config).await {
        Ok(stack) => stack,
        Err(e) => panic!("stack did not start: {e}"),
    };
    let api = stack.http_addr();
    let run = tokio::spawn(simulator::run(Options {
        mqtt: stack.mqtt_addr(),
        http: Some(api),
        devices: 6,
        rate: 60,
        duration: Duration::from_secs(4),
        prefix: "sim".to_owned(),
        owner: "sim-owner".to_owned(),
        raw: false,
        progress: false,
    }));
    // The owner's app finds the simulated light and turns it on while the simulation runs.
    let owner = token(api, "sim-owner", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let light = loop {
        let (_, listed) = http(api, "GET", "/v1/devices", Some(&owner), None).await;
        let devices = listed["items"].as_array().cloned().unwrap_or_default();
        if devices.len() == 6 {
            let light = devices.iter().find(|d| d["deviceType"] == "light").cloned();
            break light.unwrap_or(Value::Null)["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the simulator did not provision 6 devices: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    state_until(api, &light, |s| s["shadow"]["reported"]["power"] == "off").await;
    let (status, command) = http(
        api,
        "POST",
        &format!("/v1/devices/{light}/commands"),
        Some(&owner),
        Some(&json!({"desired": {"power": "on"}})),
    )
    .await;
    assert_eq!(status, 202, "{command}");
    let report = match run.await {
        Ok(report) => report,
        Err(e) => panic!("simulator: {e}"),
    };
    assert_eq!(report.provision_error, None);
    assert_eq!(report.provisioned.map(|(n, _)| n), Some(6));
    assert!(report.sent > 0);
    assert_eq!(report.errors, 0);
    assert_eq!(report.acked, report.sent + report.shadow_reports);
    assert!(report.deltas >= 1, "the delta reached the simulated device");
    assert_eq!(report.checked, 6);
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
    assert_eq!(report.dead_letters, Some(0));
    // Every telemetry message applied was also written by a checkpoint, no sooner.
    let samples = |latency: &Option<Value>| {
        latency
            .as_ref()
            .and_then(|l| l["samples"].as_u64())
            .unwrap_or(0)
    };
    assert!(samples(&report.latency) > 0, "{:?}", report.latency);
    assert_eq!(samples(&report.written_latency), samples(&report.latency));
    let p50 = |latency: &Option<Value>| {
        latency
            .as_ref()
            .and_then(|l| l["p50"].as_u64())
            .unwrap_or(0)
    };
    assert!(p50(&report.written_latency) >= p50(&report.latency));
    // The device answered by reporting the desired value: no delta remains.
    let state = state_until(api, &light, |s| s["shadow"]["reported"]["power"] == "on").await;
    assert_eq!(state["shadow"]["desired"]["power"], "on");
    stack.stop().await;
}
