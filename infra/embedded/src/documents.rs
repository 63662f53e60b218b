//! [`Documents`]: small JSON records by key, in one namespace of the database — for local
//! emulations whose data is neither a port's nor a queue's (e.g. the IoT registry's things and
//! certificates).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::EmbeddedError;
use crate::db::Shared;

/// JSON records under `<namespace> 0x00 <key>`; keys must not contain `0x00`.
#[derive(Clone)]
pub struct Documents {
    shared: Arc<Shared>,
    namespace: String,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Documents {
    pub(crate) fn new(shared: Arc<Shared>, namespace: &str) -> Self {
        Self {
            shared,
            namespace: namespace.to_owned(),
        }
    }

    fn key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.namespace.len() + 1 + key.len());
        full.extend_from_slice(self.namespace.as_bytes());
        full.push(0);
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// The record at `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, EmbeddedError> {
        match self
            .shared
            .documents
            .get(self.key(key))
            .map_err(EmbeddedError::storage)?
        {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| EmbeddedError::corrupt("document", e)),
            None => Ok(None),
        }
    }

    /// Writes several records and removes several keys in one atomic commit.
    pub fn write<T: Serialize>(
        &self,
        put: &[(&str, &T)],
        remove: &[&str],
    ) -> Result<(), EmbeddedError> {
        let mut batch = self.shared.batch();
        for (key, value) in put {
            let bytes =
                serde_json::to_vec(value).map_err(|e| EmbeddedError::encode("document", e))?;
            batch.insert(&self.shared.documents, self.key(key), bytes);
        }
        for key in remove {
            batch.remove(&self.shared.documents, self.key(key));
        }
        batch.commit().map_err(EmbeddedError::storage)
    }

    /// Every record whose key starts with `prefix`, in key order, with its key.
    pub fn scan<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, EmbeddedError> {
        let start = self.key(prefix);
        let skip = self.namespace.len() + 1;
        let mut out = Vec::new();
        for guard in self.shared.documents.prefix(&start) {
            let (key, value) = guard.into_inner().map_err(EmbeddedError::storage)?;
            let key = String::from_utf8(key.get(skip..).unwrap_or_default().to_vec())
                .map_err(|e| EmbeddedError::corrupt("document key", e))?;
            let value = serde_json::from_slice(&value)
                .map_err(|e| EmbeddedError::corrupt("document", e))?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Serialises read-modify-writes of `key` (held until the guard drops).
    pub fn lock(&self, key: &str) -> std::sync::MutexGuard<'_, ()> {
        self.shared.stripe(&self.key(key))
    }
}
