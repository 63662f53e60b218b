//! Measurements the local stack exposes on `/local/metrics`: messages processed by the
//! functions, and the latency from a device's publish (the `ts` field the simulator puts in its
//! telemetry) to the state being stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use hearth_domain::device::DeviceId;
use hearth_domain::projection::{Changes, DeviceState};
use hearth_ports::{StateStore, StoreError};
use serde_json::{Value, json};

use crate::broker::now_ms;

/// Counters and the latency histogram.
pub struct Metrics {
    processed: AtomicU64,
    retried: AtomicU64,
    latency: Mutex<Option<Histogram<u64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            processed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            // 1 ms to 1 hour, 3 significant digits.
            latency: Mutex::new(Histogram::new_with_bounds(1, 3_600_000, 3).ok()),
        }
    }
}

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

    fn record_latency(&self, ms: u64) {
        let mut histogram = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = histogram.as_mut() {
            h.saturating_record(ms.max(1));
        }
    }

    /// Clears the latency histogram (between benchmark phases).
    pub fn reset_latency(&self) {
        let mut histogram = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = histogram.as_mut() {
            h.reset();
        }
    }

    /// The metrics as JSON.
    pub fn to_json(&self) -> Value {
        let histogram = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let latency = histogram.as_ref().filter(|h| !h.is_empty()).map(|h| {
            json!({
                "samples": h.len(),
                "p50": h.value_at_quantile(0.50),
                "p90": h.value_at_quantile(0.90),
                "p99": h.value_at_quantile(0.99),
                "max": h.max(),
            })
        });
        json!({
            "processed": self.processed(),
            "retried": self.retried.load(Ordering::Relaxed),
            "latency_ms": latency,
        })
    }
}

/// A [`StateStore`] that records publish → state applied latency of telemetry carrying a `ts`
/// (applied: readable through every adapter; with deferred writes, on disk at the next checkpoint).
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
            self.metrics.record_latency(now_ms().saturating_sub(sent));
        }
        Ok(changes)
    }

    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError> {
        self.inner.get_state(thing).await
    }
}
