//! `RenderBytes`: an original the caller streams instead of naming a
//! Source. A place in the render pool is taken before a byte is read (an
//! overloaded renderer refuses at once); the stream is then read up to the
//! same byte limit as a fetched original (`--max-object-bytes`) and
//! rendered by the same pipeline, with the same sniffing, loaders and
//! limits. Nothing is looked up in or stored into the derivative cache:
//! the bytes name no Source and no path to key an entry by.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt as _};
use imgmesh_derivative_cache::strong_etag;
use imgmesh_proto::renderer::v1::render_bytes_request::Part;
use imgmesh_proto::renderer::v1::{CacheStatus, RenderBytesRequest, RenderResponse};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::{RenderSources, ResolvedPlan};
use crate::service::render_set::names_overlay_images;
use crate::service::renderer::Renderer;

// === impl Renderer ===

impl Renderer {
    /// Renders the original streamed in `messages` (a plan first, then
    /// chunks), within the caller's `timeout`.
    pub async fn render_streamed(
        &self,
        messages: impl Stream<Item = Result<RenderBytesRequest, tonic::Status>> + Unpin,
        timeout: Option<Duration>,
    ) -> Result<RenderResponse, RenderError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut messages = messages;
        let plan = match messages.next().await {
            Some(Ok(RenderBytesRequest {
                part: Some(Part::Plan(plan)),
            })) => plan,
            Some(Err(_)) | None => return Err(RenderError::Abandoned),
            Some(Ok(_)) => {
                return Err(RenderError::InvalidRequest {
                    field: "plan",
                    problem: "the first message must carry the plan".into(),
                });
            }
        };
        let plan = ResolvedPlan::resolve(&plan)?;
        if names_overlay_images(plan.canonical()) {
            return Err(RenderError::InvalidRequest {
                field: "plan",
                problem:
                    "mark and blend images are read from a source; a streamed original has none"
                        .into(),
            });
        }
        let admission = self.pool.admit(deadline)?;
        let limit = self.pool.limits().max_object_bytes;
        let mut original = Vec::new();
        while let Some(message) = messages.next().await {
            match message.map_err(|_| RenderError::Abandoned)?.part {
                Some(Part::Chunk(chunk)) => {
                    if (original.len() + chunk.len()) as u64 > limit {
                        return Err(RenderError::ObjectTooLarge { limit });
                    }
                    original.extend_from_slice(&chunk);
                }
                Some(Part::Plan(_)) | None => {
                    return Err(RenderError::InvalidRequest {
                        field: "chunk",
                        problem: "only the first message carries the plan".into(),
                    });
                }
            }
        }
        let started = Instant::now();
        let derivative = self
            .pool
            .render_admitted(
                admission,
                RenderSources::original(original),
                Arc::new(plan),
                deadline,
                std::future::pending(),
            )
            .await?;
        METRICS.rendered(
            super::rendering::format_label(derivative.format),
            started.elapsed(),
        );
        Ok(RenderResponse {
            etag: strong_etag(&derivative.data),
            content_type: derivative.format.content_type().to_owned(),
            width: derivative.width,
            height: derivative.height,
            data: derivative.data.into(),
            cache_status: CacheStatus::Miss as i32,
            ..RenderResponse::default()
        })
    }
}
