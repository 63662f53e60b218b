//! The embedded local stack: the whole Hearth platform on one machine, with no Docker, no AWS
//! account and no network.
//!
//! - [`broker`]: IoT Core emulated on an embedded MQTT broker: every publish goes through the
//!   topic rules into durable queues before it is acknowledged; the shadow service; presence
//!   events. [`auth`]: device credentials and the template's IoT policy, enforced on it.
//! - [`shadow_service`]: the classic device shadow on the AWS shadow topics.
//! - [`lambda`]: the function registry (every function of the template, by binary name) and the
//!   event sources of every trigger kind: schedules on the stack's clock, HTTP API routes,
//!   direct invokes. [`pipeline`]: each SQS event source of the template, polling its local
//!   queue and invoking the same handler the Lambda runs, with partial batch responses.
//! - [`glue`]: wiring of the template's routing (`hearth-iot-rules`) and the embedded storage
//!   (`hearth-embedded`) to the above.
//! - [`backend`]: the thread whose own runtime runs everything behind the broker's
//!   acknowledgement (committers and functions), apart from the connections.
//! - [`stack`]: starting and stopping all of it; [`http`]: health and local views; [`api`]:
//!   what the owner REST API needs locally (the shadow service as the IoT Data Plane,
//!   [`tokens`], development tokens) and the local IoT registry ([`provisioner`]).
//! - [`simulator`] and [`bench`]: the device simulator / load generator and the throughput
//!   benchmark; [`wire`]: the minimal MQTT client codec the simulated devices speak.
//!
//! The same handler code runs here as in Lambda; nothing here is a second implementation of
//! platform logic.

pub mod api;
pub mod auth;
pub mod backend;
pub mod bench;
pub mod broker;
pub mod glue;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod pipeline;
pub mod provisioner;
pub mod shadow_service;
pub mod simulator;
pub mod stack;
pub mod tokens;
pub mod wire;

/// Locks `mutex`; a panic while it was held leaves plain data behind, which stays usable.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
