//! `Measure`: what `Render` would output for a Source, path and plan,
//! from the original's header alone (the gateway's `Describe` asks).
//!
//! The original is fetched as a render fetches it (under the path's purge
//! generation, so a purge is never measured against an older copy), and
//! only its header is read (see [`crate::pipeline::measure`]): nothing is
//! decoded, rendered or cached. A place in the render pool is held while
//! the original is in memory, so measuring is bounded as rendering is and
//! an overloaded renderer refuses it at once.

use std::time::{Duration, Instant};

use imgmesh_derivative_cache::CacheNames;
use imgmesh_proto::renderer::v1::{MeasureRequest, MeasureResponse};

use crate::error::RenderError;
use crate::pipeline::measure::measure;
use crate::pipeline::{RenderSources, ResolvedPlan};
use crate::service::origin_fetch::ObjectRef;
use crate::service::renderer::Renderer;

// === impl Renderer ===

impl Renderer {
    /// Measures `request`'s render within the caller's `timeout`.
    pub async fn measure_derivative(
        &self,
        request: MeasureRequest,
        timeout: Option<Duration>,
    ) -> Result<MeasureResponse, RenderError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        for (field, value) in [("source_id", &request.source_id), ("path", &request.path)] {
            if value.is_empty() {
                return Err(RenderError::InvalidRequest {
                    field,
                    problem: "must not be empty".into(),
                });
            }
        }
        let plan = ResolvedPlan::resolve(&request.plan.unwrap_or_default())?;
        let names = CacheNames::new(
            &request.source_id,
            request.source_config_version,
            &request.path,
            plan.canonical(),
        );
        // The path's generation (the Source's epoch and purge counters);
        // without Redis there is none to name.
        let generation = self
            .cache
            .lookup(&names, true)
            .await
            .map(|lookup| lookup.generation())
            .unwrap_or_default();
        let admission = self.pool.admit(deadline)?;
        let object = ObjectRef {
            source_id: &request.source_id,
            source_config_version: request.source_config_version,
            path: &request.path,
            generation: &generation,
        };
        let remaining = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let original = self.fetcher.fetch(object, remaining).await?;
        let limits = self.pool.limits();
        let measured = tokio::task::spawn_blocking(move || {
            measure(&RenderSources::original(original.bytes), &plan, &limits)
        })
        .await
        .map_err(|_| RenderError::Internal {
            context: "measuring an original",
        })??;
        drop(admission);
        Ok(MeasureResponse {
            width: measured.width,
            height: measured.height,
            content_type: measured.format.content_type().to_owned(),
            estimated_decoded_bytes: measured.estimated_bytes,
        })
    }
}
