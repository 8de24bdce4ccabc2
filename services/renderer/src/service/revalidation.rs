//! Revalidation: an expired entry's original is fetched conditionally with
//! the ETag it was rendered from; an unchanged original extends the entry
//! in place without decoding anything, a changed one is rendered anew.

use bytes::Bytes;
use imgmesh_derivative_cache::{Conditional, EntryMeta, unix_now};
use imgmesh_proto::renderer::v1::{CacheStatus, RenderResponse};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::service::job::{Job, Produced};
use crate::service::origin_fetch::Revalidated;
use crate::service::renderer::Renderer;
use crate::service::renderer::{answer, counted};

// === impl Renderer ===

impl Renderer {
    /// Revalidates an expired entry with the origin (one run per entry in
    /// this process). `None` when the entry must be rendered anew after all
    /// (it vanished from Redis).
    pub(super) async fn revalidate(
        &self,
        job: &Job,
        meta: EntryMeta,
        data: Option<Bytes>,
        conditional: Conditional<'_>,
    ) -> Result<Option<RenderResponse>, RenderError> {
        let run = {
            let (renderer, job, origin_etag) =
                (self.clone(), job.clone(), meta.origin_etag.clone());
            move |abandoned| async move {
                let job = Job { abandoned, ..job };
                let key = job.key.clone();
                renderer
                    .refresh_or_render(job, origin_etag)
                    .await
                    .map(|produced| (key, produced))
            }
        };
        let flight = format!("{}#revalidate", job.key);
        match self.in_flight.run(&flight, run).await.0?.1 {
            Produced::Entry(entry) => {
                METRICS.derivative_lookup("miss");
                Ok(Some(answer(&entry, conditional)))
            }
            Produced::Refreshed { stored_at, max_age } => {
                METRICS.derivative_lookup("stale");
                let refreshed = EntryMeta {
                    stored_at,
                    max_age,
                    ..meta
                };
                let response = self
                    .cache
                    .respond(&job.key, &refreshed, data, conditional, CacheStatus::Stale)
                    .await;
                Ok(response.map(counted))
            }
        }
    }

    /// Asks the origin whether the original rendered with `origin_etag`
    /// changed: unchanged extends the entry in Redis, changed renders it.
    async fn refresh_or_render(
        self,
        job: Job,
        origin_etag: String,
    ) -> Result<Produced, RenderError> {
        let fetched = self
            .fetcher
            .fetch_if_changed(job.object(), &origin_etag, job.remaining())
            .await?;
        match fetched {
            Revalidated::Unchanged(caching) => {
                let now = unix_now();
                let max_age = job.lifetime(&caching, now);
                if job.cacheable {
                    self.cache
                        .refresh(&job.key, now, max_age, self.caching.redis_ttl(max_age))
                        .await;
                }
                Ok(Produced::Refreshed {
                    stored_at: now,
                    max_age,
                })
            }
            Revalidated::Changed(original) => {
                // Only now is a render needed: an unchanged original took
                // no render capacity.
                let admission = self.admit(&job)?;
                self.render_and_store(&job, admission, original)
                    .await
                    .map(Produced::Entry)
            }
        }
    }
}
