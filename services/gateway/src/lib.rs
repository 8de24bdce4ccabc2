//! The imgmesh gateway: the public HTTP face of imgmesh.
//!
//! A request for `http://<subdomain>.<base-domain>/<path>?<imgix query>` is
//! routed by its host to a Source (looked up in the source registry and
//! cached briefly), its path is checked, its query becomes a canonical
//! [`RenderPlan`](imgmesh_proto::renderer::v1::RenderPlan), and the renderer
//! is asked for the derivative. Errors from every hop become exactly one HTTP
//! status (see [`GatewayError`]).
//!
//! Two listeners: the public one ([`router`]) and an operations one
//! ([`ops_router`]) with `GET /live` and `GET /ready`. [`run`] serves both
//! until shutdown, then flips readiness and drains.

mod asset_path;
mod config;
mod error;
mod host_routing;
mod image_handler;
mod readiness;
pub mod render_plan;
mod source_cache;
mod upstream;

use std::future::{Future, IntoFuture as _};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use http::{HeaderValue, StatusCode, header};
use tokio::net::TcpListener;

pub use crate::config::GatewayConfig;
pub use crate::error::GatewayError;
use crate::host_routing::normalize_base_domain;
use crate::readiness::{Readiness, Report};
use crate::source_cache::SourceCache;
use crate::upstream::Upstream;

/// The service name in `imgmesh gateway <role> listening on <addr>`.
pub const SERVICE: &str = "gateway";

/// Everything a request handler needs, shared by both listeners. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base_domain: String,
    upstream: Upstream,
    sources: SourceCache,
    readiness: Readiness,
}

// === impl GatewayState ===

impl GatewayState {
    /// Builds the state from the config. Channels to the peers connect
    /// lazily, so this succeeds while they are still starting.
    pub fn build(config: &GatewayConfig) -> anyhow::Result<GatewayState> {
        let base_domain = normalize_base_domain(&config.base_domain);
        anyhow::ensure!(!base_domain.is_empty(), "--base-domain must not be empty");
        let registry =
            imgmesh_runtime::grpc_channel(&config.registry_url).context("--registry-url")?;
        let renderer =
            imgmesh_runtime::grpc_channel(&config.renderer_url).context("--renderer-url")?;
        Ok(GatewayState {
            inner: Arc::new(Inner {
                base_domain,
                upstream: Upstream::new(registry.clone(), renderer.clone()),
                sources: SourceCache::new(
                    config.source_cache_ttl(),
                    source_cache::DEFAULT_CAPACITY,
                ),
                readiness: Readiness::new(registry, renderer),
            }),
        })
    }

    /// Marks shutdown as started: `/ready` answers 503 from now on, so load
    /// balancers stop sending traffic while in-flight requests drain.
    pub fn begin_shutdown(&self) {
        self.inner.readiness.begin_shutdown();
    }

    pub(crate) fn base_domain(&self) -> &str {
        &self.inner.base_domain
    }

    pub(crate) fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    pub(crate) fn sources(&self) -> &SourceCache {
        &self.inner.sources
    }
}

/// The public router: every path, every method (non-GET/HEAD get 405).
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .fallback(image_handler::serve_image)
        .with_state(state)
}

/// The operations router: `GET /live` (200 while the process runs) and
/// `GET /ready` (200 while both peers serve and shutdown has not started).
pub fn ops_router(state: GatewayState) -> Router {
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .with_state(state)
}

async fn live() -> Response {
    ops_response(StatusCode::OK, "ok".to_owned())
}

async fn ready(State(state): State<GatewayState>) -> Response {
    let report = state.inner.readiness.check().await;
    let status = match report {
        Report::Ready => StatusCode::OK,
        Report::ShuttingDown | Report::PeersDown { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    ops_response(status, report.describe())
}

fn ops_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves the public router on `http` and the operations router on `ops`
/// until `shutdown` resolves. Then readiness flips to 503, the public
/// listener stops accepting and in-flight requests drain (at most
/// [`imgmesh_runtime::DRAIN_TIMEOUT`]); the operations listener stays up
/// until the drain is over so probes can watch it.
pub async fn run<F>(
    state: GatewayState,
    http: TcpListener,
    ops: TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops_server = axum::serve(ops, ops_router(state.clone()))
        .with_graceful_shutdown(async move {
            let _ = ops_stopped.await;
        })
        .into_future();
    let ops_server = tokio::spawn(ops_server);

    let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
    let draining_state = state.clone();
    let http = http.tap_io(|tcp| {
        // Small responses (errors, HEAD) should not wait for Nagle.
        let _ = tcp.set_nodelay(true);
    });
    let http_server = axum::serve(http, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            draining_state.begin_shutdown();
            tracing::info!("shutting down: draining in-flight requests");
            let _ = draining.send(());
        })
        .into_future();
    let drain_deadline = async {
        if drain_started.await.is_err() {
            // The server stopped on its own; its result decides.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(imgmesh_runtime::DRAIN_TIMEOUT).await;
    };
    let served = tokio::select! {
        served = http_server => served.context("HTTP server failed"),
        () = drain_deadline => {
            tracing::warn!(timeout = ?imgmesh_runtime::DRAIN_TIMEOUT, "drain timed out; dropping remaining requests");
            Ok(())
        }
    };

    let _ = stop_ops.send(());
    let ops_served = ops_server
        .await
        .context("ops server task failed")?
        .context("ops server failed");
    served.and(ops_served)
}
