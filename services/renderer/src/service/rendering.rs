//! A miss, rendered: a place in the render pool first, then the original
//! (and the overlay images its plan names) from the fetcher, the render on
//! the pool with the job's resolved plan, and the entry stored for its
//! lifetime. A plan that asks for nothing stores the original itself,
//! unchanged, when it can be passed through (imgix's passthrough; see
//! [`passthrough`]).

use std::sync::Arc;
use std::time::Instant;

use imgmesh_derivative_cache::{CachedDerivative, EntryMeta, strong_etag, unix_now};
use imgmesh_errors::ErrorCode;
use imgmesh_imgix_params::is_empty_plan;
use imgmesh_proto::renderer::v1::blend;

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::encoding::passthrough::{Passthrough, passthrough};
use crate::pipeline::{EncodedFormat, RenderSources};
use crate::service::job::{Job, Stored};
use crate::service::origin_fetch::{ObjectRef, Original};
use crate::service::render_pool::{Admission, Incoming};
use crate::service::renderer::Renderer;

// === impl Renderer ===

impl Renderer {
    /// Takes a place in the render pool, then fetches the original and
    /// renders it: admitted first, so a refused request fetches nothing and
    /// at most the pool's capacity of originals is ever held.
    pub(super) async fn fetch_and_render(
        &self,
        job: &Job,
    ) -> Result<Arc<CachedDerivative>, RenderError> {
        let admission = self.admit(job)?;
        // Renders of this original that get a worker during the fetch
        // wait a little for this one to join their batch.
        let incoming = self.pool.announce(&batch_key(job), &job.plan);
        let original = self.fetcher.fetch(job.object(), job.remaining()).await?;
        self.render_announced(job, admission, original, incoming)
            .await
    }

    /// A place in the render pool for `job`, unless nobody waits for it
    /// any more or there is no room (refused at once, never queued).
    pub(super) fn admit(&self, job: &Job) -> Result<Admission, RenderError> {
        if job.abandoned.is_set() {
            return Err(RenderError::Abandoned);
        }
        if job.start_now {
            return self.pool.admit_to_start(job.deadline);
        }
        self.pool.admit(job.deadline)
    }

    /// Renders `original` with the job's plan (fetching its overlays), or
    /// takes it as it is when the plan asks for nothing and the original
    /// can be passed through, and stores the entry for its lifetime.
    pub(super) async fn render_and_store(
        &self,
        job: &Job,
        admission: Admission,
        original: Original,
    ) -> Result<Arc<CachedDerivative>, RenderError> {
        self.render_announced(job, admission, original, None).await
    }

    /// [`Renderer::render_and_store`] of a render announced to the pool's
    /// batches before its fetch (`incoming`), if it was: the render may
    /// run in a batch with the other renders of its original that wait for
    /// a worker at the same time.
    async fn render_announced(
        &self,
        job: &Job,
        admission: Admission,
        original: Original,
        incoming: Option<Incoming>,
    ) -> Result<Arc<CachedDerivative>, RenderError> {
        let mut original = if is_empty_plan(job.plan.canonical()) {
            let (mut original, passed) = read_passthrough(original).await?;
            if let Some(passed) = passed {
                // Nothing is decoded: the render place goes back at once.
                drop(admission);
                let bytes = std::mem::take(&mut original.bytes);
                let size = (passed.width, passed.height);
                METRICS.passed_through(format_label(passed.format));
                let stored = Stored::new(original, passed.format.content_type(), size, bytes);
                return Ok(self.store(job, stored).await);
            }
            original
        } else {
            original
        };
        let (watermark, blend) = self.fetch_overlays(job).await?;
        let sources = RenderSources {
            watermark,
            blend,
            ..RenderSources::original_for(std::mem::take(&mut original.bytes), &job.plan)
        };
        let started = Instant::now();
        let derivative = self
            .pool
            .render_batched(
                admission,
                sources,
                Arc::clone(&job.plan),
                job.deadline,
                job.abandoned.wait(),
                &batch_key(job),
                incoming,
            )
            .await?;
        METRICS.rendered(format_label(derivative.format), started.elapsed());
        let size = (derivative.width, derivative.height);
        let stored = Stored::new(
            original,
            derivative.format.content_type(),
            size,
            derivative.data,
        );
        Ok(self.store(job, stored).await)
    }

    /// The overlay images the job's plan names (`mark`, `blend=<path>`),
    /// fetched together; a missing one is left out, as imgix renders the
    /// base image without it.
    async fn fetch_overlays(
        &self,
        job: &Job,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), RenderError> {
        let canonical = job.plan.canonical();
        let remaining = job.remaining();
        let overlay = |path: Option<&str>| {
            let path = path.map(str::to_owned);
            async move {
                let Some(path) = path else {
                    return Ok(None);
                };
                let object = ObjectRef {
                    source_id: &job.request.source_id,
                    source_config_version: job.request.source_config_version,
                    path: &path,
                    generation: "",
                };
                match self.fetcher.fetch(object, remaining).await {
                    Ok(original) => Ok(Some(original.bytes)),
                    Err(RenderError::Fetch {
                        code: ErrorCode::ObjectNotFound,
                        ..
                    }) => Ok(None),
                    Err(error) => Err(error),
                }
            }
        };
        let blend_path = match canonical.blend.as_ref().and_then(|b| b.source.as_ref()) {
            Some(blend::Source::Path(path)) => Some(path.as_str()),
            _ => None,
        };
        let (watermark, blend) = tokio::join!(
            overlay(canonical.watermark.as_ref().map(|m| m.path.as_str())),
            overlay(blend_path),
        );
        Ok((watermark?, blend?))
    }

    /// Makes `stored` the job's entry, kept in Redis for its lifetime.
    pub(super) async fn store(&self, job: &Job, stored: Stored) -> Arc<CachedDerivative> {
        let now = unix_now();
        let max_age = job.lifetime(&stored.caching, now);
        let entry = CachedDerivative {
            meta: EntryMeta {
                content_type: stored.content_type.to_owned(),
                width: stored.width,
                height: stored.height,
                etag: strong_etag(&stored.data),
                origin_etag: stored.origin_etag,
                last_modified: stored.last_modified,
                stored_at: now,
                max_age,
            },
            data: stored.data.into(),
        };
        if job.cacheable && max_age > 0 {
            self.cache
                .set(&job.key, &entry, self.caching.redis_ttl(max_age))
                .await;
        }
        Arc::new(entry)
    }
}

/// `original` with its passthrough, if it can be passed through (a header
/// read, on the blocking pool).
async fn read_passthrough(
    original: Original,
) -> Result<(Original, Option<Passthrough>), RenderError> {
    tokio::task::spawn_blocking(move || {
        let passed = passthrough(&original.bytes);
        (original, passed)
    })
    .await
    .map_err(|_| RenderError::Internal {
        context: "reading an original's header",
    })
}

/// The identity of the job's original for the render pool's batches: its
/// Source, the Source's configuration version, its path and the purge
/// generation it is fetched under (renders batch only with the same bytes
/// besides).
fn batch_key(job: &Job) -> String {
    let object = job.object();
    format!(
        "{}\0{}\0{}\0{}",
        object.source_id, object.source_config_version, object.path, object.generation
    )
}

/// The metrics label of an output format.
pub(super) fn format_label(format: EncodedFormat) -> &'static str {
    match format {
        EncodedFormat::Jpeg => "jpeg",
        EncodedFormat::Png => "png",
        EncodedFormat::Webp => "webp",
        EncodedFormat::Avif => "avif",
        EncodedFormat::Gif => "gif",
        EncodedFormat::Json => "json",
        EncodedFormat::Blurhash => "blurhash",
    }
}
