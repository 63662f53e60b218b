//! The wiring between the pieces: the template's routing (`hearth-iot-rules`), the embedded
//! storage and queues (`hearth-embedded`), and the broker, pipeline and HTTP traits of this crate.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hearth_domain::device::DeviceId;
use hearth_domain::shadow::Shadow;
use hearth_embedded::{Db, EmbeddedError, IngestLog, Logged, Queue, QueueConfig, Receipt, Redrive};
use hearth_iot_rules::template::{self, Consumer, Routing};
use hearth_ports::{StateStore, StoreError};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info};

use crate::broker::Ingress;
use crate::http::Inspect;
use crate::metrics::Metrics;
use crate::pipeline::{LocalQueue, Received};
use crate::shadow_service::ShadowStorage;
use crate::stack::StackError;

/// Reads the template's routing with the parameters' defaults.
pub fn load_routing(path: &Path) -> Result<Routing, StackError> {
    load_routing_with(path, &BTreeMap::new())
}

/// Reads the template's routing, some parameters overridden (as `sam deploy
/// --parameter-overrides`).
pub fn load_routing_with(
    path: &Path,
    overrides: &BTreeMap<String, String>,
) -> Result<Routing, StackError> {
    let failed = |detail: String| StackError::Template {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| failed(format!("cannot read the template: {e}")))?;
    template::parse_with(&text, overrides).map_err(|e| failed(e.to_string()))
}

/// Topic rules in the routing.
pub fn rule_count(routing: &Routing) -> usize {
    routing.rules().len()
}

/// The most batches of one event source processed at once locally.
const LOCAL_POLLERS: usize = 2;

/// The longest a handled message waits for its checkpoint and delete.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The shortest interval between checkpoints (a queue with a visibility timeout of zero
/// redelivers at once anyway).
const MIN_CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// An SQS event source as the pipeline runs it.
pub struct ConsumerSpec {
    /// Function logical id.
    pub function: String,
    /// Cargo binary (selects the handler).
    pub binary: String,
    /// Queue logical id.
    pub queue: String,
    /// Batch size.
    pub batch_size: usize,
    /// Batching window.
    pub batching_window: Duration,
    /// Parallel batches.
    pub concurrency: usize,
    /// How often finished messages are checkpointed and deleted.
    pub checkpoint_every: Duration,
    /// The function's environment, resolved.
    pub environment: BTreeMap<String, String>,
}

/// The enabled SQS event sources of the template.
pub fn consumers(routing: &Routing) -> Vec<ConsumerSpec> {
    routing
        .consumers()
        .iter()
        .filter(|c| c.enabled)
        .map(|c: &Consumer| ConsumerSpec {
            function: c.function.clone(),
            binary: c.binary.clone(),
            queue: c.queue.clone(),
            batch_size: usize::try_from(c.batch_size).unwrap_or(10).max(1),
            batching_window: c.batching_window,
            // Lambda runs up to `MaximumConcurrency` batches at once; locally more pollers than
            // cores only add contention.
            concurrency: c
                .maximum_concurrency
                .map_or(LOCAL_POLLERS, |n| {
                    usize::try_from(n).unwrap_or(LOCAL_POLLERS)
                })
                .clamp(1, LOCAL_POLLERS),
            // Longer intervals write each device's state less often; a quarter of what the
            // visibility timeout leaves after the batching window at most, so that nothing is
            // redelivered while it waits.
            checkpoint_every: routing
                .queues()
                .get(&c.queue)
                .map_or(CHECKPOINT_EVERY, |q| {
                    (q.visibility_timeout.saturating_sub(c.batching_window) / 4)
                        .clamp(MIN_CHECKPOINT_EVERY, CHECKPOINT_EVERY)
                }),
            environment: c.environment.clone(),
        })
        .collect()
}

fn storage_error(data_dir: &Path, e: &EmbeddedError) -> StackError {
    StackError::Storage {
        path: data_dir.display().to_string(),
        detail: e.to_string(),
    }
}

/// The embedded database and the adapters on it.
#[derive(Clone)]
pub struct Storage {
    db: Db,
    path: std::path::PathBuf,
}

/// Every queue of the template, by logical id.
pub type Queues = HashMap<String, Arc<Queue>>;

impl Storage {
    /// Opens the database under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Storage, StackError> {
        let db = Db::open(data_dir).map_err(|e| storage_error(data_dir, &e))?;
        Ok(Storage {
            db,
            path: data_dir.to_path_buf(),
        })
    }

    /// Opens every queue of the routing with its template settings.
    pub fn open_queues(&self, routing: &Routing) -> Result<Queues, StackError> {
        let mut queues = Queues::new();
        // A dead-letter queue must be open before the queues that redrive to it.
        let mut pending: Vec<_> = routing.queues().iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let (ready, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, spec)| {
                spec.redrive
                    .as_ref()
                    .is_none_or(|r| queues.contains_key(&r.dead_letter_queue))
            });
            pending = waiting;
            if ready.is_empty() && pending.len() == before {
                return Err(StackError::Template {
                    path: self.path.display().to_string(),
                    detail: "queues redrive to each other in a cycle".to_owned(),
                });
            }
            for (name, spec) in ready {
                let config = QueueConfig {
                    visibility_timeout: spec.visibility_timeout,
                    retention: spec.message_retention,
                    redrive: spec.redrive.as_ref().map(|r| Redrive {
                        dead_letter_queue: r.dead_letter_queue.clone(),
                        max_receive_count: r.max_receive_count,
                    }),
                };
                let queue = self
                    .db
                    .queue(name, config)
                    .map_err(|e| storage_error(&self.path, &e))?;
                queues.insert(name.clone(), Arc::new(queue));
            }
        }
        Ok(queues)
    }

    /// Opens the ingest log under `<data dir>/ingest`, with the records it holds.
    pub fn open_ingest_log(&self) -> Result<(Arc<IngestLog>, Vec<Logged>), StackError> {
        let dir = self.path.join("ingest");
        let floor = self
            .db
            .ingest_floor()
            .map_err(|e| storage_error(&self.path, &e))?;
        let (log, logged) = IngestLog::open(&dir, floor).map_err(|e| storage_error(&dir, &e))?;
        Ok((Arc::new(log), logged))
    }

    /// Presence version numbers from the database's persisted counter.
    pub fn versions(&self) -> crate::broker::Versions {
        let db = self.db.clone();
        Box::new(move || db.next_sequence().ok())
    }

    /// The registry (and enrollment) adapter.
    pub fn registry(&self) -> hearth_embedded::EmbeddedRegistry {
        self.db.registry()
    }

    /// The state projection adapter (the same cache as the state processor's).
    pub fn state_store(&self) -> hearth_embedded::EmbeddedStateStore {
        self.db.state_store()
    }

    /// The state projection adapter whose writes wait for its `checkpoint()` (see
    /// [`hearth_embedded::Db::deferred_state_store`]).
    pub fn deferred_state_store(&self) -> hearth_embedded::EmbeddedStateStore {
        self.db.deferred_state_store()
    }

    /// The dead letters a function sends.
    pub fn dead_letters(&self) -> hearth_embedded::EmbeddedDeadLetters {
        self.db.dead_letters()
    }

    /// JSON records of a local emulation.
    pub fn documents(&self, namespace: &str) -> hearth_embedded::Documents {
        self.db.documents(namespace)
    }

    /// The shadow storage.
    pub fn shadows(&self) -> Arc<dyn ShadowStorage> {
        Arc::new(Shadows(self.db.shadows()))
    }

    /// Makes every write so far durable (fsync).
    pub async fn flush(&self) -> Result<(), StackError> {
        self.db
            .persist()
            .await
            .map_err(|e| storage_error(&self.path, &e))
    }
}

struct Shadows(hearth_embedded::ShadowStore);

fn store_error(e: EmbeddedError) -> StoreError {
    StoreError::Transient(e.to_string())
}

#[async_trait]
impl ShadowStorage for Shadows {
    async fn get(&self, thing: &str) -> Result<Option<Shadow>, StoreError> {
        self.0.get(thing).await.map_err(store_error)
    }

    async fn put(&self, thing: &str, shadow: &Shadow) -> Result<(), StoreError> {
        self.0.put(thing, shadow).await.map_err(store_error)
    }

    async fn delete(&self, thing: &str) -> Result<(), StoreError> {
        self.0.delete(thing).await.map(|_| ()).map_err(store_error)
    }
}

/// The template's topic rules in front of the durable queues, through the ingest log: a routed
/// message is appended to the log (one `write`: it survives the process being killed) and
/// accepted at once, so the broker's PUBACK never waits for a queue commit; one committer per
/// queue moves the log's messages into the queue in batches behind it (see
/// [`hearth_embedded::IngestLog`]).
pub struct RulesIngress {
    routing: Routing,
    log: Arc<IngestLog>,
    senders: HashMap<String, Sender>,
    /// Set when a committed batch could not be fsynced: nothing can be made durable any more,
    /// so nothing more is accepted.
    failed: Arc<AtomicBool>,
    committers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Messages a queue's committer may be behind by before publishes routed to it are refused
/// (the client is disconnected and resends later).
const MAX_BACKLOG: u64 = 1 << 20;
/// How long closing waits for a committer to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

impl RulesIngress {
    /// Sends the queues what `logged` (the log's records, as opened) holds that they do not,
    /// then starts a committer per queue on `runtime` (the [`Backend`](crate::backend::Backend)
    /// thread's). Call it before anything is published: a queue's messages must reach it in log
    /// order.
    pub async fn start(
        routing: &Routing,
        queues: &Queues,
        log: Arc<IngestLog>,
        logged: Vec<Logged>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, StackError> {
        replay(queues, logged).await?;
        // Everything the log held is in the queues, fsynced.
        log.release(|| u64::MAX);
        let progress: Vec<(&String, &Arc<Queue>, Arc<Progress>)> = queues
            .iter()
            .map(|(name, queue)| (name, queue, Arc::new(Progress::default())))
            .collect();
        let all: Arc<[Arc<Progress>]> = progress.iter().map(|(_, _, p)| p.clone()).collect();
        let failed = Arc::new(AtomicBool::new(false));
        let mut senders = HashMap::new();
        let mut committers = Vec::new();
        for (name, queue, progress) in progress {
            let (sender, committer) = Sender::start(
                Committer {
                    queue: queue.clone(),
                    progress,
                    all: all.clone(),
                    log: log.clone(),
                    failed: failed.clone(),
                },
                runtime,
            );
            senders.insert(name.clone(), sender);
            committers.push(committer);
        }
        Ok(Self {
            routing: routing.clone(),
            log,
            senders,
            failed,
            committers: std::sync::Mutex::new(committers),
        })
    }

    /// Has every committer queue what it was handed, then stop. Later publishes are refused.
    pub async fn close(&self) {
        let mut closing = Vec::new();
        for sender in self.senders.values() {
            let (done, closed) = oneshot::channel();
            if sender.tx.send(Item::Close(done)).is_ok() {
                closing.push(closed);
            }
        }
        for closed in closing {
            let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
        }
        let committers = std::mem::take(&mut *crate::lock(&self.committers));
        for committer in committers {
            committer.abort();
            let _ = committer.await;
        }
    }
}

/// Sends each queue the log's records past its [`Queue::logged_through`], in log order. Records
/// for a queue the template no longer defines stop the start: they were acknowledged, and only
/// the user can decide to drop them.
async fn replay(queues: &Queues, logged: Vec<Logged>) -> Result<(), StackError> {
    let mut by_queue: HashMap<String, Vec<Logged>> = HashMap::new();
    for record in logged {
        by_queue
            .entry(record.queue.clone())
            .or_default()
            .push(record);
    }
    let mut unknown: Vec<String> = by_queue
        .iter()
        .filter(|(name, _)| !queues.contains_key(*name))
        .map(|(name, records)| format!("{} for {name}", records.len()))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(StackError::Storage {
            path: "ingest log".to_owned(),
            detail: format!(
                "it holds acknowledged messages for queues template.yaml does not define ({}); \
                 define them again, or delete the data directory's ingest/ folder to drop them",
                unknown.join(", ")
            ),
        });
    }
    for (name, records) in by_queue {
        let Some(queue) = queues.get(&name) else {
            continue;
        };
        let failed = |e: EmbeddedError| StackError::Storage {
            path: format!("ingest log → queue {name}"),
            detail: e.to_string(),
        };
        let through = queue.logged_through().map_err(failed)?;
        let pending: Vec<&Logged> = records.iter().filter(|r| r.seq > through).collect();
        for chunk in pending.chunks(MAX_BATCH) {
            let bodies: Vec<&[u8]> = chunk.iter().map(|r| r.body.as_slice()).collect();
            let last = chunk.last().map_or(through, |r| r.seq);
            queue
                .send_logged(&bodies, last, hearth_embedded::now_ms())
                .await
                .map_err(failed)?;
        }
        if !pending.is_empty() {
            info!(queue = %name, messages = pending.len(), "queued from the ingest log after a restart");
        }
    }
    Ok(())
}

#[async_trait]
impl Ingress for RulesIngress {
    async fn accept(
        &self,
        topic: &str,
        payload: &[u8],
        client_id: &str,
        now_ms: u64,
    ) -> Result<(), String> {
        if self.failed.load(Ordering::Acquire) {
            return Err(
                "the queues can no longer be made durable (an fsync failed); restart the stack"
                    .to_owned(),
            );
        }
        let routed = self.routing.route(topic, payload, client_id, now_ms);
        if routed.is_empty() {
            debug!(topic, "no topic rule matched");
        }
        // Every copy is checked before the first is logged: a refused message leaves none.
        let mut checked = Vec::with_capacity(routed.len());
        for (queue, body) in routed {
            let Some(sender) = self.senders.get(queue) else {
                return Err(format!("rule targets unknown queue {queue}"));
            };
            if body.len() > hearth_embedded::MAX_MESSAGE_BYTES {
                return Err(format!(
                    "message of {} bytes exceeds the queue's {}-byte limit",
                    body.len(),
                    hearth_embedded::MAX_MESSAGE_BYTES
                ));
            }
            let backlog = sender.progress.backlog();
            if backlog > MAX_BACKLOG {
                return Err(format!("queue {queue} is {backlog} messages behind"));
            }
            checked.push((queue, sender, body));
        }
        for (queue, sender, body) in checked {
            self.log
                .append(queue, body, |seq, body| sender.push(seq, body))
                .map_err(|e| e.to_string())??;
        }
        Ok(())
    }
}

/// How far one queue's committer got: the last log sequence number handed to it, and the last
/// one it holds durably.
#[derive(Default)]
struct Progress {
    pushed: AtomicU64,
    durable: AtomicU64,
}

impl Progress {
    /// Messages handed over and not yet durable.
    fn backlog(&self) -> u64 {
        self.pushed
            .load(Ordering::Acquire)
            .saturating_sub(self.durable.load(Ordering::Acquire))
    }
}

/// The log sequence number up to which every queue holds every message durably: the lowest
/// `durable` of the committers that have messages outstanding (`u64::MAX` if none has).
fn durable_through(all: &[Arc<Progress>]) -> u64 {
    all.iter()
        .filter_map(|p| {
            let durable = p.durable.load(Ordering::Acquire);
            (p.pushed.load(Ordering::Acquire) != durable).then_some(durable)
        })
        .min()
        .unwrap_or(u64::MAX)
}

/// What a committer is handed.
enum Item {
    /// A log message for its queue: sequence number and body.
    Message(u64, Vec<u8>),
    /// Queue what came before, answer, and stop.
    Close(oneshot::Sender<()>),
}

/// The handle the hook hands a queue's log messages to.
struct Sender {
    tx: mpsc::UnboundedSender<Item>,
    progress: Arc<Progress>,
}

/// One queue's committer: takes the log's messages for the queue in log order and sends them
/// in batches (one commit and one fsync for many; a batch gathers while the previous one
/// waits for its fsync), then releases the log segments every queue holds durably.
struct Committer {
    queue: Arc<Queue>,
    progress: Arc<Progress>,
    all: Arc<[Arc<Progress>]>,
    log: Arc<IngestLog>,
    failed: Arc<AtomicBool>,
}

/// Largest batch one commit takes.
const MAX_BATCH: usize = 1024;
/// The longest wait between attempts to commit a batch that failed.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

impl Sender {
    fn start(
        committer: Committer,
        runtime: &tokio::runtime::Handle,
    ) -> (Sender, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel::<Item>();
        let sender = Sender {
            tx,
            progress: committer.progress.clone(),
        };
        (sender, runtime.spawn(committer.run(rx)))
    }

    /// Hands the committer the log's message `seq` (called in log order, under the log).
    fn push(&self, seq: u64, body: Vec<u8>) -> Result<(), String> {
        self.progress.pushed.store(seq, Ordering::Release);
        self.tx
            .send(Item::Message(seq, body))
            .map_err(|_| "the queue's committer stopped".to_owned())
    }
}

impl Committer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Item>) {
        while let Some(item) = rx.recv().await {
            let mut batch = Vec::new();
            let mut close = None;
            match item {
                Item::Message(seq, body) => batch.push((seq, body)),
                Item::Close(done) => close = Some(done),
            }
            while close.is_none() && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Item::Message(seq, body)) => batch.push((seq, body)),
                    Ok(Item::Close(done)) => close = Some(done),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() && !self.commit(&batch).await {
                return;
            }
            if let Some(done) = close {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Sends one batch; `false` if nothing can be made durable any more.
    async fn commit(&self, batch: &[(u64, Vec<u8>)]) -> bool {
        let through = batch.last().map_or(0, |(seq, _)| *seq);
        let bodies: Vec<&[u8]> = batch.iter().map(|(_, body)| body.as_slice()).collect();
        let mut wait = Duration::from_millis(100);
        loop {
            match self
                .queue
                .send_logged(&bodies, through, hearth_embedded::now_ms())
                .await
            {
                Ok(_) => break,
                Err(EmbeddedError::SyncFailed(reason)) => {
                    // Committed, never durable: sending it again would queue it twice. The
                    // log keeps it for the next start; until then nothing more is accepted.
                    error!(
                        queue = self.queue.name(),
                        reason,
                        "the queue can no longer be made durable; refusing further messages"
                    );
                    self.failed.store(true, Ordering::Release);
                    return false;
                }
                Err(e) => {
                    // Not committed: the messages are acknowledged and in the log, so keep
                    // trying (a restart would replay them too).
                    error!(queue = self.queue.name(), error = %e, "could not queue messages from the ingest log; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_RETRY_WAIT);
                }
            }
        }
        self.progress.durable.store(through, Ordering::Release);
        self.log.release(|| durable_through(&self.all));
        true
    }
}

/// A durable queue as the pipeline sees it.
struct PipelineQueue(Arc<Queue>);

#[async_trait]
impl LocalQueue for PipelineQueue {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn receive(&self, max: usize) -> Result<Vec<Received>, String> {
        let received = self
            .0
            .receive(max, hearth_embedded::now_ms())
            .map_err(|e| e.to_string())?;
        Ok(received
            .into_iter()
            .map(|m| Received {
                message_id: m.message_id.to_string(),
                receipt: m.receipt.to_string(),
                // The rules write UTF-8 JSON: `to_str`'s validation (an ASCII fast path) is
                // cheaper than the lossy decoder's, which is only for bytes that are not UTF-8
                // (the handler then rejects them as malformed).
                body: m.body.to_str().map_or_else(
                    |_| String::from_utf8_lossy(m.body.as_bytes()).into_owned(),
                    str::to_owned,
                ),
                receive_count: m.receive_count,
                sent_at: m.sent_at,
            })
            .collect())
    }

    async fn delete(&self, receipts: &[String]) -> Result<(), String> {
        let receipts: Vec<Receipt> = receipts.iter().filter_map(|r| r.parse().ok()).collect();
        self.0
            .delete(&receipts)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn wait(&self, timeout: Duration) {
        self.0.wait(timeout).await;
    }
}

/// The queue an event source reads.
pub fn queue_for(
    consumer: &ConsumerSpec,
    queues: &Queues,
) -> Result<Arc<dyn LocalQueue>, StackError> {
    let queue = queues
        .get(&consumer.queue)
        .ok_or_else(|| StackError::Function {
            function: consumer.function.clone(),
            detail: format!(
                "reads queue {} that the template does not define",
                consumer.queue
            ),
        })?;
    Ok(Arc::new(PipelineQueue(queue.clone())))
}

/// The HTTP views.
pub struct Inspector {
    storage: Storage,
    queues: Queues,
    dead_letter_queues: Vec<String>,
    metrics: Arc<Metrics>,
}

impl Inspector {
    /// Views over `storage` and `queues`.
    pub fn new(storage: &Storage, queues: &Queues, metrics: Arc<Metrics>) -> Self {
        let dead_letter_queues = queues
            .values()
            .filter_map(|q| {
                q.config()
                    .redrive
                    .as_ref()
                    .map(|r| r.dead_letter_queue.clone())
            })
            .collect();
        Self {
            storage: storage.clone(),
            queues: queues.clone(),
            dead_letter_queues,
            metrics,
        }
    }
}

#[async_trait]
impl Inspect for Inspector {
    async fn device_state(&self, thing: &str) -> Result<Option<Value>, String> {
        let Ok(id) = DeviceId::parse(thing) else {
            return Ok(None);
        };
        let state = self
            .storage
            .state_store()
            .get_state(&id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(state.map(|s| serde_json::to_value(s).unwrap_or(Value::Null)))
    }

    async fn queues(&self) -> Result<Vec<Value>, String> {
        let mut out: Vec<Value> = self
            .queues
            .iter()
            .map(|(name, q)| {
                json!({
                    "name": name,
                    "messages": q.approximate_len(),
                    "in_flight": q.approximate_in_flight(),
                    "dead_letter_queue": self.dead_letter_queues.contains(name),
                })
            })
            .collect();
        out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(out)
    }

    fn metrics(&self) -> Value {
        self.metrics.to_json()
    }

    async fn dead_letters(&self) -> Result<Vec<Value>, String> {
        let letters = self
            .storage
            .db
            .dead_letters()
            .letters()
            .map_err(|e| e.to_string())?;
        Ok(letters
            .into_iter()
            .map(|l| {
                json!({
                    "message_id": l.message_id,
                    "reason": l.reason,
                    "detail": l.detail,
                    "body": l.body,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tokio::runtime::Handle;

    use super::*;

    fn template() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
    }

    fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
        match result {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }

    /// A stack's storage and queues from the template, in a temporary directory, and its
    /// state queue.
    fn fixture() -> (tempfile::TempDir, Routing, Storage, Queues, Arc<Queue>) {
        let dir = ok(tempfile::tempdir());
        let routing = ok(load_routing(&template()));
        let storage = ok(Storage::open(dir.path()));
        let queues = ok(storage.open_queues(&routing));
        let Some(state) = queues.get("StateQueue").cloned() else {
            panic!("the template has no StateQueue");
        };
        (dir, routing, storage, queues, state)
    }

    fn bodies(queue: &Queue) -> Vec<Vec<u8>> {
        ok(queue.receive(100, hearth_embedded::now_ms()))
            .into_iter()
            .map(|m| m.body.as_bytes().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn acknowledged_messages_in_the_ingest_log_reach_their_queue_exactly_once() {
        let (_dir, routing, storage, queues, state) = fixture();
        // Acknowledged before a crash: all three in the log, only the first one committed.
        {
            let (log, _) = ok(storage.open_ingest_log());
            for body in [&b"a"[..], b"b", b"c"] {
                ok(log.append("StateQueue", body.to_vec(), |_, _| ()));
            }
        }
        ok(state
            .send_logged(&[b"a"], 1, hearth_embedded::now_ms())
            .await);

        let (log, logged) = ok(storage.open_ingest_log());
        assert_eq!(logged.len(), 3);
        let _ingress =
            ok(
                RulesIngress::start(&routing, &queues, log.clone(), logged, &Handle::current())
                    .await,
            );
        assert_eq!(
            bodies(&state),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(ok(state.logged_through()), 3);
        assert_eq!(log.sealed(), 0, "the replayed segment is released");
    }

    #[tokio::test]
    async fn a_routed_message_is_acknowledged_from_the_log_and_then_queued() {
        let (_dir, routing, storage, queues, state) = fixture();
        let (log, logged) = ok(storage.open_ingest_log());
        let ingress =
            ok(RulesIngress::start(&routing, &queues, log, logged, &Handle::current()).await);
        let payload = br#"{"seq":1,"temperatureC":21.5}"#;
        ok(ingress
            .accept("dt/thermo-x/th-1/telemetry", payload, "th-1", 1000)
            .await);
        // Closing has the committers queue what they were handed.
        ingress.close().await;
        let received = bodies(&state);
        assert_eq!(received.len(), 1, "queued behind the log");
        let Ok(body) = serde_json::from_slice::<Value>(&received[0]) else {
            panic!("not JSON");
        };
        assert_eq!(body["thing"], "th-1");
        assert_eq!(body["seq"], 1);
        assert!(ok(state.logged_through()) >= 1);
        assert!(
            ingress
                .accept("dt/thermo-x/th-1/telemetry", payload, "th-1", 1001)
                .await
                .is_err(),
            "nothing is accepted once closed"
        );
    }

    #[tokio::test]
    async fn logged_messages_for_a_queue_the_template_dropped_stop_the_start() {
        let (_dir, routing, storage, queues, _) = fixture();
        {
            let (log, _) = ok(storage.open_ingest_log());
            ok(log.append("RemovedQueue", b"kept".to_vec(), |_, _| ()));
        }
        let (log, logged) = ok(storage.open_ingest_log());
        let Err(e) = RulesIngress::start(&routing, &queues, log, logged, &Handle::current()).await
        else {
            panic!("started with acknowledged messages for a queue that is gone");
        };
        assert!(e.to_string().contains("1 for RemovedQueue"), "{e}");
        // Still there for the user to decide.
        let (_, logged) = ok(storage.open_ingest_log());
        assert_eq!(logged.len(), 1);
    }
}
