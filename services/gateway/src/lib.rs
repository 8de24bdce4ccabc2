//! The imgmesh gateway: the public HTTP face of imgmesh.
//!
//! A request for `http://<subdomain>.<base-domain>/<path>?<imgix query>` is
//! routed by its host to a Source (looked up in the source registry and
//! cached briefly), its path is checked, its query becomes a canonical
//! [`RenderPlan`](imgmesh_proto::renderer::v1::RenderPlan), and the renderer
//! is asked for the derivative — unless, with `--redis-url`, a fresh copy is
//! in the derivative cache, which the gateway then answers from itself (one
//! Redis round trip, no gRPC hop). Errors from every hop become exactly one
//! HTTP status (see [`GatewayError`]).
//!
//! Three listeners: the public one ([`router`]), an operations one
//! ([`ops_router`]) with `GET /live`, `GET /ready` and `GET /metrics`
//! (Prometheus), and — when an admin token is configured — the admin API
//! ([`admin_router`]). [`run`] serves them until shutdown, then flips
//! readiness and drains. With `--grpc-listen`, [`serve_image_api`] serves
//! the public gRPC render API (`imgmesh.image.v1`, [`ImageApi`]) beside them.
//! The binary builds the state ([`GatewayState::build_over`]), binds
//! ([`GatewayListeners::bind`]) and serves all of them at once
//! ([`GatewayState::serve`]).

mod admin;
mod asset_path;
mod config;
mod dashboard;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod grpc_api;
mod host_routing;
mod http_listener;
mod image_handler;
mod load_shedding;
mod metrics;
mod plan_memo;
mod readiness;
pub mod render_plan;
mod signing;
mod source_cache;
mod trace_response;
mod upstream;
mod url_expiry;

use std::convert::Infallible;
use std::future::{Future, IntoFuture as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use imgmesh_derivative_cache::DerivativeCache;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

pub use crate::admin::access::AdminApi;
pub use crate::config::GatewayConfig;
pub use crate::error::GatewayError;
pub use crate::grpc_api::{ImageApi, MAX_CHUNK_BYTES};
use crate::host_routing::normalize_base_domain;
use crate::load_shedding::InFlightLimit;
use crate::plan_memo::PlanMemo;
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
    admin: Option<AdminApi>,
    cache_status_header: bool,
    derivatives: Option<DerivativeCache>,
    plans: PlanMemo,
    header_read_timeout: Duration,
    in_flight: InFlightLimit,
}

// === impl GatewayState ===

impl GatewayState {
    /// Builds the state from the config, with plaintext channels to the
    /// peers (see [`GatewayState::build_over`]).
    pub fn build(config: &GatewayConfig) -> anyhow::Result<GatewayState> {
        GatewayState::build_over(config, &imgmesh_runtime::Transport::Plaintext)
    }

    /// Builds the state from the config, dialling the registry and the
    /// renderer over `transport` (with mutual TLS, presenting the gateway's
    /// certificate). Channels to the peers connect lazily, so this succeeds
    /// while they are still starting.
    pub fn build_over(
        config: &GatewayConfig,
        transport: &imgmesh_runtime::Transport,
    ) -> anyhow::Result<GatewayState> {
        let base_domain = normalize_base_domain(&config.base_domain);
        anyhow::ensure!(!base_domain.is_empty(), "--base-domain must not be empty");
        let registry = config.registry.channel_over(transport)?;
        let renderer = imgmesh_runtime::grpc_channel_over(&config.renderer_url, transport)
            .context("--renderer-url")?;
        let derivatives = config
            .redis_url
            .as_ref()
            .map(|url| {
                DerivativeCache::connect_lazily(url, Duration::from_millis(config.redis_timeout_ms))
                    .map(|cache| {
                        cache.with_hot_entries(
                            config.hot_cache_bytes,
                            Duration::from_millis(config.hot_trust_ms),
                        )
                    })
            })
            .transpose()
            .context("invalid --redis-url")?;
        let admin = config.load_admin_token()?.map(|token| {
            AdminApi::new(&token, registry.clone(), renderer.clone())
                .with_body_read_timeout(config.body_read_timeout())
                .with_base_domain(&base_domain)
        });
        Ok(GatewayState {
            inner: Arc::new(Inner {
                base_domain,
                upstream: Upstream::new(
                    registry.clone(),
                    renderer.clone(),
                    config.render_timeout(),
                ),
                sources: SourceCache::new(
                    config.source_cache_ttl(),
                    source_cache::DEFAULT_CAPACITY,
                )
                .with_stale_window(config.source_stale_window()),
                readiness: Readiness::new(registry, renderer, &config.health),
                admin,
                cache_status_header: config.cache_status_header,
                derivatives,
                plans: PlanMemo::default(),
                header_read_timeout: config.header_read_timeout(),
                in_flight: InFlightLimit::new(config.max_in_flight as usize),
            }),
        })
    }

    /// Marks shutdown as started: `/ready` answers 503 from now on, so load
    /// balancers stop sending traffic while in-flight requests drain.
    pub fn begin_shutdown(&self) {
        self.inner.readiness.begin_shutdown();
    }

    /// The admin API, when an admin token is configured.
    pub fn admin(&self) -> Option<&AdminApi> {
        self.inner.admin.as_ref()
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

    /// The bound on public requests in flight.
    pub(crate) fn in_flight(&self) -> &InFlightLimit {
        &self.inner.in_flight
    }

    /// Whether image responses carry `X-Imgmesh-Cache`.
    pub(crate) fn cache_status_header(&self) -> bool {
        self.inner.cache_status_header
    }

    /// The derivative cache, when `--redis-url` is set.
    pub(crate) fn derivatives(&self) -> Option<&DerivativeCache> {
        self.inner.derivatives.as_ref()
    }

    /// Parsed render plans and cache names of recently asked URLs.
    pub(crate) fn plans(&self) -> &PlanMemo {
        &self.inner.plans
    }

    /// Serves the gateway on `listeners` until `shutdown` resolves: the HTTP
    /// listeners as [`run`] does and, when there is one, the gRPC API as
    /// [`serve_image_api`] does; both drain before this returns.
    pub async fn serve<F>(self, listeners: GatewayListeners, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let signal = move || {
            let mut stopped = stopped.clone();
            async move {
                // An error means the sender is gone: shutdown has resolved.
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let image_api = listeners
            .grpc
            .map(|grpc| tokio::spawn(serve_image_api(self.clone(), grpc, signal())));
        let served = run(
            self,
            listeners.http,
            listeners.ops,
            listeners.admin,
            signal(),
        )
        .await;
        match image_api {
            Some(api) => served.and(api.await?),
            None => served,
        }
    }
}

/// The public router: every path, every method (non-GET/HEAD get 405).
/// Every request is counted by status and timed (see `GET /metrics`);
/// beyond `--max-in-flight` at once, requests are refused with 503. Every
/// request runs in its trace, named by its response's `traceresponse`.
/// It serves [`public_service`], as the public listener does.
pub fn router(state: GatewayState) -> Router {
    Router::new().fallback_service(public_service(state))
}

/// What [`router`] serves, without the router: every request runs in its
/// trace (`trace_response`), counted and timed (`metrics`), within the
/// in-flight limit (`load_shedding`), answered by `image_handler`. The
/// public listener serves this directly: there is a single route, and
/// routing with a boxed middleware per step took about a sixth of a cache
/// hit's CPU, as much as the handler itself.
fn public_service(
    state: GatewayState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    metrics::register();
    let handler = tower::service_fn({
        let state = state.clone();
        move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(image_handler::serve_image(State(state), request).await) }
        }
    });
    let limited = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            state,
            load_shedding::limit_in_flight,
        ))
        .service(handler);
    tower::service_fn(move |request| {
        let limited = limited.clone();
        async move {
            let response = trace_response::trace_request(request, |request| {
                metrics::count_request(async move {
                    match limited.oneshot(request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                })
            })
            .await;
            Ok::<_, Infallible>(response)
        }
    })
}

/// The operations router: `GET /live` (200 while the process runs),
/// `GET /ready` (200 while both peers serve and shutdown has not started)
/// and `GET /metrics` (every metric of the process, for Prometheus).
pub fn ops_router(state: GatewayState) -> Router {
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/metrics", get(imgmesh_metrics::handler))
        .with_state(state)
}

/// The admin listener's router: the JSON admin API under `/v1` (the admin
/// token on every request) and the dashboard's pages under `/ui` (a login
/// with the same token, then a session).
pub fn admin_router(admin: AdminApi) -> Router {
    admin::api_router(admin.clone()).merge(dashboard::dashboard_router(admin))
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

/// The listeners `imgmesh-gateway` serves on.
#[derive(Debug)]
pub struct GatewayListeners {
    /// The public HTTP listener (`--listen`).
    pub http: TcpListener,
    /// `GET /live`, `GET /ready` and `GET /metrics` (`--ops-listen`).
    pub ops: TcpListener,
    /// The admin API and the dashboard (`--admin-listen`), only with an
    /// admin token.
    pub admin: Option<TcpListener>,
    /// The public gRPC render API (`--grpc-listen`), when asked for.
    pub grpc: Option<TcpListener>,
}

// === impl GatewayListeners ===

impl GatewayListeners {
    /// Binds every listener `config` asks for, each announced on stdout; the
    /// admin one only when `state` has an admin token (otherwise it logs
    /// that the admin API is off).
    pub async fn bind(config: &GatewayConfig, state: &GatewayState) -> anyhow::Result<Self> {
        let http = imgmesh_runtime::bind(SERVICE, "http", config.listen).await?;
        let ops = imgmesh_runtime::bind(SERVICE, "ops", config.ops_listen).await?;
        let admin = if state.admin().is_some() {
            Some(imgmesh_runtime::bind(SERVICE, "admin", config.admin_listen).await?)
        } else {
            tracing::info!(
                "admin API off: no admin token (set --admin-token-file or IMGMESH_ADMIN_TOKEN)"
            );
            None
        };
        let grpc = match config.grpc_listen {
            Some(addr) => Some(imgmesh_runtime::bind(SERVICE, "grpc", addr).await?),
            None => None,
        };
        Ok(GatewayListeners {
            http,
            ops,
            admin,
            grpc,
        })
    }
}

/// Serves the public gRPC render API ([`ImageApi`]) and `grpc.health.v1`
/// on `listener` until `shutdown` resolves, then drains its calls.
pub async fn serve_image_api<F>(
    state: GatewayState,
    listener: TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    imgmesh_runtime::serve_service(
        listener,
        &imgmesh_runtime::Transport::Plaintext,
        ImageApi::new(state).server(),
        Vec::new(),
        &imgmesh_runtime::HealthArgs::default(),
        shutdown,
    )
    .await
}

/// Serves the public router on `http`, the operations router on `ops` and,
/// when given, the admin router on `admin` until `shutdown` resolves; the
/// public and admin listeners close connections whose request head takes
/// longer than `--header-read-timeout-ms`. Then
/// readiness flips to 503, the public and admin listeners stop accepting
/// and their in-flight requests drain (at most
/// [`imgmesh_runtime::DRAIN_TIMEOUT`]); the operations listener stays up
/// until the drain is over so probes can watch it.
///
/// An `admin` listener without an admin token in the state is an error: the
/// admin API never runs unauthenticated.
pub async fn run<F>(
    state: GatewayState,
    http: TcpListener,
    ops: TcpListener,
    admin: Option<TcpListener>,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let admin = match (admin, state.admin()) {
        (Some(listener), Some(api)) => Some((listener, admin_router(api.clone()))),
        (Some(_), None) => anyhow::bail!("an admin listener needs an admin token"),
        (None, _) => None,
    };

    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops_server = axum::serve(ops, ops_router(state.clone()))
        .with_graceful_shutdown(async move {
            let _ = ops_stopped.await;
        })
        .into_future();
    let ops_server = tokio::spawn(ops_server);

    // Set once shutdown starts; the public and admin servers both watch it.
    let (draining, drain_started) = tokio::sync::watch::channel(false);
    let header_read_timeout = state.inner.header_read_timeout;
    let admin_server = admin.map(|(listener, router)| {
        let mut drain_started = drain_started.clone();
        let options = http_listener::ConnectionOptions {
            header_read_timeout,
            nodelay: false,
        };
        tokio::spawn(http_listener::serve(
            listener,
            router,
            options,
            async move {
                let _ = drain_started.wait_for(|draining| *draining).await;
            },
        ))
    });

    let draining_state = state.clone();
    let options = http_listener::ConnectionOptions {
        header_read_timeout,
        // Small responses (errors, HEAD) should not wait for Nagle.
        nodelay: true,
    };
    let http_server = http_listener::serve(http, public_service(state), options, async move {
        shutdown.await;
        draining_state.begin_shutdown();
        tracing::info!("shutting down: draining in-flight requests");
        let _ = draining.send(true);
    });
    let mut deadline_watch = drain_started;
    let drain_deadline = async move {
        if deadline_watch.wait_for(|draining| *draining).await.is_err() {
            // The server stopped on its own; its result decides.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(imgmesh_runtime::DRAIN_TIMEOUT).await;
    };
    tokio::pin!(drain_deadline);
    let served = tokio::select! {
        () = http_server => Ok(()),
        () = &mut drain_deadline => {
            tracing::warn!(timeout = ?imgmesh_runtime::DRAIN_TIMEOUT, "drain timed out; dropping remaining requests");
            Ok(())
        }
    };
    let admin_served = match admin_server {
        None => Ok(()),
        Some(mut server) => tokio::select! {
            joined = &mut server => joined.context("admin server task failed"),
            () = &mut drain_deadline => {
                server.abort();
                tracing::warn!("admin drain timed out; dropping remaining requests");
                Ok(())
            }
        },
    };

    let _ = stop_ops.send(());
    let ops_served = ops_server
        .await
        .context("ops server task failed")?
        .context("ops server failed");
    served.and(admin_served).and(ops_served)
}
