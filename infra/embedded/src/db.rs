//! The database: one fjall database under the data directory, its keyspaces, the message-id
//! counter and the sync thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};

use hearth_domain::projection::DeviceState;

use crate::EmbeddedError;
use crate::adapters::{EmbeddedDeadLetters, EmbeddedRegistry, EmbeddedStateStore};
use crate::queue::{Queue, QueueConfig, QueueCore};
use crate::shadow::ShadowStore;
use crate::sync::{Syncer, lock};

/// The database folder inside the data directory.
const DB_FOLDER: &str = "db";
/// The `meta` keyspace's key of the next message id.
const NEXT_ID: &[u8] = b"next-id";
/// Block cache: the working set of a local stack (device states, shadows) fits.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Queue message bodies kept in memory, in all (beyond it, bodies are read when received);
/// small in unit tests, which exercise both paths.
const RESIDENT_BODY_BYTES: usize = if cfg!(test) {
    64 * 1024
} else {
    64 * 1024 * 1024
};
/// Journals kept before memtables must be flushed: bounds what is replayed when opening.
const JOURNAL_BYTES: u64 = 128 * 1024 * 1024;
/// Lock stripes for read-modify-write of one key.
const STRIPES: usize = 256;

/// The milliseconds since the Unix epoch by the system clock: the `now` to pass to the queues
/// outside tests.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The embedded database of the local stack: one fjall database in `<data dir>/db`, holding the
/// state projection, the registry, device shadows, dead letters and queues, with one journal
/// and one sync thread. Cheap to clone; `Send + Sync`. One process at a time; it closes (with
/// a final fsync) when the last handle — `Db`, [`Queue`] or adapter — is dropped.
///
/// Every operation runs on the caller's thread and is short: memtable and block-cache hits (a
/// disk read at worst), a journal append handed to the OS. The one long blocking operation, the
/// fsync, runs on the database's own thread and is awaited, shared by every writer waiting for
/// it. So the methods can be called from any tokio task without `spawn_blocking`, which would
/// cost more than most operations. (fjall can still stall a writer briefly when its background
/// flushes fall behind.)
///
/// Durability: every write is committed to the journal before its call returns, so a killed
/// process loses none; a power loss can lose what was not yet fsynced. Queue sends, shadow puts
/// and deletes, and dead letters return only once fsynced; [`Db::persist`] is a barrier for the
/// rest. One journal keeps the order of writes, so a crash never keeps a write and loses an
/// earlier one.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    shared: Arc<Shared>,
    queues: Mutex<HashMap<String, Arc<QueueCore>>>,
}

/// What every handle (queues, adapters) shares.
pub(crate) struct Shared {
    path: PathBuf,
    pub(crate) db: Database,
    pub(crate) state: Keyspace,
    pub(crate) registry: Keyspace,
    pub(crate) shadows: Keyspace,
    pub(crate) letters: Keyspace,
    pub(crate) queues: Keyspace,
    pub(crate) documents: Keyspace,
    pub(crate) meta: Keyspace,
    /// The next message (or letter) id; held while committing a batch that allocates ids.
    next_id: Mutex<u64>,
    /// Receipt tokens: strictly increasing, seeded from the clock so that a receipt from before
    /// a restart never matches.
    tokens: AtomicU64,
    stripes: Vec<Mutex<()>>,
    /// Serialises enrollment (register, claim, release): each checks and writes several keys.
    pub(crate) enroll: Mutex<()>,
    /// The state projections, cached write-through by key, one map per stripe; holding a
    /// stripe's map also serialises read-modify-writes of its state keys.
    state_cache: Vec<Mutex<StateCache>>,
    /// Bytes of queue message bodies held in memory.
    resident: AtomicUsize,
    pub(crate) syncer: Syncer,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A clean close leaves everything durable, deferred state writes included.
        if let Err(e) = self.checkpoint_state() {
            tracing::error!(error = %e, "final state checkpoint failed");
        }
        if let Err(e) = self.db.persist(PersistMode::SyncAll) {
            tracing::error!(error = %e, "final fsync failed");
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database in `<data_dir>/db`. Fails with
    /// [`EmbeddedError::Locked`] if another process has it open.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Db, EmbeddedError> {
        let path = data_dir.as_ref().join(DB_FOLDER);
        std::fs::create_dir_all(&path).map_err(EmbeddedError::io)?;
        let db = Database::builder(&path)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => EmbeddedError::Locked { path: path.clone() },
                e => EmbeddedError::storage(e),
            })?;
        let keyspace = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(EmbeddedError::storage)
        };
        let meta = keyspace("meta")?;
        let next_id = match meta.get(NEXT_ID).map_err(EmbeddedError::storage)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| EmbeddedError::corrupt("next-id", "not 8 bytes"))?,
            ),
            None => 1,
        };
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let shared = Shared {
            state: keyspace("state")?,
            registry: keyspace("registry")?,
            shadows: keyspace("shadows")?,
            letters: keyspace("dead-letters")?,
            queues: keyspace("queues")?,
            documents: keyspace("documents")?,
            meta,
            next_id: Mutex::new(next_id),
            tokens: AtomicU64::new(seed.max(1)),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            enroll: Mutex::new(()),
            state_cache: (0..STRIPES)
                .map(|_| Mutex::new(StateCache::default()))
                .collect(),
            resident: AtomicUsize::new(0),
            syncer: Syncer::start(db.clone(), path.clone())?,
            db,
            path,
        };
        Ok(Db {
            inner: Arc::new(Inner {
                shared: Arc::new(shared),
                queues: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// What the handles share (for the crate's unit tests).
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The database folder (`<data dir>/db`).
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Opens a queue, creating it if it is new; its messages (from before a restart too) are
    /// loaded into memory. A redrive policy's dead-letter queue must be opened first. Opening an
    /// open queue again returns the same queue if the configuration is the same.
    pub fn queue(&self, name: &str, config: QueueConfig) -> Result<Queue, EmbeddedError> {
        crate::queue::validate_name(name)?;
        let mut queues = lock(&self.inner.queues);
        if let Some(open) = queues.get(name) {
            return if open.config() == &config {
                Ok(Queue::from_core(Arc::clone(open)))
            } else {
                Err(EmbeddedError::QueueConfigConflict(name.to_owned()))
            };
        }
        let dead_letter = match &config.redrive {
            Some(redrive) => match queues.get(&redrive.dead_letter_queue) {
                Some(dlq) => Some(Arc::clone(dlq)),
                None => {
                    return Err(EmbeddedError::UnknownQueue(
                        redrive.dead_letter_queue.clone(),
                    ));
                }
            },
            None => None,
        };
        let core = Arc::new(QueueCore::recover(
            Arc::clone(&self.inner.shared),
            name,
            config,
            dead_letter,
        )?);
        queues.insert(name.to_owned(), Arc::clone(&core));
        Ok(Queue::from_core(core))
    }

    /// The state projection store ([`hearth_ports::StateStore`]).
    pub fn state_store(&self) -> EmbeddedStateStore {
        EmbeddedStateStore::new(Arc::clone(&self.inner.shared), false)
    }

    /// The state projection adapter with deferred writes: `apply` merges into the cache (which
    /// every adapter of this database reads through, so the result is visible at once) and
    /// [`EmbeddedStateStore::checkpoint`] writes every device changed since the last one in one
    /// batch: a device updated many times between two checkpoints is written once. A crash
    /// loses what was applied after the last checkpoint, so a consumer acknowledges its input
    /// (deletes the queue messages) only after a checkpoint; the queue then redelivers the rest,
    /// and [`DeviceState::merge`] is order-insensitive and idempotent. [`Db::persist`] and
    /// closing the database checkpoint too.
    pub fn deferred_state_store(&self) -> EmbeddedStateStore {
        EmbeddedStateStore::new(Arc::clone(&self.inner.shared), true)
    }

    /// The registry ([`hearth_ports::DeviceRegistry`]).
    pub fn registry(&self) -> EmbeddedRegistry {
        EmbeddedRegistry::new(Arc::clone(&self.inner.shared))
    }

    /// The dead-letter sink ([`hearth_ports::DeadLetterSink`]).
    pub fn dead_letters(&self) -> EmbeddedDeadLetters {
        EmbeddedDeadLetters::new(Arc::clone(&self.inner.shared))
    }

    /// Device shadows.
    pub fn shadows(&self) -> ShadowStore {
        ShadowStore::new(Arc::clone(&self.inner.shared))
    }

    /// JSON records in `namespace` (see [`Documents`](crate::Documents)).
    pub fn documents(&self, namespace: &str) -> crate::Documents {
        crate::Documents::new(Arc::clone(&self.inner.shared), namespace)
    }

    /// The next value of the database's strictly increasing counter (the one message ids come
    /// from). Committed before it is returned, so values keep increasing across restarts and
    /// crashes.
    pub fn next_sequence(&self) -> Result<u64, EmbeddedError> {
        self.inner.shared.commit_with_ids(1, |_, _| {})
    }

    /// The highest ingest log position any queue has recorded ([`crate::Queue::logged_through`]),
    /// including queues the caller no longer opens: the `floor` for [`crate::IngestLog::open`].
    pub fn ingest_floor(&self) -> Result<u64, EmbeddedError> {
        crate::queue::ingest_floor(&self.inner.shared)
    }

    /// A durability barrier: checkpoints deferred state writes, then resolves once every write
    /// committed before the call is fsynced. Concurrent callers (and queue sends) share one
    /// fsync.
    pub async fn persist(&self) -> Result<(), EmbeddedError> {
        self.inner.shared.checkpoint_state()?;
        self.inner.shared.syncer.barrier().await
    }
}

impl Shared {
    /// A new fjall batch.
    pub(crate) fn batch(&self) -> OwnedWriteBatch {
        self.db.batch()
    }

    /// Allocates `count` consecutive ids, lets `fill` add the batch's items with them and
    /// commits, all under the id lock so the persisted counter only grows. Returns the first id.
    pub(crate) fn commit_with_ids(
        &self,
        count: u64,
        fill: impl FnOnce(u64, &mut OwnedWriteBatch),
    ) -> Result<u64, EmbeddedError> {
        let mut next = lock(&self.next_id);
        let first = *next;
        let end = first + count;
        let mut batch = self.db.batch();
        fill(first, &mut batch);
        batch.insert(&self.meta, NEXT_ID, end.to_be_bytes());
        batch.commit().map_err(EmbeddedError::storage)?;
        *next = end;
        Ok(first)
    }

    /// A fresh receipt token.
    pub(crate) fn token(&self) -> u64 {
        self.tokens.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes `bytes` of the resident-body budget, if they fit.
    pub(crate) fn reserve(&self, bytes: usize) -> bool {
        self.resident
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |resident| {
                resident
                    .checked_add(bytes)
                    .filter(|&total| total <= RESIDENT_BODY_BYTES)
            })
            .is_ok()
    }

    /// Gives back `bytes` of the resident-body budget.
    pub(crate) fn release(&self, bytes: usize) {
        self.resident.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Serialises read-modify-writes of one key (of any keyspace).
    pub(crate) fn stripe(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        lock(&self.stripes[stripe_index(key)])
    }

    /// The cached state projections of `key`'s stripe, locked (see [`StateCache`]).
    pub(crate) fn state_cache(&self, key: &[u8]) -> MutexGuard<'_, StateCache> {
        lock(&self.state_cache[stripe_index(key)])
    }
}

fn stripe_index(key: &[u8]) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(hash % STRIPES as u64).unwrap_or(0)
}

/// Decoded state projections of one stripe. An entry is *clean* (equal to what the database
/// holds for its key: an entry whose write failed is removed) or *dirty* (a deferred write,
/// newer than the database; see [`Db::deferred_state_store`]), so a read-modify-write skips
/// reading and decoding the stored value. Bounded: a full stripe drops its clean entries, which
/// refill from the database; dirty entries stay until a checkpoint writes them.
#[derive(Default)]
pub(crate) struct StateCache {
    entries: HashMap<Box<[u8]>, Cached>,
    /// How many entries are dirty (they cannot be evicted).
    dirty: usize,
}

struct Cached {
    state: DeviceState,
    dirty: bool,
}

/// Cached projections per stripe (256 stripes: up to 256 Ki devices cached); tiny under
/// `cfg(test)` so that unit tests exercise eviction.
const STATE_CACHE_PER_STRIPE: usize = if cfg!(test) { 2 } else { 1024 };

impl StateCache {
    pub(crate) fn get(&self, key: &[u8]) -> Option<&DeviceState> {
        self.entries.get(key).map(|c| &c.state)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut DeviceState> {
        self.entries.get_mut(key).map(|c| &mut c.state)
    }

    /// Whether `key`'s entry is dirty (absent: no).
    pub(crate) fn is_dirty(&self, key: &[u8]) -> bool {
        self.entries.get(key).is_some_and(|c| c.dirty)
    }

    /// Caches `state`, clean (`dirty: false`: the database holds it) or not. A full stripe
    /// first drops its clean entries (if it has any: dirty ones stay, so a stripe whose entries
    /// are all dirty grows until the next checkpoint).
    pub(crate) fn insert(&mut self, key: &[u8], state: DeviceState, dirty: bool) {
        if self.entries.len() >= STATE_CACHE_PER_STRIPE && self.entries.len() > self.dirty {
            self.entries.retain(|_, c| c.dirty);
        }
        if let Some(old) = self.entries.insert(key.into(), Cached { state, dirty })
            && old.dirty
        {
            self.dirty -= 1;
        }
        if dirty {
            self.dirty += 1;
        }
    }

    /// Marks a cached entry as written to the database (`false`) or not (`true`).
    pub(crate) fn set_dirty(&mut self, key: &[u8], dirty: bool) {
        if let Some(cached) = self.entries.get_mut(key)
            && cached.dirty != dirty
        {
            cached.dirty = dirty;
            if dirty {
                self.dirty += 1;
            } else {
                self.dirty -= 1;
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        if self.entries.remove(key).is_some_and(|c| c.dirty) {
            self.dirty -= 1;
        }
    }
}

impl Shared {
    /// Writes every dirty cached state and marks it clean, one batch per lock stripe, committed
    /// (handed to the OS) while that stripe is locked: no read-modify-write of its devices, and
    /// no eviction, can come between the encoding of a state and its commit. Returns how many
    /// devices were written; on failure what was not committed stays dirty.
    pub(crate) fn checkpoint_state(&self) -> Result<usize, EmbeddedError> {
        let mut written = 0;
        for stripe in &self.state_cache {
            let mut guard = lock(stripe);
            let cache = &mut *guard;
            if cache.dirty == 0 {
                continue;
            }
            let mut batch = self.batch();
            for (key, cached) in cache.entries.iter().filter(|(_, c)| c.dirty) {
                let value = crate::adapters::encode("state", &cached.state)?;
                batch.insert(&self.state, key.to_vec(), value);
            }
            batch.commit().map_err(EmbeddedError::storage)?;
            // The stripe stayed locked: everything dirty was in the batch.
            for cached in cache.entries.values_mut().filter(|c| c.dirty) {
                cached.dirty = false;
            }
            written += std::mem::take(&mut cache.dirty);
        }
        Ok(written)
    }
}
