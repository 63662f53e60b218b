//! Group commit: one thread makes the journal durable for every writer that waits on it.
//!
//! Every fjall commit hands its bytes to the operating system at once (fjall's default
//! `PersistMode::Buffer`), so a killed process never loses a committed write; only a power loss
//! or an OS crash can, until the journal is fsynced. A writer that needs more (a queue send that
//! lets the broker PUBACK) commits, takes a *ticket* and awaits it. The sync thread fsyncs
//! whenever tickets are outstanding: everything committed before a sync starts is covered by it,
//! so all writers that committed while the previous fsync ran share the next one.
//!
//! The fsync runs on the sync thread's own descriptor of the active journal file, not through
//! `Database::persist`, which holds the journal's lock for the whole fsync and would stall every
//! other writer (state, receives, deletes) for its duration. This relies on fjall 3.1's layout:
//! journals are `<n>.jnl` in the database folder, the highest `n` is active, and rotating to a
//! new journal fsyncs the old one first. If no journal file is found the thread falls back to
//! `Database::persist(SyncAll)`; a test checks that the file is found.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use fjall::{Database, PersistMode};
use tokio::sync::watch;

use crate::EmbeddedError;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind: keep using it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Requests {
    /// The latest ticket handed out.
    requested: u64,
    shutdown: bool,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every ticket up to this one is durable.
    synced: u64,
    /// Set when an fsync failed: later tickets can never become durable.
    failed: Option<Arc<str>>,
}

#[derive(Debug)]
struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
}

/// The sync thread and its tickets.
#[derive(Debug)]
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the sync thread for the database in `dir`.
    pub(crate) fn start(db: Database, dir: PathBuf) -> Result<Self, EmbeddedError> {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            progress: watch::Sender::new(Progress::default()),
        });
        let thread = std::thread::Builder::new()
            .name("hearth-fsync".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&shared, &db, &dir)
            })
            .map_err(EmbeddedError::io)?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// A ticket covering every write committed before this call.
    pub(crate) fn ticket(&self) -> u64 {
        let mut requests = lock(&self.shared.requests);
        requests.requested += 1;
        let ticket = requests.requested;
        drop(requests);
        self.shared.wake.notify_one();
        ticket
    }

    /// Resolves once the ticket's writes are on disk.
    pub(crate) async fn durable(&self, ticket: u64) -> Result<(), EmbeddedError> {
        let mut progress = self.shared.progress.subscribe();
        let progress = progress
            .wait_for(|p| p.synced >= ticket || p.failed.is_some())
            .await
            .map_err(|_| EmbeddedError::SyncFailed("the sync thread stopped".to_owned()))?;
        if progress.synced >= ticket {
            return Ok(());
        }
        let reason = progress.failed.as_deref().unwrap_or("unknown").to_owned();
        Err(EmbeddedError::SyncFailed(reason))
    }

    /// Commits and waits: a durability barrier for every write committed before the call.
    pub(crate) async fn barrier(&self) -> Result<(), EmbeddedError> {
        let ticket = self.ticket();
        self.durable(ticket).await
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared.requests).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the fsync thread panicked");
        }
    }
}

fn run(shared: &Shared, db: &Database, dir: &Path) {
    let mut journal = Journal::default();
    let mut synced = 0;
    loop {
        let target = {
            let mut requests = lock(&shared.requests);
            while requests.requested == synced && !requests.shutdown {
                requests = shared
                    .wake
                    .wait(requests)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if requests.requested == synced {
                return; // shut down with nothing outstanding
            }
            requests.requested
        };
        match journal.sync(db, dir) {
            Ok(()) => shared.progress.send_modify(|p| p.synced = target),
            Err(e) => {
                tracing::error!(error = %e, "fsync of the journal failed; durable writes now fail");
                shared.progress.send_modify(|p| {
                    p.failed.get_or_insert_with(|| e.to_string().into());
                });
            }
        }
        synced = target;
    }
}

/// The sync thread's descriptor of the active journal.
#[derive(Debug, Default)]
struct Journal {
    open: Option<(u64, File)>,
}

impl Journal {
    fn sync(&mut self, db: &Database, dir: &Path) -> Result<(), EmbeddedError> {
        // Commits already did this; it makes sure of it, holding the journal lock only briefly.
        db.persist(PersistMode::Buffer)
            .map_err(EmbeddedError::storage)?;
        // Listed after the flush: the journal that holds the flushed bytes is this one or an
        // older one, and fjall fsyncs a journal before it rotates to the next.
        let Some(active) = active_journal(dir).map_err(EmbeddedError::io)? else {
            tracing::warn!("no journal file found; falling back to a locked fsync");
            return db
                .persist(PersistMode::SyncAll)
                .map_err(EmbeddedError::storage);
        };
        if self.open.as_ref().map(|(id, _)| *id) != Some(active) {
            self.open = None;
            let path = dir.join(format!("{active}.jnl"));
            match OpenOptions::new().append(true).open(&path) {
                Ok(file) => {
                    // The journal's directory entry, once per journal.
                    sync_dir(dir)?;
                    self.open = Some((active, file));
                }
                // Sealed and removed since the listing: its bytes were fsynced when fjall
                // rotated away from it, and a newer journal holds nothing of ours.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(EmbeddedError::io(e)),
            }
        }
        match &self.open {
            Some((_, file)) => file.sync_all().map_err(EmbeddedError::io),
            None => Ok(()),
        }
    }
}

/// Makes a new directory entry (a file created or removed in `dir`) survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), EmbeddedError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(EmbeddedError::io)
}

/// The number of the active (highest-numbered) journal file in `dir`.
pub(crate) fn active_journal(dir: &Path) -> std::io::Result<Option<u64>> {
    let mut active = None;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        active = active.max(Some(id));
    }
    Ok(active)
}
