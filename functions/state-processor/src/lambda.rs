//! The Lambda invocation around [`function_handler`]: what the binary runs, with one CloudWatch
//! metrics line (Embedded Metric Format, [`hearth_metrics::QUEUE_CONSUMER`]) per invocation.
//! Only the Lambda binary uses it (feature `lambda`): the local stack calls [`crate::handle`]
//! and keeps metrics of its own.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hearth_metrics::{Emitter, MetricsError, QUEUE_CONSUMER};
use hearth_ports::{DeadLetter, DeadLetterSink, StoreError};
use lambda_runtime::LambdaEvent;
use tracing::warn;

use crate::{BatchError, Ports, function_handler};

/// The binary's name: the `Function` dimension outside Lambda.
pub const FUNCTION_NAME: &str = "hearth-state-processor";

/// The SQS attribute with the time a message was sent to the queue (milliseconds).
const SENT_TIMESTAMP: &str = "SentTimestamp";
/// The SQS attribute with the time a message was first received, where `SentTimestamp` is
/// missing.
const FIRST_RECEIVE_TIMESTAMP: &str = "ApproximateFirstReceiveTimestamp";

/// The emitter of this function's metrics: the namespace from `HEARTH_METRICS_NAMESPACE`
/// (`Hearth` by default), the `Function` dimension from Lambda's function name.
pub fn emitter() -> Result<Emitter<6>, MetricsError> {
    Emitter::new(
        &QUEUE_CONSUMER,
        hearth_metrics::namespace_from_env()?,
        vec![hearth_metrics::function_name(FUNCTION_NAME)],
    )
}

/// What one invocation did, as [`QUEUE_CONSUMER`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Records received.
    pub messages: usize,
    /// Records reported for retry (all of them when the whole batch failed).
    pub failures: usize,
    /// Messages the dead-letter queue accepted.
    pub dead_letters: usize,
    /// How long the oldest record had waited since it was sent to the queue (milliseconds; 0
    /// when no record carries a timestamp).
    pub oldest_message_age_ms: u64,
    /// How long the handler took (milliseconds).
    pub duration_ms: u64,
}

impl Invocation {
    /// The values in [`QUEUE_CONSUMER`]'s order.
    #[allow(clippy::cast_precision_loss)] // Counts and milliseconds are far below 2^52.
    pub fn values(&self) -> [f64; 6] {
        [
            self.messages as f64,
            self.failures as f64,
            self.dead_letters as f64,
            self.messages as f64,
            self.oldest_message_age_ms as f64,
            self.duration_ms as f64,
        ]
    }
}

/// Runs [`function_handler`] on one invocation and writes its metrics line to `out` (stdout in
/// Lambda: [`hearth_metrics::Stdout`]). A line that cannot be written is logged; it never fails
/// the invocation.
pub async fn invoke(
    ports: Ports<'_>,
    metrics: &Emitter<6>,
    out: &mut (dyn Write + Send),
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let (result, invocation) = observe(ports, event).await;
    if let Err(e) = metrics.emit_to(out, ports.clock.now_ms(), invocation.values()) {
        warn!(error = %e, "metrics line not written");
    }
    result
}

/// Runs [`function_handler`] and measures the invocation.
pub async fn observe(
    ports: Ports<'_>,
    event: LambdaEvent<SqsEvent>,
) -> (Result<SqsBatchResponse, BatchError>, Invocation) {
    let started = Instant::now();
    let messages = event.payload.records.len();
    let oldest_message_age_ms = oldest_message_age(&event.payload, ports.clock.now_ms());
    let counting = CountingDeadLetters {
        inner: ports.dead_letters,
        accepted: AtomicUsize::new(0),
    };
    let result = function_handler(
        Ports {
            dead_letters: &counting,
            ..ports
        },
        event,
    )
    .await;
    let failures = match &result {
        Ok(response) => response.batch_item_failures.len(),
        Err(_) => messages,
    };
    let invocation = Invocation {
        messages,
        failures,
        dead_letters: counting.accepted.load(Ordering::Relaxed),
        oldest_message_age_ms,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    (result, invocation)
}

/// How long the batch's oldest record has waited at `now_ms`: from its `SentTimestamp`, or its
/// `ApproximateFirstReceiveTimestamp` without one; 0 when no record carries either.
pub fn oldest_message_age(event: &SqsEvent, now_ms: u64) -> u64 {
    event
        .records
        .iter()
        .filter_map(|record| {
            [SENT_TIMESTAMP, FIRST_RECEIVE_TIMESTAMP]
                .iter()
                .find_map(|name| record.attributes.get(*name)?.parse::<u64>().ok())
        })
        .min()
        .map_or(0, |oldest| now_ms.saturating_sub(oldest))
}

/// The dead-letter sink, counting the letters it accepted (one per invocation).
struct CountingDeadLetters<'a> {
    inner: &'a dyn DeadLetterSink,
    accepted: AtomicUsize,
}

#[async_trait]
impl DeadLetterSink for CountingDeadLetters<'_> {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>> {
        let results = self.inner.send(letters).await;
        let accepted = results
            .iter()
            .take(letters.len())
            .filter(|r| r.is_ok())
            .count();
        self.accepted.fetch_add(accepted, Ordering::Relaxed);
        results
    }
}
