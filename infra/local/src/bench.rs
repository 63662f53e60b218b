//! `hearth-local bench`: both throughput figures of the local stack in one run, on one stack.
//!
//! (0) TCP floor: the same publishers (`hearth-local simulate --raw`) against a listener in this
//!     process that only parses each packet and acknowledges it (one write for everything one
//!     read brought): no broker, no routing, nothing stored. What any broker on this machine
//!     pays at least for these connections: it bounds (a) and (b) from above.
//! (a) raw passthrough: publishers (a separate `hearth-local simulate --raw` process, QoS 1,
//!     on `bench/raw/<thing>`, a topic no rule matches) → the embedded broker → an in-process
//!     subscriber (a delivery lane of the broker's router, no network) that only counts;
//! (b) the full pipeline: publishers (a separate `hearth-local simulate` process, QoS 1, on
//!     `dt/<product>/<thing>/telemetry`, its devices first provisioned through the owner API)
//!     → broker → topic rules → durable queue → state processor → embedded storage.
//!
//! Rates are measured where the messages arrive: (a) from the subscriber's first to its last
//! message, (b) from the first to the last message the state processor finished.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::task::JoinSet;

use crate::lock;
use crate::stack::{Config, Stack, StackError};
use crate::wire;

/// The offered load of each phase.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Simulated devices (MQTT connections).
    pub devices: usize,
    /// Target messages per second.
    pub rate: u64,
    /// Publishing time.
    pub duration: Duration,
}

/// One phase's result.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// Messages that arrived.
    pub messages: u64,
    /// First to last arrival.
    pub window: Duration,
    /// What the publisher process printed.
    pub publisher: String,
    /// Messages per second over the middle 80 % of the window, when measured: the rate under
    /// load, without the first and last 10 % of the window (the ramp-up, and the drain as far
    /// as it fits in those 10 %).
    pub sustained: Option<f64>,
}

impl Phase {
    /// Its two lines of the summary.
    fn show(&self, f: &mut fmt::Formatter<'_>, label: &str, note: &str) -> fmt::Result {
        write!(
            f,
            "{label} {} messages in {:.2} s = {:.0} msg/s{note}",
            self.messages,
            self.window.as_secs_f64(),
            self.rate()
        )?;
        match self.sustained {
            Some(rate) => writeln!(f, "; sustained {rate:.0} msg/s (middle 80 % of that time)")?,
            None => writeln!(f)?,
        }
        writeln!(
            f,
            "    publishers: {}",
            self.publisher.trim().replace('\n', "\n    ")
        )
    }

    /// Messages per second over the window.
    pub fn rate(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.messages as f64 / secs
        } else {
            0.0
        }
    }
}

/// Every phase.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The offered load.
    pub load: Load,
    /// (0) TCP floor.
    pub floor: Phase,
    /// (a) raw passthrough.
    pub raw: Phase,
    /// (b) full pipeline.
    pub pipeline: Phase,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "load: {} devices, target {} msg/s, {} s per phase, QoS 1",
            self.load.devices,
            self.load.rate,
            self.load.duration.as_secs()
        )?;
        self.floor.show(
            f,
            "(0) TCP floor:      ",
            " (no broker: a listener that only acknowledges)",
        )?;
        self.raw.show(f, "(a) raw passthrough:", "")?;
        self.pipeline.show(f, "(b) full pipeline:  ", "")?;
        let ratio = if self.raw.rate() > 0.0 {
            self.pipeline.rate() / self.raw.rate()
        } else {
            0.0
        };
        write!(f, "pipeline / raw = {ratio:.2}")
    }
}

/// Measures the TCP floor, then starts a stack with `config`, runs both other phases, stops the
/// stack. The stack lets anonymous clients in (`allow_anonymous`): the raw phase publishes on
/// `bench/raw/...` and counts with an in-process subscriber, neither of which the device policy
/// allows. The pipeline phase's
/// devices are provisioned through the owner API all the same and connect with their
/// credentials.
pub async fn run(mut config: Config, load: Load) -> Result<Outcome, StackError> {
    config.allow_anonymous = true;
    let floor = floor_phase(config.mqtt.ip(), load).await?;
    let stack = Stack::start(config).await?;
    let raw = raw_phase(&stack, load).await;
    let pipeline = pipeline_phase(&stack, load).await;
    stack.stop().await;
    Ok(Outcome {
        load,
        floor,
        raw: raw?,
        pipeline: pipeline?,
    })
}

async fn publishers(
    mqtt: SocketAddr,
    http: SocketAddr,
    load: Load,
    raw: bool,
) -> Result<String, StackError> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg("simulate")
        .args(["--devices", &load.devices.to_string()])
        .args(["--rate", &load.rate.to_string()])
        .args(["--duration", &load.duration.as_secs().to_string()])
        .args(["--mqtt", &mqtt.to_string()])
        .args(["--http", &http.to_string()])
        .args(["--prefix", if raw { "raw" } else { "bench" }])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if raw {
        command.arg("--raw");
    }
    let mut child = command.spawn()?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).await?;
    }
    child.wait().await?;
    Ok(out)
}

/// Messages the raw phase's subscriber lane holds before the router waits for it.
const SUBSCRIBER_LANE: usize = 1 << 16;

/// Arrivals: how many, the first and the last.
#[derive(Default)]
struct Arrivals {
    count: AtomicU64,
    first: std::sync::OnceLock<Instant>,
    last: std::sync::Mutex<Option<Instant>>,
}

impl Arrivals {
    fn arrived(&self, n: u64) {
        let now = Instant::now();
        let _ = self.first.set(now);
        self.count.fetch_add(n, Ordering::Relaxed);
        *lock(&self.last) = Some(now);
    }

    fn phase(&self, publisher: String) -> Phase {
        let last = *lock(&self.last);
        let window = match (self.first.get(), last) {
            (Some(first), Some(last)) => last.duration_since(*first),
            _ => Duration::ZERO,
        };
        Phase {
            messages: self.count.load(Ordering::Relaxed),
            window,
            publisher,
            sustained: None,
        }
    }
}

async fn floor_phase(ip: IpAddr, load: Load) -> Result<Phase, StackError> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let addr = listener.local_addr()?;
    let arrivals = Arc::new(Arrivals::default());
    let acceptor = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(acknowledge(stream, arrivals.clone()));
            }
        })
    };
    // The publishers' --http is not used with --raw.
    let publisher = publishers(addr, addr, load, true).await;
    acceptor.abort();
    complete("TCP floor", arrivals.phase(publisher?))
}

/// The phase, if every message the publishers sent arrived (a figure over fewer would not be
/// the rate it names).
fn complete(phase: &str, result: Phase) -> Result<Phase, StackError> {
    let sent = result
        .publisher
        .split("telemetry sent ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    match sent {
        Some(sent) if sent == result.messages => Ok(result),
        Some(sent) => Err(StackError::Bench(format!(
            "{phase}: {} of the {sent} messages sent arrived",
            result.messages
        ))),
        None => Err(StackError::Bench(format!(
            "{phase}: the publishers reported no count: {}",
            result.publisher.trim()
        ))),
    }
}

/// The TCP floor's listener side of one connection: CONNACK, PUBACK, PINGRESP, nothing else.
async fn acknowledge(mut stream: TcpStream, arrivals: Arc<Arrivals>) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut read = BytesMut::with_capacity(4096);
    let mut write = Vec::with_capacity(256);
    loop {
        match stream.read_buf(&mut read).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut published = 0;
        loop {
            match wire::next(&mut read) {
                Ok(Some(wire::Incoming::Publish { id, .. })) => {
                    published += 1;
                    if let Some(id) = id {
                        wire::puback(&mut write, id);
                    }
                }
                // CONNECT: accepted.
                Ok(Some(wire::Incoming::Other(1))) => write.extend_from_slice(&[0x20, 2, 0, 0]),
                // PINGREQ.
                Ok(Some(wire::Incoming::Other(12))) => write.extend_from_slice(&[0xD0, 0]),
                // DISCONNECT.
                Ok(Some(wire::Incoming::Other(14))) | Err(_) => return,
                Ok(Some(_)) => {}
                Ok(None) => break,
            }
        }
        if published > 0 {
            arrivals.arrived(published);
        }
        if !write.is_empty() {
            if stream.write_all(&write).await.is_err() {
                return;
            }
            write.clear();
        }
    }
}

async fn raw_phase(stack: &Stack, load: Load) -> Result<Phase, StackError> {
    let mut subscriber = stack
        .subscribe_in_process("bench-subscriber", "bench/raw/#", SUBSCRIBER_LANE)
        .await
        .ok_or_else(|| StackError::Bench("the broker refused the subscriber".to_owned()))?;
    let arrivals = Arc::new(Arrivals::default());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let counter = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let mut done = done_rx;
            loop {
                tokio::select! {
                    message = subscriber.recv() => match message {
                        Some(_) => arrivals.arrived(1),
                        None => break,
                    },
                    _ = &mut done => break,
                }
            }
            subscriber.close().await;
        })
    };
    let publisher = publishers(stack.mqtt_addr(), stack.http_addr(), load, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = done_tx.send(());
    counter
        .await
        .map_err(|e| StackError::Bench(e.to_string()))?;
    complete("raw passthrough", arrivals.phase(publisher?))
}

async fn pipeline_phase(stack: &Stack, load: Load) -> Result<Phase, StackError> {
    let metrics = stack.metrics();
    metrics.reset_latency();
    let start = metrics.processed();
    let sampler = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // (time since the first change, processed since the start) at every change.
            let mut series: Vec<(Duration, u64)> = Vec::new();
            let mut first: Option<Instant> = None;
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let done = metrics.processed() - start;
                let seen = series.last().map_or(0, |&(_, n)| n);
                if done != seen {
                    let at = Instant::now();
                    let first = *first.get_or_insert(at);
                    series.push((at.duration_since(first), done));
                }
                let last = first
                    .zip(series.last())
                    .map(|(first, &(since, _))| first + since);
                if last.is_some_and(|last| last.elapsed() > Duration::from_secs(3)) {
                    break;
                }
            }
            series
        })
    };
    let publisher = publishers(stack.mqtt_addr(), stack.http_addr(), load, false).await?;
    let series = sampler
        .await
        .map_err(|e| StackError::Bench(e.to_string()))?;
    let (window, messages) = series.last().copied().unwrap_or_default();
    Ok(Phase {
        messages,
        window,
        publisher,
        sustained: sustained(&series),
    })
}

/// Messages per second between 10 % and 90 % of a series of (time since the first change,
/// count) samples, each count read at the last sample at or before the instant; `None` for a
/// series too short to say.
fn sustained(series: &[(Duration, u64)]) -> Option<f64> {
    let (window, _) = *series.last()?;
    let from = window.mul_f64(0.1);
    let to = window.mul_f64(0.9);
    let count_at = |t: Duration| {
        let i = series.partition_point(|(at, _)| *at <= t);
        i.checked_sub(1)
            .and_then(|i| series.get(i))
            .map(|(_, n)| *n)
    };
    let span = (to - from).as_secs_f64();
    if series.len() < 10 || span <= 0.0 {
        return None;
    }
    Some(count_at(to)?.saturating_sub(count_at(from)?) as f64 / span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, n: u64) -> (Duration, u64) {
        (Duration::from_millis(ms), n)
    }

    #[test]
    fn the_sustained_rate_leaves_out_the_ends_of_the_window() {
        // 10 s: a slow first second (ramp-up), 1000 msg/s steady, a slow last second (drain).
        let mut series = vec![at(0, 1), at(500, 10), at(1000, 20)];
        series.extend((1..=8).map(|s| at(1000 + s * 1000, 20 + s * 1000)));
        series.extend([at(9500, 8030), at(10_000, 8040)]);
        // From 1.0 s (count 20) to 9.0 s (count 8020): 8000 messages in 8 s.
        assert_eq!(sustained(&series), Some(1000.0));
    }

    #[test]
    fn counts_are_read_at_the_last_sample_before_each_cut() {
        // A sample every 300 ms, the count growing as i²: the cuts (1.02 s and 9.18 s of a
        // 10.2 s window) fall between samples; the last ones before them are i = 3 (count 9)
        // and i = 30 (count 900), the first ones after them would give 16 and 961.
        let series: Vec<_> = (0..=34).map(|i| at(i * 300, i * i)).collect();
        let rate = sustained(&series).unwrap_or_default();
        let expected = (900.0 - 9.0) / (9.18 - 1.02);
        assert!((rate - expected).abs() < 1e-6, "{rate} != {expected}");
    }

    #[test]
    fn a_series_too_short_has_no_sustained_rate() {
        assert_eq!(sustained(&[]), None);
        assert_eq!(sustained(&[at(0, 1), at(10, 5)]), None);
        assert_eq!(sustained(&[at(0, 1); 12]), None);
    }
}
