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
//! token on every request with [`super::authentication::authenticate`], then the credential's
//! scope ([`super::scope`]), then records the change in the audit log
//! ([`super::audit`]); the dashboard checks the token typed into its login
//! form with [`AdminApi::check_credential`], which counts toward the same
//! limit.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_runtime::GrpcChannel;
use imgmesh_telemetry::TraceContextInterceptor;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use imgmesh_proto::registry::v1::{AdminScope, AuthenticateAdminTokenRequest};

use super::auth_limit;
use super::credential::{AdminCredential, Scope};
use super::error::AdminError;
use super::registry_call::{call, timed};
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
    pub(super) body_read_timeout: Duration,
    /// Wrong tokens per client address.
    pub(super) auth_failures: Arc<auth_limit::AuthFailureLimiter>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
