//! The cache client's metric: failed Redis operations, by operation.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// `imgmesh_redis_errors_total{operation}`.
pub(crate) static REDIS_ERRORS: LazyLock<Family<[(&'static str, &'static str); 1], Counter>> =
    LazyLock::new(|| {
        let errors = Family::default();
        imgmesh_metrics::registry()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .register(
                "imgmesh_redis_errors",
                "Failed or timed-out Redis operations of the derivative cache, by operation",
                errors.clone(),
            );
        errors
    });

/// Counts one failed `operation`.
pub(crate) fn redis_error(operation: &'static str) {
    REDIS_ERRORS
        .get_or_create(&[("operation", operation)])
        .inc();
}
