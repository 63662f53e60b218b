//! Measurements the local stack exposes on `/local/metrics`: messages processed by the
//! functions, and the latency from a device's publish (the `ts` field the simulator puts in its
//! telemetry) to the state being applied (readable) and to it being written (the state
//! processor's checkpoint).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use hearth_domain::device::DeviceId;
use hearth_domain::projection::{Changes, DeviceState};
use hearth_ports::{StateStore, StoreError};
use serde_json::{Value, json};

use crate::broker::now_ms;
use crate::lock;

/// Counters and the latency histograms.
pub struct Metrics {
    processed: AtomicU64,
    retried: AtomicU64,
    /// Publish → applied, and what awaits a checkpoint (one lock per applied message).
    applied: Mutex<Applied>,
    /// Publish → written by a checkpoint.
    written: Mutex<Option<Histogram<u64>>>,
}

struct Applied {
    latency: Option<Histogram<u64>>,
    /// Publish times of telemetry applied since the last checkpoint began.
    unwritten: Vec<u64>,
}

fn histogram() -> Option<Histogram<u64>> {
    // 1 ms to 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000, 3).ok()
}

fn record(histogram: &mut Option<Histogram<u64>>, ms: u64) {
    if let Some(h) = histogram.as_mut() {
        h.saturating_record(ms.max(1));
    }
}

fn percentiles(histogram: Option<&Histogram<u64>>) -> Option<Value> {
    histogram.filter(|h| !h.is_empty()).map(|h| {
        json!({
            "samples": h.len(),
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "max": h.max(),
        })
    })
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            processed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            applied: Mutex::new(Applied {
                latency: histogram(),
                unwritten: Vec::new(),
            }),
            written: Mutex::new(histogram()),
        }
    }
}

/// Telemetry applied before a checkpoint began (see [`Metrics::checkpoint_begins`]).
pub struct Unwritten(Vec<u64>);

impl Metrics {
    /// Records a batch a function handled: `records` messages, `failed` of them to retry.
    pub fn batch(&self, records: usize, failed: usize) {
        let done = records.saturating_sub(failed);
        self.processed
            .fetch_add(u64::try_from(done).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.retried
            .fetch_add(u64::try_from(failed).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Messages handled without a retry so far.
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    fn applied(&self, sent: u64) {
        let mut applied = lock(&self.applied);
        record(&mut applied.latency, now_ms().saturating_sub(sent));
        applied.unwritten.push(sent);
    }

    /// Takes the telemetry applied so far: a checkpoint that begins now writes it.
    pub fn checkpoint_begins(&self) -> Unwritten {
        Unwritten(std::mem::take(&mut lock(&self.applied).unwritten))
    }

    /// The checkpoint that began with `unwritten` succeeded.
    pub fn checkpointed(&self, unwritten: Unwritten) {
        let now = now_ms();
        let mut written = lock(&self.written);
        for sent in unwritten.0 {
            record(&mut written, now.saturating_sub(sent));
        }
    }

    /// The checkpoint that began with `unwritten` failed: the next one writes it.
    pub fn checkpoint_failed(&self, unwritten: Unwritten) {
        lock(&self.applied).unwritten.extend(unwritten.0);
    }

    /// Clears the latency histograms (between benchmark phases).
    pub fn reset_latency(&self) {
        let mut applied = lock(&self.applied);
        applied.unwritten.clear();
        for histogram in [&mut applied.latency, &mut *lock(&self.written)] {
            if let Some(h) = histogram.as_mut() {
                h.reset();
            }
        }
    }

    /// The metrics as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "processed": self.processed(),
            "retried": self.retried.load(Ordering::Relaxed),
            "latency_ms": percentiles(lock(&self.applied).latency.as_ref()),
            "written_latency_ms": percentiles(lock(&self.written).as_ref()),
        })
    }
}

/// A [`StateStore`] that records publish → state applied latency of telemetry carrying a `ts`
/// (applied: readable through every adapter; with deferred writes, written at the next
/// checkpoint, whose latency [`Metrics::checkpointed`] records).
pub struct Measured {
    inner: Arc<dyn StateStore>,
    metrics: Arc<Metrics>,
}

impl Measured {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn StateStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl StateStore for Measured {
    async fn apply(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, StoreError> {
        let changes = self.inner.apply(thing, update).await?;
        if changes.telemetry
            && let Some(sent) = update
                .telemetry
                .as_ref()
                .and_then(|t| t.payload.get("ts"))
                .and_then(Value::as_u64)
        {
            self.metrics.applied(sent);
        }
        Ok(changes)
    }

    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError> {
        self.inner.get_state(thing).await
    }
}
