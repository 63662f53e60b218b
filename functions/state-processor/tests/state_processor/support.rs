use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use hearth_domain::device::DeviceId;
use hearth_domain::projection::{Changes, DeviceState};
use hearth_ports::memory::{MemoryDeadLetters, MemoryStateStore};
use hearth_ports::{DeadLetter, DeadLetterSink, StateStore, StoreError};
use hearth_state_processor::{Ports, Summary, handle};
use serde_json::{Value, json};

/// In-memory adapters that count calls and fail on demand.
#[derive(Default)]
pub struct World {
    pub store: MemoryStateStore,
    pub letters: MemoryDeadLetters,
    pub applies: AtomicUsize,
    pub transient_for: Mutex<HashSet<String>>,
    pub reject_for: Mutex<HashSet<String>>,
    pub letters_fail: Mutex<bool>,
    pub hang_for: Mutex<HashSet<String>>,
}

#[async_trait]
impl StateStore for World {
    async fn apply(&self, thing: &DeviceId, update: &DeviceState) -> Result<Changes, StoreError> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        if lock(&self.hang_for).contains(thing.as_str()) {
            std::future::pending::<()>().await;
        }
        if lock(&self.transient_for).contains(thing.as_str()) {
            return Err(StoreError::Transient("throttled".to_owned()));
        }
        if lock(&self.reject_for).contains(thing.as_str()) {
            return Err(StoreError::Rejected("item too large".to_owned()));
        }
        self.store.apply(thing, update).await
    }

    async fn get_state(&self, thing: &DeviceId) -> Result<Option<DeviceState>, StoreError> {
        self.store.get_state(thing).await
    }
}

#[async_trait]
impl DeadLetterSink for World {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>> {
        if *lock(&self.letters_fail) {
            return letters
                .iter()
                .map(|_| Err(StoreError::Transient("sqs unavailable".to_owned())))
                .collect();
        }
        self.letters.send(letters).await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    pub fn fail_transiently(&self, thing: &str) {
        lock(&self.transient_for).insert(thing.to_owned());
    }

    pub fn hang(&self, thing: &str) {
        lock(&self.hang_for).insert(thing.to_owned());
    }

    pub fn reject(&self, thing: &str) {
        lock(&self.reject_for).insert(thing.to_owned());
    }

    pub fn fail_dead_letters(&self) {
        *lock(&self.letters_fail) = true;
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports {
            store: self,
            dead_letters: self,
            clock: &hearth_ports::SystemClock,
        }
    }

    /// Runs a batch; returns the ids reported for retry and the summary.
    pub async fn run(&self, event: &SqsEvent) -> (Vec<String>, Summary) {
        match handle(self.ports(), event).await {
            Ok((response, summary)) => (
                response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect(),
                summary,
            ),
            Err(e) => panic!("batch failed: {e}"),
        }
    }

    pub async fn state(&self, thing: &str) -> DeviceState {
        let id = DeviceId::parse(thing).unwrap_or_else(|e| panic!("{e}"));
        self.store
            .get_state(&id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn reasons(&self) -> Vec<(String, String)> {
        self.letters
            .letters()
            .into_iter()
            .map(|l| (l.message_id, l.reason))
            .collect()
    }
}

/// An SQS record with this id and body.
pub fn record(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(body.to_owned());
    m.event_source = Some("aws:sqs".to_owned());
    m
}

pub fn batch(records: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = records;
    e
}

pub fn with_envelope(mut body: Value, thing: &str, topic: &str, received_at: u64) -> String {
    if let Some(o) = body.as_object_mut() {
        o.insert("thing".into(), thing.into());
        o.insert("topic".into(), topic.into());
        o.insert("received_at".into(), received_at.into());
    }
    body.to_string()
}

/// An `update/documents` message taking `thing` to `version` with `reported`.
pub fn documents(thing: &str, version: u64, received_at: u64, reported: Value) -> String {
    let previous = if version == 1 {
        Value::Null
    } else {
        json!({"state": {"reported": {}}, "metadata": {"reported": {}}, "version": version - 1})
    };
    with_envelope(
        json!({
            "previous": previous,
            "current": {"state": {"reported": reported}, "metadata": {"reported": {"power": {"timestamp": received_at / 1000}}}, "version": version},
            "timestamp": received_at / 1000,
        }),
        thing,
        &format!("$aws/things/{thing}/shadow/update/documents"),
        received_at,
    )
}

pub fn shadow_deleted(thing: &str, version: u64, received_at: u64) -> String {
    with_envelope(
        json!({"version": version, "timestamp": received_at / 1000}),
        thing,
        &format!("$aws/things/{thing}/shadow/delete/accepted"),
        received_at,
    )
}

pub fn telemetry(thing: &str, seq: u64, received_at: u64) -> String {
    with_envelope(
        json!({"seq": seq, "temperatureC": 20.5}),
        thing,
        &format!("dt/thermo-x/{thing}/telemetry"),
        received_at,
    )
}

pub fn presence(
    thing: &str,
    kind: &str,
    version: u64,
    timestamp: u64,
    reason: Option<&str>,
) -> String {
    let mut body = json!({"clientId": thing, "timestamp": timestamp, "eventType": kind, "versionNumber": version});
    if let (Some(reason), Some(o)) = (reason, body.as_object_mut()) {
        o.insert("disconnectReason".into(), reason.into());
    }
    with_envelope(
        body,
        thing,
        &format!("$aws/events/presence/{kind}/{thing}"),
        timestamp + 5,
    )
}

pub fn version(state: &DeviceState) -> Option<u64> {
    state.shadow.as_ref().map(|s| s.version)
}
