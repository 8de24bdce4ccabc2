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
    CacheStatus, DescribeRequest, DescribeResponse, ImageTarget, RenderMetadata, RenderRequest,
    RenderResponse, image_target, render_response,
};
use imgmesh_proto::renderer::v1 as renderer;
use tokio_stream::Stream;

use crate::GatewayState;
use crate::asset_path::asset_path;
use crate::error::GatewayError;
use crate::host_routing::SourceHost;
use crate::image_handler::{derivative, render_request, resolve_source};
use crate::render_plan::{ParsedPlan, parse_render_plan};
use crate::signing;
use crate::source_cache::{ResolvedSource, Serving};
use crate::url_expiry;

use self::api_keys::{KeyCache, Operation};
use self::source_names::SourceNames;

/// Largest chunk of a Render stream: far under gRPC's 4 MiB default
/// message limit, so any client can read the stream.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// The stream of a Render call.
type RenderStream = Pin<Box<dyn Stream<Item = Result<RenderResponse, tonic::Status>> + Send>>;

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
            parsed,
            expires_at,
        })
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
                    .map(|source| source.subdomain);
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

    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderStream>, tonic::Status> {
        let render_timeout = self.state.upstream().render_timeout();
        let timeout = deadline::caller_timeout(&request)
            .map_or(render_timeout, |caller| caller.min(render_timeout));
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
            render_request(source, target.path.clone(), target.parsed.plan, "", 0),
            no_validators,
            timeout,
        )
        .await?;
        let metadata = RenderMetadata {
            content_type: rendered.content_type.clone(),
            size: rendered.data.len() as u64,
            etag: rendered.etag.clone(),
            cache_status: cache_status(rendered.cache_status()) as i32,
            max_age_seconds: max_age(&rendered, target.expires_at, unix_now()),
            width: rendered.width,
            height: rendered.height,
        };
        let first = std::iter::once(render_response::Part::Metadata(metadata));
        let data = rendered.data;
        let chunks = (0..data.len()).step_by(MAX_CHUNK_BYTES).map(move |start| {
            let end = (start + MAX_CHUNK_BYTES).min(data.len());
            render_response::Part::Chunk(data.slice(start..end))
        });
        let messages = first
            .chain(chunks)
            .map(|part| Ok(RenderResponse { part: Some(part) }));
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn describe(
        &self,
        request: tonic::Request<DescribeRequest>,
    ) -> Result<tonic::Response<DescribeResponse>, tonic::Status> {
        let (metadata, _, message) = request.into_parts();
        let target = self
            .target(&metadata, Operation::Describe, message.target)
            .await?;
        let source = &target.resolved.source;
        let plan = target.parsed.plan;
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
        }))
    }
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
