//! What a shared run carries: the [`Job`] (the request, its resolved plan
//! and its entry key), what the run [`Produced`], and what becomes an
//! entry ([`Stored`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgmesh_derivative_cache::{CachedDerivative, Found, Lookup};
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
    /// The path's cache generation, the Source's epoch and purge counters
    /// read with `key` ([`Lookup::generation`]); empty without Redis.
    pub(super) generation: String,
    /// When the caller stops waiting, if it said.
    pub(super) deadline: Option<Instant>,
    /// Fires when every caller of the shared run has gone: a render that
    /// has not started by then is not started.
    pub(super) abandoned: Abandoned,
    /// Whether its render starts at once or is refused (the caller's
    /// clients resend at once: see `RenderPool::admit_to_start`), instead
    /// of waiting for a worker.
    pub(super) start_now: bool,
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
    /// The run for the request, as a lookup answered it (`None`: Redis is
    /// slow or down, and `base`, the key without purge counters, only
    /// coalesces renders in this process); the entry found, if any, goes
    /// back to the caller.
    pub(super) fn new(
        request: Arc<RenderRequest>,
        plan: ResolvedPlan,
        lookup: Option<Lookup>,
        base: &str,
        deadline: Option<Instant>,
    ) -> (Job, Option<Found>) {
        let cacheable = lookup.is_some();
        let generation = lookup.as_ref().map(Lookup::generation).unwrap_or_default();
        let (key, found) = match lookup {
            Some(Lookup { key, found, .. }) => (key, found),
            None => (base.to_owned(), None),
        };
        let job = Job {
            request,
            plan: Arc::new(plan),
            key,
            cacheable,
            generation,
            deadline,
            abandoned: Abandoned::never(),
            start_now: false,
        };
        (job, found)
    }

    /// The request's original. The path's generation (the Source's epoch
    /// and purge counters) keeps the fetcher from reusing a copy it cached
    /// before a purge, even once Redis lost its data and the counters
    /// restarted, while every derivative of one original still shares its
    /// cached copy.
    pub(super) fn object(&self) -> ObjectRef<'_> {
        ObjectRef {
            source_id: &self.request.source_id,
            source_config_version: self.request.source_config_version,
            path: &self.request.path,
            generation: &self.generation,
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
