//! The tonic face of [`Renderer`]: `RendererService.Render`, `RenderSet`,
//! `RenderBytes`, `Measure` and `Purge`, with the request span and the log line of a
//! failed render.

use std::pin::Pin;

use futures::Stream;
use imgmesh_errors::ErrorCode;
use imgmesh_proto::renderer::v1::renderer_service_server::RendererService;
use imgmesh_proto::renderer::v1::{
    MeasureRequest, MeasureResponse, PurgeRequest, PurgeResponse, RenderBytesRequest,
    RenderBytesResponse, RenderRequest, RenderResponse, RenderSetRequest, RenderSetResponse,
};
use tracing::Instrument as _;

use crate::error::RenderError;
use crate::service::origin_fetch;
use crate::service::renderer::Renderer;

/// The request metadata by which a caller asks for a render that starts at
/// once or is refused, never queued (`imgmesh-admission: start-now`; the
/// gateway sends it while its clients resend refused requests at once).
const ADMISSION_METADATA: &str = "imgmesh-admission";

/// [`ADMISSION_METADATA`]'s value asking to start at once or be refused.
const START_NOW: &str = "start-now";

/// Whether `metadata` asks for a render that starts at once or not at all.
fn asks_to_start_now(metadata: &tonic::metadata::MetadataMap) -> bool {
    metadata
        .get(ADMISSION_METADATA)
        .is_some_and(|value| value.as_bytes() == START_NOW.as_bytes())
}

/// The stream of a `RenderSet` call: one message per plan.
type RenderSetStream = Pin<Box<dyn Stream<Item = Result<RenderSetResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl RendererService for Renderer {
    type RenderSetStream = RenderSetStream;

    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderResponse>, tonic::Status> {
        let timeout = origin_fetch::grpc_timeout(request.metadata());
        let start_now = asks_to_start_now(request.metadata());
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
            match self.render_derivative_as(request, timeout, start_now).await {
                Ok(response) => {
                    let span = tracing::Span::current();
                    span.record("cache", response.cache_status().as_str_name());
                    span.record("not_modified", response.not_modified);
                    Ok(tonic::Response::new(response))
                }
                Err(error) => Err(logged(error)),
            }
        }
        .instrument(span)
        .await
    }

    async fn render_set(
        &self,
        request: tonic::Request<RenderSetRequest>,
    ) -> Result<tonic::Response<RenderSetStream>, tonic::Status> {
        let timeout = origin_fetch::grpc_timeout(request.metadata());
        let request = request.into_inner();
        let span = tracing::info_span!(
            "render_set",
            source_id = %request.source_id,
            path = %request.path,
            plans = request.plans.len(),
            error = tracing::field::Empty,
        );
        let answers = self
            .render_derivative_set(request, timeout)
            .instrument(span.clone())
            .await
            .map_err(|error| span.in_scope(|| logged(error)))?;
        let messages = answers.into_iter().zip(0u32..).map(|(derivative, index)| {
            Ok(RenderSetResponse {
                index,
                derivative: Some(derivative),
            })
        });
        Ok(tonic::Response::new(Box::pin(futures::stream::iter(
            messages,
        ))))
    }

    async fn render_bytes(
        &self,
        request: tonic::Request<tonic::Streaming<RenderBytesRequest>>,
    ) -> Result<tonic::Response<RenderBytesResponse>, tonic::Status> {
        let timeout = origin_fetch::grpc_timeout(request.metadata());
        let span = tracing::info_span!("render_bytes", error = tracing::field::Empty);
        let derivative = self
            .render_streamed(request.into_inner(), timeout)
            .instrument(span.clone())
            .await
            .map_err(|error| span.in_scope(|| logged(error)))?;
        Ok(tonic::Response::new(RenderBytesResponse {
            derivative: Some(derivative),
        }))
    }

    async fn measure(
        &self,
        request: tonic::Request<MeasureRequest>,
    ) -> Result<tonic::Response<MeasureResponse>, tonic::Status> {
        let timeout = origin_fetch::grpc_timeout(request.metadata());
        let request = request.into_inner();
        let span = tracing::info_span!(
            "measure",
            source_id = %request.source_id,
            path = %request.path,
            error = tracing::field::Empty,
        );
        let measured = self
            .measure_derivative(request, timeout)
            .instrument(span.clone())
            .await
            .map_err(|error| span.in_scope(|| logged(error)))?;
        Ok(tonic::Response::new(measured))
    }

    async fn purge(
        &self,
        request: tonic::Request<PurgeRequest>,
    ) -> Result<tonic::Response<PurgeResponse>, tonic::Status> {
        let generation = self.purge_derivatives(request.get_ref()).await?;
        Ok(tonic::Response::new(PurgeResponse { generation }))
    }
}

/// `error` as a status, recorded on the current span and logged: a warning
/// for a failure of the renderer, a debug line for a refusal.
fn logged(error: RenderError) -> tonic::Status {
    let code = error.code();
    tracing::Span::current().record("error", code.reason());
    // Shedding is the renderer working as designed; a warning per refusal
    // would flood the log under load.
    if code.http_status() >= 500 && code != ErrorCode::Overloaded {
        tracing::warn!(%error, %code, "render failed");
    } else {
        tracing::debug!(%error, %code, "render refused");
    }
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `imgmesh-admission: start-now` asks for a render that starts at
    /// once or is refused; no metadata, or another value, queues as before.
    #[test]
    fn start_now_is_read_from_the_metadata() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert!(!asks_to_start_now(&metadata));
        metadata.insert("imgmesh-admission", "queue".parse().unwrap());
        assert!(!asks_to_start_now(&metadata));
        metadata.insert("imgmesh-admission", "start-now".parse().unwrap());
        assert!(asks_to_start_now(&metadata));
    }
}
