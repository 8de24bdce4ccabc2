//! Who may use the admin listener, and the state every admin handler and
//! dashboard page acts through.
//!
//! [`AdminApi`] holds the bootstrap admin token of `--admin-token-file` (as
//! a SHA-256 digest compared in constant time), the per-address count of
//! wrong tokens (see [`super::auth_limit`]), and the registry and renderer
//! clients. A presented token is the bootstrap token (the full admin named
//! `bootstrap`) or a named, scoped admin token (`imat_…`) the registry
//! knows, live and unexpired ([`AdminApi::credential`]; asked on every
//! request, so a revocation takes effect at once). The JSON API checks the
//! token on every request with [`authenticate`], then the credential's
//! scope ([`super::scope`]), then records the change in the audit log
//! ([`super::audit`]); the dashboard checks the token typed into its login
//! form with [`AdminApi::check_credential`], which counts toward the same
//! limit.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderValue, header};
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_runtime::GrpcChannel;
use imgmesh_telemetry::TraceContextInterceptor;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tracing::Instrument as _;

use imgmesh_proto::registry::v1::{AdminScope, AuthenticateAdminTokenRequest};

use super::error::AdminError;
use super::registry_call::{call, timed};
use super::scope::{self, AdminCredential, Scope};
use super::{audit, auth_limit, body_timeout};
use crate::metrics::METRICS;
use crate::upstream::TracedChannel;

/// How long a request body may send nothing unless configured otherwise.
const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The prefix of the registry's named admin tokens; other tokens are not
/// worth a registry call.
const ADMIN_TOKEN_PREFIX: &str = "imat_";

/// The registry client the admin API calls.
pub(crate) type RegistryClient = SourceRegistryServiceClient<TracedChannel>;

/// The renderer client the admin API calls to purge.
pub(crate) type RendererClient = RendererServiceClient<TracedChannel>;

/// The admin listener's state: the admin token it accepts, the wrong tokens
/// counted per address, and the registry and renderer clients. Cheap to
/// clone.
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
    /// The gateway's base domain, for the dashboard's public URLs; empty
    /// when not known.
    base_domain: String,
}

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
            base_domain: String::new(),
        }
    }

    /// The same API knowing the gateway's (normalised) `base_domain`, so the
    /// dashboard can show a Source's public URLs.
    pub(crate) fn with_base_domain(mut self, base_domain: &str) -> AdminApi {
        base_domain.clone_into(&mut self.base_domain);
        self
    }

    /// The gateway's base domain; empty when not known.
    pub(crate) fn base_domain(&self) -> &str {
        &self.base_domain
    }

    /// The same API answering 408 when a request body sends nothing for
    /// `timeout`.
    pub(crate) fn with_body_read_timeout(mut self, timeout: Duration) -> AdminApi {
        self.body_read_timeout = timeout;
        self
    }

    /// Whether `presented` is the bootstrap admin token, in constant time.
    fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.token_digest))
    }

    /// The credential `presented` is: the bootstrap token, or a live admin
    /// token the registry knows; `None` for anything else. Fails (503) only
    /// when the registry cannot say.
    pub(crate) async fn credential(
        &self,
        presented: &str,
    ) -> Result<Option<AdminCredential>, AdminError> {
        if self.accepts(presented) {
            return Ok(Some(AdminCredential::bootstrap()));
        }
        if !presented.starts_with(ADMIN_TOKEN_PREFIX) {
            return Ok(None);
        }
        let response = call(self.registry().authenticate_admin_token(timed(
            AuthenticateAdminTokenRequest {
                secret: presented.to_owned(),
            },
        )))
        .await?;
        Ok(response.admin_token.and_then(|token| {
            let scope = match token.scope() {
                AdminScope::ReadOnly => Scope::ReadOnly,
                AdminScope::SourceAdmin => Scope::SourceAdmin(token.source_ids),
                AdminScope::FullAdmin => Scope::FullAdmin,
                AdminScope::Unspecified => return None,
            };
            Some(AdminCredential {
                name: token.name,
                scope,
            })
        }))
    }

    /// A client of the source registry, with trace context on every call.
    pub(crate) fn registry(&self) -> RegistryClient {
        self.registry.clone()
    }

    /// A client of the renderer (for purges), with trace context on every
    /// call.
    pub(crate) fn renderer(&self) -> RendererClient {
        self.renderer.clone()
    }

    /// Checks an admin credential typed into the dashboard's login form by
    /// `client`: a wrong one counts toward the address's limit exactly like
    /// a wrong bearer token, and a blocked address is refused even with
    /// the right one. The dashboard's pages act with the full powers of
    /// the admin API, so a credential with a narrower scope is refused
    /// (403) here; those use the JSON API, which enforces their scope.
    pub(crate) async fn check_credential(
        &self,
        client: IpAddr,
        presented: &str,
    ) -> Result<AdminCredential, AdminError> {
        let now = Instant::now();
        if let Some(wait) = self.auth_failures.blocked_for(client, now) {
            METRICS.admin_auth_refused("rate_limited");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(AdminError::too_many_wrong_tokens(seconds));
        }
        match self.credential(presented).await? {
            Some(credential) if credential.is_full_admin() => Ok(credential),
            Some(credential) => Err(AdminError::forbidden(format!(
                "admin token {:?} is not a full admin; the dashboard needs one \
                 (scoped tokens use the admin API)",
                credential.name
            ))),
            None => {
                self.auth_failures.record_failure(client, now);
                METRICS.admin_auth_refused("invalid_token");
                Err(AdminError::unauthenticated())
            }
        }
    }
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi").finish_non_exhaustive()
    }
}

/// Opens the request's span and refuses it with 401 unless it carries an
/// admin credential as `Authorization: Bearer …`, with 429 while its client
/// address is blocked for presenting too many wrong tokens, or with 403
/// when the credential's scope does not allow it; records every change in
/// the audit log; every answer names the span's trace in `traceresponse`.
pub(super) async fn authenticate(
    State(admin): State<AdminApi>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{method} admin"),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        admin.credential = tracing::field::Empty,
    );
    imgmesh_telemetry::continue_trace(&span, request.headers());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned);
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
    } else {
        let credential = match &presented {
            Some(token) => admin.credential(token).instrument(span.clone()).await,
            None => Ok(None),
        };
        match credential {
            Ok(Some(credential)) => {
                authorized(&admin, credential, request, next)
                    .instrument(span.clone())
                    .await
            }
            Ok(None) => {
                if presented.is_some() {
                    admin.auth_failures.record_failure(client, now);
                    METRICS.admin_auth_refused("invalid_token");
                } else {
                    METRICS.admin_auth_refused("missing_token");
                }
                span.in_scope(|| AdminError::unauthenticated().into_response())
            }
            // The registry could not say whose token it is: not a wrong
            // token, so not counted.
            Err(unavailable) => span.in_scope(|| unavailable.into_response()),
        }
    };
    span.record("http.response.status_code", response.status().as_u16());
    crate::trace_response::name_trace(&span, &mut response);
    response
}

/// Runs an authenticated request: its scope checked, the handler run with
/// the credential in the request's extensions, and the change audited.
async fn authorized(
    admin: &AdminApi,
    credential: AdminCredential,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    tracing::Span::current().record("admin.credential", credential.name.as_str());
    let (response, resolved) =
        match scope::authorize(admin, &credential, &method, &path, query.as_deref()).await {
            Err(refused) => (refused.into_response(), None),
            Ok(resolved) => {
                let timeout = admin.body_read_timeout;
                let mut request = request
                    .map(|body| Body::new(body_timeout::IdleTimeoutBody::new(body, timeout)));
                request.extensions_mut().insert(credential.clone());
                (next.run(request).await, resolved)
            }
        };
    let outcome = audit::Outcome::of(&response);
    audit::record(admin, &credential, &method, &path, resolved, outcome).await;
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
