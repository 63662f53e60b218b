//! The crate's error, and its mapping to the ports' [`StoreError`].

use std::path::PathBuf;

use hearth_ports::StoreError;

/// What can go wrong in the embedded database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// Another process has the data directory open (the database allows one process only).
    #[error("the database at {} is in use by another process", path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The disk or the storage engine failed; a retry may succeed.
    #[error("storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Making writes durable (fsync) failed. The database accepts no more durable writes: what
    /// is on disk is unknown until it is reopened.
    #[error("fsync failed, the database must be reopened: {0}")]
    SyncFailed(String),
    /// A stored record could not be decoded.
    #[error("corrupt {what} record: {detail}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// The kind of value.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A queue name that SQS would refuse (1–80 characters: ASCII letters, digits, `-`, `_`).
    #[error("invalid queue name {0:?}")]
    InvalidQueueName(String),
    /// A redrive policy names a queue that has not been opened (open dead-letter queues first).
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    /// The queue is already open with another configuration.
    #[error("queue {0:?} is already open with another configuration")]
    QueueConfigConflict(String),
    /// A message body over [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES).
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

impl EmbeddedError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Storage(_) | Self::Locked { .. })
    }

    pub(crate) fn storage(error: fjall::Error) -> Self {
        Self::Storage(Box::new(error))
    }

    pub(crate) fn io(error: std::io::Error) -> Self {
        Self::Storage(Box::new(error))
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        Self::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn encode(what: &'static str, detail: impl ToString) -> Self {
        Self::Encode {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<EmbeddedError> for StoreError {
    /// I/O, engine and fsync failures are transient (the message is retried); data that cannot
    /// be encoded or decoded is rejected (a retry cannot help).
    fn from(error: EmbeddedError) -> Self {
        match error {
            EmbeddedError::Corrupt { .. }
            | EmbeddedError::Encode { .. }
            | EmbeddedError::MessageTooLarge { .. } => StoreError::Rejected(error.to_string()),
            _ => StoreError::Transient(error.to_string()),
        }
    }
}

impl From<EmbeddedError> for hearth_ports::EnrollError {
    fn from(e: EmbeddedError) -> Self {
        hearth_ports::EnrollError::Store(e.into())
    }
}

impl From<EmbeddedError> for hearth_ports::InvitationError {
    fn from(e: EmbeddedError) -> Self {
        hearth_ports::InvitationError::Store(e.into())
    }
}
