//! Queues to functions: each SQS event source of `template.yaml` becomes a consumer that receives
//! batches from its local queue, invokes the same handler the Lambda runs, and deletes what the
//! handler did not report as failed (partial batch responses). Messages it does not delete become
//! visible again after the queue's visibility timeout and, past the queue's max receive count,
//! move to its dead-letter queue: the queue implements those semantics.
//!
//! The batch reaches the function typed ([`LocalFunction::sqs`]): the hot path never goes
//! through JSON. Deletes are grouped: what the batches finished is deleted every
//! `checkpoint_every`, right after the function's [`LocalFunction::checkpoint`] has made their effects durable (a function
//! whose storage defers writes, such as the state processor's, writes each device once per
//! checkpoint instead of once per message). A crash in between loses no message: the queue
//! redelivers what was not deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use tokio::sync::{Notify, watch};

use crate::lambda::LocalFunction;
use crate::lock;
use tracing::{error, warn};

/// A message received from a local queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Stable id of the message.
    pub message_id: String,
    /// Handle for deleting this receipt.
    pub receipt: String,
    /// The body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// When it was sent (milliseconds).
    pub sent_at: u64,
}

/// A local queue as the consumers see it.
#[async_trait]
pub trait LocalQueue: Send + Sync {
    /// The queue's logical id in the template.
    fn name(&self) -> &str;
    /// Up to `max` visible messages, made invisible for the visibility timeout.
    async fn receive(&self, max: usize) -> Result<Vec<Received>, String>;
    /// Deletes received messages.
    async fn delete(&self, receipts: &[String]) -> Result<(), String>;
    /// Waits until messages may be visible (a send, or a visibility timeout expiring), or
    /// `timeout`.
    async fn wait(&self, timeout: Duration);
}

/// An SQS event source: which queue feeds which function, how.
#[derive(Clone)]
pub struct EventSource {
    /// The function's logical id (for logs).
    pub function: String,
    /// The queue.
    pub queue: Arc<dyn LocalQueue>,
    /// The handler.
    pub handler: Arc<dyn LocalFunction>,
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`: parallel batches.
    pub concurrency: usize,
    /// How often finished messages are checkpointed and deleted (well under the queue's
    /// visibility timeout, or they would be redelivered first).
    pub checkpoint_every: Duration,
}

/// Receipts of handled messages waiting for the next checkpoint.
#[derive(Default)]
struct Finished {
    receipts: Mutex<Vec<String>>,
    /// Wakes the checkpointer early when many are waiting.
    full: Notify,
}

/// Finished receipts that trigger a checkpoint before the interval ends.
const CHECKPOINT_RECEIPTS: usize = 1 << 16;

/// Runs an event source until `shutdown` turns true: `concurrency` pollers, each receiving a
/// batch and invoking the handler, and a checkpointer deleting the successes; once the pollers
/// have stopped, a last checkpoint deletes what they finished.
pub async fn run(source: EventSource, shutdown: watch::Receiver<bool>) {
    let finished = Arc::new(Finished::default());
    let pollers: Vec<_> = (0..source.concurrency.max(1))
        .map(|_| tokio::spawn(poll(source.clone(), finished.clone(), shutdown.clone())))
        .collect();
    let checkpointer = tokio::spawn(checkpoints(
        source.clone(),
        finished.clone(),
        shutdown.clone(),
    ));
    for poller in pollers {
        if let Err(e) = poller.await {
            error!(function = %source.function, error = %e, "poller stopped");
        }
    }
    if let Err(e) = checkpointer.await {
        error!(function = %source.function, error = %e, "checkpointer stopped");
    }
    checkpoint(&source, &finished).await;
}

async fn checkpoints(
    source: EventSource,
    finished: Arc<Finished>,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        tokio::select! {
            () = tokio::time::sleep(source.checkpoint_every) => {}
            () = finished.full.notified() => {}
            _ = shutdown.changed() => return,
        }
        checkpoint(&source, &finished).await;
    }
}

/// Checkpoints the function, then deletes the messages finished before it.
async fn checkpoint(source: &EventSource, finished: &Finished) {
    let receipts = std::mem::take(&mut *lock(&finished.receipts));
    if receipts.is_empty() {
        return;
    }
    if let Err(e) = source.handler.checkpoint().await {
        // Kept for the next checkpoint (not left to the visibility timeout, where each
        // redelivery would count towards the queue's max receive count).
        error!(function = %source.function, error = %e, "checkpoint failed; retrying with the next one");
        lock(&finished.receipts).extend(receipts);
        return;
    }
    if let Err(e) = source.queue.delete(&receipts).await {
        error!(queue = source.queue.name(), error = %e, "delete failed; messages will be redelivered");
    }
}

async fn poll(source: EventSource, finished: Arc<Finished>, mut shutdown: watch::Receiver<bool>) {
    let idle = Duration::from_millis(200);
    while !*shutdown.borrow() {
        let batch = match gather(&source).await {
            Ok(batch) => batch,
            Err(e) => {
                error!(queue = source.queue.name(), error = %e, "receive failed");
                tokio::time::sleep(idle).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                () = source.queue.wait(idle) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        deliver(&source, &finished, batch).await;
    }
}

/// One batch: what is visible now, topped up for at most the batching window.
async fn gather(source: &EventSource) -> Result<Vec<Received>, String> {
    let mut batch = source.queue.receive(source.batch_size).await?;
    if batch.is_empty() || source.batching_window.is_zero() {
        return Ok(batch);
    }
    let deadline = tokio::time::Instant::now() + source.batching_window;
    while batch.len() < source.batch_size {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        source.queue.wait(left).await;
        batch.extend(
            source
                .queue
                .receive(source.batch_size - batch.len())
                .await?,
        );
    }
    Ok(batch)
}

async fn deliver(source: &EventSource, finished: &Finished, batch: Vec<Received>) {
    let arn = format!("arn:aws:sqs:local:000000000000:{}", source.queue.name());
    let mut event = SqsEvent::default();
    event.records = batch.into_iter().map(|m| record(&arn, m)).collect();
    let failed: Vec<String> = match source.handler.sqs(&event).await {
        Ok(response) => response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        Err(e) => {
            warn!(function = %source.function, error = %e, "batch failed; every message will be retried");
            return;
        }
    };
    let waiting = {
        let mut receipts = lock(&finished.receipts);
        receipts.extend(
            event
                .records
                .into_iter()
                .filter(|r| r.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
                .filter_map(|r| r.receipt_handle),
        );
        receipts.len()
    };
    if waiting >= CHECKPOINT_RECEIPTS {
        finished.full.notify_one();
    }
}

/// The SQS record Lambda would pass for a received message (which moves into it).
fn record(arn: &str, m: Received) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(m.message_id);
    record.receipt_handle = Some(m.receipt);
    record.body = Some(m.body);
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(arn.to_owned());
    record.aws_region = Some("local".to_owned());
    record.attributes.insert(
        "ApproximateReceiveCount".to_owned(),
        m.receive_count.to_string(),
    );
    record
        .attributes
        .insert("SentTimestamp".to_owned(), m.sent_at.to_string());
    record
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use aws_lambda_events::event::sqs::SqsBatchResponse;
    use serde_json::Value;

    use super::*;
    use crate::lambda::{Invocation, InvokeError};

    /// What the fakes saw, in order.
    type Log = Arc<Mutex<Vec<String>>>;

    fn entries(log: &Log) -> Vec<String> {
        lock(log).clone()
    }

    /// Hands out its messages once; logs deletes.
    struct FakeQueue {
        messages: Mutex<VecDeque<Received>>,
        log: Log,
    }

    #[async_trait]
    impl LocalQueue for FakeQueue {
        fn name(&self) -> &str {
            "fake"
        }

        async fn receive(&self, max: usize) -> Result<Vec<Received>, String> {
            let mut messages = lock(&self.messages);
            let n = max.min(messages.len());
            Ok(messages.drain(..n).collect())
        }

        async fn delete(&self, receipts: &[String]) -> Result<(), String> {
            let mut receipts = receipts.to_vec();
            receipts.sort();
            lock(&self.log).push(format!("delete {}", receipts.join(",")));
            Ok(())
        }

        async fn wait(&self, timeout: Duration) {
            tokio::time::sleep(timeout.min(Duration::from_millis(5))).await;
        }
    }

    /// Fails the messages in `failing`; its first `failed_checkpoints` checkpoints fail.
    struct FakeFunction {
        failing: Vec<String>,
        failed_checkpoints: Mutex<usize>,
        log: Log,
    }

    #[async_trait]
    impl LocalFunction for FakeFunction {
        async fn invoke(&self, _event: Invocation) -> Result<Value, InvokeError> {
            Err(InvokeError::new("InvalidEvent", "only SQS batches"))
        }

        async fn sqs(&self, event: &SqsEvent) -> Result<SqsBatchResponse, InvokeError> {
            lock(&self.log).push(format!("invoke {}", event.records.len()));
            let mut response = SqsBatchResponse::default();
            for record in &event.records {
                let id = record.message_id.clone().unwrap_or_default();
                if self.failing.contains(&id) {
                    response.add_failure(id);
                }
            }
            Ok(response)
        }

        async fn checkpoint(&self) -> Result<(), String> {
            let mut failures = lock(&self.failed_checkpoints);
            if *failures > 0 {
                *failures -= 1;
                lock(&self.log).push("checkpoint failed".to_owned());
                return Err("disk full".to_owned());
            }
            lock(&self.log).push("checkpoint".to_owned());
            Ok(())
        }
    }

    fn message(n: usize) -> Received {
        Received {
            message_id: format!("m{n}"),
            receipt: format!("r{n}"),
            body: "{}".to_owned(),
            receive_count: 1,
            sent_at: 0,
        }
    }

    /// Runs an event source over `messages` for `run_for`, then shuts it down; the log.
    async fn run_source(
        messages: usize,
        failing: &[&str],
        failed_checkpoints: usize,
        checkpoint_every: Duration,
        run_for: Duration,
    ) -> Vec<String> {
        let log = Log::default();
        let source = EventSource {
            function: "Fake".to_owned(),
            queue: Arc::new(FakeQueue {
                messages: Mutex::new((1..=messages).map(message).collect()),
                log: log.clone(),
            }),
            handler: Arc::new(FakeFunction {
                failing: failing.iter().map(|&s| s.to_owned()).collect(),
                failed_checkpoints: Mutex::new(failed_checkpoints),
                log: log.clone(),
            }),
            batch_size: 10,
            batching_window: Duration::ZERO,
            concurrency: 1,
            checkpoint_every,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let running = tokio::spawn(run(source, shutdown_rx));
        tokio::time::sleep(run_for).await;
        let _ = shutdown.send(true);
        if let Err(e) = running.await {
            panic!("event source: {e}");
        }
        entries(&log)
    }

    #[tokio::test]
    async fn handled_messages_are_deleted_after_a_checkpoint_and_failures_never() {
        let log = run_source(
            3,
            &["m2"],
            0,
            Duration::from_millis(20),
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(log, ["invoke 3", "checkpoint", "delete r1,r3"], "{log:?}");
    }

    #[tokio::test]
    async fn after_a_failed_checkpoint_the_next_one_deletes_the_same_messages() {
        let log = run_source(2, &[], 2, Duration::from_millis(20), Duration::from_secs(1)).await;
        assert_eq!(
            log,
            [
                "invoke 2",
                "checkpoint failed",
                "checkpoint failed",
                "checkpoint",
                "delete r1,r2"
            ],
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn stopping_checkpoints_and_deletes_what_was_handled() {
        let log = run_source(
            4,
            &[],
            0,
            Duration::from_secs(3600),
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(
            log,
            ["invoke 4", "checkpoint", "delete r1,r2,r3,r4"],
            "{log:?}"
        );
    }
}
