//! Hearth's application layer: the use cases that more than one entry point needs — the owners'
//! REST API, Alexa, Google Home, household automations — written once against the ports.
//!
//! - [`access`]: a user's households and roles, and the visibility rule: a device in another
//!   household is indistinguishable from a missing one ([`AppError::NotFound`] for both).
//! - [`devices`]: listing the devices a user may see, reading a device with its shadow and state
//!   projection, renaming, transferring between households, and commanding a device through its
//!   shadow (validated against its type's capabilities, optionally at an expected version, with
//!   the command's [`Cause`](hearth_domain::command::Cause) recorded in the update).
//!
//! This crate knows no HTTP, Lambda or AWS SDK: it returns typed [`AppError`]s, which each entry
//! point renders its own way (an RFC 9457 problem, an Alexa `ErrorResponse`, a Google error code).

pub mod access;
pub mod devices;

use hearth_ports::{DeviceRegistry, IotError, ShadowGateway, StateStore, StoreError};

/// The ports the use cases need.
#[derive(Clone, Copy)]
pub struct AppPorts<'a> {
    /// Devices, households, memberships.
    pub registry: &'a dyn DeviceRegistry,
    /// The state projection (connectivity, last seen, telemetry).
    pub state: &'a dyn StateStore,
    /// The device shadows (desired and reported state, commands).
    pub shadows: &'a dyn ShadowGateway,
}

/// Why a use case refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No such resource among those the caller may see. `field` names the input that named it
    /// when that was not the resource in the path (a target household in a body).
    #[error("not found")]
    NotFound {
        /// The JSON pointer of the input naming the missing resource, if not the path's.
        field: Option<&'static str>,
    },
    /// The caller can see the resource but their role does not allow `action` ("rename a
    /// device").
    #[error("only an owner of the household can {action}")]
    OwnersOnly {
        /// What only owners may do.
        action: &'static str,
    },
    /// The input is well-formed but not acceptable: `pointer` is the JSON pointer of the field.
    #[error("{pointer}: {message}")]
    Invalid {
        /// The JSON pointer of the offending field.
        pointer: String,
        /// What is wrong, for the caller.
        message: String,
    },
    /// The shadow is no longer at the expected version.
    #[error("the device's shadow is no longer at the expected version")]
    VersionConflict,
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// AWS IoT failed.
    #[error(transparent)]
    Iot(#[from] IotError),
}

impl AppError {
    /// A plain not-found.
    pub fn not_found() -> Self {
        Self::NotFound { field: None }
    }

    /// An invalid field.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}
