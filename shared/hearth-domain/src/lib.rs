//! The core of Hearth: pure types and rules, with no I/O, no async runtime and no AWS types.
//!
//! - [`shadow`]: AWS IoT Device Shadow semantics (classic shadow): merge, delta, metadata,
//!   versions, limits and the shadow topics' message shapes. The embedded local stack serves
//!   the shadow service with this code; the state processor reads its messages with it.
//! - [`command`]: what caused a desired-state change (the REST API, an automation, Alexa,
//!   Google), carried in the shadow update's `clientToken`.
//! - [`device`]: devices (thing name, product, household, type and capabilities), households and
//!   the roles users hold in them.
//! - [`enrollment`]: pre-registration and claiming: opaque thing names, one-time claim codes
//!   (stored as hashes), serial numbers.
//! - [`ingest`]: the message envelope every topic rule adds and the classification of a queued
//!   device message (shadow documents, shadow delete, telemetry, presence).
//! - [`sharing`]: invitations to households (by e-mail, single-use, expiring).
//! - [`projection`]: the device state projection that the API and voice assistants read, and the
//!   forward-only rules (one per concern) by which messages advance it.
//!
//! This crate must never do I/O: everything here is deterministic and tested with plain `#[test]`s
//! and property tests.

pub mod command;
pub mod device;
pub mod enrollment;
pub mod ingest;
pub mod projection;
pub mod shadow;
pub mod sharing;
