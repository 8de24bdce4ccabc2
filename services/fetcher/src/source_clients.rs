//! One S3 client per Source, built from the registry's read access and
//! reused until the Source's config moves on.
//!
//! Callers send the Source config version they know. A cached client serves
//! every request whose version it has caught up with; a newer version means
//! the Source changed (credentials rotated, bucket moved) and the read access
//! is loaded again. Callers that send version 0 get a client at most
//! [`MAX_AGE_UNVERSIONED`] old. Concurrent requests for one Source share a
//! single registry call.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fetch_error::FetchError;
use crate::read_access::{self, RegistryClient};
use crate::s3_client;

/// How long a client may serve callers that send no config version.
pub(crate) const MAX_AGE_UNVERSIONED: Duration = Duration::from_secs(60);

/// What the fetcher keeps per Source: where to read and the client to read
/// with. The credentials live only inside the SDK client, whose `Debug`
/// redacts them.
pub(crate) struct SourceClient {
    /// Source id.
    pub(crate) source_id: String,
    /// Config version the client was built from.
    pub(crate) config_version: u64,
    /// Bucket the Source reads from.
    pub(crate) bucket: String,
    /// Key prefix every path is read under.
    pub(crate) path_prefix: String,
    /// The S3 client with the Source's credentials.
    pub(crate) s3: imgmesh_s3_client::BucketClient,
    loaded_at: Instant,
}

impl fmt::Debug for SourceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceClient")
            .field("source_id", &self.source_id)
            .field("config_version", &self.config_version)
            .field("bucket", &self.bucket)
            .field("path_prefix", &self.path_prefix)
            .finish_non_exhaustive()
    }
}

/// Whether a client built from `cached_version`, `age` ago, may serve a
/// request that knows `requested_version` (0 = the caller does not know).
fn is_fresh(cached_version: u64, age: Duration, requested_version: u64, max_age: Duration) -> bool {
    if requested_version == 0 {
        age < max_age
    } else {
        cached_version >= requested_version
    }
}

/// One cache slot per Source; its async lock makes concurrent requests for
/// a stale Source wait for one registry call instead of each making one.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<SourceClient>>>>;

/// The per-Source client cache.
pub(crate) struct SourceClients {
    registry: RegistryClient,
    tuning: imgmesh_s3_client::ClientTuning,
    slots: Mutex<HashMap<String, Slot>>,
}

// === impl SourceClients ===

impl SourceClients {
    /// An empty cache that loads read access from `registry` and builds
    /// clients with `tuning`.
    pub(crate) fn new(
        registry: RegistryClient,
        tuning: imgmesh_s3_client::ClientTuning,
    ) -> SourceClients {
        SourceClients {
            registry,
            tuning,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `source_id`, loading the Source's read access when
    /// none is cached or the cached one is older than `requested_version`.
    pub(crate) async fn get(
        &self,
        source_id: &str,
        requested_version: u64,
    ) -> Result<Arc<SourceClient>, FetchError> {
        let slot = self.slot(source_id);
        let mut cached = slot.lock().await;
        if let Some(client) = cached.as_ref()
            && is_fresh(
                client.config_version,
                client.loaded_at.elapsed(),
                requested_version,
                MAX_AGE_UNVERSIONED,
            )
        {
            return Ok(client.clone());
        }
        match self.load(source_id, requested_version).await {
            Ok(client) => {
                *cached = Some(client.clone());
                Ok(client)
            }
            Err(err) => {
                if matches!(err, FetchError::SourceNotFound) {
                    // The Source is gone or stopped serving: an older
                    // client must not keep reading for it.
                    *cached = None;
                }
                let never_loaded = cached.is_none();
                drop(cached);
                if never_loaded {
                    // Unknown ids must not grow the map forever.
                    self.forget(source_id, &slot);
                }
                Err(err)
            }
        }
    }

    async fn load(
        &self,
        source_id: &str,
        requested_version: u64,
    ) -> Result<Arc<SourceClient>, FetchError> {
        let access = read_access::get_read_access(&self.registry, source_id).await?;
        if access.config_version < requested_version {
            // The registry has not caught up with the caller (a replica
            // lagging): use what it has; the next request asks again.
            tracing::debug!(
                source_id,
                requested_version,
                config_version = access.config_version,
                "registry returned an older config version than requested"
            );
        }
        let s3 = s3_client::s3_client(&access, self.tuning);
        tracing::debug!(
            source_id,
            config_version = access.config_version,
            "built S3 client for source"
        );
        Ok(Arc::new(SourceClient {
            source_id: access.source_id,
            config_version: access.config_version,
            bucket: access.bucket.location.bucket,
            path_prefix: access.bucket.location.path_prefix,
            s3,
            loaded_at: Instant::now(),
        }))
    }

    fn slot(&self, source_id: &str) -> Slot {
        let mut slots = imgmesh_runtime::lock(&self.slots);
        slots.entry(source_id.to_owned()).or_default().clone()
    }

    /// Drops `source_id`'s slot if it is still `slot` and still empty.
    fn forget(&self, source_id: &str, slot: &Slot) {
        let mut slots = imgmesh_runtime::lock(&self.slots);
        let unused = slots.get(source_id).is_some_and(|current| {
            Arc::ptr_eq(current, slot) && slot.try_lock().is_ok_and(|cached| cached.is_none())
        });
        if unused {
            slots.remove(source_id);
        }
    }

    /// How many Sources have a slot (for tests of the cache's growth).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        imgmesh_runtime::lock(&self.slots).len()
    }
}

impl fmt::Debug for SourceClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceClients")
            .field("sources", &self.slots.lock().map(|s| s.len()).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_AGE: Duration = MAX_AGE_UNVERSIONED;

    /// A cached client serves requests for its own or an older version.
    #[test]
    fn same_or_older_version_is_fresh() {
        assert!(is_fresh(5, Duration::from_secs(3600), 5, MAX_AGE));
        assert!(is_fresh(5, Duration::from_secs(3600), 4, MAX_AGE));
    }

    /// A request for a newer version forces a reload, however young the client.
    #[test]
    fn newer_version_is_stale() {
        assert!(!is_fresh(5, Duration::ZERO, 6, MAX_AGE));
    }

    /// Unversioned requests use the client only until it reaches the max age.
    #[test]
    fn unversioned_requests_use_max_age() {
        assert!(is_fresh(5, Duration::from_secs(59), 0, MAX_AGE));
        assert!(!is_fresh(5, Duration::from_secs(60), 0, MAX_AGE));
    }

    /// A registry that cannot be reached leaves no slot behind for the id.
    #[tokio::test]
    async fn failed_loads_leave_no_slot() {
        // A port that was just free: connecting to it is refused.
        let port = imgmesh_test_support::unused_port();
        let registry = read_access::registry_client(
            &format!("http://127.0.0.1:{port}"),
            &imgmesh_runtime::Transport::Plaintext,
        )
        .unwrap();
        let clients = SourceClients::new(registry, imgmesh_s3_client::ClientTuning::default());
        let err = clients.get("no-such-source", 1).await.unwrap_err();
        assert!(matches!(err, FetchError::RegistryUnavailable), "{err:?}");
        assert_eq!(clients.len(), 0);
    }
}
