//! The local functions, one file each: the Lambda's handler wired to the embedded adapters.
//! Each is registered by its binary name in [`super::registry::FUNCTIONS`].

pub mod owner_api;
pub mod state_processor;
