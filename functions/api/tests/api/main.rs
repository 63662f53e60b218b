//! Handler tests with the in-memory adapters: routing, scoping, limits, problems.

mod devices;
mod enroll;
mod households;
mod invitations;
#[cfg(feature = "lambda")]
mod lambda;
mod support;
