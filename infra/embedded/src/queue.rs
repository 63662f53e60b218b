//! Durable queues with the SQS semantics the Lambda handlers rely on (see [`Queue`]).
//!
//! Records in the `queues` keyspace:
//!
//! | key | value |
//! |---|---|
//! | `<queue name> 0x00 <id: u64 BE> 0x00` | format `1`, `sent_at: u64 BE`, the body |
//! | `<queue name> 0x00 <id: u64 BE> 0x01` | `receive_count: u32 BE`, `first_received_at: u64 BE` |

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjall::Slice;
use tokio::sync::Notify;

use crate::EmbeddedError;
use crate::db::{Shared, now_ms};
use crate::sync::lock;

/// The largest message body, in bytes (SQS's limit).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

const FORMAT: u8 = 1;
/// Format byte and `sent_at`.
const HEADER: usize = 9;
const TAG_MESSAGE: u8 = 0;
const TAG_RECEIVES: u8 = 1;
/// The `meta` keys of the queues' ingest log positions: this prefix and the queue name.
const LOGGED_PREFIX: &[u8] = b"ingest/";
/// SQS's longest queue name.
const MAX_NAME: usize = 80;

/// A queue's settings (SQS attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a received message stays invisible (SQS default: 30 s).
    pub visibility_timeout: Duration,
    /// How long a message is kept, counted from its send (SQS default: 4 days).
    pub retention: Duration,
    /// Where messages go after too many receives.
    pub redrive: Option<Redrive>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            retention: Duration::from_secs(4 * 24 * 3600),
            redrive: None,
        }
    }
}

/// A redrive policy: a message received `max_receive_count` times moves to the dead-letter
/// queue on its next receive, keeping its id, body and send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The dead-letter queue's name; open it before this queue.
    pub dead_letter_queue: String,
    /// Receives before the move (SQS's `maxReceiveCount`).
    pub max_receive_count: u32,
}

/// A message's id: unique within the database, kept when the message moves to a dead-letter
/// queue. Displayed (and parsed) as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(u64);

impl MessageId {
    /// The id as a number (ids grow with send order).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.0)
    }
}

/// Writes `n` as 16 lowercase hex digits (`{:016x}` without the formatting machinery: ids
/// and receipts are formatted for every message a consumer receives).
fn write_hex(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
}

/// Text that is not a [`MessageId`] or a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0}")]
pub struct ParseError(&'static str);

impl FromStr for MessageId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_hex(s).map(Self).ok_or(ParseError("message id"))
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// The handle of one receive of a message: deleting or changing the visibility of the message
/// takes the receipt of its latest receive. Displayed (and parsed) as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    message: u64,
    token: u64,
}

impl Receipt {
    /// The message this receipt is for.
    pub fn message_id(self) -> MessageId {
        MessageId(self.message)
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.message)?;
        write_hex(f, self.token)
    }
}

impl FromStr for Receipt {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let parsed = s
            .split_at_checked(16)
            .and_then(|(m, t)| Some((parse_hex(m)?, parse_hex(t)?)));
        match parsed {
            Some((message, token)) => Ok(Self { message, token }),
            None => Err(ParseError("receipt")),
        }
    }
}

/// A message body: bytes shared with the database (cloning is cheap).
#[derive(Clone, PartialEq, Eq)]
pub struct Body(Slice);

impl Body {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.get(HEADER..).unwrap_or_default()
    }

    /// The body as text, if it is UTF-8.
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(self.as_bytes())
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message's id.
    pub message_id: MessageId,
    /// This receive's handle, for [`Queue::delete`] and [`Queue::change_visibility`].
    pub receipt: Receipt,
    /// The body, unchanged.
    pub body: Body,
    /// Receives so far, this one included (SQS's `ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When it was sent (ms; SQS's `SentTimestamp`).
    pub sent_at: u64,
    /// When it was first received (ms; SQS's `ApproximateFirstReceiveTimestamp`).
    pub first_received_at: u64,
}

/// A durable queue with SQS semantics (a standard queue, not FIFO): batches, visibility
/// timeouts, redelivery of what is not deleted, redrive to a dead-letter queue, retention.
/// Cheap to clone; `Send + Sync`. Times (`now`) are milliseconds since the Unix epoch
/// ([`now_ms`] outside tests).
///
/// **Durability.** [`send_batch`](Self::send_batch) returns only once its messages are
/// fsynced (group commit: concurrent sends share one fsync), and a message becomes visible only
/// then (or when a send is cancelled after its commit, unacknowledged). Receives, deletes,
/// visibility changes and moves to the dead-letter queue are committed (a killed process loses
/// none) but not fsynced on their own: a power loss can undo the last of them, which redelivers
/// a message (at least once, as SQS). Receive counts are written from a message's second
/// receive on, so a crash can deliver a message once more than `max_receive_count` before its
/// move to the dead-letter queue.
///
/// **Restart.** Messages in flight when the process stopped are visible at once after a
/// restart (the consumers that held them are gone), with their receive counts.
///
/// **Memory.** The queue's index is in memory, rebuilt when the queue is opened. The first
/// 64 MiB of message bodies (all queues together) stay in memory too, shared with the
/// database's memtable rather than copied; bodies beyond that are read back when received, so a
/// backlog costs about 200 bytes of memory per message (measured).
#[derive(Clone)]
pub struct Queue {
    core: Arc<QueueCore>,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.core.name)
            .field("config", &self.core.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct QueueCore {
    shared: Arc<Shared>,
    name: String,
    /// `<name> 0x00`.
    prefix: Vec<u8>,
    config: QueueConfig,
    visibility_ms: u64,
    retention_ms: u64,
    dead_letter: Option<(Arc<QueueCore>, u32)>,
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    /// Visible messages by id: oldest first.
    visible: BTreeSet<u64>,
    /// In-flight messages by the time they become visible again: `(until, id)`.
    in_flight: BTreeSet<(u64, u64)>,
}

struct Entry {
    /// The stored value (header and body) while it is resident; otherwise it is read from the
    /// database when the message is received.
    value: Option<Slice>,
    sent_at: u64,
    receive_count: u32,
    first_received_at: Option<u64>,
    /// `None` while visible.
    invisible_until: Option<u64>,
    /// The latest receive's token (`0`: never received in this process).
    token: u64,
}

impl Entry {
    fn visible(value: Option<Slice>, sent_at: u64) -> Self {
        Self {
            value,
            sent_at,
            receive_count: 0,
            first_received_at: None,
            invisible_until: None,
            token: 0,
        }
    }
}

/// What a receive changes on disk, committed after the queue's lock is released.
#[derive(Default)]
struct Writes {
    receives: Vec<(u64, u32, u64)>,
    expired: Vec<(u64, bool)>,
    moved: Vec<(u64, Entry)>,
}

pub(crate) fn validate_name(name: &str) -> Result<(), EmbeddedError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(EmbeddedError::InvalidQueueName(name.to_owned()))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The highest ingest log position any queue has recorded, including queues no longer opened
/// (see [`Db::ingest_floor`](crate::Db::ingest_floor)).
pub(crate) fn ingest_floor(shared: &Shared) -> Result<u64, EmbeddedError> {
    let mut floor = 0;
    for item in shared.meta.prefix(LOGGED_PREFIX) {
        let (key, value) = item.into_inner().map_err(EmbeddedError::storage)?;
        let queue = String::from_utf8_lossy(key.get(LOGGED_PREFIX.len()..).unwrap_or_default());
        floor = floor.max(logged_position(&queue, &value)?);
    }
    Ok(floor)
}

/// A stored ingest log position (the value of a [`LOGGED_PREFIX`] key).
fn logged_position(queue: &str, value: &[u8]) -> Result<u64, EmbeddedError> {
    be_u64(value).ok_or_else(|| EmbeddedError::corrupt("ingest position", format!("queue {queue}")))
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

impl QueueCore {
    /// Loads the queue's messages from the database.
    pub(crate) fn recover(
        shared: Arc<Shared>,
        name: &str,
        config: QueueConfig,
        dead_letter: Option<Arc<QueueCore>>,
    ) -> Result<Self, EmbeddedError> {
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        let mut state = State::default();
        let mut orphans = Vec::new();
        for item in shared.queues.prefix(&prefix) {
            let (key, value) = item.into_inner().map_err(EmbeddedError::storage)?;
            let (id, tag) = key
                .get(prefix.len()..)
                .and_then(|rest| Some((be_u64(rest.get(..8)?)?, *rest.get(8)?)))
                .ok_or_else(|| EmbeddedError::corrupt("queue key", format!("{key:?}")))?;
            match tag {
                TAG_MESSAGE => {
                    let sent_at = (value.first() == Some(&FORMAT))
                        .then(|| value.get(1..HEADER).and_then(be_u64))
                        .flatten()
                        .ok_or_else(|| EmbeddedError::corrupt("message", format!("id {id}")))?;
                    // A copy, so as not to pin the block the iterator read it from.
                    let value = shared.reserve(value.len()).then(|| Slice::new(&value));
                    let entry = Entry::visible(value, sent_at);
                    state.entries.insert(id, entry);
                    state.visible.insert(id);
                }
                TAG_RECEIVES => match state.entries.get_mut(&id) {
                    Some(entry) => {
                        let count = value.get(..4).and_then(|b| b.try_into().ok());
                        let first = value.get(4..12).and_then(be_u64);
                        let (Some(count), Some(first)) = (count, first) else {
                            return Err(EmbeddedError::corrupt("receives", format!("id {id}")));
                        };
                        entry.receive_count = u32::from_be_bytes(count);
                        entry.first_received_at = Some(first);
                    }
                    None => orphans.push(key),
                },
                _ => return Err(EmbeddedError::corrupt("queue key", format!("tag {tag}"))),
            }
        }
        if !orphans.is_empty() {
            let mut batch = shared.batch();
            for key in orphans {
                batch.remove(&shared.queues, key);
            }
            batch.commit().map_err(EmbeddedError::storage)?;
        }
        let dead_letter = match (&config.redrive, dead_letter) {
            (Some(redrive), Some(dlq)) => Some((dlq, redrive.max_receive_count)),
            _ => None,
        };
        Ok(Self {
            shared,
            name: name.to_owned(),
            prefix,
            visibility_ms: millis(config.visibility_timeout),
            retention_ms: millis(config.retention),
            config,
            dead_letter,
            state: Mutex::new(state),
            notify: Notify::new(),
        })
    }

    pub(crate) fn config(&self) -> &QueueConfig {
        &self.config
    }

    fn key(&self, id: u64, tag: u8) -> Slice {
        let mut key = Vec::with_capacity(self.prefix.len() + 9);
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(&id.to_be_bytes());
        key.push(tag);
        Slice::from(key)
    }

    /// The `meta` key of the queue's ingest log position.
    fn logged_key(&self) -> Vec<u8> {
        let mut key = LOGGED_PREFIX.to_vec();
        key.extend_from_slice(self.name.as_bytes());
        key
    }

    /// A message's stored value (header and body).
    fn read(&self, id: u64) -> Result<Option<Slice>, EmbeddedError> {
        self.shared
            .queues
            .get(self.key(id, TAG_MESSAGE))
            .map_err(EmbeddedError::storage)
    }

    /// Gives back a removed entry's share of the resident-body budget.
    fn evict(&self, entry: &Entry) {
        if let Some(value) = &entry.value {
            self.shared.release(value.len());
        }
    }

    /// Takes in messages moved from another queue (already committed; resident bodies stay
    /// resident).
    fn accept(&self, moved: Vec<(u64, Entry)>) {
        let mut state = lock(&self.state);
        for (id, entry) in moved {
            state
                .entries
                .insert(id, Entry::visible(entry.value, entry.sent_at));
            state.visible.insert(id);
        }
        drop(state);
        self.notify.notify_waiters();
    }
}

impl State {
    /// Makes the messages whose visibility timeout ended by `now` visible again.
    fn expire(&mut self, now: u64) {
        while let Some(&(until, id)) = self.in_flight.first() {
            if until > now {
                break;
            }
            self.in_flight.pop_first();
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.invisible_until = None;
                self.visible.insert(id);
            }
        }
    }
}

/// Committed messages, made visible when dropped.
struct Committed<'a> {
    core: &'a QueueCore,
    first: u64,
    values: Vec<Slice>,
    sent_at: u64,
}

impl Drop for Committed<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.core.state);
        for (id, value) in (self.first..).zip(self.values.drain(..)) {
            let value = self.core.shared.reserve(value.len()).then_some(value);
            state
                .entries
                .insert(id, Entry::visible(value, self.sent_at));
            state.visible.insert(id);
        }
        drop(state);
        self.core.notify.notify_waiters();
    }
}

impl Queue {
    pub(crate) fn from_core(core: Arc<QueueCore>) -> Self {
        Self { core }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The queue's settings.
    pub fn config(&self) -> &QueueConfig {
        &self.core.config
    }

    /// Sends messages; returns their ids, in order, once all of them are durable (fsynced).
    /// The batch is atomic: all or none of it survives a crash. Concurrent senders share an
    /// fsync, so send in batches or from many tasks: one sender awaiting one message at a time
    /// gets one message per fsync.
    pub async fn send_batch<B: AsRef<[u8]>>(
        &self,
        bodies: &[B],
        now: u64,
    ) -> Result<Vec<MessageId>, EmbeddedError> {
        self.send(bodies, now, None).await
    }

    /// Sends messages from an [`IngestLog`](crate::IngestLog) like
    /// [`send_batch`](Self::send_batch), and records, in the same commit, that the queue holds
    /// every message of the log up to sequence number `through` (what
    /// [`logged_through`](Self::logged_through) returns from then on). Send the log's messages
    /// for one queue in sequence order, one call after the other.
    pub async fn send_logged<B: AsRef<[u8]>>(
        &self,
        bodies: &[B],
        through: u64,
        now: u64,
    ) -> Result<Vec<MessageId>, EmbeddedError> {
        self.send(bodies, now, Some(through)).await
    }

    /// The sequence number of the last ingest log message this queue holds (0: none).
    pub fn logged_through(&self) -> Result<u64, EmbeddedError> {
        let value = self
            .core
            .shared
            .meta
            .get(self.core.logged_key())
            .map_err(EmbeddedError::storage)?;
        value.map_or(Ok(0), |v| logged_position(&self.core.name, &v))
    }

    async fn send<B: AsRef<[u8]>>(
        &self,
        bodies: &[B],
        now: u64,
        logged: Option<u64>,
    ) -> Result<Vec<MessageId>, EmbeddedError> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let core = &self.core;
        let mut scratch = Vec::new();
        let mut values = Vec::with_capacity(bodies.len());
        for body in bodies {
            let body = body.as_ref();
            if body.len() > MAX_MESSAGE_BYTES {
                return Err(EmbeddedError::MessageTooLarge {
                    size: body.len(),
                    max: MAX_MESSAGE_BYTES,
                });
            }
            scratch.clear();
            scratch.push(FORMAT);
            scratch.extend_from_slice(&now.to_be_bytes());
            scratch.extend_from_slice(body);
            values.push(Slice::new(&scratch));
        }
        let count = values.len() as u64;
        let first = core.shared.commit_with_ids(count, |first, batch| {
            for (id, value) in (first..).zip(&values) {
                batch.insert(
                    &core.shared.queues,
                    core.key(id, TAG_MESSAGE),
                    value.clone(),
                );
            }
            if let Some(through) = logged {
                batch.insert(&core.shared.meta, core.logged_key(), through.to_be_bytes());
            }
        })?;
        // Committed: the messages join the index whatever happens next, even if this future is
        // dropped before the fsync (then nobody was told they were durable).
        let committed = Committed {
            core,
            first,
            values,
            sent_at: now,
        };
        core.shared.syncer.barrier().await?;
        drop(committed);
        Ok((first..first + count).map(MessageId).collect())
    }

    /// Receives up to `max` visible messages, oldest first, and hides them until
    /// `now + visibility_timeout`. Messages past their retention are dropped; a message already
    /// received `max_receive_count` times moves to the dead-letter queue instead.
    pub fn receive(&self, max: usize, now: u64) -> Result<Vec<Received>, EmbeddedError> {
        let core = &*self.core;
        let mut out = Vec::new();
        let mut unread = Vec::new();
        let mut writes = Writes::default();
        let mut state = lock(&core.state);
        state.expire(now);
        while out.len() < max {
            let Some(id) = state.visible.pop_first() else {
                break;
            };
            let Some(entry) = state.entries.get_mut(&id) else {
                continue;
            };
            if now >= entry.sent_at.saturating_add(core.retention_ms) {
                let had_receives = entry.receive_count >= 2;
                if let Some(entry) = state.entries.remove(&id) {
                    core.evict(&entry);
                }
                writes.expired.push((id, had_receives));
                continue;
            }
            if let Some((_, max_receives)) = &core.dead_letter
                && entry.receive_count >= *max_receives
            {
                if let Some(entry) = state.entries.remove(&id) {
                    writes.moved.push((id, entry));
                }
                continue;
            }
            entry.receive_count = entry.receive_count.saturating_add(1);
            let first_received_at = *entry.first_received_at.get_or_insert(now);
            let token = core.shared.token();
            let until = now.saturating_add(core.visibility_ms);
            entry.token = token;
            entry.invisible_until = Some(until);
            if entry.receive_count >= 2 {
                writes
                    .receives
                    .push((id, entry.receive_count, first_received_at));
            }
            let body = match &entry.value {
                Some(value) => value.clone(),
                None => {
                    unread.push(out.len());
                    Slice::new(&[])
                }
            };
            out.push(Received {
                message_id: MessageId(id),
                receipt: Receipt { message: id, token },
                body: Body(body),
                receive_count: entry.receive_count,
                sent_at: entry.sent_at,
                first_received_at,
            });
            state.in_flight.insert((until, id));
        }
        drop(state);
        self.commit_receive(writes)?;
        if !unread.is_empty() {
            for &i in &unread {
                if let Some(m) = out.get_mut(i) {
                    // Gone only if deleted by another consumer after a visibility timeout that
                    // ended during this call: then this receipt could delete nothing anyway.
                    if let Some(value) = core.read(m.message_id.0)? {
                        m.body = Body(value);
                    }
                }
            }
            out.retain(|m| !m.body.0.is_empty());
        }
        Ok(out)
    }

    fn commit_receive(&self, writes: Writes) -> Result<(), EmbeddedError> {
        let core = &*self.core;
        if writes.receives.is_empty() && writes.expired.is_empty() && writes.moved.is_empty() {
            return Ok(());
        }
        let queues = &core.shared.queues;
        let mut batch = core.shared.batch();
        for (id, count, first) in &writes.receives {
            let mut value = [0; 12];
            value[..4].copy_from_slice(&count.to_be_bytes());
            value[4..].copy_from_slice(&first.to_be_bytes());
            batch.insert(queues, core.key(*id, TAG_RECEIVES), value);
        }
        for (id, had_receives) in &writes.expired {
            batch.remove(queues, core.key(*id, TAG_MESSAGE));
            if *had_receives {
                batch.remove(queues, core.key(*id, TAG_RECEIVES));
            }
        }
        if let Some((dlq, _)) = &core.dead_letter {
            for (id, entry) in &writes.moved {
                let value = match &entry.value {
                    Some(value) => Some(value.clone()),
                    None => core.read(*id)?,
                };
                batch.remove(queues, core.key(*id, TAG_MESSAGE));
                batch.remove(queues, core.key(*id, TAG_RECEIVES));
                if let Some(value) = value {
                    batch.insert(queues, dlq.key(*id, TAG_MESSAGE), value);
                }
            }
        }
        let committed = batch.commit().map_err(EmbeddedError::storage);
        if let Some((dlq, _)) = &core.dead_letter
            && !writes.moved.is_empty()
        {
            if committed.is_ok() {
                dlq.accept(writes.moved);
            } else {
                // Not moved: back to the source queue.
                let mut state = lock(&core.state);
                for (id, entry) in writes.moved {
                    state.entries.insert(id, entry);
                    state.visible.insert(id);
                }
            }
        }
        committed
    }

    /// Deletes received messages; returns how many were deleted. A receipt that is not its
    /// message's latest, or whose message is gone, deletes nothing (no error).
    pub fn delete(&self, receipts: &[Receipt]) -> Result<usize, EmbeddedError> {
        let core = &*self.core;
        let mut gone = Vec::with_capacity(receipts.len());
        let mut state = lock(&core.state);
        for receipt in receipts {
            let current = state
                .entries
                .get(&receipt.message)
                .is_some_and(|e| e.token == receipt.token && receipt.token != 0);
            if !current {
                continue;
            }
            if let Some(entry) = state.entries.remove(&receipt.message) {
                match entry.invisible_until {
                    Some(until) => state.in_flight.remove(&(until, receipt.message)),
                    None => state.visible.remove(&receipt.message),
                };
                gone.push((receipt.message, entry));
            }
        }
        drop(state);
        if gone.is_empty() {
            return Ok(0);
        }
        let mut batch = core.shared.batch();
        for (id, entry) in &gone {
            batch.remove(&core.shared.queues, core.key(*id, TAG_MESSAGE));
            if entry.receive_count >= 2 {
                batch.remove(&core.shared.queues, core.key(*id, TAG_RECEIVES));
            }
        }
        if let Err(e) = batch.commit() {
            // Not deleted: back in the index as they were, so they are redelivered after their
            // visibility timeout rather than hidden until a restart.
            let mut state = lock(&core.state);
            for (id, entry) in gone {
                match entry.invisible_until {
                    Some(until) => state.in_flight.insert((until, id)),
                    None => state.visible.insert(id),
                };
                state.entries.insert(id, entry);
            }
            return Err(EmbeddedError::storage(e));
        }
        for (_, entry) in &gone {
            core.evict(entry);
        }
        Ok(gone.len())
    }

    /// Changes how long a received message stays invisible: it becomes visible at
    /// `now + timeout` (at once for zero). Returns `false` (and changes nothing) if the receipt
    /// is not the message's latest or the message is no longer in flight.
    pub fn change_visibility(&self, receipt: &Receipt, timeout: Duration, now: u64) -> bool {
        let core = &*self.core;
        let mut guard = lock(&core.state);
        let state = &mut *guard;
        state.expire(now);
        let Some(entry) = state.entries.get_mut(&receipt.message) else {
            return false;
        };
        let Some(old) = entry
            .invisible_until
            .filter(|_| entry.token == receipt.token)
        else {
            return false;
        };
        let id = receipt.message;
        state.in_flight.remove(&(old, id));
        if timeout.is_zero() {
            entry.invisible_until = None;
            state.visible.insert(id);
            drop(guard);
            core.notify.notify_waiters();
        } else {
            let until = now.saturating_add(millis(timeout));
            entry.invisible_until = Some(until);
            state.in_flight.insert((until, id));
        }
        true
    }

    /// Messages in the queue, visible or in flight (SQS's `ApproximateNumberOfMessages` plus
    /// `...NotVisible`).
    pub fn approximate_len(&self) -> usize {
        lock(&self.core.state).entries.len()
    }

    /// Messages in flight (received, not deleted, visibility timeout not yet seen to expire).
    pub fn approximate_in_flight(&self) -> usize {
        lock(&self.core.state).in_flight.len()
    }

    /// Waits until messages may be receivable: a send (or a move from another queue, or a
    /// visibility change to zero) wakes every waiter, and an in-flight message's visibility
    /// timeout ending by the system clock ([`now_ms`]) does too; or until `timeout`. Returns at
    /// once if messages are visible. Wake-ups can be spurious: receive and wait again.
    pub async fn wait(&self, timeout: Duration) {
        let core = &*self.core;
        let mut notified = std::pin::pin!(core.notify.notified());
        notified.as_mut().enable();
        let next_expiry = {
            let state = lock(&core.state);
            if !state.visible.is_empty() {
                return;
            }
            state.in_flight.first().map(|(until, _)| *until)
        };
        let timeout = match next_expiry {
            Some(until) => timeout.min(Duration::from_millis(until.saturating_sub(now_ms()))),
            None => timeout,
        };
        // Elapsing is one of the outcomes, not an error.
        let _elapsed = tokio::time::timeout(timeout, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_receipts_display_as_zero_padded_lowercase_hex() {
        for n in [0, 1, 0xab, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(MessageId(n).to_string(), format!("{n:016x}"));
            let receipt = Receipt {
                message: n,
                token: !n,
            };
            assert_eq!(receipt.to_string(), format!("{n:016x}{:016x}", !n));
            assert_eq!(receipt.to_string().parse::<Receipt>(), Ok(receipt));
        }
    }
}
