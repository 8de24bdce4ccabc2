//! Prometheus metrics for imgmesh services.
//!
//! Every process has one [`registry()`]; a service registers its metrics into
//! it once, lazily, with [`register`] (and [`start_at_zero`] for the label
//! values it knows in advance), and [`encode()`] renders them all in the OpenMetrics text
//! format that `GET /metrics` serves ([`handler`], [`router`], [`serve`]).
//! [`GrpcMetricsLayer`] counts the calls every gRPC server answers (it is
//! installed by `imgmesh_runtime::serve_grpc`) and [`GrpcClientCall`] those
//! a client makes (`imgmesh_runtime::GrpcChannel` starts one per call),
//! under the grpc-ecosystem names (`grpc_server_handled_total`, …), and
//! [`MetricsArgs`] is the
//! `--metrics-listen` flag of the services without an HTTP listener of their
//! own.
//!
//! Names follow Prometheus conventions and start with `imgmesh_`. Register
//! counters *without* their `_total` suffix and durations with
//! [`Unit::Seconds`](prometheus_client::registry::Unit::Seconds) instead of a
//! `_seconds` suffix: the encoder appends both (and `prometheus-client`
//! panics in debug builds on a counter name ending in `_total`).
//!
//! # A service's metrics
//!
//! ```
//! use std::sync::LazyLock;
//!
//! use prometheus_client::encoding::EncodeLabelSet;
//! use prometheus_client::metrics::counter::Counter;
//! use prometheus_client::metrics::family::Family;
//! use prometheus_client::metrics::histogram::Histogram;
//! use prometheus_client::registry::Unit;
//!
//! /// The labels of `imgmesh_renders_total`.
//! #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
//! struct RenderLabels {
//!     format: &'static str,
//! }
//!
//! /// The renderer's metrics, registered on first use.
//! #[derive(Debug)]
//! struct RendererMetrics {
//!     renders: Family<RenderLabels, Counter>,
//!     render_seconds: Family<RenderLabels, Histogram, fn() -> Histogram>,
//!     redis_errors: Counter,
//! }
//!
//! static METRICS: LazyLock<RendererMetrics> = LazyLock::new(|| {
//!     imgmesh_metrics::register(|metrics| RendererMetrics {
//!         // Exported as `imgmesh_renders_total{format="webp"}`.
//!         renders: metrics.metric("imgmesh_renders", "Renders by output format", Family::default()),
//!         // Exported as `imgmesh_render_duration_seconds_bucket{format="webp",le="…"}`, `…_sum`, `…_count`.
//!         render_seconds: metrics.metric_with_unit(
//!             "imgmesh_render_duration",
//!             "Time spent rendering, by output format",
//!             Unit::Seconds,
//!             Family::new_with_constructor(imgmesh_metrics::latency_histogram),
//!         ),
//!         redis_errors: metrics.metric("imgmesh_redis_errors", "Failed Redis operations", Counter::default()),
//!     })
//! });
//!
//! let webp = RenderLabels { format: "webp" };
//! METRICS.renders.get_or_create(&webp).inc();
//! METRICS.render_seconds.get_or_create(&webp).observe(0.042);
//! assert!(imgmesh_metrics::encode().contains("imgmesh_renders_total{format=\"webp\"} 1"));
//! ```
//!
//! Label sets may also be plain arrays such as `[(&'static str, &'static
//! str); 1]`, which need no derive.

#![warn(missing_docs)]

mod endpoint;
mod grpc_metrics;
mod listen_args;
mod registration;

use std::sync::{LazyLock, Mutex};

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use crate::endpoint::{handler, router, scrape, serve, serve_router};
pub use crate::grpc_metrics::{
    CODE_NAMES, GrpcClientCall, GrpcMetrics, GrpcMetricsLayer, MeteredBody, MeteredFuture,
    STREAMING_METHODS, grpc_type,
};
pub use crate::listen_args::{MetricsArgs, MetricsListen};
pub use crate::registration::{Registration, register, start_at_zero};
/// The metric types and encoders, so services need no dependency of their
/// own for the common cases (deriving `EncodeLabelSet` does need one:
/// `prometheus-client.workspace = true`).
pub use prometheus_client;

/// The `Content-Type` of what [`encode`] writes: the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram buckets, in seconds, for request and render latencies: 1 ms to
/// 30 s, so a cache hit and a slow origin read both land in a real bucket.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide registry every metric of this process is registered in.
/// Lock it only to register; updating a metric needs no lock.
pub fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));
    &REGISTRY
}

/// The value of one series in [`encode()`]'s text: `series` is its name
/// and labels exactly as written there (`imgmesh_renders_total{format="jpeg"}`);
/// `None` while it has not been written (a labelled series before its
/// first event).
pub fn series_value(series: &str) -> Option<f64> {
    encode()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Everything in [`registry()`], in the OpenMetrics text format (served
/// with [`CONTENT_TYPE`]).
pub fn encode() -> String {
    let registry = registry()
        .lock()
        // A panic while registering leaves a usable registry behind.
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

/// A histogram with [`LATENCY_BUCKETS`]; a constructor for
/// `Family::new_with_constructor`.
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::Unit;

    use super::*;

    /// A counter and a histogram registered in the global registry show up,
    /// with their values, in the encoded text.
    #[test]
    fn encode_contains_registered_metrics() {
        let counter = Counter::<u64>::default();
        let histogram = latency_histogram();
        {
            let mut registry = registry().lock().unwrap();
            registry.register(
                "imgmesh_test_encoded_things",
                "Things encoded by the test",
                counter.clone(),
            );
            registry.register_with_unit(
                "imgmesh_test_encode_duration",
                "Time the test took",
                Unit::Seconds,
                histogram.clone(),
            );
        }
        counter.inc_by(3);
        histogram.observe(0.003);

        let text = encode();
        assert!(
            text.contains("# TYPE imgmesh_test_encoded_things counter"),
            "{text}"
        );
        assert!(
            text.contains("imgmesh_test_encoded_things_total 3"),
            "{text}"
        );
        assert!(
            text.contains("imgmesh_test_encode_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("imgmesh_test_encode_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
