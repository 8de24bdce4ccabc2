//! In-test gRPC peers for the gateway: a fake source registry and a fake
//! renderer, served by real tonic servers on `127.0.0.1:0` (with
//! `grpc.health.v1`), answering with canned Sources, bytes and error
//! statuses and recording every call, so tests can prove what the gateway
//! asked for — and what it did *not* ask for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use clap::Parser as _;
use http::{Method, Request, StatusCode};
use imgmesh_errors::ErrorCode;
use imgmesh_gateway::{GatewayConfig, GatewayState};
use imgmesh_proto::registry::v1::source_registry_service_server::{
    SourceRegistryService, SourceRegistryServiceServer,
};
use imgmesh_proto::registry::v1::upload_object_request::Part;
use imgmesh_proto::registry::v1::*;
use imgmesh_proto::renderer::v1::renderer_service_server::{
    RendererService, RendererServiceServer,
};
use imgmesh_proto::renderer::v1::{
    CacheStatus, PurgeRequest, PurgeResponse, RenderRequest, RenderResponse,
};
use imgmesh_test_support::trace_context::install_trace_context;
use imgmesh_test_support::{GrpcPeer, unused_port};
use tower::ServiceExt as _;

/// The bytes the fake renderer answers with.
pub(crate) const IMAGE: &[u8] = b"\x52\x49\x46\x46 not really a webp";
/// The admin token the harness configures.
pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-tests-7c1e9a";
/// The token `secure.localhost` signs with (imgix's public test vectors).
pub(crate) const SECURE_TOKEN: &str = "FOO123bar";
/// During a rotation `rotating.localhost` accepts these two...
pub(crate) const NEW_TOKEN: &str = "new-token-4d2f";
pub(crate) const OLD_TOKEN: &str = "old-token-9b7a";
/// ... but no longer this one, whose grace period is over.
pub(crate) const RETIRED_TOKEN: &str = "retired-token-51c3";
/// The token RotateSecureToken hands out.
pub(crate) const ROTATED_TOKEN: &str = "tok_rotated_0f3b9e2d";

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// === fake source registry ===

/// The Source behind `demo.localhost`: deployed, enabled, unsigned.
pub(crate) fn demo_source() -> Source {
    Source {
        id: "src_demo".to_owned(),
        name: "demo".to_owned(),
        routing: Some(Routing {
            subdomain: "demo".to_owned(),
            custom_domains: Vec::new(),
        }),
        location: Some(Location {
            bucket: "images".to_owned(),
            ..Location::default()
        }),
        access_key: Some(AccessKeyHint {
            id_hint: "…WXYZ".to_owned(),
        }),
        default_params: "fm=webp&q=60&w=800".to_owned(),
        cache_policy: Some(CachePolicy {
            ttl_seconds: 86_400,
            error_ttl_seconds: 300,
            ..CachePolicy::default()
        }),
        config_version: 7,
        enabled: true,
        deploy_state: deploy_state(SourceStatus::Deployed),
        ..Source::default()
    }
}

/// A deploy state with `status`.
fn deploy_state(status: SourceStatus) -> Option<DeployState> {
    Some(DeployState {
        status: status.into(),
        ..DeployState::default()
    })
}

/// `source`'s cache policy with an error TTL of `seconds`.
fn error_ttl(source: &Source, seconds: u32) -> Option<CachePolicy> {
    Some(CachePolicy {
        error_ttl_seconds: seconds,
        ..*source.cache_policy()
    })
}

fn token(token: &str, expires_at: i64) -> SecureUrlToken {
    SecureUrlToken {
        token: token.to_owned(),
        expires_at,
    }
}

/// Answers ResolveHost from a fixed table and the admin RPCs with canned
/// Sources, recording every request.
#[derive(Debug, Default)]
pub(crate) struct FakeRegistry {
    pub(crate) resolve_calls: AtomicUsize,
    pub(crate) resolved: Mutex<Vec<ResolveHostRequest>>,
    pub(crate) created: Mutex<Vec<CreateSourceRequest>>,
    pub(crate) updated: Mutex<Vec<UpdateSourceRequest>>,
    pub(crate) deleted: Mutex<Vec<String>>,
    pub(crate) deployed: Mutex<Vec<String>>,
    pub(crate) rotated: Mutex<Vec<RotateSecureTokenRequest>>,
    pub(crate) uploads: Mutex<Vec<(UploadObjectHeader, Vec<u8>)>>,
    pub(crate) admin_calls: AtomicUsize,
    /// While set, ResolveHost never answers (a hung registry).
    pub(crate) hang_resolves: std::sync::atomic::AtomicBool,
}

impl FakeRegistry {
    fn resolve(request: &ResolveHostRequest) -> Result<ResolveHostResponse, tonic::Status> {
        let now = unix_now();
        let found = |source: Source, tokens: Vec<SecureUrlToken>| {
            Ok(ResolveHostResponse {
                source: Some(source),
                secure_url_tokens: tokens,
            })
        };
        let demo = demo_source();
        match (request.host.as_str(), request.custom_domain) {
            ("demo.localhost", false) => found(demo, vec![]),
            ("off.localhost", false) => Err(ErrorCode::SourceDisabled.status("source is disabled")),
            ("fallback.localhost", false) => found(
                Source {
                    id: "src_fallback".to_owned(),
                    fallback_images: Some(FallbackImages {
                        missing: Some(FallbackImage {
                            path: "/defaults/missing.png".to_owned(),
                            append_params: true,
                        }),
                        error: Some(FallbackImage {
                            path: "defaults/error.png".to_owned(),
                            append_params: false,
                        }),
                    }),
                    cache_policy: error_ttl(&demo, 120),
                    ..demo
                },
                vec![],
            ),
            ("disabled.localhost", false) => found(
                Source {
                    enabled: false,
                    cache_policy: error_ttl(&demo, 120),
                    ..demo
                },
                vec![],
            ),
            ("pending.localhost", false) => found(
                Source {
                    deploy_state: deploy_state(SourceStatus::Pending),
                    ..demo
                },
                vec![],
            ),
            ("pending-off.localhost", false) => found(
                Source {
                    deploy_state: deploy_state(SourceStatus::Failed),
                    enabled: false,
                    ..demo
                },
                vec![],
            ),
            ("secure.localhost", false) => found(
                Source {
                    id: "src_secure".to_owned(),
                    secure_url_enabled: true,
                    default_params: String::new(),
                    ..demo
                },
                vec![token(SECURE_TOKEN, 0)],
            ),
            ("rotating.localhost", false) => found(
                Source {
                    id: "src_rotating".to_owned(),
                    secure_url_enabled: true,
                    ..demo
                },
                vec![
                    token(NEW_TOKEN, 0),
                    token(OLD_TOKEN, now + 3600),
                    token(RETIRED_TOKEN, now - 1),
                ],
            ),
            ("shortttl.localhost", false) => found(
                Source {
                    id: "src_shortttl".to_owned(),
                    cache_policy: error_ttl(&demo, 60),
                    ..demo
                },
                vec![],
            ),
            ("img.example.com", true) => found(
                Source {
                    id: "src_custom".to_owned(),
                    routing: Some(Routing {
                        custom_domains: vec!["img.example.com".to_owned()],
                        ..demo.routing().clone()
                    }),
                    ..demo
                },
                vec![],
            ),
            _ => Err(ErrorCode::SourceNotFound.status("source not found")),
        }
    }

    fn admin_call(&self) {
        self.admin_calls.fetch_add(1, Ordering::SeqCst);
    }

    fn source_named(id_or_name: &str) -> Result<Source, tonic::Status> {
        match id_or_name {
            "demo" | "src_demo" => Ok(demo_source()),
            "slow" => Err(tonic::Status::unavailable(
                "tcp connect error: 10.9.8.7:50051",
            )),
            _ => Err(ErrorCode::SourceNotFound.status("source not found")),
        }
    }
}

#[tonic::async_trait]
impl SourceRegistryService for FakeRegistry {
    async fn create_source(
        &self,
        request: tonic::Request<CreateSourceRequest>,
    ) -> Result<tonic::Response<CreateSourceResponse>, tonic::Status> {
        self.admin_call();
        let request = request.into_inner();
        self.created.lock().unwrap().push(request.clone());
        let routing = request.routing.clone().unwrap_or_default();
        let location = request.location.clone().unwrap_or_default();
        let access_key = request.access_key.clone().unwrap_or_default();
        if routing.subdomain.contains('_') {
            return Err(imgmesh_errors::invalid_field(
                "subdomain",
                "must be a DNS label",
            ));
        }
        if request.name == "demo" {
            return Err(ErrorCode::AlreadyExists.status_with(
                "name: already taken",
                [(imgmesh_errors::FIELD_KEY, "name".to_owned())],
            ));
        }
        let hint = access_key
            .id
            .get(access_key.id.len().saturating_sub(4)..)
            .unwrap_or_default();
        Ok(tonic::Response::new(CreateSourceResponse {
            source: Some(Source {
                id: "src_new".to_owned(),
                name: request.name,
                routing: Some(Routing {
                    subdomain: routing.subdomain,
                    custom_domains: Vec::new(),
                }),
                location: Some(Location {
                    bucket: location.bucket,
                    region: location.region,
                    ..Location::default()
                }),
                access_key: Some(AccessKeyHint {
                    id_hint: format!("…{hint}"),
                }),
                secure_url_enabled: request.secure_url_enabled,
                enabled: !request.disabled,
                deploy_state: deploy_state(SourceStatus::Pending),
                config_version: 1,
                ..Source::default()
            }),
        }))
    }

    async fn get_source(
        &self,
        request: tonic::Request<GetSourceRequest>,
    ) -> Result<tonic::Response<GetSourceResponse>, tonic::Status> {
        self.admin_call();
        let source = Self::source_named(&request.into_inner().id_or_name)?;
        Ok(tonic::Response::new(GetSourceResponse {
            source: Some(source),
        }))
    }

    async fn list_sources(
        &self,
        _: tonic::Request<ListSourcesRequest>,
    ) -> Result<tonic::Response<ListSourcesResponse>, tonic::Status> {
        self.admin_call();
        Ok(tonic::Response::new(ListSourcesResponse {
            sources: vec![
                demo_source(),
                Source {
                    id: "src_shop".to_owned(),
                    name: "shop".to_owned(),
                    ..demo_source()
                },
            ],
        }))
    }

    async fn update_source(
        &self,
        request: tonic::Request<UpdateSourceRequest>,
    ) -> Result<tonic::Response<UpdateSourceResponse>, tonic::Status> {
        self.admin_call();
        let request = request.into_inner();
        self.updated.lock().unwrap().push(request.clone());
        let mut source = Self::source_named(&request.id_or_name)?;
        let mask = request.update_mask.clone().unwrap_or_default();
        if mask.paths.iter().any(|path| path == "enabled") {
            source.enabled = request.source.clone().unwrap_or_default().enabled;
        }
        source.config_version += 1;
        Ok(tonic::Response::new(UpdateSourceResponse {
            source: Some(source),
        }))
    }

    async fn delete_source(
        &self,
        request: tonic::Request<DeleteSourceRequest>,
    ) -> Result<tonic::Response<DeleteSourceResponse>, tonic::Status> {
        self.admin_call();
        let id_or_name = request.into_inner().id_or_name;
        Self::source_named(&id_or_name)?;
        self.deleted.lock().unwrap().push(id_or_name);
        Ok(tonic::Response::new(DeleteSourceResponse {}))
    }

    async fn resolve_host(
        &self,
        request: tonic::Request<ResolveHostRequest>,
    ) -> Result<tonic::Response<ResolveHostResponse>, tonic::Status> {
        self.resolve_calls.fetch_add(1, Ordering::SeqCst);
        if self.hang_resolves.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let request = request.into_inner();
        self.resolved.lock().unwrap().push(request.clone());
        Self::resolve(&request).map(tonic::Response::new)
    }

    async fn deploy_source(
        &self,
        request: tonic::Request<DeploySourceRequest>,
    ) -> Result<tonic::Response<DeploySourceResponse>, tonic::Status> {
        self.admin_call();
        let id_or_name = request.into_inner().id_or_name;
        let source = Self::source_named(&id_or_name)?;
        self.deployed.lock().unwrap().push(id_or_name);
        Ok(tonic::Response::new(DeploySourceResponse {
            source: Some(Source {
                deploy_state: deploy_state(SourceStatus::Deploying),
                ..source
            }),
        }))
    }

    async fn rotate_secure_token(
        &self,
        request: tonic::Request<RotateSecureTokenRequest>,
    ) -> Result<tonic::Response<RotateSecureTokenResponse>, tonic::Status> {
        self.admin_call();
        let request = request.into_inner();
        self.rotated.lock().unwrap().push(request.clone());
        let source = Self::source_named(&request.id_or_name)?;
        Ok(tonic::Response::new(RotateSecureTokenResponse {
            token: ROTATED_TOKEN.to_owned(),
            source: Some(Source {
                active_secure_tokens: 2,
                ..source
            }),
        }))
    }

    async fn upload_object(
        &self,
        request: tonic::Request<tonic::Streaming<UploadObjectRequest>>,
    ) -> Result<tonic::Response<UploadObjectResponse>, tonic::Status> {
        self.admin_call();
        let mut stream = request.into_inner();
        let Some(UploadObjectRequest {
            part: Some(Part::Header(header)),
        }) = stream.message().await?
        else {
            return Err(imgmesh_errors::invalid_field("header", "must come first"));
        };
        if header.id_or_name == "nouploads" {
            return Err(imgmesh_errors::invalid_field(
                "upload_access_key_id",
                "the source has no upload credentials",
            ));
        }
        let mut bytes = Vec::new();
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(Part::Chunk(chunk)) => bytes.extend_from_slice(&chunk),
                _ => return Err(imgmesh_errors::invalid_field("chunk", "expected")),
            }
        }
        let size = bytes.len() as u64;
        let key = format!("prefix/{}", header.key);
        self.uploads.lock().unwrap().push((header, bytes));
        Ok(tonic::Response::new(UploadObjectResponse {
            key,
            etag: "\"etag-1\"".to_owned(),
            size,
        }))
    }

    // The gateway's in-process tests use no API keys; the real registry's
    // are exercised in integration-tests/tests/render_api.rs.
    async fn create_api_key(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::CreateApiKeyRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::CreateApiKeyResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no api keys",
        ))
    }

    async fn list_api_keys(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::ListApiKeysRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::ListApiKeysResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no api keys",
        ))
    }

    async fn revoke_api_key(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::RevokeApiKeyRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::RevokeApiKeyResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no api keys",
        ))
    }

    async fn authenticate_api_key(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::AuthenticateApiKeyRequest>,
    ) -> Result<
        tonic::Response<imgmesh_proto::registry::v1::AuthenticateApiKeyResponse>,
        tonic::Status,
    > {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no api keys",
        ))
    }

    // The gateway's in-process tests log in with the bootstrap token only;
    // named admin tokens and the audit log are exercised against the real
    // registry in integration-tests/tests/admin_scopes.rs. Audit records
    // are accepted (and dropped) so every change the tests make succeeds.
    async fn create_admin_token(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::CreateAdminTokenRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::CreateAdminTokenResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no admin tokens",
        ))
    }

    async fn list_admin_tokens(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::ListAdminTokensRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::ListAdminTokensResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no admin tokens",
        ))
    }

    async fn revoke_admin_token(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::RevokeAdminTokenRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::RevokeAdminTokenResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake registry keeps no admin tokens",
        ))
    }

    async fn authenticate_admin_token(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::AuthenticateAdminTokenRequest>,
    ) -> Result<
        tonic::Response<imgmesh_proto::registry::v1::AuthenticateAdminTokenResponse>,
        tonic::Status,
    > {
        Ok(tonic::Response::new(
            imgmesh_proto::registry::v1::AuthenticateAdminTokenResponse { admin_token: None },
        ))
    }

    async fn record_audit_event(
        &self,
        request: tonic::Request<imgmesh_proto::registry::v1::RecordAuditEventRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::RecordAuditEventResponse>, tonic::Status>
    {
        Ok(tonic::Response::new(
            imgmesh_proto::registry::v1::RecordAuditEventResponse {
                event: request.into_inner().event,
            },
        ))
    }

    async fn list_audit_events(
        &self,
        _request: tonic::Request<imgmesh_proto::registry::v1::ListAuditEventsRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::registry::v1::ListAuditEventsResponse>, tonic::Status>
    {
        Ok(tonic::Response::new(
            imgmesh_proto::registry::v1::ListAuditEventsResponse { events: Vec::new() },
        ))
    }

    // Listing objects needs a bucket; the dashboard's listing is exercised
    // against the real registry in integration-tests/tests/dashboard.rs.
    async fn list_objects(
        &self,
        _request: tonic::Request<ListObjectsRequest>,
    ) -> Result<tonic::Response<ListObjectsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the fake registry has no bucket to list",
        ))
    }
}

// === fake renderer ===

/// What the fake renderer saw in one call.
#[derive(Debug, Clone)]
pub(crate) struct SeenRender {
    pub(crate) request: RenderRequest,
    pub(crate) traceparent: Option<String>,
    pub(crate) grpc_timeout: Option<String>,
}

/// Answers Render by path: `missing.jpg` → OBJECT_NOT_FOUND, `bad.jpg` →
/// INVALID_ARGUMENT, `corrupt.jpg` → CORRUPT_INPUT, `stall.jpg` → an
/// answer only once [`FakeRenderer::stall`] is notified, `cached.jpg` → a cache
/// hit 10 s old, anything else → a miss; every image has the ETag
/// [`FAKE_ETAG`] (a matching If-None-Match is answered not modified) and
/// lives for the request's `cache_ttl_seconds`.
#[derive(Debug, Default)]
pub(crate) struct FakeRenderer {
    pub(crate) calls: AtomicUsize,
    pub(crate) seen: Mutex<Vec<SeenRender>>,
    pub(crate) purges: Mutex<Vec<PurgeRequest>>,
    /// `stall.jpg` renders wait for this to be notified.
    pub(crate) stall: tokio::sync::Notify,
}

/// The ETag of every image the fake renderer answers.
pub(crate) const FAKE_ETAG: &str = "\"fake-etag\"";
/// The Last-Modified of every image the fake renderer answers.
pub(crate) const FAKE_LAST_MODIFIED: i64 = 1_700_000_000;

#[tonic::async_trait]
impl RendererService for FakeRenderer {
    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let metadata = |key: &str| {
            request
                .metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = SeenRender {
            traceparent: metadata("traceparent"),
            grpc_timeout: metadata("grpc-timeout"),
            request: request.into_inner(),
        };
        let path = seen.request.path.clone();
        self.seen.lock().unwrap().push(seen);
        if path == "stall.jpg" {
            self.stall.notified().await;
        }
        let request = self.seen.lock().unwrap().last().unwrap().request.clone();
        let not_modified = request.if_none_match == FAKE_ETAG;
        let cached = path == "cached.jpg";
        match path.as_str() {
            "missing.jpg" => Err(ErrorCode::ObjectNotFound.status("object not found")),
            "bad.jpg" => Err(ErrorCode::InvalidArgument.status("w: too wide for this input")),
            "corrupt.jpg" => Err(ErrorCode::CorruptInput.status("image could not be decoded")),
            _ => Ok(tonic::Response::new(RenderResponse {
                data: if not_modified {
                    bytes::Bytes::new()
                } else {
                    bytes::Bytes::from_static(IMAGE)
                },
                content_type: "image/webp".to_owned(),
                cache_hit: cached,
                width: 800,
                height: 600,
                etag: FAKE_ETAG.to_owned(),
                last_modified: FAKE_LAST_MODIFIED,
                max_age_seconds: request.cache_ttl_seconds,
                age_seconds: if cached { 10 } else { 0 },
                cache_status: if cached {
                    CacheStatus::Hit
                } else {
                    CacheStatus::Miss
                }
                .into(),
                not_modified,
            })),
        }
    }

    async fn purge(
        &self,
        request: tonic::Request<PurgeRequest>,
    ) -> Result<tonic::Response<PurgeResponse>, tonic::Status> {
        let mut purges = self.purges.lock().unwrap();
        purges.push(request.into_inner());
        Ok(tonic::Response::new(PurgeResponse {
            generation: purges.len() as u64,
        }))
    }

    type RenderSetStream =
        tokio_stream::Empty<Result<imgmesh_proto::renderer::v1::RenderSetResponse, tonic::Status>>;

    async fn render_set(
        &self,
        _request: tonic::Request<imgmesh_proto::renderer::v1::RenderSetRequest>,
    ) -> Result<tonic::Response<Self::RenderSetStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the fake renderer renders one at a time",
        ))
    }

    async fn render_bytes(
        &self,
        _request: tonic::Request<tonic::Streaming<imgmesh_proto::renderer::v1::RenderBytesRequest>>,
    ) -> Result<tonic::Response<imgmesh_proto::renderer::v1::RenderBytesResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented(
            "the fake renderer renders one at a time",
        ))
    }

    async fn measure(
        &self,
        _request: tonic::Request<imgmesh_proto::renderer::v1::MeasureRequest>,
    ) -> Result<tonic::Response<imgmesh_proto::renderer::v1::MeasureResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the fake renderer does not measure",
        ))
    }
}

// === harness ===

/// Serves `routes` plus gRPC health on a fresh loopback port until dropped.
pub(crate) async fn spawn_peer(routes: tonic::service::Routes) -> GrpcPeer {
    let (_reporter, health) = tonic_health::server::health_reporter();
    GrpcPeer::serve(routes.add_service(health)).await
}

/// An address nothing listens on: a peer that is down.
pub(crate) fn dead_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], unused_port()))
}

/// A gateway wired to a fake registry and (unless down) a fake renderer,
/// with the admin API on.
pub(crate) struct Harness {
    pub(crate) state: GatewayState,
    pub(crate) registry: Arc<FakeRegistry>,
    pub(crate) renderer: Arc<FakeRenderer>,
    registry_addr: SocketAddr,
    renderer_addr: SocketAddr,
    /// The fake registry's server, while it runs.
    registry_peer: Option<GrpcPeer>,
    _peers: Vec<GrpcPeer>,
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        Harness::with_peers(true, true).await
    }

    pub(crate) async fn with_peers(registry_up: bool, renderer_up: bool) -> Harness {
        Harness::build(registry_up, renderer_up, &[]).await
    }

    /// A harness with both peers up whose gateway also gets `extra` flags
    /// (`--name=value`; a flag given here replaces the harness default).
    pub(crate) async fn with_args(extra: &[&str]) -> Harness {
        Harness::build(true, true, extra).await
    }

    async fn build(registry_up: bool, renderer_up: bool, extra: &[&str]) -> Harness {
        install_trace_context();
        let registry = Arc::new(FakeRegistry::default());
        let renderer = Arc::new(FakeRenderer::default());
        let mut peers = vec![];
        let mut registry_peer = None;
        let registry_addr = if registry_up {
            let peer = spawn_peer(tonic::service::Routes::new(
                SourceRegistryServiceServer::from_arc(registry.clone()),
            ))
            .await;
            let addr = peer.addr();
            registry_peer = Some(peer);
            addr
        } else {
            dead_addr()
        };
        let renderer_addr = if renderer_up {
            let peer = spawn_peer(tonic::service::Routes::new(
                RendererServiceServer::from_arc(renderer.clone()),
            ))
            .await;
            let addr = peer.addr();
            peers.push(peer);
            addr
        } else {
            dead_addr()
        };
        let defaults = [
            format!("--registry-url=http://{registry_addr}"),
            format!("--renderer-url=http://{renderer_addr}"),
            "--base-domain=localhost".to_owned(),
            "--source-cache-ttl-ms=60000".to_owned(),
            format!("--admin-token={ADMIN_TOKEN}"),
        ];
        let flag = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        let replaced: Vec<String> = extra.iter().map(|arg| flag(arg)).collect();
        let args = std::iter::once("imgmesh-gateway".to_owned())
            .chain(
                defaults
                    .into_iter()
                    .filter(|arg| !replaced.contains(&flag(arg))),
            )
            .chain(extra.iter().map(|arg| (*arg).to_owned()));
        let config = GatewayConfig::try_parse_from(args).unwrap();
        Harness {
            state: GatewayState::build(&config).unwrap(),
            registry,
            renderer,
            registry_addr,
            renderer_addr,
            registry_peer,
            _peers: peers,
        }
    }

    /// Stops the fake registry: from now on it refuses connections.
    pub(crate) fn stop_registry(&mut self) {
        self.registry_peer = None;
    }

    /// Where the fake registry listens.
    pub(crate) fn registry_addr(&self) -> SocketAddr {
        self.registry_addr
    }

    /// Where the fake renderer listens.
    pub(crate) fn renderer_addr(&self) -> SocketAddr {
        self.renderer_addr
    }

    /// Sends `request` to the public router of another gateway `state`.
    pub(crate) async fn send_to(&self, state: &GatewayState, request: Request<Body>) -> Answer {
        let response = imgmesh_gateway::router(state.clone())
            .oneshot(request)
            .await
            .unwrap();
        Answer::read(response).await
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Answer {
        let response = imgmesh_gateway::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        Answer::read(response).await
    }

    pub(crate) async fn get(&self, host: &str, path_and_query: &str) -> Answer {
        self.send(request(Method::GET, host, path_and_query)).await
    }

    pub(crate) async fn ops(&self, path: &str) -> Answer {
        let response = imgmesh_gateway::ops_router(self.state.clone())
            .oneshot(request(Method::GET, "localhost", path))
            .await
            .unwrap();
        Answer::read(response).await
    }

    /// Sends a request to the admin router as it is (add the token yourself).
    pub(crate) async fn admin_raw(&self, request: Request<Body>) -> Answer {
        let admin = self.state.admin().expect("admin API on").clone();
        let response = imgmesh_gateway::admin_router(admin)
            .oneshot(request)
            .await
            .unwrap();
        Answer::read(response).await
    }

    /// Sends `method path` with the admin token and an optional body.
    pub(crate) async fn admin(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"));
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let body = body.map_or_else(Body::empty, |text| Body::from(text.to_owned()));
        self.admin_raw(builder.body(body).unwrap()).await
    }

    pub(crate) fn resolve_calls(&self) -> usize {
        self.registry.resolve_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn admin_calls(&self) -> usize {
        self.registry.admin_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn render_calls(&self) -> usize {
        self.renderer.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn last_render(&self) -> SeenRender {
        self.renderer
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no render call")
    }
}

pub(crate) fn request(method: Method, host: &str, path_and_query: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    pub(crate) async fn read(response: axum::response::Response) -> Answer {
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: axum::body::to_bytes(body, 1 << 20).await.unwrap(),
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}
