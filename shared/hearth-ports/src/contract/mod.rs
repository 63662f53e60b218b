//! The contract test suite: what every adapter of a port must do. Each function drives an
//! adapter through scenarios and panics (like `assert!`) on the first deviation. Ids are
//! prefixed with `prefix` so several runs can share one backing store.
//!
//! Used by the in-memory adapters' tests here, by `hearth-aws` against moto server, and by the
//! local stack's embedded adapters.

mod dead_letters;
mod enrollment;
mod invitations;
mod iot;
mod registry;
mod state;

use std::future::Future;

use futures_util::future::join_all;
use hearth_domain::device::{
    Device, DeviceId, DeviceType, Household, HouseholdId, Membership, ProductId, Role, UserId,
};
use hearth_domain::projection::{
    Changes, Connectivity, DeviceState, PresenceKind, ShadowProjection, Telemetry,
};
use hearth_domain::shadow::Object;
use serde_json::Value;

use crate::{DeadLetter, DeadLetterSink, DeviceRegistry, EnrollError, Enrollment, StateStore};

pub use dead_letters::dead_letters;
pub use enrollment::{enrollment, enrollment_after_reopen};
pub use invitations::invitations;
pub use iot::{provisioner, shadow_gateway};
pub use registry::{registry, registry_and_state_are_separate};
pub use state::state_store;

fn id<T, E: std::fmt::Debug>(parsed: Result<T, E>) -> T {
    match parsed {
        Ok(v) => v,
        Err(e) => panic!("invalid test id: {e:?}"),
    }
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn object(pairs: &[(&str, Value)]) -> Object {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn doc(version: u64, received_at: u64, reported: Object) -> DeviceState {
    DeviceState {
        shadow: Some(ShadowProjection {
            version,
            received_at,
            timestamp: received_at / 1000,
            desired: None,
            reported: Some(reported),
            client_token: None,
        }),
        ..DeviceState::default()
    }
}

fn version(state: Option<&DeviceState>) -> Option<u64> {
    state.and_then(|s| s.shadow.as_ref()).map(|s| s.version)
}

/// Whether a backing store isolates concurrent transactions, so that the suites may race
/// requests against it. moto server does not (its `TransactWriteItems` is neither locked nor
/// isolated between requests): against it the racing steps run one after the other, and the
/// single-winner property rests on DynamoDB's documented transaction isolation and the
/// conditions the sequential steps do check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Races {
    /// Race concurrent requests (real isolation).
    Concurrent,
    /// Send the racing requests one after the other.
    Sequential,
}

/// Runs `requests` concurrently or one after the other.
async fn race<F: Future>(races: Races, requests: Vec<F>) -> Vec<F::Output> {
    match races {
        Races::Concurrent => join_all(requests).await,
        Races::Sequential => {
            let mut results = Vec::with_capacity(requests.len());
            for request in requests {
                results.push(request.await);
            }
            results
        }
    }
}
