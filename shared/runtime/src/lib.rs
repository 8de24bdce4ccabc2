//! Process plumbing every imgmesh service shares.
//!
//! A service's `main` parses its config and, inside [`run_binary`] (telemetry
//! around the work), uses [`bind`] to open its listeners (each announced on
//! stdout so scripts and tests can learn ephemeral ports), builds its
//! service and serves it: [`serve_service`] runs one gRPC service with
//! `grpc.health.v1` (following the service's dependencies through
//! [`ServiceHealth`]), gRPC server reflection of the services it serves,
//! trace propagation and per-call metrics
//! ([`serve_grpc`] when a listener serves more; [`HealthCommand`] asks that
//! health from a container healthcheck),
//! [`MetricsServer`] to serve `GET /metrics` and the plaintext probes
//! `GET /ready` and `GET /live` on a listener of its own, and
//! [`shutdown_signal`] to stop gracefully on Ctrl-C or SIGTERM. Clients
//! build their gRPC channels with [`grpc_channel`], which balances requests
//! over every address of a target (see [`grpc_balance`]) and retries a
//! failed idempotent call once on another replica (see [`grpc_retry`]).
//! With [`TlsArgs`] a process serves ([`serve_grpc_over`]) and dials
//! ([`grpc_channel_over`]) over mutual TLS ([`mesh_tls`]), and its servers
//! enforce the service-identity policy ([`grpc_authz`]).

#![warn(missing_docs)]

#[cfg(any(test, feature = "dev-certs"))]
pub mod dev_certs;
pub mod grpc_authz;
pub mod grpc_balance;
pub mod grpc_retry;
mod lingering_close;
pub mod mesh_tls;
mod metrics_server;
mod reflection;
mod registry_args;
pub mod service_health;
mod service_main;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::{Endpoint, Server};

pub use crate::grpc_retry::GrpcChannel;
pub use crate::mesh_tls::{TlsArgs, Transport};
pub use crate::metrics_server::MetricsServer;
pub use crate::registry_args::{DEFAULT_REGISTRY_URL, RegistryArgs};
pub use crate::service_health::{
    Dependency, HealthArgs, HealthCommand, Impact, ServiceHealth, exit_with, grpc_health_command,
    http_health_command, process_status, record_dependency, service_health_command,
};
pub use crate::service_main::run_binary;
/// The `--metrics-listen` flag, for services to `#[command(flatten)]`.
pub use imgmesh_metrics::MetricsArgs;

/// How long a graceful shutdown may take to drain in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` and announces the bound address on stdout as
/// `imgmesh <service> <role> listening on <addr>`; with port 0 this is how
/// callers learn the port the kernel picked.
pub async fn bind(service: &str, role: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {role} listener on {addr}"))?;
    let local = listener.local_addr()?;
    announce(service, role, local);
    Ok(listener)
}

/// Prints the line that tells scripts and tests where a listener is.
pub fn announce(service: &str, role: &str, addr: SocketAddr) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "imgmesh {service} {role} listening on {addr}");
    let _ = stdout.flush();
    tracing::info!(%addr, role, "listening");
}

/// Returns a future that resolves when the process is asked to stop (Ctrl-C
/// or SIGTERM). The signal handlers are installed before this returns, so a
/// signal that arrives before the future is first polled is not lost (and
/// does not kill the process with the default action).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let terminate = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = terminate => {},
                () = interrupt => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}

/// Serves `routes` plus `grpc.health.v1` on `listener` until `shutdown`
/// resolves, continuing callers' traces on every call and counting every
/// call in `grpc_server_started_total`, `grpc_server_handled_total`,
/// `grpc_server_handling_seconds` (the grpc-ecosystem names),
/// `imgmesh_grpc_requests_total` and `imgmesh_grpc_request_duration_seconds`
/// (see [`imgmesh_metrics::GrpcMetricsLayer`]). `health` answers the health
/// checks (a process serving on several listeners passes each the same
/// one); on shutdown it reports NOT_SERVING for good before the drain.
pub async fn serve_grpc<F>(
    listener: TcpListener,
    routes: tonic::service::Routes,
    health: ServiceHealth,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_grpc_over(listener, &Transport::Plaintext, routes, health, shutdown).await
}

/// [`serve_grpc`] over `transport`: with mutual TLS, each connection's
/// client must present a certificate from the mesh CA, and every call is
/// checked against the identity policy ([`grpc_authz`]) before it reaches
/// `routes`.
pub async fn serve_grpc_over<F>(
    listener: TcpListener,
    transport: &Transport,
    routes: tonic::service::Routes,
    health: ServiceHealth,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Each connection closes with a linger (see `lingering_close`), so a
    // drained connection's last response is not lost to a TCP reset.
    let incoming = mesh_tls::incoming(listener, transport);
    let routes = reflection::add_reflection(routes.add_service(health.server()), &health)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // On shutdown: first tell load balancers we are going away, then drain.
    tokio::spawn(async move {
        shutdown.await;
        health.shut_down().await;
        let _ = stop_tx.send(());
    });
    Server::builder()
        .trace_fn(imgmesh_telemetry::grpc_server_span)
        .layer(imgmesh_metrics::GrpcMetricsLayer)
        .layer(grpc_authz::GrpcAuthzLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        })
        .await
        .context("gRPC server failed")
}

/// Serves the one gRPC service `service` and `grpc.health.v1` on `listener`
/// over `transport` until `shutdown` resolves: the shape of every imgmesh
/// service's gRPC listener. Health reports the server and `S` SERVING from
/// the start, then follows `dependencies`, checked as `health_args` says
/// (none: SERVING throughout), and NOT_SERVING for good once shutdown starts;
/// then in-flight calls drain. What every call gets is
/// [`serve_grpc_over`]'s.
pub async fn serve_service<S, F>(
    listener: TcpListener,
    transport: &Transport,
    service: S,
    dependencies: Vec<Dependency>,
    health_args: &HealthArgs,
    shutdown: F,
) -> anyhow::Result<()>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let health = ServiceHealth::new().with_service::<S>();
    health.start().await;
    health.watch(dependencies, health_args);
    let routes = tonic::service::Routes::new(service);
    serve_grpc_over(listener, transport, routes, health, shutdown).await
}

/// Locks `mutex`, going on with its value if a thread panicked while it
/// held the lock. Every mutex of ours guards counters, caches or
/// bookkeeping that a panic cannot leave inconsistent in a way that
/// matters, and a service that panicked on every later lock after one
/// panicking request would be down instead of answering.
pub fn lock<T: ?Sized>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Caps glibc's malloc arenas at `arenas` for this process. glibc gives
/// each thread that contends for the heap an arena of its own (up to 8 per
/// core), and freed image buffers stay scattered across them: a renderer
/// handling large images on many threads grew to several hundred MB of RSS
/// that a couple of arenas keep near the working set. Call it first thing in
/// `main`, before any thread is started. No-op on other C libraries.
pub fn limit_malloc_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX accepts any
    // positive count and is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Lowers the calling thread's CPU priority to `nice` (0–19; Linux only,
/// where niceness is per thread, and threads it starts inherit it); once
/// per thread, later calls are free. For CPU-bound work such as libvips
/// renders: when the cores are full, the async threads that answer health
/// checks, cache hits and "overloaded" refusals run first instead of
/// queueing behind a render's time slice, while the renders still get every
/// cycle nothing else wants. Errors are ignored (the work only runs at the
/// normal priority).
pub fn lower_thread_priority(nice: i32) {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|lowered| lowered.replace(true)) {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on this thread's own
    // id only changes its scheduling weight.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        if let Ok(tid) = libc::id_t::try_from(tid) {
            libc::setpriority(libc::PRIO_PROCESS, tid, nice.clamp(0, 19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// A lazily connecting gRPC channel to `target`; reconnects on its own after
/// a peer restarts. `target` is one URL (e.g. `http://127.0.0.1:50051`), a
/// comma-separated list of URLs, a URL whose host is a DNS name that may
/// resolve to several addresses, or `file:<path>` of a file listing URLs. A single IP-literal URL gets one plain
/// connection; anything else is balanced per request over every reachable
/// address, with names resolved again every
/// [`grpc_balance::RESOLVE_INTERVAL`] by a task that ends with the channel
/// (see [`grpc_balance`]); its failed idempotent calls are retried once on
/// another replica ([`grpc_retry`]). Must be called within a Tokio runtime.
pub fn grpc_channel(target: &str) -> anyhow::Result<GrpcChannel> {
    grpc_channel_over(target, &Transport::Plaintext)
}

/// [`grpc_channel`] over `transport`: with mutual TLS the channel presents
/// this process's certificate and checks the server's against the mesh CA
/// and the host of the URL. Balanced targets (several URLs, DNS names,
/// `file:`) dial each address over the same transport; a name's addresses
/// must present a certificate for that name.
pub fn grpc_channel_over(target: &str, transport: &Transport) -> anyhow::Result<GrpcChannel> {
    let parsed = grpc_balance::parse_target(target)?;
    if let [url] = parsed.urls.as_slice()
        && parsed.files.is_empty()
        && url.ip().is_some()
    {
        let endpoint = Endpoint::from_shared(target.trim().to_owned())
            .with_context(|| format!("invalid gRPC endpoint {target:?}"))?;
        let endpoint = configure_endpoint(endpoint);
        let channel = match transport {
            Transport::Plaintext => endpoint.connect_lazy(),
            Transport::Mtls(tls) => endpoint.connect_with_connector_lazy(tls.connector()),
        };
        return Ok(GrpcChannel::without_retries(channel));
    }
    let (channel, prober, _task) = grpc_balance::balanced_channel(
        parsed,
        transport.clone(),
        grpc_balance::system_resolver(),
        grpc_balance::RESOLVE_INTERVAL,
        grpc_balance::PROBE_INTERVAL,
    );
    Ok(GrpcChannel::balanced(channel, prober))
}

/// The settings every imgmesh client endpoint gets: a connect timeout,
/// `TCP_NODELAY` and HTTP/2 keep-alive pings, idle connections included.
pub(crate) fn configure_endpoint(endpoint: Endpoint) -> Endpoint {
    endpoint
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
}

#[cfg(test)]
mod tests {
    /// The calling thread's niceness goes down to the asked value, other
    /// threads keep theirs, and a thread the lowered one starts inherits it.
    #[cfg(target_os = "linux")]
    #[test]
    fn lowered_priority_is_per_thread_and_inherited() {
        fn own_nice() -> i32 {
            // SAFETY: gettid and getpriority have no preconditions.
            unsafe {
                let tid = libc::id_t::try_from(libc::syscall(libc::SYS_gettid)).unwrap();
                libc::getpriority(libc::PRIO_PROCESS, tid)
            }
        }
        let before = own_nice();
        let (lowered, child) = std::thread::spawn(|| {
            super::lower_thread_priority(10);
            super::lower_thread_priority(3);
            let child = std::thread::spawn(own_nice).join().unwrap();
            (own_nice(), child)
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 10.max(before), "the first call decides");
        assert_eq!(child, lowered, "threads it starts inherit it");
        assert_eq!(own_nice(), before, "other threads keep theirs");
    }
}
