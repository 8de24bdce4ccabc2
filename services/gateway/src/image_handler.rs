//! Answering `GET /<path>?<query>`: Host → Source, the Source's state,
//! signature and expiry checks, path and query checks, render, HTTP response.
//!
//! The response carries the renderer's validators (a strong `ETag`, the
//! original's `Last-Modified`), and the client's (`If-None-Match`,
//! `If-Modified-Since`) travel to the renderer, which answers "not
//! modified" without rendering or sending bytes: a 304 here. A missing
//! original, or one that cannot be read or rendered, is replaced by the
//! Source's `image_missing` / `image_error` when it has one, served with
//! the error's status and the Source's error TTL.
//!
//! The order matters: nothing that costs I/O beyond the (cached) host lookup
//! happens before a secured Source's signature has been verified, so forged
//! URLs cannot make the renderer, Redis or S3 do any work.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use imgmesh_derivative_cache::{CacheNames, Conditional, DerivativeCache, unix_now};
use imgmesh_errors::ErrorCode;
use imgmesh_proto::registry::v1::Source;
use imgmesh_proto::renderer::v1::{CacheStatus, RenderPlan, RenderRequest, RenderResponse};
use tracing::Instrument as _;

use crate::GatewayState;
use crate::asset_path::asset_path;
use crate::error::{DEFAULT_ERROR_TTL_SECONDS, GatewayError};
use crate::host_routing::SourceHost;
use crate::metrics::{DerivativeLookup, METRICS, SourceSeries};
use crate::plan_memo::{HeaderInputs, MemoizedPlan, ResponseHeaders};
use crate::render_plan::parse_render_plan;
use crate::signing;
use crate::source_cache::{Lookup, ResolvedSource, Serving};
use crate::url_expiry;

/// Header saying whether the derivative came from the cache.
const CACHE_STATUS_HEADER: HeaderName = HeaderName::from_static("x-imgmesh-cache");

/// Room for an image response's headers (a 200 from the cache has seven,
/// and `traceresponse` may follow), so filling them never grows the map.
const RESPONSE_HEADER_CAPACITY: usize = 10;

/// Longest a request waits for the registry when the host's last answer
/// could stand in: past it the last answer is served, and the lookup goes
/// on in the background to refresh the cache.
const STALE_LOOKUP_WAIT: Duration = Duration::from_millis(500);

/// Serves one image request. It runs inside the request's `http.server`
/// span (see `trace_response`), so every gRPC call it makes joins the trace.
pub(crate) async fn serve_image(State(state): State<GatewayState>, request: Request) -> Response {
    let is_head = request.method() == Method::HEAD;
    let mut lifetime = ResponseLifetime::new(unix_now());
    let mut answered_for = None;
    let mut response = answer(state, request, &mut lifetime, &mut answered_for)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    lifetime.limit_error(&mut response);
    if let Some(series) = answered_for {
        series.request(response.status());
    }
    if is_head {
        without_body(response)
    } else {
        response
    }
}

/// Answers `request`; `answered_for` is set to the Source's metric series
/// once the host is known to be one's.
async fn answer(
    state: GatewayState,
    request: Request,
    lifetime: &mut ResponseLifetime,
    answered_for: &mut Option<Arc<SourceSeries>>,
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
    let series = answered_for.insert(METRICS.source_series(&source.id));
    match resolved.serving() {
        Serving::NotDeployed => return Err(GatewayError::UnknownHost),
        Serving::Disabled => {
            lifetime.error_ttl_seconds = error_ttl(source.cache_policy().error_ttl_seconds);
            return Err(GatewayError::SourceDisabled);
        }
        Serving::Yes => {
            lifetime.error_ttl_seconds = error_ttl(source.cache_policy().error_ttl_seconds)
        }
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
    // Only now, with the request authorised: the memo decides nothing.
    let memoized = state.plans().plan(source, &path, query, accept)?;
    let render = |path: String, plan, if_none_match: &str, if_modified_since: i64| {
        render_request(source, path, plan, if_none_match, if_modified_since)
    };
    let if_none_match = header_text(&parts.headers, header::IF_NONE_MATCH).unwrap_or("");
    let if_modified_since = header_text(&parts.headers, header::IF_MODIFIED_SINCE)
        .and_then(http_date_seconds)
        .unwrap_or(0);
    let conditional = Conditional {
        if_none_match,
        if_modified_since,
    };
    let rendered = derivative_named(
        &state,
        series,
        Some(&memoized.names),
        || {
            render(
                path,
                memoized.parsed.plan.clone(),
                if_none_match,
                if_modified_since,
            )
        },
        conditional,
        state.upstream().render_timeout(),
    )
    .await;
    let (rendered, status) = match rendered {
        Ok(rendered) => (rendered, StatusCode::OK),
        Err(error) => {
            let Some((fallback, append_params)) = fallback_for(&error, source) else {
                return Err(error);
            };
            let plan = if append_params {
                memoized.parsed.plan.clone()
            } else {
                parse_render_plan(&source.default_params, "", accept)?.plan
            };
            let fallback_render = state.upstream().render(render(fallback, plan, "", 0));
            match Box::pin(fallback_render).await {
                Ok(rendered) => (rendered, error.http_status()),
                Err(fallback_error) => {
                    tracing::warn!(error = %fallback_error, "the Source's fallback image failed");
                    return Err(error);
                }
            }
        }
    };
    let mut response = image_response(
        rendered,
        status,
        lifetime,
        state.cache_status_header(),
        &memoized,
    )?;
    if memoized.parsed.varies_on_accept {
        // auto=format chose the format from Accept.
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}

/// The renderer's request for the derivative of `path` on `source` with
/// `plan`, carrying the Source's cache policy and the client's validators.
pub(crate) fn render_request(
    source: &Source,
    path: String,
    plan: RenderPlan,
    if_none_match: &str,
    if_modified_since: i64,
) -> RenderRequest {
    RenderRequest {
        source_id: source.id.clone(),
        source_config_version: source.config_version,
        path,
        plan: Some(plan),
        cache_ttl_seconds: source.cache_policy().ttl_seconds,
        cache_ttl_behavior: source.cache_policy().behavior,
        if_none_match: if_none_match.to_owned(),
        if_modified_since,
    }
}

/// The derivative `request` asks for: from Redis when a fresh copy is
/// there, else from the renderer within `render_timeout`. The HTTP handler
/// and the public gRPC API (`grpc_api`) both get their derivatives here,
/// so the two share cache entries and can never disagree.
pub(crate) async fn derivative(
    state: &GatewayState,
    source: &Source,
    series: &SourceSeries,
    request: RenderRequest,
    conditional: Conditional<'_>,
    render_timeout: Duration,
) -> Result<RenderResponse, GatewayError> {
    let names = match (state.derivatives(), request.plan.as_ref()) {
        (Some(_), Some(plan)) => Some(CacheNames::new(
            &source.id,
            source.config_version,
            &request.path,
            plan,
        )),
        _ => None,
    };
    derivative_named(
        state,
        series,
        names.as_ref(),
        || request,
        conditional,
        render_timeout,
    )
    .await
}

/// [`derivative`] for a request whose cache `names` are already known
/// (none: do not look in the cache); the renderer's `request` is built
/// only when the cache cannot answer.
async fn derivative_named(
    state: &GatewayState,
    series: &SourceSeries,
    names: Option<&CacheNames>,
    request: impl FnOnce() -> RenderRequest,
    conditional: Conditional<'_>,
    render_timeout: Duration,
) -> Result<RenderResponse, GatewayError> {
    if let (Some(cache), Some(names)) = (state.derivatives(), names)
        && let Some(cached) = fresh_from_cache(cache, series, names, conditional).await
    {
        return Ok(cached);
    }
    // Boxed: a render is a future of kilobytes that every hit's future
    // would otherwise carry and copy.
    Box::pin(state.upstream().render_within(request(), render_timeout)).await
}

/// The derivative from Redis when a fresh copy is there (its validators
/// only, when the request's match): what the renderer would have answered,
/// without asking it. `None` — ask the renderer — on a miss, an expired
/// entry (the renderer revalidates it) or a Redis that is slow or down.
async fn fresh_from_cache(
    cache: &DerivativeCache,
    series: &SourceSeries,
    names: &CacheNames,
    conditional: Conditional<'_>,
) -> Option<RenderResponse> {
    let lookup = cache.lookup(names, conditional.is_conditional()).await?;
    let Some(found) = lookup.found else {
        series.derivative_lookup(DerivativeLookup::Miss);
        return None;
    };
    let (meta, data) = found.into_parts();
    if !meta.is_fresh(unix_now()) {
        series.derivative_lookup(DerivativeLookup::Expired);
        return None;
    }
    let response = cache
        .respond(&lookup.key, &meta, data, conditional, CacheStatus::Hit)
        .await?;
    series.derivative_lookup(DerivativeLookup::Hit);
    Some(response)
}

/// The Source's replacement for a failed render, and whether the request's
/// params apply to it: `image_missing` for a missing original,
/// `image_error` for one that cannot be read or rendered.
fn fallback_for(error: &GatewayError, source: &Source) -> Option<(String, bool)> {
    let GatewayError::Upstream { code, .. } = error else {
        return None;
    };
    let fallback = source.fallback_images();
    let image = match code {
        ErrorCode::ObjectNotFound => fallback.missing(),
        ErrorCode::UnsupportedInput
        | ErrorCode::CorruptInput
        | ErrorCode::InputTooLarge
        | ErrorCode::OriginAccessDenied
        | ErrorCode::OriginUnavailable
        | ErrorCode::OriginTimeout => fallback.error(),
        _ => return None,
    };
    let path = asset_path(&format!("/{}", image.path.trim_start_matches('/')))?;
    Some((path, image.append_params))
}

/// A header's value when it is present and text.
fn header_text(headers: &http::HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// An HTTP date as Unix seconds; `None` when it is not one (an invalid
/// `If-Modified-Since` is ignored, RFC 9110 §13.1.3).
fn http_date_seconds(value: &str) -> Option<i64> {
    let time = httpdate::parse_http_date(value.trim()).ok()?;
    let seconds = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(seconds).ok()
}

/// The Source answering for `host`, from the cache or the registry (or,
/// when the registry fails, its last answer within the stale window); an
/// error when there is none or it is disabled by the registry's own word.
pub(crate) async fn resolve_source(
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
    let lookup = match state.sources().get(host.as_str(), Instant::now()) {
        Some(cached) => {
            span.record("imgmesh.source_cache", "hit");
            cached
        }
        // Boxed: asking the registry is a future of kilobytes, which every
        // request's future would otherwise carry (and copy) although the
        // cache answers almost all of them.
        None => Box::pin(resolve_uncached(state, host).instrument(span.clone())).await?,
    };
    match lookup {
        Lookup::Source(resolved) => {
            span.record("imgmesh.source_id", resolved.source.id.as_str());
            Ok(resolved)
        }
        Lookup::Disabled => Err(GatewayError::SourceDisabled),
        Lookup::Unknown => Err(GatewayError::UnknownHost),
    }
}

/// [`resolve_source`] when the source cache has no live answer for `host`:
/// the registry's, or the cache's stale one when the registry fails. Runs
/// in the `registry.resolve_host` span.
async fn resolve_uncached(state: &GatewayState, host: &SourceHost) -> Result<Lookup, GatewayError> {
    let cache = state.sources();
    tracing::Span::current().record("imgmesh.source_cache", "miss");
    let resolved = if cache.has_stale(host.as_str(), Instant::now()) {
        // A hung registry must not cost each request its whole lookup
        // deadline when an answer is at hand: wait briefly, then let
        // the lookup finish (and refresh the cache) on its own.
        let lookup = tokio::spawn({
            let (state, host) = (state.clone(), host.clone());
            async move { resolve_and_remember(&state, &host).await }.in_current_span()
        });
        match tokio::time::timeout(STALE_LOOKUP_WAIT, lookup).await {
            Ok(Ok(lookup)) => lookup,
            Ok(Err(_panicked)) => Err(GatewayError::timed_out("registry")),
            Err(_waited) => Err(GatewayError::timed_out("registry")),
        }
    } else {
        resolve_and_remember(state, host).await
    };
    match resolved {
        Ok(lookup) => Ok(lookup),
        // The registry is down or slow, not saying "no": its last
        // answer for the host is better than a 503.
        Err(error) if registry_failed(&error) => {
            match cache.get_stale(host.as_str(), Instant::now()) {
                Some(stale) => {
                    tracing::Span::current().record("imgmesh.source_cache", "stale");
                    tracing::warn!(error = %error, "registry failed; serving the host's last known source");
                    Ok(stale)
                }
                None => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// Asks the registry about `host` and caches its answer.
async fn resolve_and_remember(
    state: &GatewayState,
    host: &SourceHost,
) -> Result<Lookup, GatewayError> {
    let lookup = state.upstream().resolve_host(host).await?;
    state
        .sources()
        .insert(host.as_str(), lookup.clone(), Instant::now());
    Ok(lookup)
}

/// Whether a failed host lookup is the registry failing (down, overloaded,
/// too slow, broken) rather than an answer; only then may a stale answer
/// stand in.
fn registry_failed(error: &GatewayError) -> bool {
    matches!(
        error,
        GatewayError::Upstream {
            code: ErrorCode::Unavailable | ErrorCode::Overloaded | ErrorCode::Internal,
            ..
        }
    )
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

    /// A lifetime of `max_age` for a response already `age` seconds old,
    /// shortened so the freshness left (`max_age - age`) never reaches past
    /// `expires`.
    fn cap_aged(&self, max_age: u32, age: u32) -> u32 {
        match self.not_after {
            Some(_) => max_age.min(age.saturating_add(self.cap(u32::MAX))),
            None => max_age,
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

/// The derivative as an HTTP response: `status` with its bytes, or a 304
/// when the renderer said the client's copy is current. A 200 carries its
/// validators and the derivative's lifetime (`max-age` with `Age`, never
/// past the URL's `expires`; `no-store` for a lifetime of 0), their values
/// built once per change and kept with the URL's `memoized` plan; a
/// fallback image answering an error carries neither, and gets the error's
/// lifetime.
fn image_response(
    rendered: RenderResponse,
    status: StatusCode,
    lifetime: &ResponseLifetime,
    show_cache_status: bool,
    memoized: &MemoizedPlan,
) -> Result<Response, GatewayError> {
    let cache_status = match rendered.cache_status() {
        CacheStatus::Hit => "hit",
        CacheStatus::Stale => "stale",
        CacheStatus::Miss | CacheStatus::Unspecified => "miss",
    };
    let not_modified = rendered.not_modified && status == StatusCode::OK;
    let body_length = rendered.data.len() as u64;
    let mut response = if not_modified {
        // A body of unknown size, so no `Content-Length: 0` is added: a
        // 304's length would have to be the full image's (RFC 9110 §8.6).
        Response::new(Body::from_stream(tokio_stream::empty::<
            Result<bytes::Bytes, std::convert::Infallible>,
        >()))
    } else {
        Response::new(Body::from(rendered.data))
    };
    *response.headers_mut() = HeaderMap::with_capacity(RESPONSE_HEADER_CAPACITY);
    *response.status_mut() = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        status
    };
    if status != StatusCode::OK {
        let content_type = content_type_value(&rendered.content_type)?;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        if show_cache_status {
            headers.insert(CACHE_STATUS_HEADER, HeaderValue::from_static(cache_status));
        }
        let cache_control = if status.is_client_error() {
            public_max_age(lifetime.cap(lifetime.error_ttl_seconds))
        } else {
            HeaderValue::from_static("no-store")
        };
        headers.insert(header::CACHE_CONTROL, cache_control);
        return Ok(with_content_length(response));
    }
    let cacheable = rendered.max_age_seconds != 0;
    let inputs = HeaderInputs {
        content_type: &rendered.content_type,
        etag: &rendered.etag,
        last_modified: rendered.last_modified,
        cacheable,
        max_age: lifetime.cap_aged(rendered.max_age_seconds, rendered.age_seconds),
        age: (cacheable && rendered.age_seconds > 0).then_some(rendered.age_seconds),
        content_length: (!not_modified).then_some(body_length),
    };
    let values = memoized.response_headers(&inputs, ok_headers)?;
    let headers = response.headers_mut();
    if !not_modified {
        headers.insert(header::CONTENT_TYPE, values.content_type.clone());
    }
    if show_cache_status {
        headers.insert(CACHE_STATUS_HEADER, HeaderValue::from_static(cache_status));
    }
    if let Some(etag) = &values.etag {
        headers.insert(header::ETAG, etag.clone());
    }
    if let Some(last_modified) = &values.last_modified {
        headers.insert(header::LAST_MODIFIED, last_modified.clone());
    }
    headers.insert(header::CACHE_CONTROL, values.cache_control.clone());
    if let Some(age) = &values.age {
        headers.insert(header::AGE, age.clone());
    }
    if !not_modified && let Some(length) = &values.content_length {
        // The body's own length, remembered with the other values: what
        // `with_content_length` would set.
        headers.insert(header::CONTENT_LENGTH, length.clone());
    }
    Ok(response)
}

/// A 200's header values for `inputs`: its content type (an error when the
/// renderer's is not a valid header value), validators and lifetime.
fn ok_headers(inputs: &HeaderInputs<'_>) -> Result<ResponseHeaders, GatewayError> {
    let content_type = content_type_value(inputs.content_type)?;
    let etag = Some(inputs.etag)
        .filter(|etag| !etag.is_empty())
        .and_then(|etag| HeaderValue::from_str(etag).ok());
    let last_modified = u64::try_from(inputs.last_modified)
        .ok()
        .filter(|&seconds| seconds > 0)
        .map(|seconds| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds)))
        .and_then(|date| HeaderValue::from_str(&date).ok());
    let cache_control = if inputs.cacheable {
        public_max_age(inputs.max_age)
    } else {
        HeaderValue::from_static("no-store")
    };
    Ok(ResponseHeaders::new(
        inputs,
        content_type,
        etag,
        last_modified,
        cache_control,
    ))
}

/// The renderer's content type as a header value.
fn content_type_value(content_type: &str) -> Result<HeaderValue, GatewayError> {
    HeaderValue::from_str(content_type).map_err(|_| GatewayError::Upstream {
        code: ErrorCode::Internal,
        message: "renderer: invalid content type".to_owned(),
    })
}

/// The same response for a HEAD request: headers (with the length the body
/// would have had) and no body.
fn without_body(response: Response) -> Response {
    if response.status() == StatusCode::NOT_MODIFIED {
        // Already bodiless, and without a length to keep.
        return response;
    }
    let (parts, _body) = with_content_length(response).into_parts();
    Response::from_parts(parts, Body::empty())
}

/// Sets `Content-Length` from the body's exact size when it is known (a
/// 304 has no body of its own to measure).
fn with_content_length(mut response: Response) -> Response {
    if response.status() == StatusCode::NOT_MODIFIED {
        return response;
    }
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
