//! The tonic face of [`Renderer`]: `RendererService.Render` and `Purge`,
//! with the request span and the log line of a failed render.

use imgmesh_errors::ErrorCode;
use imgmesh_proto::renderer::v1::renderer_service_server::RendererService;
use imgmesh_proto::renderer::v1::{PurgeRequest, PurgeResponse, RenderRequest, RenderResponse};
use tracing::Instrument as _;

use crate::service::origin_fetch;
use crate::service::renderer::Renderer;

#[tonic::async_trait]
impl RendererService for Renderer {
    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderResponse>, tonic::Status> {
        let timeout = origin_fetch::grpc_timeout(request.metadata());
        let request = request.into_inner();
        let span = tracing::info_span!(
            "render",
            source_id = %request.source_id,
            path = %request.path,
            cache = tracing::field::Empty,
            not_modified = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        async {
            match self.render_derivative(request, timeout).await {
                Ok(response) => {
                    let span = tracing::Span::current();
                    span.record("cache", response.cache_status().as_str_name());
                    span.record("not_modified", response.not_modified);
                    Ok(tonic::Response::new(response))
                }
                Err(error) => {
                    let code = error.code();
                    tracing::Span::current().record("error", code.reason());
                    // Shedding is the renderer working as designed; a
                    // warning per refusal would flood the log under load.
                    if code.http_status() >= 500 && code != ErrorCode::Overloaded {
                        tracing::warn!(%error, %code, "render failed");
                    } else {
                        tracing::debug!(%error, %code, "render refused");
                    }
                    Err(error.into())
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn purge(
        &self,
        request: tonic::Request<PurgeRequest>,
    ) -> Result<tonic::Response<PurgeResponse>, tonic::Status> {
        let generation = self.purge_derivatives(request.get_ref()).await?;
        Ok(tonic::Response::new(PurgeResponse { generation }))
    }
}
