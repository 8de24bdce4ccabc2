//! The public render API, `imgmesh.image.v1.ImageService`, served on the
//! gateway's gRPC listener (`--grpc-listen`).
//!
//! It is the HTTP gateway without URLs: a request names a Source (by id,
//! name or subdomain), an asset path and an imgix query, and goes through
//! the same steps as `GET /<path>?<query>` — the host → Source lookup and
//! its cache (`image_handler::resolve_source`), the Source's state, the
//! path check, `expires`, the shared imgix parser with the Source's default
//! parameters, and the Redis-or-renderer step (`image_handler::derivative`)
//! — so the two APIs share cache entries and answer the same bytes and
//! ETag. Errors are the same [`GatewayError`]s, carrying their catalogue
//! reason in a `google.rpc.ErrorInfo`.
//!
//! Differences from HTTP: there are no conditional requests and no
//! `image_missing` / `image_error` fallbacks (a service caller wants the
//! error), the caller's `grpc-timeout` shortens the render's deadline, and
//! callers present an API key (`authorization: Bearer <key>`, see
//! [`api_keys`]) instead of signing: a key scoped to the Source and the
//! operation is served whether or not the Source requires signed URLs.
//!
//! `RenderSet` resolves the target once, parses each variant's query laid
//! over the target's, and asks the renderer's `RenderSet` for all the
//! plans at once (one fetch, one decode, each derivative cached under its
//! own plan's key). `RenderBytes` takes the original from the caller's
//! stream instead of a Source and relays it to the renderer's
//! `RenderBytes`, which applies the byte limit and the same checks as for
//! a fetched original; it needs a key for every Source. `Describe` builds
//! the plan, cache key and public URL itself and asks the renderer's
//! `Measure` for the output's size, format and memory estimate (the
//! original is fetched and its header read; nothing is rendered).

mod api_keys;
mod deadline;
mod source_names;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use imgmesh_derivative_cache::{CacheNames, Conditional, unix_now};
use imgmesh_errors::ErrorCode;
use imgmesh_proto::image::v1::image_service_server::{ImageService, ImageServiceServer};
use imgmesh_proto::image::v1::{
    CacheStatus, DescribeRequest, DescribeResponse, ImageTarget, RenderBytesRequest,
    RenderBytesResponse, RenderMetadata, RenderRequest, RenderResponse, RenderSetRequest,
    RenderSetResponse, image_target, render_bytes_request, render_bytes_response, render_response,
    render_set_response,
};
use imgmesh_proto::renderer::v1 as renderer;
use tokio_stream::{Stream, StreamExt as _};

use crate::GatewayState;
use crate::asset_path::asset_path;
use crate::error::GatewayError;
use crate::host_routing::SourceHost;
use crate::image_handler::{derivative, render_request, resolve_source};
use crate::metrics::METRICS;
use crate::render_plan::{ParsedPlan, parse_render_plan};
use crate::signing;
use crate::source_cache::{ResolvedSource, Serving};
use crate::url_expiry;

use self::api_keys::{KeyCache, Operation};
use self::source_names::SourceNames;

/// Largest chunk of a Render stream: far under gRPC's 4 MiB default
/// message limit, so any client can read the stream.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// Most variants in one RenderSet call.
pub(crate) const MAX_SET_VARIANTS: usize = 16;

/// The stream of a Render call.
type RenderStream = Pin<Box<dyn Stream<Item = Result<RenderResponse, tonic::Status>> + Send>>;
/// The stream of a RenderSet call.
type RenderSetStream = Pin<Box<dyn Stream<Item = Result<RenderSetResponse, tonic::Status>> + Send>>;
/// The stream of a RenderBytes call.
type RenderBytesStream =
    Pin<Box<dyn Stream<Item = Result<RenderBytesResponse, tonic::Status>> + Send>>;

/// The public image API over the gateway's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ImageApi {
    state: GatewayState,
    names: Arc<SourceNames>,
    keys: Arc<KeyCache>,
}

/// A request's target, checked and resolved: what Render and Describe
/// both start from.
#[derive(Debug)]
struct Target {
    resolved: Arc<ResolvedSource>,
    /// The Source's subdomain.
    subdomain: String,
    /// The asset path as the caller sent it (percent-encoded as in a URL).
    raw_path: String,
    /// The decoded asset path the renderer is asked for.
    path: String,
    /// The caller's imgix query.
    params: String,
    /// The caller's `Accept` value (empty when none).
    accept: String,
    /// The canonical plan.
    parsed: ParsedPlan,
    /// The query's `expires` time, Unix seconds.
    expires_at: Option<i64>,
}

// === impl ImageApi ===

impl ImageApi {
    /// The API over `state`; Sources named by id or name are remembered
    /// for `--source-cache-ttl-ms`, like hosts.
    pub fn new(state: GatewayState) -> ImageApi {
        let names = Arc::new(SourceNames::new(state.sources().ttl()));
        ImageApi {
            state,
            names,
            keys: Arc::new(KeyCache::default()),
        }
    }

    /// The tonic service to add to a gRPC server.
    pub fn server(self) -> ImageServiceServer<ImageApi> {
        ImageServiceServer::new(self)
    }

    /// Authenticates the caller, then resolves and checks `target` in the
    /// HTTP path's order: Source, its state, the key's scope, the path,
    /// `expires`, the parameters.
    async fn target(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        operation: Operation,
        target: Option<ImageTarget>,
    ) -> Result<Target, tonic::Status> {
        let key = api_keys::authenticate(&self.state, &self.keys, metadata).await?;
        let target = target.ok_or_else(|| invalid("target is required"))?;
        let subdomain = match &target.source {
            None => return Err(invalid("target.source is required")),
            Some(image_target::Source::Subdomain(subdomain)) => subdomain.to_ascii_lowercase(),
            Some(image_target::Source::SourceId(id)) => self.subdomain_of(id, true).await?,
            Some(image_target::Source::SourceName(name)) => self.subdomain_of(name, false).await?,
        };
        let base_domain = self.state.base_domain();
        let host = SourceHost::parse(&format!("{subdomain}.{base_domain}"), base_domain)
            .filter(|host| !host.is_custom_domain())
            .ok_or(GatewayError::UnknownHost)?;
        let resolved = resolve_source(&self.state, &host).await?;
        match resolved.serving() {
            Serving::NotDeployed => return Err(GatewayError::UnknownHost.into()),
            Serving::Disabled => return Err(GatewayError::SourceDisabled.into()),
            Serving::Yes => {}
        }
        // An authorised key stands in for a signature.
        api_keys::authorize(&key, operation, &resolved.source.id)?;
        let path = asset_path(&format!("/{}", target.path)).ok_or(GatewayError::InvalidPath)?;
        let expires_at = url_expiry::expires_at(&target.params);
        if expires_at.is_some_and(|at| url_expiry::is_expired(at, unix_now())) {
            return Err(GatewayError::Expired.into());
        }
        let accept = Some(target.accept.as_str()).filter(|accept| !accept.is_empty());
        let parsed = parse_render_plan(&resolved.source.default_params, &target.params, accept)
            .map_err(GatewayError::from)?;
        Ok(Target {
            resolved,
            subdomain,
            raw_path: target.path,
            path,
            params: target.params,
            accept: target.accept,
            parsed,
            expires_at,
        })
    }

    /// How long the renderer may take for `request`: the gateway's
    /// `--render-timeout-ms`, or less if the caller's deadline is nearer.
    fn render_timeout<T>(&self, request: &tonic::Request<T>) -> std::time::Duration {
        let render_timeout = self.state.upstream().render_timeout();
        deadline::caller_timeout(request)
            .map_or(render_timeout, |caller| caller.min(render_timeout))
    }

    /// The subdomain of the Source whose id (`by_id`) or name is `key`.
    async fn subdomain_of(&self, key: &str, by_id: bool) -> Result<String, tonic::Status> {
        let cache_key = format!("{}:{key}", if by_id { "id" } else { "name" });
        let subdomain = match self.names.get(&cache_key, Instant::now()) {
            Some(known) => known,
            None => {
                let source = self.state.upstream().get_source(key).await?;
                // The registry looks up ids and names alike; only the kind
                // the caller named counts.
                let subdomain = source
                    .filter(|source| {
                        if by_id {
                            source.id == key
                        } else {
                            source.name == key
                        }
                    })
                    .map(|source| source.routing.unwrap_or_default().subdomain);
                self.names
                    .insert(cache_key, subdomain.clone(), Instant::now());
                subdomain
            }
        };
        subdomain.ok_or_else(|| GatewayError::UnknownHost.into())
    }
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    type RenderStream = RenderStream;
    type RenderSetStream = RenderSetStream;
    type RenderBytesStream = RenderBytesStream;

    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderStream>, tonic::Status> {
        let timeout = self.render_timeout(&request);
        let (metadata, _, message) = request.into_parts();
        let target = self
            .target(&metadata, Operation::Render, message.target)
            .await?;
        let source = &target.resolved.source;
        let no_validators = Conditional {
            if_none_match: "",
            if_modified_since: 0,
        };
        let rendered = derivative(
            &self.state,
            source,
            &METRICS.source_series(&source.id),
            render_request(source, target.path.clone(), target.parsed.plan, "", 0),
            no_validators,
            timeout,
        )
        .await?;
        let (metadata, chunks) = metadata_and_chunks(rendered, target.expires_at);
        let first = std::iter::once(render_response::Part::Metadata(metadata));
        let messages = first
            .chain(chunks.map(render_response::Part::Chunk))
            .map(|part| Ok(RenderResponse { part: Some(part) }));
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn render_set(
        &self,
        request: tonic::Request<RenderSetRequest>,
    ) -> Result<tonic::Response<RenderSetStream>, tonic::Status> {
        let timeout = self.render_timeout(&request);
        let (metadata, _, message) = request.into_parts();
        let target = self
            .target(&metadata, Operation::Render, message.target)
            .await?;
        if message.variants.is_empty() {
            return Err(invalid("variants is required"));
        }
        if message.variants.len() > MAX_SET_VARIANTS {
            return Err(invalid(&format!(
                "at most {MAX_SET_VARIANTS} variants in a set"
            )));
        }
        let source = &target.resolved.source;
        let accept = Some(target.accept.as_str()).filter(|accept| !accept.is_empty());
        let mut plans = Vec::with_capacity(message.variants.len());
        for variant in &message.variants {
            // A later parameter replaces an earlier one of the same name,
            // so the variant's values win over the target's.
            let query = format!("{}&{variant}", target.params);
            let parsed = parse_render_plan(&source.default_params, &query, accept)
                .map_err(GatewayError::from)?;
            plans.push(parsed.plan);
        }
        let set = renderer::RenderSetRequest {
            source_id: source.id.clone(),
            source_config_version: source.config_version,
            path: target.path.clone(),
            plans,
            cache_ttl_seconds: source.cache_policy().ttl_seconds,
            cache_ttl_behavior: source.cache_policy().behavior,
        };
        let rendered = self
            .state
            .upstream()
            .render_set_within(set, timeout)
            .await?;
        let expires_at = target.expires_at;
        let messages = rendered
            .into_iter()
            .zip(0u32..)
            .flat_map(move |(rendered, index)| {
                let (metadata, chunks) = metadata_and_chunks(rendered, expires_at);
                std::iter::once(render_set_response::Part::Metadata(metadata))
                    .chain(chunks.map(render_set_response::Part::Chunk))
                    .map(move |part| {
                        Ok(RenderSetResponse {
                            index,
                            part: Some(part),
                        })
                    })
            });
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn render_bytes(
        &self,
        request: tonic::Request<tonic::Streaming<RenderBytesRequest>>,
    ) -> Result<tonic::Response<RenderBytesStream>, tonic::Status> {
        let timeout = self.render_timeout(&request);
        let (metadata, _, mut inbound) = request.into_parts();
        let key = api_keys::authenticate(&self.state, &self.keys, &metadata).await?;
        api_keys::authorize_unscoped(&key, Operation::Render)?;
        let params = match inbound.message().await?.and_then(|message| message.part) {
            Some(render_bytes_request::Part::Params(params)) => params,
            _ => return Err(invalid("the first message must carry params")),
        };
        let accept = Some(params.accept.as_str()).filter(|accept| !accept.is_empty());
        let parsed = parse_render_plan("", &params.params, accept).map_err(GatewayError::from)?;
        let plan = renderer::RenderBytesRequest {
            part: Some(renderer::render_bytes_request::Part::Plan(Box::new(
                parsed.plan,
            ))),
        };
        // The caller's chunks, relayed as they come; a caller that fails
        // or cancels ends the relay. A second params message is passed on
        // as a plan, which the renderer refuses.
        let chunks = inbound.map_while(Result::ok).map(|message| {
            let part = match message.part {
                Some(render_bytes_request::Part::Chunk(chunk)) => {
                    renderer::render_bytes_request::Part::Chunk(chunk)
                }
                _ => renderer::render_bytes_request::Part::Plan(Box::default()),
            };
            renderer::RenderBytesRequest { part: Some(part) }
        });
        let messages = tokio_stream::once(plan).chain(chunks);
        let rendered = self
            .state
            .upstream()
            .render_bytes_within(messages, timeout)
            .await?;
        let (metadata, chunks) = metadata_and_chunks(rendered, None);
        let first = std::iter::once(render_bytes_response::Part::Metadata(metadata));
        let messages = first
            .chain(chunks.map(render_bytes_response::Part::Chunk))
            .map(|part| Ok(RenderBytesResponse { part: Some(part) }));
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn describe(
        &self,
        request: tonic::Request<DescribeRequest>,
    ) -> Result<tonic::Response<DescribeResponse>, tonic::Status> {
        let timeout = self.render_timeout(&request);
        let (metadata, _, message) = request.into_parts();
        let target = self
            .target(&metadata, Operation::Describe, message.target)
            .await?;
        let source = &target.resolved.source;
        let plan = target.parsed.plan;
        let measured = self
            .state
            .upstream()
            .measure_within(
                renderer::MeasureRequest {
                    source_id: source.id.clone(),
                    source_config_version: source.config_version,
                    path: target.path.clone(),
                    plan: Some(plan.clone()),
                },
                timeout,
            )
            .await?;
        let cache_key =
            CacheNames::new(&source.id, source.config_version, &target.path, &plan).base;
        let mut public_url = format!(
            "https://{}.{}/{}",
            target.subdomain,
            self.state.base_domain(),
            target.raw_path
        );
        let query = if source.secure_url_enabled {
            signing::signed_query(
                &target.resolved.signing_keys,
                &format!("/{}", target.raw_path),
                &target.params,
                unix_now(),
            )
            .ok_or_else(|| {
                ErrorCode::Internal
                    .status("the source requires signed urls but has no active token")
            })?
        } else {
            target.params.clone()
        };
        if !query.is_empty() {
            public_url.push('?');
            public_url.push_str(&query);
        }
        Ok(tonic::Response::new(DescribeResponse {
            source_id: source.id.clone(),
            plan: Some(plan),
            cache_key,
            public_url,
            width: measured.width,
            height: measured.height,
            content_type: measured.content_type,
            estimated_decoded_bytes: measured.estimated_decoded_bytes,
        }))
    }
}

/// The metadata of `rendered` (its lifetime capped by `expires_at`) and
/// its bytes in chunks of at most [`MAX_CHUNK_BYTES`].
fn metadata_and_chunks(
    rendered: renderer::RenderResponse,
    expires_at: Option<i64>,
) -> (RenderMetadata, impl Iterator<Item = bytes::Bytes> + Send) {
    let metadata = RenderMetadata {
        content_type: rendered.content_type.clone(),
        size: rendered.data.len() as u64,
        etag: rendered.etag.clone(),
        cache_status: cache_status(rendered.cache_status()) as i32,
        max_age_seconds: max_age(&rendered, expires_at, unix_now()),
        width: rendered.width,
        height: rendered.height,
    };
    let data = rendered.data;
    let chunks = (0..data.len()).step_by(MAX_CHUNK_BYTES).map(move |start| {
        let end = (start + MAX_CHUNK_BYTES).min(data.len());
        data.slice(start..end)
    });
    (metadata, chunks)
}

/// An `INVALID_ARGUMENT` status with its catalogue reason.
fn invalid(message: &str) -> tonic::Status {
    ErrorCode::InvalidArgument.status(message)
}

/// The public API's name for where a derivative came from.
fn cache_status(status: renderer::CacheStatus) -> CacheStatus {
    match status {
        renderer::CacheStatus::Hit => CacheStatus::Hit,
        renderer::CacheStatus::Stale => CacheStatus::Stale,
        renderer::CacheStatus::Miss | renderer::CacheStatus::Unspecified => CacheStatus::Miss,
    }
}

/// How long the derivative may still be cached at `now`: its lifetime less
/// its age, never past the query's `expires`.
fn max_age(rendered: &renderer::RenderResponse, expires_at: Option<i64>, now: i64) -> u32 {
    let left = rendered
        .max_age_seconds
        .saturating_sub(rendered.age_seconds);
    match expires_at {
        Some(at) => left.min(u32::try_from(at.saturating_sub(now).max(0)).unwrap_or(u32::MAX)),
        None => left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lifetime left is the renderer's less the age, and never reaches past `expires`.
    #[test]
    fn max_age_is_what_is_left_and_capped_by_expires() {
        let rendered = renderer::RenderResponse {
            max_age_seconds: 3600,
            age_seconds: 600,
            ..Default::default()
        };
        assert_eq!(max_age(&rendered, None, 1_000), 3000);
        assert_eq!(max_age(&rendered, Some(1_060), 1_000), 60);
        assert_eq!(max_age(&rendered, Some(900), 1_000), 0);
        let old = renderer::RenderResponse {
            max_age_seconds: 10,
            age_seconds: 20,
            ..Default::default()
        };
        assert_eq!(max_age(&old, None, 1_000), 0);
    }
}
