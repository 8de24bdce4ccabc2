//! The admin HTTP API: Sources CRUD, deploy, token rotation and upload as
//! JSON over HTTP, on a listener of its own, for operators and their tools;
//! and purging cached derivatives (one call to the renderer).
//!
//! Every request needs `Authorization: Bearer <admin token>` (compared in
//! constant time); the API does not start without a configured token. An
//! address that presents ten wrong tokens within a minute is refused with
//! 429 — even with the right token — until that minute is over (see
//! [`auth_limit`]); a request body that stops arriving is a 408 (see
//! [`body_timeout`]). Each endpoint is one call to the source registry over
//! gRPC; registry errors
//! come back as `{"error":{"code","message","field"}}` with the HTTP status
//! of their code (see [`error`]). Secrets go in through create, update and
//! rotate-token bodies and never come out: the only secret ever answered is
//! a freshly rotated signing token, once. `docs/admin-api.openapi.yaml`
//! documents every endpoint.

mod api_keys;
mod auth_limit;
mod body_timeout;
mod error;
pub(crate) mod json;
pub(crate) mod purge;
pub(crate) mod upload;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::{HeaderValue, StatusCode, header};
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::registry::v1::{
    DeleteSourceRequest, DeploySourceRequest, GetSourceRequest, ListSourcesRequest,
    RotateSecureTokenRequest, Source,
};
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_runtime::GrpcChannel;
use imgmesh_telemetry::TraceContextInterceptor;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tracing::Instrument as _;

pub(crate) use self::error::AdminError;
use crate::metrics::METRICS;
use crate::upstream::TracedChannel;

/// Largest JSON body the admin API reads.
const MAX_JSON_BODY_BYTES: usize = 1024 * 1024;
/// How long a request body may send nothing unless configured otherwise.
const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for one registry call made by a JSON endpoint.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The registry client the admin API calls.
pub(crate) type RegistryClient = SourceRegistryServiceClient<TracedChannel>;

/// The admin API's state: the bearer token it accepts and its registry
/// client. Cheap to clone.
#[derive(Clone)]
pub struct AdminApi {
    /// SHA-256 of the token: comparing fixed-length digests in constant time
    /// reveals neither the token's bytes nor its length.
    token_digest: [u8; 32],
    registry: RegistryClient,
    renderer: RendererClient,
    /// How long a request body may go without sending anything.
    body_read_timeout: Duration,
    /// Wrong tokens per client address.
    auth_failures: Arc<auth_limit::AuthFailureLimiter>,
}

/// The renderer client the admin API calls to purge.
pub(crate) type RendererClient = RendererServiceClient<TracedChannel>;

// === impl AdminApi ===

impl AdminApi {
    /// An admin API accepting `token`, calling the registry on `registry`
    /// and the renderer (for purges) on `renderer`.
    pub(crate) fn new(
        token: &SecretString,
        registry: GrpcChannel,
        renderer: GrpcChannel,
    ) -> AdminApi {
        AdminApi {
            token_digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
            registry: SourceRegistryServiceClient::with_interceptor(
                registry,
                TraceContextInterceptor,
            ),
            renderer: RendererServiceClient::with_interceptor(renderer, TraceContextInterceptor),
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            auth_failures: Arc::default(),
        }
    }

    /// The same API answering 408 when a request body sends nothing for
    /// `timeout`.
    pub(crate) fn with_body_read_timeout(mut self, timeout: Duration) -> AdminApi {
        self.body_read_timeout = timeout;
        self
    }

    /// Whether `presented` is the admin token, in constant time.
    fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.token_digest))
    }

    pub(crate) fn registry(&self) -> RegistryClient {
        self.registry.clone()
    }

    pub(crate) fn renderer(&self) -> RendererClient {
        self.renderer.clone()
    }

    /// Checks an admin credential typed into the dashboard's login form by
    /// `client`: a wrong one counts toward the address's limit exactly like
    /// a wrong bearer token, and a blocked address is refused even with
    /// the right one.
    pub(crate) fn check_credential(
        &self,
        client: IpAddr,
        presented: &str,
    ) -> Result<(), AdminError> {
        let now = Instant::now();
        if let Some(wait) = self.auth_failures.blocked_for(client, now) {
            METRICS.admin_auth_refused("rate_limited");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(AdminError::too_many_wrong_tokens(seconds));
        }
        if self.accepts(presented) {
            return Ok(());
        }
        self.auth_failures.record_failure(client, now);
        METRICS.admin_auth_refused("invalid_token");
        Err(AdminError::unauthenticated())
    }
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi").finish_non_exhaustive()
    }
}

/// The admin router. Authentication wraps everything, unknown paths
/// included, so nothing about the API is visible without the token; the
/// dashboard's `/ui` pages beside it log in with the same token and keep a
/// session instead (see `crate::dashboard`).
pub fn admin_router(admin: AdminApi) -> Router {
    Router::new()
        .route("/v1/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/v1/api-keys/{id}", axum::routing::delete(api_keys::revoke))
        .route("/v1/sources", get(list_sources).post(create_source))
        .route(
            "/v1/sources/{id_or_name}",
            get(get_source).patch(update_source).delete(delete_source),
        )
        .route("/v1/sources/{id_or_name}/deploy", post(deploy_source))
        .route("/v1/sources/{id_or_name}/rotate-token", post(rotate_token))
        .route("/v1/sources/{id_or_name}/purge", post(purge::purge))
        .route(
            "/v1/sources/{id_or_name}/objects/{*key}",
            put(upload::upload_object),
        )
        .fallback(|| async { AdminError::no_such_route() })
        .method_not_allowed_fallback(|| async { AdminError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            authenticate,
        ))
        .with_state(admin.clone())
        .merge(crate::dashboard::dashboard_router(admin))
}

/// Opens the request's span and refuses it with 401 unless it carries the
/// admin token as `Authorization: Bearer …`, or with 429 while its client
/// address is blocked for presenting too many wrong tokens; every answer
/// names the span's trace in `traceresponse`.
async fn authenticate(State(admin): State<AdminApi>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{method} admin"),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    imgmesh_telemetry::continue_trace(&span, request.headers());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    // Requests without a peer address (only in-process tests) share one.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| {
            peer.ip()
        });
    let now = Instant::now();
    let mut response = if let Some(wait) = admin.auth_failures.blocked_for(client, now) {
        METRICS.admin_auth_refused("rate_limited");
        span.in_scope(|| rate_limited(wait))
    } else if presented.is_some_and(|token| admin.accepts(token)) {
        let timeout = admin.body_read_timeout;
        let request =
            request.map(|body| Body::new(body_timeout::IdleTimeoutBody::new(body, timeout)));
        next.run(request).instrument(span.clone()).await
    } else {
        if presented.is_some() {
            admin.auth_failures.record_failure(client, now);
            METRICS.admin_auth_refused("invalid_token");
        } else {
            METRICS.admin_auth_refused("missing_token");
        }
        span.in_scope(|| AdminError::unauthenticated().into_response())
    };
    span.record("http.response.status_code", response.status().as_u16());
    crate::trace_response::name_trace(&span, &mut response);
    response
}

/// 429 with `Retry-After` (whole seconds, rounded up) for a blocked address.
fn rate_limited(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = AdminError::too_many_wrong_tokens(seconds).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
        .filter(|token| !token.is_empty())
}

/// The `{id_or_name}` of a Source path, percent-decoded; a path that does
/// not decode is a JSON 400 like every other admin error.
struct SourceRef(String);

impl<S: Send + Sync> FromRequestParts<S> for SourceRef {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<SourceRef, AdminError> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AdminError::invalid_field("id_or_name", "must be UTF-8 when decoded"))?;
        params
            .into_iter()
            .find(|(name, _)| name == "id_or_name")
            .map(|(_, value)| SourceRef(value))
            .ok_or_else(AdminError::no_such_route)
    }
}

// === handlers ===

/// `GET /v1/sources`.
async fn list_sources(State(admin): State<AdminApi>) -> Result<Response, AdminError> {
    let response = call(admin.registry().list_sources(timed(ListSourcesRequest {}))).await?;
    let sources: Vec<_> = response.sources.iter().map(json::source_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "sources": sources }),
    ))
}

/// `POST /v1/sources`: 201 with the Source and its `Location`.
async fn create_source(State(admin): State<AdminApi>, body: Body) -> Result<Response, AdminError> {
    let request = json::create_request(&read_json_body(body).await?)?;
    let response = call(admin.registry().create_source(timed(request))).await?;
    let source = required(response.source)?;
    let mut answer = source_response(StatusCode::CREATED, &source);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/sources/{}", source.id)) {
        answer.headers_mut().insert(header::LOCATION, location);
    }
    Ok(answer)
}

/// `GET /v1/sources/{id_or_name}`.
async fn get_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
) -> Result<Response, AdminError> {
    let response = call(
        admin
            .registry()
            .get_source(timed(GetSourceRequest { id_or_name })),
    )
    .await?;
    Ok(source_response(StatusCode::OK, &required(response.source)?))
}

/// `PATCH /v1/sources/{id_or_name}`: changes the fields present.
async fn update_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
    body: Body,
) -> Result<Response, AdminError> {
    let request = json::update_request(id_or_name, &read_json_body(body).await?)?;
    let response = call(admin.registry().update_source(timed(request))).await?;
    Ok(source_response(StatusCode::OK, &required(response.source)?))
}

/// `DELETE /v1/sources/{id_or_name}`: 204.
async fn delete_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
) -> Result<Response, AdminError> {
    call(
        admin
            .registry()
            .delete_source(timed(DeleteSourceRequest { id_or_name })),
    )
    .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /v1/sources/{id_or_name}/deploy`: 202, the deploy runs in the registry.
async fn deploy_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
) -> Result<Response, AdminError> {
    let response = call(
        admin
            .registry()
            .deploy_source(timed(DeploySourceRequest { id_or_name })),
    )
    .await?;
    Ok(source_response(
        StatusCode::ACCEPTED,
        &required(response.source)?,
    ))
}

/// `POST /v1/sources/{id_or_name}/rotate-token`: the new token, once.
async fn rotate_token(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
    body: Body,
) -> Result<Response, AdminError> {
    let grace_period_seconds = json::grace_period_seconds(&read_json_body(body).await?)?;
    let response = call(
        admin
            .registry()
            .rotate_secure_token(timed(RotateSecureTokenRequest {
                id_or_name,
                grace_period_seconds,
            })),
    )
    .await?;
    let source = required(response.source)?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "token": response.token,
            "source": json::source_json(&source),
        }),
    ))
}

// === plumbing ===

/// A registry request with the admin API's deadline.
pub(crate) fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(REGISTRY_TIMEOUT);
    request
}

/// Awaits a registry call, also giving up on a registry that accepted the
/// connection but never answers.
pub(crate) async fn call<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, AdminError> {
    match tokio::time::timeout(REGISTRY_TIMEOUT + Duration::from_millis(500), call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(AdminError::from_registry(&status)),
        Err(_elapsed) => Err(AdminError::registry_timed_out()),
    }
}

/// The Source of a registry answer, which must have one.
pub(crate) fn required(source: Option<Source>) -> Result<Source, AdminError> {
    source.ok_or_else(|| {
        AdminError::coded(
            imgmesh_errors::ErrorCode::Internal,
            "registry: answer without a source",
        )
    })
}

/// Reads a JSON body up to [`MAX_JSON_BODY_BYTES`]; a body that stops
/// arriving is a 408.
async fn read_json_body(body: Body) -> Result<bytes::Bytes, AdminError> {
    axum::body::to_bytes(body, MAX_JSON_BODY_BYTES)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                AdminError::body_too_large(MAX_JSON_BODY_BYTES)
            } else {
                body_error(&error)
            }
        })
}

/// Why a request body could not be read: it stalled (408) or broke off.
fn body_error(error: &(dyn std::error::Error + 'static)) -> AdminError {
    if body_timeout::is_body_timeout(error) {
        AdminError::body_timed_out()
    } else {
        AdminError::body_unreadable()
    }
}

fn source_response(status: StatusCode, source: &Source) -> Response {
    json_response(status, &json::source_json(source))
}

/// A JSON response that no cache keeps.
pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bearer scheme is case-insensitive; other schemes and empty tokens are not tokens.
    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic YWJjOmRlZg=="), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("abc"), None);
    }

    /// `docs/admin-api.openapi.yaml` documents every route and method the router serves.
    #[test]
    fn openapi_documents_every_route() {
        let doc = include_str!("../../../../docs/admin-api.openapi.yaml");
        let routes: &[(&str, &[&str])] = &[
            ("/v1/api-keys", &["get", "post"]),
            ("/v1/api-keys/{id}", &["delete"]),
            ("/v1/sources", &["get", "post"]),
            ("/v1/sources/{id_or_name}", &["get", "patch", "delete"]),
            ("/v1/sources/{id_or_name}/deploy", &["post"]),
            ("/v1/sources/{id_or_name}/rotate-token", &["post"]),
            ("/v1/sources/{id_or_name}/purge", &["post"]),
            ("/v1/sources/{id_or_name}/objects/{key}", &["put"]),
        ];
        for (path, methods) in routes {
            let start = doc
                .find(&format!("\n  {path}:\n"))
                .unwrap_or_else(|| panic!("{path} is not documented"));
            let block = &doc[start + 1..];
            let end = block[path.len() + 4..]
                .find("\n  /")
                .map_or(block.len(), |at| at + path.len() + 4);
            for method in *methods {
                assert!(
                    block[..end].contains(&format!("\n    {method}:\n")),
                    "{method} {path} is not documented"
                );
            }
        }
        for code in [
            "UNAUTHENTICATED",
            "INVALID_ARGUMENT",
            "SOURCE_NOT_FOUND",
            "UNIMPLEMENTED",
        ] {
            assert!(doc.contains(code), "{code} is not documented");
        }
    }

    /// Only the exact token is accepted: not a prefix, an extension or another case.
    #[tokio::test]
    async fn token_comparison_is_exact() {
        let channel = imgmesh_runtime::grpc_channel("http://127.0.0.1:1").unwrap();
        let admin = AdminApi::new(
            &SecretString::from("s3cr3t-admin-token"),
            channel.clone(),
            channel,
        );
        assert!(admin.accepts("s3cr3t-admin-token"));
        for wrong in [
            "",
            "s3cr3t-admin-toke",
            "s3cr3t-admin-token2",
            "S3CR3T-ADMIN-TOKEN",
        ] {
            assert!(!admin.accepts(wrong), "{wrong:?}");
        }
        assert!(!format!("{admin:?}").contains("s3cr3t"));
    }
}
