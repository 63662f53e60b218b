//! The device simulator and load generator (`hearth-local simulate`).
//!
//! It connects `devices` MQTT clients (client id = thing name, mixed device types), reports each
//! device's initial state through its shadow, answers desired-state deltas by reporting the
//! desired values (as a real device does), and publishes telemetry with a per-device sequence
//! number and a send timestamp at a target total rate, QoS 1. At the end it waits for the
//! outstanding PUBACKs and checks, through the local stack's HTTP views, that every device's
//! stored state carries the last sequence number it sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::broker::now_ms;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The stack's MQTT listener.
    pub mqtt: SocketAddr,
    /// The stack's HTTP listener (for the loss check); `None` skips the check.
    pub http: Option<SocketAddr>,
    /// Number of devices.
    pub devices: usize,
    /// Total telemetry messages per second across all devices.
    pub rate: u64,
    /// How long to publish.
    pub duration: Duration,
    /// Thing names are `<prefix>-<n>`.
    pub prefix: String,
    /// Publish on `bench/raw/<thing>` (no rule matches: raw broker throughput) instead of
    /// `dt/<product>/<thing>/telemetry`.
    pub raw: bool,
    /// Print a progress line every second.
    pub progress: bool,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Telemetry messages published.
    pub sent: u64,
    /// PUBACKs received (telemetry and shadow reports).
    pub acked: u64,
    /// Shadow reports published (initial state and delta answers).
    pub shadow_reports: u64,
    /// Deltas received and answered.
    pub deltas: u64,
    /// Connection or publish errors.
    pub errors: u64,
    /// Ticks skipped because the device had too many unacknowledged messages (the stack was
    /// slower than the target rate).
    pub throttled: u64,
    /// Publishing time.
    pub elapsed: Duration,
    /// Devices whose stored state lacks their last sequence number (after the wait).
    pub lost: Vec<String>,
    /// Devices checked.
    pub checked: usize,
    /// The stack's publish → stored latency percentiles (`/local/metrics`), when reachable.
    pub latency: Option<Value>,
    /// Messages on the stack's dead-letter queues after the run (`/local/queues`).
    pub dead_letters: Option<u64>,
}

impl Report {
    /// Achieved telemetry rate.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.sent as f64 / secs
        } else {
            0.0
        }
    }
}

/// Unacknowledged messages a simulated device allows itself.
const MAX_PENDING: u64 = 10;

#[derive(Default)]
struct Counters {
    throttled: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    shadow_reports: AtomicU64,
    deltas: AtomicU64,
    errors: AtomicU64,
}

const TYPES: [&str; 6] = ["light", "plug", "thermostat", "lock", "camera", "sensor"];

fn initial_state(kind: &str) -> Value {
    match kind {
        "light" => json!({"power": "off", "brightness": 50}),
        "plug" => json!({"power": "off"}),
        "thermostat" => json!({"targetTemperatureC": 20, "mode": "heat", "temperatureC": 19.5}),
        "lock" => json!({"lock": "locked"}),
        "camera" => json!({"power": "on", "streaming": false}),
        _ => json!({"temperatureC": 21.0, "humidity": 40, "motion": false}),
    }
}

/// Runs the simulation.
pub async fn run(options: Options) -> Report {
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let per_device = Duration::from_secs_f64(options.devices as f64 / options.rate.max(1) as f64);
    let mut devices = JoinSet::new();
    let started = Instant::now();
    for n in 0..options.devices {
        let thing = format!("{}-{n:05}", options.prefix);
        let kind = TYPES[n % TYPES.len()];
        devices.spawn(device(
            thing,
            kind,
            options.clone(),
            per_device,
            counters.clone(),
            stop.clone(),
        ));
    }
    let progress = tokio::spawn(progress(
        counters.clone(),
        options.duration,
        options.progress,
    ));
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let mut last = HashMap::new();
    while let Some(result) = devices.join_next().await {
        if let Ok((thing, seq)) = result {
            last.insert(thing, seq);
        }
    }
    progress.abort();
    let mut report = Report {
        sent: counters.sent.load(Ordering::SeqCst),
        acked: counters.acked.load(Ordering::SeqCst),
        shadow_reports: counters.shadow_reports.load(Ordering::SeqCst),
        deltas: counters.deltas.load(Ordering::SeqCst),
        errors: counters.errors.load(Ordering::SeqCst),
        throttled: counters.throttled.load(Ordering::SeqCst),
        elapsed,
        ..Report::default()
    };
    if let (Some(http), false) = (options.http, options.raw) {
        report.checked = last.len();
        drained(http, Duration::from_secs(300)).await;
        report.lost = loss_check(http, &last, Duration::from_secs(30)).await;
        report.latency = get_json(http, "/local/metrics")
            .await
            .and_then(|m| m.get("latency_ms").cloned());
        report.dead_letters = get_json(http, "/local/queues").await.map(|queues| {
            queues
                .as_array()
                .into_iter()
                .flatten()
                .filter(|q| q["dead_letter_queue"].as_bool() == Some(true))
                .filter_map(|q| q["messages"].as_u64())
                .sum::<u64>()
        });
        if let Some(letters) = get_json(http, "/local/dead-letters").await {
            let handler_letters = letters.as_array().map_or(0, |l| l.len() as u64);
            report.dead_letters = Some(report.dead_letters.unwrap_or(0) + handler_letters);
        }
    }
    report
}

/// A human-readable summary of a run.
pub fn summary(report: &Report) -> String {
    let mut out = format!(
        "telemetry sent {}  acknowledged (PUBACK, incl. {} shadow reports) {}  errors {}  \
         held back (device had {MAX_PENDING} unacknowledged) {}\n\
         achieved rate {:.0} msg/s over {:.1} s  deltas answered {}",
        report.sent,
        report.shadow_reports,
        report.acked,
        report.errors,
        report.throttled,
        report.rate(),
        report.elapsed.as_secs_f64(),
        report.deltas,
    );
    if let Some(latency) = &report.latency {
        out.push_str(&format!("\npublish → stored latency (ms): {latency}"));
    }
    if report.checked > 0 {
        out.push_str(&format!(
            "\nloss check: {} of {} devices have their last sequence number stored{}",
            report.checked - report.lost.len(),
            report.checked,
            if report.lost.is_empty() {
                String::new()
            } else {
                format!(
                    " (missing: {:?})",
                    report.lost.iter().take(5).collect::<Vec<_>>()
                )
            }
        ));
    }
    if let Some(dead) = report.dead_letters {
        out.push_str(&format!("\ndead letters: {dead}"));
    }
    out
}

#[allow(clippy::print_stderr, reason = "the progress bar is for the terminal")]
async fn progress(counters: Arc<Counters>, total: Duration, enabled: bool) {
    if !enabled {
        return;
    }
    let start = Instant::now();
    let mut previous = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = counters.sent.load(Ordering::Relaxed);
        let done = start.elapsed().as_secs_f64() / total.as_secs_f64().max(0.001);
        let filled = (1..=30).filter(|i| f64::from(*i) <= done * 30.0).count();
        eprintln!(
            "[{}{}] {:>3.0}%  sent {sent}  acked {}  {} msg/s  errors {}",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            done.min(1.0) * 100.0,
            counters.acked.load(Ordering::Relaxed),
            sent - previous,
            counters.errors.load(Ordering::Relaxed),
        );
        previous = sent;
    }
}

/// One device: connects, reports its state, publishes telemetry until `stop`, answers deltas.
/// Returns its thing name and the last telemetry sequence number it sent.
async fn device(
    thing: String,
    kind: &'static str,
    options: Options,
    interval: Duration,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> (String, u64) {
    let mut mqtt = MqttOptions::new(
        thing.clone(),
        options.mqtt.ip().to_string(),
        options.mqtt.port(),
    );
    mqtt.set_keep_alive(Duration::from_secs(60));
    mqtt.set_inflight(100);
    mqtt.set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, eventloop) = AsyncClient::new(mqtt, 256);
    let (delta_tx, mut delta_rx) = tokio::sync::mpsc::channel::<Value>(16);
    let pending = Arc::new(AtomicU64::new(0));
    let driver = tokio::spawn(drive(
        eventloop,
        counters.clone(),
        delta_tx,
        pending.clone(),
        stop.clone(),
    ));

    let shadow = format!("$aws/things/{thing}/shadow");
    let telemetry = if options.raw {
        format!("bench/raw/{thing}")
    } else {
        format!("dt/sim-{kind}/{thing}/telemetry")
    };
    let report = |state: Value| json!({"state": {"reported": state}}).to_string();
    if !options.raw {
        let subscribed = client
            .subscribe(format!("{shadow}/update/delta"), QoS::AtLeastOnce)
            .await;
        if subscribed.is_err() {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        publish(
            &client,
            &format!("{shadow}/update"),
            report(initial_state(kind)),
            &counters,
            &pending,
        )
        .await;
        counters.shadow_reports.fetch_add(1, Ordering::Relaxed);
    }
    // Spread the devices' first messages over one interval.
    let offset = interval.mul_f64(fastrand_fraction(&thing));
    tokio::time::sleep(offset).await;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0;
    let pad = "x".repeat(96);
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = ticker.tick() => {
                // A device with this many messages unacknowledged waits (backpressure), so the
                // achieved rate is what the stack sustains, not what the clients buffer.
                if pending.load(Ordering::SeqCst) >= MAX_PENDING {
                    counters.throttled.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                seq += 1;
                // About 200 bytes, formatted directly (the load generator must stay cheap: it
                // shares the machine with the stack it measures).
                let payload = format!(
                    r#"{{"seq":{seq},"ts":{},"kind":"{kind}","temperatureC":21.5,"battery":97,"pad":"{pad}"}}"#,
                    now_ms()
                );
                publish(&client, &telemetry, payload, &counters, &pending).await;
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Some(delta) = delta_rx.recv() => {
                if let Some(state) = delta.get("state") {
                    publish(&client, &format!("{shadow}/update"), report(state.clone()), &counters, &pending).await;
                    counters.shadow_reports.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    // Wait for outstanding PUBACKs, then leave.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
    (thing, seq)
}

async fn publish(
    client: &AsyncClient,
    topic: &str,
    payload: String,
    counters: &Counters,
    pending: &AtomicU64,
) {
    pending.fetch_add(1, Ordering::SeqCst);
    if client
        .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
        .await
        .is_err()
    {
        pending.fetch_sub(1, Ordering::SeqCst);
        counters.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Drives a client's event loop: counts PUBACKs, forwards deltas, reconnects after errors.
async fn drive(
    mut eventloop: EventLoop,
    counters: Arc<Counters>,
    deltas: tokio::sync::mpsc::Sender<Value>,
    pending: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                counters.acked.fetch_add(1, Ordering::Relaxed);
                pending.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/update/delta") => {
                counters.deltas.fetch_add(1, Ordering::Relaxed);
                if let Ok(delta) = serde_json::from_slice::<Value>(&p.payload) {
                    let _ = deltas.try_send(delta);
                }
            }
            Ok(Event::Incoming(Packet::Disconnect))
            | Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(_) => {
                if stop.load(Ordering::Relaxed) && pending.load(Ordering::SeqCst) == 0 {
                    return;
                }
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A stable pseudo-random fraction in [0, 1) from a name (spreads device start times).
fn fastrand_fraction(name: &str) -> f64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 10_000) as f64 / 10_000.0
}

/// Waits until the stack's queues (dead-letter queues aside) are empty, or `wait`.
async fn drained(http: SocketAddr, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        let busy = get_json(http, "/local/queues").await.is_none_or(|queues| {
            queues.as_array().into_iter().flatten().any(|q| {
                q["dead_letter_queue"].as_bool() != Some(true)
                    && q["messages"].as_u64().unwrap_or(1) > 0
            })
        });
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Devices whose stored telemetry does not carry their last sequence number within `wait`.
async fn loss_check(http: SocketAddr, last: &HashMap<String, u64>, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut missing: Vec<(String, u64)> = last
        .iter()
        .filter(|(_, seq)| **seq > 0)
        .map(|(t, s)| (t.clone(), *s))
        .collect();
    loop {
        let mut still = Vec::new();
        for (thing, seq) in missing {
            let stored = get_json(http, &format!("/local/devices/{thing}/state"))
                .await
                .and_then(|state| {
                    state
                        .pointer("/telemetry/payload/seq")
                        .and_then(Value::as_u64)
                });
            if stored != Some(seq) {
                still.push((thing, seq));
            }
        }
        missing = still;
        if missing.is_empty() || Instant::now() >= deadline {
            return missing.into_iter().map(|(t, _)| t).collect();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A minimal HTTP/1.1 GET returning the JSON body of a 200 response.
pub async fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8(response).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}
