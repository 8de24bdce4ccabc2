//! Purges: a purge bumps a counter (the Source's, a directory's or an
//! asset's) that every entry key of what it covers includes, so those
//! entries are never read again and expire on their own.

use imgmesh_derivative_cache::{PurgeScope, directory_prefix, generation_key};
use imgmesh_proto::renderer::v1::{PurgeRequest, purge_request};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::service::renderer::Renderer;

// === impl Renderer ===

impl Renderer {
    /// Bumps the purge counter `request` names.
    pub async fn purge_derivatives(&self, request: &PurgeRequest) -> Result<u64, RenderError> {
        if request.source_id.is_empty() {
            return Err(RenderError::InvalidRequest {
                field: "source_id",
                problem: "must not be empty".into(),
            });
        }
        let prefix;
        let (scope, name) = match &request.target {
            None => (PurgeScope::Source, "source"),
            Some(purge_request::Target::Path(path)) => {
                let path = path.trim_start_matches('/');
                if path.is_empty() || path.ends_with('/') {
                    return Err(RenderError::InvalidRequest {
                        field: "path",
                        problem: "must name an asset (purge a prefix for a directory)".into(),
                    });
                }
                (PurgeScope::Asset(path), "asset")
            }
            Some(purge_request::Target::Prefix(raw)) => {
                prefix = directory_prefix(raw).ok_or_else(|| RenderError::InvalidRequest {
                    field: "prefix",
                    problem: "must name a directory (purge the Source for everything)".into(),
                })?;
                (PurgeScope::Prefix(&prefix), "prefix")
            }
        };
        let generation = self
            .cache
            .purge(&generation_key(&request.source_id, scope))
            .await
            .map_err(|error| {
                tracing::warn!(%error, "purge failed");
                RenderError::CacheUnavailable
            })?;
        METRICS.purged(name);
        tracing::info!(source_id = %request.source_id, scope = name, generation, "purged");
        Ok(generation)
    }
}
