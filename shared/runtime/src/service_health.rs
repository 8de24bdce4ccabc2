//! Health that tells the truth: what a service reports on `grpc.health.v1`
//! follows what it needs to serve.
//!
//! A service lists its [`Dependency`]s (the registry its database, the
//! fetcher the registry, the renderer the fetcher and Redis) and
//! [`ServiceHealth::watch`] checks each of them every
//! `--health-check-interval-ms`, each check bounded by
//! `--health-check-timeout-ms` ([`HealthArgs`]). While a *required*
//! dependency fails, the service reports NOT_SERVING; one that only
//! *degrades* the service (Redis for the renderer: without it every request
//! renders, but every request is still answered) leaves it SERVING. Either
//! way the reason is logged once when a dependency's state changes, and
//! `imgmesh_health_status{dependency}` is 1 while the dependency answers and
//! 0 while it does not; `imgmesh_health_serving` is what the service reports.
//!
//! A service starts SERVING (it only listens once it could start) and the
//! first round of checks runs at once. Shutdown ([`ServiceHealth::shut_down`],
//! called by [`crate::serve_grpc`]) reports NOT_SERVING for good: no later
//! check turns it back.
//!
//! What the process reports last is also kept process-wide
//! ([`process_status`]) for the plaintext `GET /ready` of the metrics
//! listener ([`crate::MetricsServer`]): Kubernetes' probes and container
//! healthchecks cannot present a mesh certificate, so they ask there
//! instead of on the mutual-TLS gRPC port.
//!
//! [`HealthCommand`] is the `health` subcommand each binary offers for
//! container healthchecks and exec probes: it asks the running server on
//! the same machine and exits 0 when it serves, 1 when it does not.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::{GrpcChannel, MetricsArgs, TlsArgs, Transport};

/// Default of `--health-check-interval-ms`.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Default of `--health-check-timeout-ms`.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How often and how patiently a service checks its dependencies, for
/// services to `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// How often each dependency this service needs is checked, in
    /// milliseconds; what grpc.health.v1 (the gateway: `/ready`) reports
    /// follows the last round.
    #[arg(
        long,
        env = "IMGMESH_HEALTH_CHECK_INTERVAL_MS",
        default_value_t = 2_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub health_check_interval_ms: u64,

    /// Longest one dependency check may take, in milliseconds; a slower
    /// dependency counts as failing.
    #[arg(
        long,
        env = "IMGMESH_HEALTH_CHECK_TIMEOUT_MS",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub health_check_timeout_ms: u64,
}

// === impl HealthArgs ===

impl HealthArgs {
    /// `--health-check-interval-ms`.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.health_check_interval_ms)
    }

    /// `--health-check-timeout-ms`.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.health_check_timeout_ms)
    }
}

impl Default for HealthArgs {
    fn default() -> HealthArgs {
        HealthArgs {
            health_check_interval_ms: millis(DEFAULT_HEALTH_CHECK_INTERVAL),
            health_check_timeout_ms: millis(DEFAULT_HEALTH_CHECK_TIMEOUT),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What one check of a dependency says: `Err` carries why it failed, in
/// words fit for a log line (never a secret).
pub type CheckResult = Result<(), String>;

type Check = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckResult> + Send>> + Send + Sync>;

/// What a failing dependency does to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impact {
    /// The service cannot serve without it: NOT_SERVING while it fails.
    Required,
    /// The service serves worse without it: still SERVING, reported as
    /// degraded.
    Degrades,
}

/// One thing a service needs, and how to check it.
#[derive(Clone)]
pub struct Dependency {
    name: &'static str,
    impact: Impact,
    check: Check,
}

// === impl Dependency ===

impl Dependency {
    /// A dependency called `name` (the `dependency` label of
    /// `imgmesh_health_status`) checked by `check`.
    pub fn new<F, Fut>(name: &'static str, impact: Impact, check: F) -> Dependency
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        Dependency {
            name,
            impact,
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// A peer imgmesh service on `channel`, which must answer its
    /// `grpc.health.v1` check of the whole server (`""`) with SERVING.
    pub fn grpc_peer(name: &'static str, impact: Impact, channel: GrpcChannel) -> Dependency {
        Dependency::new(name, impact, move || {
            let channel = channel.clone();
            async move { peer_serving(channel).await }
        })
    }

    /// The dependency's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl std::fmt::Debug for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependency")
            .field("name", &self.name)
            .field("impact", &self.impact)
            .finish_non_exhaustive()
    }
}

/// Asks a peer's `grpc.health.v1` about its whole server.
async fn peer_serving(channel: GrpcChannel) -> CheckResult {
    let mut client = HealthClient::new(channel);
    match client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(response) => {
            let status = response.into_inner().status();
            if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
                Ok(())
            } else {
                Err(format!("reports {}", status.as_str_name()))
            }
        }
        Err(status) => Err(format!(
            "unreachable ({}: {})",
            status.code().description(),
            status.message()
        )),
    }
}

/// Where one dependency stands after a round of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Standing {
    /// `None` while it answers; why it failed otherwise.
    failure: Option<String>,
}

/// What a [`ServiceHealth`] last reported.
#[derive(Debug, Default)]
struct Reported {
    /// `None` before the first report.
    serving: Option<bool>,
    /// Shutdown has started: NOT_SERVING for good.
    shutting_down: bool,
}

/// The health of one process: its `grpc.health.v1` reporter, the names it
/// reports under, and the dependency checks that move it. Cheap to clone;
/// clones share everything.
#[derive(Clone, Debug)]
pub struct ServiceHealth {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    reporter: HealthReporter,
    /// `""` (the whole server, what probes ask) and every service served.
    names: Vec<&'static str>,
    /// What is reported; held while a status is set, so a check finishing
    /// during shutdown cannot report SERVING again.
    reported: tokio::sync::Mutex<Reported>,
    /// The checking task, stopped on shutdown.
    watcher: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Healths of the process's other listeners, which report what this
    /// one reports (see [`ServiceHealth::lead`]).
    followers: std::sync::Mutex<Vec<ServiceHealth>>,
}

// === impl ServiceHealth ===

impl ServiceHealth {
    /// Health reporting SERVING for the whole server (`""`) until told
    /// otherwise.
    pub fn new() -> ServiceHealth {
        ServiceHealth {
            shared: Arc::new(Shared {
                reporter: HealthReporter::new(),
                names: vec![""],
                reported: tokio::sync::Mutex::new(Reported::default()),
                watcher: std::sync::Mutex::new(None),
                followers: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// The same health also reported under `S`'s service name. Call before
    /// cloning.
    pub fn with_service<S: NamedService>(mut self) -> ServiceHealth {
        let shared = Arc::get_mut(&mut self.shared)
            .expect("with_service is called before the health is shared");
        shared.names.push(S::NAME);
        self
    }

    /// The services this health reports on, besides the whole server.
    pub fn services(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.shared
            .names
            .iter()
            .copied()
            .filter(|name| !name.is_empty())
    }

    /// The `grpc.health.v1` service answering from this health.
    pub fn server(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(
            self.shared.reporter.clone(),
        ))
    }

    /// Makes `follower`, the health of another listener of this process
    /// (with service names of its own), report what this health reports,
    /// statuses and shutdown alike. Call before [`ServiceHealth::start`]; a
    /// follower leads nothing.
    pub fn lead(&self, follower: ServiceHealth) {
        self.followers().push(follower);
    }

    fn followers(&self) -> std::sync::MutexGuard<'_, Vec<ServiceHealth>> {
        self.shared
            .followers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reports every name as SERVING, as a process does once it listens.
    pub async fn start(&self) {
        self.report(true).await;
    }

    /// Starts checking `dependencies` as `args` says, in the background, a
    /// first round at once; what the service reports follows each round.
    /// The task ends at shutdown. Without dependencies nothing is started.
    pub fn watch(&self, dependencies: Vec<Dependency>, args: &HealthArgs) {
        if dependencies.is_empty() {
            return;
        }
        let health = self.clone();
        let (interval, timeout) = (args.interval(), args.timeout());
        let task = tokio::spawn(async move {
            let mut standings: Vec<Option<Standing>> = vec![None; dependencies.len()];
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let rounds = dependencies.iter().map(|dependency| async move {
                    match tokio::time::timeout(timeout, (dependency.check)()).await {
                        Ok(result) => result.err(),
                        Err(_) => Some(format!("no answer within {timeout:?}")),
                    }
                });
                let failures = futures::future::join_all(rounds).await;
                let mut serving = true;
                for ((dependency, standing), failure) in
                    dependencies.iter().zip(&mut standings).zip(failures)
                {
                    if failure.is_some() && dependency.impact == Impact::Required {
                        serving = false;
                    }
                    let now = Standing { failure };
                    log_change(dependency, standing.as_ref(), &now);
                    record_dependency(dependency.name, now.failure.is_none());
                    *standing = Some(now);
                }
                health.report(serving).await;
            }
        });
        let mut watcher = self
            .shared
            .watcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(previous) = watcher.replace(task) {
            previous.abort();
        }
    }

    /// Reports NOT_SERVING for good, here and on the followers, and stops
    /// the checks: shutdown has started. Idempotent.
    pub async fn shut_down(&self) {
        let followers = self.followers().clone();
        for follower in followers {
            follower.shut_down_own().await;
        }
        self.shut_down_own().await;
    }

    async fn shut_down_own(&self) {
        let mut reported = self.shared.reported.lock().await;
        reported.shutting_down = true;
        if reported.serving != Some(false) {
            self.set_all(false).await;
            reported.serving = Some(false);
        }
        drop(reported);
        let task = self
            .shared
            .watcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Reports `serving` here and on the followers.
    async fn report(&self, serving: bool) {
        let followers = self.followers().clone();
        for follower in followers {
            follower.report_own(serving).await;
        }
        self.report_own(serving).await;
    }

    /// Sets every name to `serving` unless shutdown has started or that is
    /// what they report already (a set always wakes `Watch` callers, which
    /// must only hear of changes).
    async fn report_own(&self, serving: bool) {
        let mut reported = self.shared.reported.lock().await;
        if reported.shutting_down || reported.serving == Some(serving) {
            return;
        }
        self.set_all(serving).await;
        reported.serving = Some(serving);
        drop(reported);
    }

    async fn set_all(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in &self.shared.names {
            self.shared.reporter.set_service_status(*name, status).await;
        }
        METRICS.serving.set(i64::from(serving));
        PROCESS_STATUS.store(
            if serving {
                STATUS_SERVING
            } else {
                STATUS_NOT_SERVING
            },
            Ordering::Relaxed,
        );
    }
}

impl Default for ServiceHealth {
    fn default() -> ServiceHealth {
        ServiceHealth::new()
    }
}

/// What the process's health last reported (every [`ServiceHealth`] of a
/// process reports the same): [`STATUS_UNKNOWN`] until the first report.
static PROCESS_STATUS: AtomicU8 = AtomicU8::new(STATUS_UNKNOWN);
const STATUS_UNKNOWN: u8 = 0;
const STATUS_SERVING: u8 = 1;
const STATUS_NOT_SERVING: u8 = 2;

/// What this process's `grpc.health.v1` reports for the whole server:
/// `Unknown` before its gRPC server has started, then SERVING or
/// NOT_SERVING as its dependencies and shutdown move it.
pub fn process_status() -> ServingStatus {
    match PROCESS_STATUS.load(Ordering::Relaxed) {
        STATUS_SERVING => ServingStatus::Serving,
        STATUS_NOT_SERVING => ServingStatus::NotServing,
        _ => ServingStatus::Unknown,
    }
}

/// Sets `imgmesh_health_status{dependency="<name>"}`: 1 when the
/// dependency answered its last check, 0 when it did not (for services
/// that check their dependencies in their own way, like the gateway's
/// `/ready`).
pub fn record_dependency(name: &'static str, up: bool) {
    METRICS
        .dependency_up
        .get_or_create(&[("dependency", name)])
        .set(i64::from(up));
}

/// Logs a dependency's state when it changed (and a failure on the first
/// round): once per outage, not once per check.
fn log_change(dependency: &Dependency, before: Option<&Standing>, now: &Standing) {
    let name = dependency.name;
    let effect = match dependency.impact {
        Impact::Required => "not serving",
        Impact::Degrades => "degraded, still serving",
    };
    match (before.and_then(|b| b.failure.as_ref()), &now.failure) {
        (None, Some(reason)) => {
            tracing::warn!(dependency = name, reason = %reason, "dependency {name} failing: {effect}");
        }
        (Some(old), Some(reason)) if old != reason => {
            tracing::warn!(dependency = name, reason = %reason, "dependency {name} still failing: {effect}");
        }
        (Some(_), None) => {
            tracing::info!(dependency = name, "dependency {name} answers again");
        }
        _ => {}
    }
}

/// The health gauges, registered on first use.
struct HealthMetrics {
    dependency_up: Family<[(&'static str, &'static str); 1], Gauge>,
    serving: Gauge,
}

static METRICS: LazyLock<HealthMetrics> = LazyLock::new(|| {
    imgmesh_metrics::register(|metrics| {
        HealthMetrics {
        dependency_up: metrics.metric(
            "imgmesh_health_status",
            "Whether a dependency this service needs answered its last health check (1) or not (0), by dependency",
            Family::default(),
        ),
        serving: metrics.metric(
            "imgmesh_health_serving",
            "What this service reports on its health check: 1 serving, 0 not serving",
            Gauge::default(),
        ),
    }
    })
});

// === the `health` subcommand ===

/// The subcommand every service binary offers next to serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum HealthCommand {
    /// Ask this service, running on this machine, whether it serves, and
    /// exit 0 if it does, 1 if not: for container healthchecks and exec
    /// probes.
    ///
    /// It reads the same flags and variables as the server and asks
    /// `GET /ready` on its metrics listener (plaintext HTTP, no certificate
    /// needed; 0.0.0.0 or :: means this machine's loopback), or, when that
    /// is off or on port 0, `grpc.health.v1` on its gRPC listener with the
    /// service's own TLS flags; it prints what the service reported.
    Health,
}

/// Ends the process as the `health` subcommand should: exit 0 after a
/// passing check, else the reason on stderr (one line, its causes joined)
/// and exit 1.
pub fn exit_with(check: anyhow::Result<()>) -> ! {
    match check {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("not healthy: {error:#}");
            std::process::exit(1)
        }
    }
}

/// How long the `health` subcommand waits for an answer.
pub const HEALTH_COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a client on this machine reaches a server listening on `listen`:
/// the loopback address for an unspecified one.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The `health` subcommand of a gRPC service serving on `listen` with the
/// metrics listener `metrics` and the transport flags `tls`: `GET /ready`
/// on the metrics listener (plaintext HTTP, so it needs no certificate)
/// when that listens on a fixed port, else `grpc.health.v1` on `listen`
/// over the transport `tls` configures (the service's own certificate, or
/// `--insecure-plaintext`). Prints what the service reports; an error
/// (exit 1) unless it is SERVING.
pub async fn service_health_command(
    listen: SocketAddr,
    metrics: &MetricsArgs,
    tls: &TlsArgs,
) -> anyhow::Result<()> {
    match metrics.addr() {
        Some(addr) if addr.port() != 0 => http_health_command(addr, "/ready").await,
        _ => grpc_health_command(listen, &tls.transport()?).await,
    }
}

/// Asks `grpc.health.v1` of the gRPC server listening on `listen` over
/// `transport`: prints the status it reports for the whole server; an
/// error (exit 1) unless it is SERVING.
pub async fn grpc_health_command(listen: SocketAddr, transport: &Transport) -> anyhow::Result<()> {
    let addr = local_address(listen);
    let status = tokio::time::timeout(HEALTH_COMMAND_TIMEOUT, async {
        let channel = crate::grpc_channel_over(&format!("http://{addr}"), transport)?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        anyhow::Ok(response.into_inner().status())
    })
    .await
    .with_context(|| format!("{addr} did not answer within {HEALTH_COMMAND_TIMEOUT:?}"))?
    .with_context(|| format!("asking grpc.health.v1 at {addr}"))?;
    let name = status.as_str_name();
    if status != tonic_health::pb::health_check_response::ServingStatus::Serving {
        bail!("{addr}: {name}");
    }
    println!("{addr}: {name}");
    Ok(())
}

/// The `health` subcommand of an HTTP service: `GET <path>` on `listen`
/// must answer 200; prints the status line and body, an error (exit 1)
/// otherwise.
pub async fn http_health_command(listen: SocketAddr, path: &str) -> anyhow::Result<()> {
    let addr = local_address(listen);
    let (status, body) = tokio::time::timeout(HEALTH_COMMAND_TIMEOUT, http_get(addr, path))
        .await
        .with_context(|| format!("{addr} did not answer within {HEALTH_COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("GET {path} at {addr}"))?;
    let body = body.trim();
    if status != 200 {
        bail!("GET {path} at {addr}: {status} {body}");
    }
    println!("GET {path} at {addr}: {status} {body}");
    Ok(())
}

/// A bare HTTP/1.0 `GET`: the status code and the body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("not an HTTP response")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// The status a client sees for the whole server.
    async fn status(health: &ServiceHealth) -> i32 {
        use tonic_health::pb::health_server::Health as _;
        let service = HealthService::from_health_reporter(health.shared.reporter.clone());
        service
            .check(tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            }))
            .await
            .map(|response| response.into_inner().status)
            .unwrap_or(-1)
    }

    /// Polls until the whole server reports `wanted` (a bounded wait).
    async fn wait_for(health: &ServiceHealth, wanted: ServingStatus) {
        let wanted = tonic_health::pb::health_check_response::ServingStatus::from(wanted) as i32;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while status(health).await != wanted {
            assert!(tokio::time::Instant::now() < deadline, "status stayed put");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn fast() -> HealthArgs {
        HealthArgs {
            health_check_interval_ms: 10,
            health_check_timeout_ms: 50,
        }
    }

    /// A failing required dependency turns the service NOT_SERVING and its
    /// recovery SERVING again; a hanging one counts as failing.
    #[tokio::test]
    async fn required_dependency_moves_the_status() {
        let health = ServiceHealth::new();
        health.start().await;
        let up = Arc::new(AtomicBool::new(true));
        let hang = Arc::new(AtomicBool::new(false));
        let (up_seen, hang_seen) = (up.clone(), hang.clone());
        health.watch(
            vec![Dependency::new("database", Impact::Required, move || {
                let (up, hang) = (
                    up_seen.load(Ordering::SeqCst),
                    hang_seen.load(Ordering::SeqCst),
                );
                async move {
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    if up {
                        Ok(())
                    } else {
                        Err("refused".to_owned())
                    }
                }
            })],
            &fast(),
        );
        wait_for(&health, ServingStatus::Serving).await;
        up.store(false, Ordering::SeqCst);
        wait_for(&health, ServingStatus::NotServing).await;
        up.store(true, Ordering::SeqCst);
        wait_for(&health, ServingStatus::Serving).await;
        hang.store(true, Ordering::SeqCst);
        wait_for(&health, ServingStatus::NotServing).await;
        health.shut_down().await;
    }

    /// A failing dependency that only degrades the service leaves it
    /// SERVING, and its gauge says it fails.
    #[tokio::test]
    async fn degrading_dependency_keeps_serving() {
        let health = ServiceHealth::new();
        health.start().await;
        health.watch(
            vec![Dependency::new(
                "cache-under-test",
                Impact::Degrades,
                || async { Err("frozen".to_owned()) },
            )],
            &fast(),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !imgmesh_metrics::encode()
            .contains("imgmesh_health_status{dependency=\"cache-under-test\"} 0")
        {
            assert!(tokio::time::Instant::now() < deadline, "no gauge");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            status(&health).await,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        health.shut_down().await;
    }

    /// A `Watch` caller hears the first status and then only changes: many
    /// rounds of passing checks send nothing more; a failing one does.
    #[tokio::test]
    async fn watchers_hear_changes_only() {
        use tokio_stream::StreamExt as _;
        use tonic_health::pb::health_server::Health as _;

        let health = ServiceHealth::new();
        health.start().await;
        let up = Arc::new(AtomicBool::new(true));
        let seen_up = up.clone();
        health.watch(
            vec![Dependency::new("peer", Impact::Required, move || {
                let up = seen_up.load(Ordering::SeqCst);
                async move { if up { Ok(()) } else { Err("down".to_owned()) } }
            })],
            &fast(),
        );
        let service = HealthService::from_health_reporter(health.shared.reporter.clone());
        let mut watch = service
            .watch(tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        let first = watch.next().await.unwrap().unwrap().status;
        assert_eq!(first, serving);
        // Ten rounds of passing checks.
        let quiet = tokio::time::timeout(Duration::from_millis(100), watch.next()).await;
        assert!(quiet.is_err(), "a watcher heard {quiet:?} without a change");
        up.store(false, Ordering::SeqCst);
        let changed = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("the failure reaches the watcher")
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(
            changed,
            tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
        );
        health.shut_down().await;
    }

    /// A follower (another listener's health) reports what its leader
    /// reports, under its own names only, and shuts down with it.
    #[tokio::test]
    async fn followers_report_what_their_leader_reports() {
        use tonic_health::pb::health_server::Health as _;

        #[derive(Debug)]
        struct Api;
        impl NamedService for Api {
            const NAME: &'static str = "test.Api";
        }
        #[derive(Debug)]
        struct Secrets;
        impl NamedService for Secrets {
            const NAME: &'static str = "test.Secrets";
        }
        let leader = ServiceHealth::new().with_service::<Api>();
        let follower = ServiceHealth::new().with_service::<Secrets>();
        leader.lead(follower.clone());
        leader.start().await;
        let up = Arc::new(AtomicBool::new(true));
        let seen_up = up.clone();
        leader.watch(
            vec![Dependency::new("database", Impact::Required, move || {
                let up = seen_up.load(Ordering::SeqCst);
                async move {
                    if up {
                        Ok(())
                    } else {
                        Err("refused".to_owned())
                    }
                }
            })],
            &fast(),
        );
        let asks = |health: &ServiceHealth, name: &str| {
            let service = HealthService::from_health_reporter(health.shared.reporter.clone());
            let request = tonic::Request::new(HealthCheckRequest {
                service: name.to_owned(),
            });
            async move { service.check(request).await.map(|r| r.into_inner().status) }
        };
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        assert_eq!(asks(&follower, "test.Secrets").await.unwrap(), serving);
        assert!(
            asks(&follower, "test.Api").await.is_err(),
            "not served there"
        );
        assert!(
            asks(&leader, "test.Secrets").await.is_err(),
            "not served there"
        );
        up.store(false, Ordering::SeqCst);
        wait_for(&follower, ServingStatus::NotServing).await;
        up.store(true, Ordering::SeqCst);
        wait_for(&follower, ServingStatus::Serving).await;
        leader.shut_down().await;
        assert_eq!(
            status(&follower).await,
            tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
        );
    }

    /// After shutdown no passing check reports SERVING again.
    #[tokio::test]
    async fn shutdown_is_final() {
        let health = ServiceHealth::new();
        health.start().await;
        health.watch(
            vec![Dependency::new("ok", Impact::Required, || async { Ok(()) })],
            &fast(),
        );
        health.shut_down().await;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(15)).await;
            assert_eq!(
                status(&health).await,
                tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
            );
        }
    }

    /// A client on this machine reaches an all-interfaces listener on the
    /// loopback address; a specific address stays as it is.
    #[test]
    fn local_address_of_unspecified_is_loopback() {
        assert_eq!(
            local_address("0.0.0.0:50051".parse().unwrap()),
            "127.0.0.1:50051".parse().unwrap()
        );
        assert_eq!(
            local_address("[::]:9080".parse().unwrap()),
            "[::1]:9080".parse().unwrap()
        );
        assert_eq!(
            local_address("10.1.2.3:7".parse().unwrap()),
            "10.1.2.3:7".parse().unwrap()
        );
    }
}
