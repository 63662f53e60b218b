//! The state processor's handler with in-memory adapters (and failing wrappers around them).

mod events;
mod handler;
mod support;
