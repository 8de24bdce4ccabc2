//! Whether the gateway can serve: both peers answer their gRPC health check
//! with SERVING, and shutdown has not started.
//!
//! Load balancers poll `/ready` often; the answer is cached for a second so
//! they do not turn into a stream of health checks on the peers. Each
//! check sets `imgmesh_health_status{dependency="registry"|"renderer"}`
//! and a change of the answer is logged with its reason (also the body of
//! `/ready`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use imgmesh_runtime::GrpcChannel;
use imgmesh_telemetry::TraceContextInterceptor;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::upstream::TracedChannel;

/// How long a readiness answer is reused.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// Deadline for one health check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The gateway's readiness: peer health (cached) and the shutdown flag.
#[derive(Debug)]
pub(crate) struct Readiness {
    registry: HealthClient<TracedChannel>,
    renderer: HealthClient<TracedChannel>,
    shutting_down: AtomicBool,
    last: Mutex<Option<(Instant, Report)>>,
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
    /// Readiness checked over the peers' channels.
    pub(crate) fn new(registry: GrpcChannel, renderer: GrpcChannel) -> Readiness {
        Readiness {
            registry: HealthClient::with_interceptor(registry, TraceContextInterceptor),
            renderer: HealthClient::with_interceptor(renderer, TraceContextInterceptor),
            shutting_down: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// Marks shutdown as started: from now on the gateway reports not ready.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The current readiness, from the cache when it is fresh.
    pub(crate) async fn check(&self) -> Report {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Report::ShuttingDown;
        }
        let now = Instant::now();
        if let Some((at, report)) = *self.lock()
            && now.duration_since(at) < CACHE_FOR
        {
            return report;
        }
        let (registry, renderer) = tokio::join!(
            is_serving(self.registry.clone()),
            is_serving(self.renderer.clone())
        );
        let report = if registry && renderer {
            Report::Ready
        } else {
            Report::PeersDown { registry, renderer }
        };
        imgmesh_runtime::record_dependency("registry", registry);
        imgmesh_runtime::record_dependency("renderer", renderer);
        let before = self.lock().replace((now, report)).map(|(_, report)| report);
        if before != Some(report) {
            match report {
                Report::Ready => tracing::info!("ready: registry and renderer serving"),
                _ => tracing::warn!(reason = %report.describe(), "not ready"),
            }
        }
        if self.shutting_down.load(Ordering::SeqCst) {
            return Report::ShuttingDown;
        }
        report
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Report)>> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// Asks a peer's `grpc.health.v1.Health/Check` for the whole server (`""`).
async fn is_serving(mut client: HealthClient<TracedChannel>) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(CHECK_TIMEOUT);
    match tokio::time::timeout(CHECK_TIMEOUT, client.check(request)).await {
        Ok(Ok(response)) => response.into_inner().status == i32::from(ServingStatus::Serving),
        Ok(Err(_)) | Err(_) => false,
    }
}
