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

use std::io::Write as _;

use bytes::BytesMut;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::broker::now_ms;
use crate::wire::{self, Incoming};

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
    /// Serial numbers (and device names) are `<prefix>-<run>-<n>`; in raw mode thing names are
    /// `<prefix>-<n>`.
    pub prefix: String,
    /// The owner (development-token user) who claims the simulated devices.
    pub owner: String,
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
    /// Times a device reached its limit of unacknowledged messages and had to wait for a
    /// PUBACK before publishing again (the stack was slower than the target rate).
    pub throttled: u64,
    /// Publishing time.
    pub elapsed: Duration,
    /// Devices whose stored state lacks their last sequence number (after the wait).
    pub lost: Vec<String>,
    /// Devices checked.
    pub checked: usize,
    /// The stack's publish → state applied latency percentiles (`/local/metrics`), when reachable.
    pub latency: Option<Value>,
    /// The stack's publish → state written (checkpointed) latency percentiles.
    pub written_latency: Option<Value>,
    /// Messages on the stack's dead-letter queues after the run (`/local/queues`).
    pub dead_letters: Option<u64>,
    /// Devices provisioned through the owner API (maker registration and claim), and how long
    /// that took.
    pub provisioned: Option<(usize, Duration)>,
    /// Why the devices could not be provisioned (nothing was published then).
    pub provision_error: Option<String>,
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

/// A simulated device: its thing name, type, and MQTT password (none in raw mode).
struct Identity {
    thing: String,
    kind: &'static str,
    password: Option<String>,
}

/// Requests to the owner API at once while provisioning.
const PROVISIONING_CONCURRENCY: usize = 16;

async fn dev_token(http: SocketAddr, user: &str, groups: &[&str]) -> Result<String, String> {
    let body = json!({"user": user, "groups": groups});
    match post_json(http, "/dev/tokens", None, &body).await {
        Some((201, reply)) => reply["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no token in the reply".to_owned()),
        other => Err(format!("POST /dev/tokens: {other:?}")),
    }
}

/// Registers (as a maker) and claims (as `options.owner`) every simulated device through the
/// owner API, as real devices get their credentials.
async fn provision(options: &Options, http: SocketAddr) -> Result<Vec<Identity>, String> {
    let maker = Arc::new(dev_token(http, "sim-maker", &["makers"]).await?);
    let owner = Arc::new(dev_token(http, &options.owner, &[]).await?);
    // Serials must be new on every run.
    let run = now_ms();
    let slots = Arc::new(tokio::sync::Semaphore::new(PROVISIONING_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for n in 0..options.devices {
        let kind = TYPES[n % TYPES.len()];
        let serial = format!("{}-{run}-{n:05}", options.prefix);
        let (maker, owner, slots) = (maker.clone(), owner.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.map_err(|e| e.to_string())?;
            let registration =
                json!({"productId": format!("sim-{kind}"), "serial": serial, "deviceType": kind});
            let registered =
                match post_json(http, "/v1/maker/devices", Some(&maker), &registration).await {
                    Some((201, reply)) => reply,
                    other => return Err(format!("registering {serial}: {other:?}")),
                };
            let claim = json!({"claimCode": registered["claimCode"], "name": serial});
            let claimed = match post_json(http, "/v1/claims", Some(&owner), &claim).await {
                Some((201, reply)) => reply,
                other => return Err(format!("claiming {serial}: {other:?}")),
            };
            let thing = claimed["device"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let password = claimed["credentials"]["mqttPassword"]
                .as_str()
                .map(str::to_owned);
            Ok((
                n,
                Identity {
                    thing,
                    kind,
                    password,
                },
            ))
        });
    }
    let mut identities: Vec<Option<Identity>> = (0..options.devices).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (n, identity) = joined.map_err(|e| e.to_string())??;
        if let Some(slot) = identities.get_mut(n) {
            *slot = Some(identity);
        }
    }
    Ok(identities.into_iter().flatten().collect())
}

/// Runs the simulation: provisions the devices through the owner API (unless raw), then
/// publishes.
pub async fn run(options: Options) -> Report {
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let per_device = Duration::from_secs_f64(options.devices as f64 / options.rate.max(1) as f64);
    let mut provisioned = None;
    let identities = match (options.raw, options.http) {
        (false, Some(http)) => {
            let started = Instant::now();
            match provision(&options, http).await {
                Ok(identities) => {
                    provisioned = Some((identities.len(), started.elapsed()));
                    identities
                }
                Err(e) => {
                    return Report {
                        provision_error: Some(e),
                        ..Report::default()
                    };
                }
            }
        }
        _ => (0..options.devices)
            .map(|n| Identity {
                thing: format!("{}-{n:05}", options.prefix),
                kind: TYPES[n % TYPES.len()],
                password: None,
            })
            .collect(),
    };
    let mut devices = JoinSet::new();
    let started = Instant::now();
    for identity in identities {
        devices.spawn(device(
            identity,
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
        provisioned,
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
        let metrics = get_json(http, "/local/metrics").await;
        report.latency = metrics.as_ref().and_then(|m| m.get("latency_ms").cloned());
        report.written_latency = metrics
            .as_ref()
            .and_then(|m| m.get("written_latency_ms").cloned());
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
    if let Some(error) = &report.provision_error {
        return format!("could not provision the simulated devices: {error}");
    }
    let mut out = String::new();
    if let Some((devices, took)) = report.provisioned {
        out.push_str(&format!(
            "provisioned {devices} devices through the owner API (register + claim) in {:.1} s\n",
            took.as_secs_f64()
        ));
    }
    out.push_str(&format!(
        "telemetry sent {}  acknowledged (PUBACK, incl. {} shadow reports) {}  errors {}  \
         waits for a PUBACK (device at {MAX_PENDING} unacknowledged) {}\n\
         achieved rate {:.0} msg/s over {:.1} s  deltas answered {}",
        report.sent,
        report.shadow_reports,
        report.acked,
        report.errors,
        report.throttled,
        report.rate(),
        report.elapsed.as_secs_f64(),
        report.deltas,
    ));
    if let Some(latency) = &report.latency {
        out.push_str(&format!(
            "\npublish → state applied latency (ms): {latency}"
        ));
    }
    if let Some(latency) = &report.written_latency {
        out.push_str(&format!(
            "\npublish → state written latency (ms): {latency}"
        ));
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
    identity: Identity,
    options: Options,
    interval: Duration,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> (String, u64) {
    let Identity {
        thing,
        kind,
        password,
    } = identity;
    let mut seq = 0;
    // Spread the devices' first messages over one interval.
    let offset = interval.mul_f64(fastrand_fraction(&thing));
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let connection = match Connection::open(&options, &thing, password.as_deref()).await {
            Ok(connection) => connection,
            Err(e) => {
                tracing::warn!(thing, error = %e, "simulated device could not connect; retrying");
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut session = Session {
            connection,
            thing: &thing,
            kind,
            options: &options,
            counters: &counters,
            next_id: 0,
            pending: 0,
        };
        let outcome = session
            .run(&mut seq, interval, first.then_some(offset), &stop)
            .await;
        first = false;
        if let Err(e) = outcome {
            tracing::warn!(thing, error = %e, "simulated device lost its connection; reconnecting");
            // Messages that were not acknowledged before the connection broke are errors.
            counters
                .errors
                .fetch_add(1 + session.pending, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    (thing, seq)
}

/// A device's TCP connection speaking MQTT 3.1.1 through [`wire`].
struct Connection {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
}

/// Keep-alive the simulated devices announce.
const KEEP_ALIVE_SECS: u16 = 60;

impl Connection {
    /// Connects and waits for an accepting CONNACK.
    async fn open(options: &Options, thing: &str, password: Option<&str>) -> std::io::Result<Self> {
        let stream = TcpStream::connect(options.mqtt).await?;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            stream,
            read: BytesMut::with_capacity(4096),
            write: Vec::with_capacity(512),
        };
        wire::connect(
            &mut connection.write,
            thing,
            KEEP_ALIVE_SECS,
            password.map(|password| (thing, password)),
        );
        connection.flush().await?;
        let accepted = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match connection.next().await? {
                    Incoming::ConnAck(0) => return Ok(()),
                    Incoming::ConnAck(code) => {
                        return Err(other(format!("CONNACK refused with code {code}")));
                    }
                    _ => {}
                }
            }
        })
        .await;
        match accepted {
            Ok(result) => result.map(|()| connection),
            Err(_) => Err(other("no CONNACK within 10 s".to_owned())),
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.write).await?;
        self.write.clear();
        Ok(())
    }

    /// The next packet: a complete one already buffered, or after reading more. Cancel-safe
    /// (bytes read stay in the buffer).
    async fn next(&mut self) -> std::io::Result<Incoming> {
        loop {
            if let Some(packet) = wire::next(&mut self.read).map_err(|e| other(e.to_string()))? {
                return Ok(packet);
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

fn other(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// One connected run of a device.
struct Session<'a> {
    connection: Connection,
    thing: &'a str,
    kind: &'static str,
    options: &'a Options,
    counters: &'a Counters,
    next_id: u16,
    /// QoS 1 messages sent and not yet acknowledged.
    pending: u64,
}

impl Session<'_> {
    fn id(&mut self) -> u16 {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.next_id
    }

    fn publish(&mut self, topic: &str, payload: &[u8]) {
        let id = self.id();
        wire::publish(&mut self.connection.write, id, topic, payload);
        self.pending += 1;
    }

    fn report(&mut self, shadow: &str, state: &Value) {
        let body = json!({"state": {"reported": state}}).to_string();
        self.publish(&format!("{shadow}/update"), body.as_bytes());
        self.counters.shadow_reports.fetch_add(1, Ordering::Relaxed);
    }

    /// Subscribes to deltas, reports the initial state (first connection), publishes until
    /// `stop`, then waits for the outstanding acknowledgements and disconnects.
    async fn run(
        &mut self,
        seq: &mut u64,
        interval: Duration,
        offset: Option<Duration>,
        stop: &AtomicBool,
    ) -> std::io::Result<()> {
        let thing = self.thing;
        let kind = self.kind;
        let shadow = format!("$aws/things/{thing}/shadow");
        let telemetry = if self.options.raw {
            format!("bench/raw/{thing}")
        } else {
            format!("dt/sim-{kind}/{thing}/telemetry")
        };
        if !self.options.raw {
            let id = self.id();
            wire::subscribe(
                &mut self.connection.write,
                id,
                &format!("{shadow}/update/delta"),
            );
            if offset.is_some() {
                self.report(&shadow, &initial_state(kind));
            }
            self.connection.flush().await?;
        }
        if let Some(offset) = offset {
            tokio::time::sleep(offset).await;
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut keep_alive =
            tokio::time::interval(Duration::from_secs(u64::from(KEEP_ALIVE_SECS / 2)));
        keep_alive.reset();
        let pad = "x".repeat(96);
        let mut payload = Vec::with_capacity(256);
        let mut stopping_since: Option<Instant> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if self.pending == 0 || since.elapsed() > Duration::from_secs(30) {
                    break;
                }
            }
            tokio::select! {
                // A device with `MAX_PENDING` messages unacknowledged waits for a PUBACK
                // (backpressure), so the achieved rate is what the stack sustains, not what
                // clients buffer; its ticker is not polled meanwhile (no wake-ups while it
                // waits), and the tick it missed fires as soon as there is room.
                _ = ticker.tick(), if stopping_since.is_none() && self.pending < MAX_PENDING => {
                    *seq += 1;
                    payload.clear();
                    // About 200 bytes, formatted directly (the load generator must stay cheap:
                    // it shares the machine with the stack it measures).
                    let _ = write!(
                        payload,
                        r#"{{"seq":{},"ts":{},"kind":"{kind}","temperatureC":21.5,"battery":97,"pad":"{pad}"}}"#,
                        *seq,
                        now_ms()
                    );
                    self.publish(&telemetry, &payload);
                    self.connection.flush().await?;
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    if self.pending >= MAX_PENDING {
                        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ = keep_alive.tick() => {
                    wire::pingreq(&mut self.connection.write);
                    self.connection.flush().await?;
                }
                // Wake up while stopping to re-check the acknowledgements' deadline.
                _ = tokio::time::sleep(Duration::from_millis(100)), if stopping_since.is_some() => {}
                packet = self.connection.next() => {
                    self.incoming(packet?, &shadow);
                    if !self.connection.write.is_empty() {
                        self.connection.flush().await?;
                    }
                }
            }
        }
        wire::disconnect(&mut self.connection.write);
        self.connection.flush().await
    }

    fn incoming(&mut self, packet: Incoming, shadow: &str) {
        match packet {
            Incoming::PubAck(_) => {
                self.pending = self.pending.saturating_sub(1);
                self.counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::SubAck(_, codes) if codes.contains(&0x80) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Publish {
                id, topic, payload, ..
            } => {
                if let Some(id) = id {
                    wire::puback(&mut self.connection.write, id);
                }
                if topic.ends_with("/update/delta") {
                    self.counters.deltas.fetch_add(1, Ordering::Relaxed);
                    let state = serde_json::from_slice::<Value>(&payload)
                        .ok()
                        .and_then(|mut delta| delta.get_mut("state").map(Value::take));
                    if let Some(state) = state {
                        self.report(shadow, &state);
                    }
                }
            }
            _ => {}
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

/// A minimal HTTP/1.1 POST of a JSON body, with a bearer token if given: the status and the
/// JSON reply.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let body = body.to_string();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8(response).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
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
