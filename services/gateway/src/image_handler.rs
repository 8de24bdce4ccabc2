//! Answering `GET /<path>?<query>`: Host → Source, the Source's state,
//! signature and expiry checks, path and query checks, render, HTTP response.
//!
//! The order matters: nothing that costs I/O beyond the (cached) host lookup
//! happens before a secured Source's signature has been verified, so forged
//! URLs cannot make the renderer, Redis or S3 do any work.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, header};
use imgmesh_errors::ErrorCode;
use imgmesh_proto::renderer::v1::{RenderRequest, RenderResponse};
use tracing::Instrument as _;

use crate::GatewayState;
use crate::asset_path::asset_path;
use crate::error::{DEFAULT_ERROR_TTL_SECONDS, GatewayError};
use crate::host_routing::SourceHost;
use crate::render_plan::parse_render_plan;
use crate::signing;
use crate::source_cache::{Lookup, ResolvedSource, Serving};
use crate::url_expiry;

/// Header saying whether the derivative came from the cache.
const CACHE_STATUS_HEADER: &str = "x-imgmesh-cache";

/// Serves one image request inside its `http.server` span (continuing an
/// incoming `traceparent`), so every gRPC call it makes joins the trace.
pub(crate) async fn serve_image(State(state): State<GatewayState>, request: Request) -> Response {
    let span = imgmesh_telemetry::http_server_span(&request);
    let is_head = request.method() == Method::HEAD;
    let mut lifetime = ResponseLifetime::new(unix_now());
    let mut response = answer(state, request, &mut lifetime)
        .instrument(span.clone())
        .await
        .unwrap_or_else(IntoResponse::into_response);
    lifetime.limit_error(&mut response);
    span.record("http.response.status_code", response.status().as_u16());
    if is_head {
        without_body(response)
    } else {
        response
    }
}

async fn answer(
    state: GatewayState,
    request: Request,
    lifetime: &mut ResponseLifetime,
) -> Result<Response, GatewayError> {
    let (parts, _body) = request.into_parts();
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(GatewayError::MethodNotAllowed);
    }
    let host = SourceHost::of_request(&parts.uri, &parts.headers, state.base_domain())
        .ok_or(GatewayError::UnknownHost)?;
    let path = asset_path(parts.uri.path()).ok_or(GatewayError::InvalidPath)?;
    let resolved = resolve_source(&state, &host).await?;
    let source = &resolved.source;
    match resolved.serving() {
        Serving::NotDeployed => return Err(GatewayError::UnknownHost),
        Serving::Disabled => {
            lifetime.error_ttl_seconds = error_ttl(source.cache_ttl_error_seconds);
            return Err(GatewayError::SourceDisabled);
        }
        Serving::Yes => lifetime.error_ttl_seconds = error_ttl(source.cache_ttl_error_seconds),
    }

    // The raw path and query exactly as received: `Uri` keeps them as sent.
    let raw_query = parts.uri.query();
    let query = if source.secure_url_enabled {
        signing::verify(
            parts.uri.path(),
            raw_query,
            &resolved.signing_keys,
            lifetime.now,
        )
        .map_err(|refused| {
            tracing::debug!(reason = %refused, "signature refused");
            GatewayError::InvalidSignature
        })?
    } else {
        raw_query.unwrap_or("")
    };
    if let Some(expires_at) = url_expiry::expires_at(query) {
        lifetime.not_after = Some(expires_at);
        if url_expiry::is_expired(expires_at, lifetime.now) {
            return Err(GatewayError::Expired);
        }
    }

    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let parsed = parse_render_plan(&source.default_params, query, accept)?;
    let rendered = state
        .upstream()
        .render(RenderRequest {
            source_id: source.id.clone(),
            source_config_version: source.config_version,
            path,
            plan: Some(parsed.plan),
            cache_ttl_seconds: source.cache_ttl_seconds,
        })
        .await?;
    let mut response = image_response(rendered, lifetime.cap(source.cache_ttl_seconds))?;
    if parsed.varies_on_accept {
        // auto=format chose the format from Accept.
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}

/// The Source answering for `host`, from the cache or the registry; an
/// error when there is none or it is disabled by the registry's own word.
async fn resolve_source(
    state: &GatewayState,
    host: &SourceHost,
) -> Result<Arc<ResolvedSource>, GatewayError> {
    let span = tracing::info_span!(
        "registry.resolve_host",
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = "imgmesh.registry.v1.SourceRegistryService",
        rpc.method = "ResolveHost",
        imgmesh.custom_domain = host.is_custom_domain(),
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
        let lookup = state.upstream().resolve_host(host).await?;
        cache.insert(host.as_str(), lookup.clone(), Instant::now());
        Ok::<_, GatewayError>(lookup)
    }
    .instrument(span.clone())
    .await?;
    match lookup {
        Lookup::Source(resolved) => {
            span.record("imgmesh.source_id", resolved.source.id.as_str());
            Ok(resolved)
        }
        Lookup::Disabled => Err(GatewayError::SourceDisabled),
        Lookup::Unknown => Err(GatewayError::UnknownHost),
    }
}

/// How long a response may be cached, as far as the request's Source and
/// URL say: errors for the Source's error TTL, and nothing past the URL's
/// `expires` time.
#[derive(Debug)]
struct ResponseLifetime {
    /// The time the request arrived, Unix seconds.
    now: i64,
    /// How long a client error may be cached.
    error_ttl_seconds: u32,
    /// The URL's `expires` time, Unix seconds.
    not_after: Option<i64>,
}

// === impl ResponseLifetime ===

impl ResponseLifetime {
    fn new(now: i64) -> ResponseLifetime {
        ResponseLifetime {
            now,
            error_ttl_seconds: DEFAULT_ERROR_TTL_SECONDS,
            not_after: None,
        }
    }

    /// `ttl_seconds`, shortened so it never reaches past `expires`.
    fn cap(&self, ttl_seconds: u32) -> u32 {
        match self.not_after {
            Some(not_after) => {
                let left = not_after.saturating_sub(self.now).max(0);
                ttl_seconds.min(u32::try_from(left).unwrap_or(u32::MAX))
            }
            None => ttl_seconds,
        }
    }

    /// Gives a cacheable client error the Source's error TTL (capped by
    /// `expires`); responses that must not be cached stay `no-store`.
    fn limit_error(&self, response: &mut Response) {
        let headers = response.headers_mut();
        let cacheable = headers
            .get(header::CACHE_CONTROL)
            .is_some_and(|value| value.as_bytes().starts_with(b"public"));
        if response.status().is_client_error() && cacheable {
            let max_age = self.cap(self.error_ttl_seconds);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, public_max_age(max_age));
        }
    }
}

/// A Source's error TTL; 0 (unset) means imgix's default.
fn error_ttl(cache_ttl_error_seconds: u32) -> u32 {
    if cache_ttl_error_seconds == 0 {
        DEFAULT_ERROR_TTL_SECONDS
    } else {
        cache_ttl_error_seconds
    }
}

fn public_max_age(seconds: u32) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={seconds}"))
        .expect("a number is a valid header value")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A 200 carrying the derivative, cacheable for `max_age` seconds.
fn image_response(rendered: RenderResponse, max_age: u32) -> Result<Response, GatewayError> {
    let content_type =
        HeaderValue::from_str(&rendered.content_type).map_err(|_| GatewayError::Upstream {
            code: ErrorCode::Internal,
            message: "renderer: invalid content type".to_owned(),
        })?;
    let cache_status = if rendered.cache_hit { "hit" } else { "miss" };
    let mut response = Response::new(Body::from(rendered.data));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, public_max_age(max_age));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `expires` a TTL is kept; with it, no lifetime reaches past it.
    #[test]
    fn lifetime_is_capped_by_expires() {
        let mut lifetime = ResponseLifetime::new(1_000);
        assert_eq!(lifetime.cap(86_400), 86_400);
        lifetime.not_after = Some(1_060);
        assert_eq!(lifetime.cap(86_400), 60);
        assert_eq!(lifetime.cap(30), 30);
        lifetime.not_after = Some(1_000);
        assert_eq!(lifetime.cap(86_400), 0);
        lifetime.not_after = Some(10);
        assert_eq!(lifetime.cap(86_400), 0);
        lifetime.not_after = Some(i64::MAX);
        assert_eq!(lifetime.cap(u32::MAX), u32::MAX);
    }

    /// Client errors get the Source's error TTL; `no-store` answers and server errors are left alone.
    #[test]
    fn errors_get_the_error_ttl() {
        let mut lifetime = ResponseLifetime::new(1_000);
        lifetime.error_ttl_seconds = error_ttl(60);
        let mut not_found = GatewayError::InvalidPath.into_response();
        lifetime.limit_error(&mut not_found);
        assert_eq!(not_found.headers()["cache-control"], "public, max-age=60");

        lifetime.not_after = Some(1_010);
        let mut not_found = GatewayError::InvalidPath.into_response();
        lifetime.limit_error(&mut not_found);
        assert_eq!(not_found.headers()["cache-control"], "public, max-age=10");

        let mut forbidden = GatewayError::InvalidSignature.into_response();
        lifetime.limit_error(&mut forbidden);
        assert_eq!(forbidden.headers()["cache-control"], "no-store");

        let mut unavailable = GatewayError::timed_out("renderer").into_response();
        lifetime.limit_error(&mut unavailable);
        assert_eq!(unavailable.headers()["cache-control"], "no-store");

        assert_eq!(error_ttl(0), DEFAULT_ERROR_TTL_SECONDS);
    }
}
