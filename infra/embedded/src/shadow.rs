//! Device shadows for the local shadow service, as JSON records keyed by thing name.

use std::sync::Arc;

use hearth_domain::shadow::Shadow;

use crate::EmbeddedError;
use crate::db::Shared;

/// Durable device shadows (classic, unnamed): `put` and `delete` return once fsynced
/// (concurrent calls share an fsync). Callers serialise requests for one thing (the shadow
/// service does, to assign versions).
#[derive(Clone)]
pub struct ShadowStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ShadowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowStore").finish_non_exhaustive()
    }
}

impl ShadowStore {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The thing's shadow, if it has one.
    pub async fn get(&self, thing: &str) -> Result<Option<Shadow>, EmbeddedError> {
        match self
            .shared
            .shadows
            .get(thing)
            .map_err(EmbeddedError::storage)?
        {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| EmbeddedError::corrupt("shadow", e)),
            None => Ok(None),
        }
    }

    /// Stores the thing's shadow; returns once it is durable.
    pub async fn put(&self, thing: &str, shadow: &Shadow) -> Result<(), EmbeddedError> {
        let value = serde_json::to_vec(shadow).map_err(|e| EmbeddedError::encode("shadow", e))?;
        self.shared
            .shadows
            .insert(thing, value)
            .map_err(EmbeddedError::storage)?;
        self.shared.syncer.barrier().await
    }

    /// Deletes the thing's shadow; returns whether it had one, once the delete is durable.
    pub async fn delete(&self, thing: &str) -> Result<bool, EmbeddedError> {
        let shadows = &self.shared.shadows;
        let existed = shadows
            .contains_key(thing)
            .map_err(EmbeddedError::storage)?;
        if existed {
            shadows.remove(thing).map_err(EmbeddedError::storage)?;
            self.shared.syncer.barrier().await?;
        }
        Ok(existed)
    }
}
