//! Whether the gateway can serve: both peers answer their gRPC health check
//! with SERVING, and shutdown has not started.
//!
//! A background task asks both peers every `--health-check-interval-ms`,
//! each check bounded by `--health-check-timeout-ms`; `/ready` answers from
//! the last round (asking at once when no round has finished yet), so load
//! balancers polling it never turn into a stream of checks on the peers.
//! Each round sets `imgmesh_health_status{dependency="registry"|"renderer"}`
//! and a change of the answer is logged with its reason (also the body of
//! `/ready`). The task ends with the gateway's state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use imgmesh_runtime::{GrpcChannel, HealthArgs};
use imgmesh_telemetry::TraceContextInterceptor;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::upstream::TracedChannel;

/// The gateway's readiness: peer health (from the background checks) and
/// the shutdown flag.
#[derive(Debug)]
pub(crate) struct Readiness {
    peers: Arc<Peers>,
    shutting_down: AtomicBool,
}

/// The peers' health clients and the last round's answer, shared with the
/// checking task.
#[derive(Debug)]
struct Peers {
    registry: HealthClient<TracedChannel>,
    renderer: HealthClient<TracedChannel>,
    timeout: Duration,
    last: Mutex<Option<Report>>,
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// Both peers serve.
    Ready,
    /// Shutdown has started; in-flight requests are draining.
    ShuttingDown,
    /// At least one peer is not serving.
    PeersDown {
        /// Whether the registry serves.
        registry: bool,
        /// Whether the renderer serves.
        renderer: bool,
    },
}

// === impl Readiness ===

impl Readiness {
    /// Readiness checked over the peers' channels as `args` says, by a task
    /// started here (within a Tokio runtime) that ends with the readiness.
    pub(crate) fn new(
        registry: GrpcChannel,
        renderer: GrpcChannel,
        args: &HealthArgs,
    ) -> Readiness {
        let peers = Arc::new(Peers {
            registry: HealthClient::with_interceptor(registry, TraceContextInterceptor),
            renderer: HealthClient::with_interceptor(renderer, TraceContextInterceptor),
            timeout: args.timeout(),
            last: Mutex::new(None),
        });
        tokio::spawn(check_peers(Arc::downgrade(&peers), args.interval()));
        Readiness {
            peers,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Marks shutdown as started: from now on the gateway reports not ready.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The current readiness: the last round's, or a round made now when
    /// none has finished yet.
    pub(crate) async fn check(&self) -> Report {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Report::ShuttingDown;
        }
        let last = *self.peers.lock();
        let report = match last {
            Some(report) => report,
            None => self.peers.round().await,
        };
        if self.shutting_down.load(Ordering::SeqCst) {
            return Report::ShuttingDown;
        }
        report
    }
}

/// Checks the peers every `interval` until the readiness is dropped.
async fn check_peers(peers: Weak<Peers>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(peers) = peers.upgrade() else {
            return;
        };
        peers.round().await;
    }
}

// === impl Peers ===

impl Peers {
    /// Asks both peers, records the answer (gauges, a log line when it
    /// changed) and returns it.
    async fn round(&self) -> Report {
        let (registry, renderer) = tokio::join!(
            is_serving(self.registry.clone(), self.timeout),
            is_serving(self.renderer.clone(), self.timeout)
        );
        let report = if registry && renderer {
            Report::Ready
        } else {
            Report::PeersDown { registry, renderer }
        };
        imgmesh_runtime::record_dependency("registry", registry);
        imgmesh_runtime::record_dependency("renderer", renderer);
        let before = self.lock().replace(report);
        if before != Some(report) {
            match report {
                Report::Ready => tracing::info!("ready: registry and renderer serving"),
                _ => tracing::warn!(reason = %report.describe(), "not ready"),
            }
        }
        report
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Report>> {
        imgmesh_runtime::lock(&self.last)
    }
}

// === impl Report ===

impl Report {
    /// The `/ready` body.
    pub(crate) fn describe(self) -> String {
        let word = |serving: bool| if serving { "serving" } else { "not serving" };
        match self {
            Report::Ready => "ok".to_owned(),
            Report::ShuttingDown => "shutting down".to_owned(),
            Report::PeersDown { registry, renderer } => format!(
                "not ready: registry {}, renderer {}",
                word(registry),
                word(renderer)
            ),
        }
    }
}

/// Asks a peer's `grpc.health.v1.Health/Check` for the whole server (`""`),
/// waiting at most `timeout`.
async fn is_serving(mut client: HealthClient<TracedChannel>, timeout: Duration) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(timeout);
    match tokio::time::timeout(timeout, client.check(request)).await {
        Ok(Ok(response)) => response.into_inner().status == i32::from(ServingStatus::Serving),
        Ok(Err(_)) | Err(_) => false,
    }
}
