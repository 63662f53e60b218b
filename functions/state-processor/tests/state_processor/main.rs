//! The state processor's handler with in-memory adapters (and failing wrappers around them).

mod events;
mod handler;
#[cfg(feature = "lambda")]
mod lambda;
mod support;
