//! Answering `GET /<path>?<query>`: Host → Source, path and query checks,
//! render, HTTP response.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, header};
use imgmesh_errors::ErrorCode;
use imgmesh_proto::registry::v1::Source;
use imgmesh_proto::renderer::v1::{RenderRequest, RenderResponse};
use tracing::Instrument as _;

use crate::GatewayState;
use crate::asset_path::asset_path;
use crate::error::GatewayError;
use crate::host_routing::SourceHost;
use crate::render_plan::parse_render_plan;

/// Header saying whether the derivative came from the cache.
const CACHE_STATUS_HEADER: &str = "x-imgmesh-cache";

/// Serves one image request inside its `http.server` span (continuing an
/// incoming `traceparent`), so every gRPC call it makes joins the trace.
pub(crate) async fn serve_image(State(state): State<GatewayState>, request: Request) -> Response {
    let span = imgmesh_telemetry::http_server_span(&request);
    let is_head = request.method() == Method::HEAD;
    let response = answer(state, request)
        .instrument(span.clone())
        .await
        .unwrap_or_else(IntoResponse::into_response);
    span.record("http.response.status_code", response.status().as_u16());
    if is_head {
        without_body(response)
    } else {
        response
    }
}

async fn answer(state: GatewayState, request: Request) -> Result<Response, GatewayError> {
    let (parts, _body) = request.into_parts();
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(GatewayError::MethodNotAllowed);
    }
    let host = SourceHost::of_request(&parts.uri, &parts.headers, state.base_domain())
        .ok_or(GatewayError::UnknownHost)?;
    let path = asset_path(parts.uri.path()).ok_or(GatewayError::InvalidPath)?;
    let source = resolve_source(&state, &host).await?;
    let plan = parse_render_plan(&source.default_params, parts.uri.query().unwrap_or(""))?;
    let rendered = state
        .upstream()
        .render(RenderRequest {
            source_id: source.id.clone(),
            source_config_version: source.config_version,
            path,
            plan: Some(plan),
            cache_ttl_seconds: source.cache_ttl_seconds,
        })
        .await?;
    image_response(rendered, source.cache_ttl_seconds)
}

/// The Source serving `host`, from the cache or the registry.
async fn resolve_source(
    state: &GatewayState,
    host: &SourceHost,
) -> Result<Arc<Source>, GatewayError> {
    let span = tracing::info_span!(
        "registry.resolve_host",
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = "imgmesh.registry.v1.SourceRegistryService",
        rpc.method = "ResolveHost",
        imgmesh.source_cache = tracing::field::Empty,
        imgmesh.source_id = tracing::field::Empty,
    );
    let lookup = async {
        let cache = state.sources();
        if let Some(cached) = cache.get(host.as_str(), Instant::now()) {
            tracing::Span::current().record("imgmesh.source_cache", "hit");
            return Ok(cached);
        }
        tracing::Span::current().record("imgmesh.source_cache", "miss");
        let lookup = state.upstream().resolve_host(host).await?.map(Arc::new);
        cache.insert(host.as_str(), lookup.clone(), Instant::now());
        Ok::<_, GatewayError>(lookup)
    }
    .instrument(span.clone())
    .await?;
    let source = lookup.ok_or(GatewayError::UnknownHost)?;
    span.record("imgmesh.source_id", source.id.as_str());
    Ok(source)
}

/// A 200 carrying the derivative.
fn image_response(
    rendered: RenderResponse,
    cache_ttl_seconds: u32,
) -> Result<Response, GatewayError> {
    let content_type =
        HeaderValue::from_str(&rendered.content_type).map_err(|_| GatewayError::Upstream {
            code: ErrorCode::Internal,
            message: "renderer: invalid content type".to_owned(),
        })?;
    let cache_status = if rendered.cache_hit { "hit" } else { "miss" };
    let mut response = Response::new(Body::from(rendered.data));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={cache_ttl_seconds}"))
            .expect("a number is a valid header value"),
    );
    headers.insert(CACHE_STATUS_HEADER, HeaderValue::from_static(cache_status));
    Ok(with_content_length(response))
}

/// The same response for a HEAD request: headers (with the length the body
/// would have had) and no body.
fn without_body(response: Response) -> Response {
    let (parts, _body) = with_content_length(response).into_parts();
    Response::from_parts(parts, Body::empty())
}

/// Sets `Content-Length` from the body's exact size when it is known.
fn with_content_length(mut response: Response) -> Response {
    if let Some(length) = response.body().size_hint().exact() {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}
