use std::time::Duration;

use hearth_local::simulator::{self, Options};
use serde_json::json;

use crate::support::{Device, start, state_until, tempdir};

/// The simulator publishes telemetry with sequence numbers, reports state through shadows,
/// answers a desired change like a device, and its loss check sees every last message stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_devices_report_answer_deltas_and_lose_nothing() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let run = tokio::spawn(simulator::run(Options {
        mqtt: stack.mqtt_addr(),
        http: Some(stack.http_addr()),
        devices: 6,
        rate: 60,
        duration: Duration::from_secs(4),
        prefix: "sim".to_owned(),
        raw: false,
        progress: false,
    }));
    // The first simulated device is a light; an owner turns it on while the simulation runs.
    state_until(stack.http_addr(), "sim-00000", |s| {
        s["shadow"]["reported"]["power"] == "off"
    })
    .await;
    let app = Device::connect(stack.mqtt_addr(), "owner-app", &[]).await;
    app.publish(
        "$aws/things/sim-00000/shadow/update",
        json!({"state": {"desired": {"power": "on"}}}).to_string(),
    )
    .await;
    let report = match run.await {
        Ok(report) => report,
        Err(e) => panic!("simulator: {e}"),
    };
    assert!(report.sent > 0);
    assert_eq!(report.errors, 0);
    assert_eq!(report.acked, report.sent + report.shadow_reports);
    assert!(report.deltas >= 1, "the delta reached the simulated device");
    assert_eq!(report.checked, 6);
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
    assert_eq!(report.dead_letters, Some(0));
    // The device answered by reporting the desired value: no delta remains.
    let state = state_until(stack.http_addr(), "sim-00000", |s| {
        s["shadow"]["reported"]["power"] == "on"
    })
    .await;
    assert_eq!(state["shadow"]["desired"]["power"], "on");
    stack.stop().await;
}
