//! The local stack's file-backed storage: one embedded database under a data directory,
//! surviving restarts and crashes, with everything the local stack stores in it:
//!
//! - the ports' adapters — [`EmbeddedStateStore`] ([`hearth_ports::StateStore`]),
//!   [`EmbeddedRegistry`] ([`hearth_ports::DeviceRegistry`]) and [`EmbeddedDeadLetters`]
//!   ([`hearth_ports::DeadLetterSink`]), each passing the port's contract suite;
//! - [`ShadowStore`]: device shadows for the local shadow service;
//! - [`Documents`]: small JSON records by key for other local emulations (the IoT registry's
//!   things and certificates);
//! - [`Queue`]: durable queues with the SQS semantics the Lambda handlers rely on (batches,
//!   visibility timeouts, redelivery, redrive to a dead-letter queue), whose sends return once
//!   fsynced, with concurrent sends sharing one fsync (group commit);
//! - [`IngestLog`]: an append-only log in segment files (one `write` per message), for what
//!   must survive a killed process before the queues hold it.
//!
//! The engine is [fjall](https://docs.rs/fjall) 3.1 (an LSM tree with a journal), chosen from
//! the project's measurements: the fastest of the engines tried with an fsync per batch, and
//! no acknowledged batch lost to `SIGKILL`. All data shares one journal, so a crash keeps
//! writes in the order they were made; [`Db`] explains how the work is split between the
//! caller's thread and the database's fsync thread.
//!
//! This crate knows nothing of MQTT, Lambda or AWS: it stores domain types and bytes.

mod adapters;
mod db;
mod documents;
mod error;
mod ingest;
mod queue;
mod shadow;
mod sync;

pub use adapters::{EmbeddedDeadLetters, EmbeddedRegistry, EmbeddedStateStore};
pub use db::{Db, now_ms};
pub use documents::Documents;
pub use error::EmbeddedError;
pub use ingest::{IngestLog, Logged};
pub use queue::{
    Body, MAX_MESSAGE_BYTES, MessageId, ParseError, Queue, QueueConfig, Receipt, Received, Redrive,
};
pub use shadow::ShadowStore;

#[cfg(test)]
mod tests;
