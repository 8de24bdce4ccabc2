//! What a shared run carries: the [`Job`] (the request, its resolved plan
//! and its entry key), what the run [`Produced`], and what becomes an
//! entry ([`Stored`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgmesh_derivative_cache::CachedDerivative;
use imgmesh_proto::registry::v1::CacheTtlBehavior;
use imgmesh_proto::renderer::v1::RenderRequest;

use crate::pipeline::ResolvedPlan;
use crate::service::http_cache::{OriginCaching, lifetime};
use crate::service::origin_fetch::{ObjectRef, Original};
use crate::service::single_flight::Abandoned;

/// What one shared run produced.
#[derive(Debug, Clone)]
pub(super) enum Produced {
    /// A new entry, rendered here or by the replica this one waited for.
    Entry(Arc<CachedDerivative>),
    /// The expired entry's original is unchanged: its new freshness.
    Refreshed {
        /// When it was revalidated, Unix seconds.
        stored_at: i64,
        /// Its new lifetime.
        max_age: u32,
    },
}

/// What becomes an entry: the bytes served (a render, or the original
/// passed through) and what the original's fetch said about it.
#[derive(Debug)]
pub(super) struct Stored {
    pub(super) content_type: &'static str,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) data: Vec<u8>,
    pub(super) origin_etag: String,
    pub(super) last_modified: i64,
    pub(super) caching: OriginCaching,
}

/// Everything a run needs, owned so it can outlive the request.
#[derive(Debug, Clone)]
pub(super) struct Job {
    /// The request as it came.
    pub(super) request: Arc<RenderRequest>,
    /// Its plan, resolved once: the render pool and the pipeline take it
    /// as it is.
    pub(super) plan: Arc<ResolvedPlan>,
    /// The entry key under the current purge counters.
    pub(super) key: String,
    /// Whether `key` came from Redis (else Redis is down: nothing is stored).
    pub(super) cacheable: bool,
    /// When the caller stops waiting, if it said.
    pub(super) deadline: Option<Instant>,
    /// Fires when every caller of the shared run has gone: a render that
    /// has not started by then is not started.
    pub(super) abandoned: Abandoned,
}

// === impl Stored ===

impl Stored {
    /// The entry of `data` (`content_type`, `width × height`) made from
    /// `original`, whose bytes `data` replaces: what its fetch said about
    /// it (validators, caching headers) is kept.
    pub(super) fn new(
        original: Original,
        content_type: &'static str,
        (width, height): (u32, u32),
        data: Vec<u8>,
    ) -> Stored {
        Stored {
            content_type,
            width,
            height,
            data,
            origin_etag: original.etag,
            last_modified: original.last_modified,
            caching: original.caching,
        }
    }
}

// === impl Job ===

impl Job {
    /// The request's original. The path's purge counters (the key's last
    /// part, e.g. `0.2.0`) keep the fetcher from reusing a copy it cached
    /// before a purge, while every derivative of one original still shares
    /// its cached copy.
    pub(super) fn object(&self) -> ObjectRef<'_> {
        let generation = match self.key.rsplit_once(':') {
            Some((_, generations)) if self.cacheable => generations,
            _ => "",
        };
        ObjectRef {
            source_id: &self.request.source_id,
            source_config_version: self.request.source_config_version,
            path: &self.request.path,
            generation,
        }
    }

    /// What is left of the caller's budget.
    pub(super) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The derivative's lifetime given what the origin said.
    pub(super) fn lifetime(&self, caching: &OriginCaching, now: i64) -> u32 {
        let behavior = CacheTtlBehavior::try_from(self.request.cache_ttl_behavior)
            .unwrap_or(CacheTtlBehavior::Unspecified);
        lifetime(behavior, self.request.cache_ttl_seconds, caching, now)
    }
}
