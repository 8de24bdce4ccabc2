//! The cache client's metrics: failed Redis operations, by operation, and
//! the size of the in-process hot entries (the gateway's hot cache).

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Unit;

/// The `operation` label of every Redis operation the cache client runs,
/// each counted at zero from registration so dashboards and alerts see the
/// series before the first failure.
const OPERATIONS: [&str; 10] = [
    "LOOKUP",
    "GET",
    "SET",
    "REFRESH",
    "LEASE",
    "RENEW_LEASE",
    "RELEASE_LEASE",
    "WAIT",
    "PURGE",
    "PING",
];

/// `imgmesh_redis_errors_total{operation}`.
pub(crate) static REDIS_ERRORS: LazyLock<Family<[(&'static str, &'static str); 1], Counter>> =
    LazyLock::new(|| {
        let errors: Family<[(&'static str, &'static str); 1], Counter> = Family::default();
        imgmesh_metrics::registry()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .register(
                "imgmesh_redis_errors",
                "Failed or timed-out Redis operations of the derivative cache, by operation",
                errors.clone(),
            );
        for operation in OPERATIONS {
            errors.get_or_create_owned(&[("operation", operation)]);
        }
        errors
    });

/// Registers `imgmesh_redis_errors_total`, every operation at zero; a
/// process using the cache calls it when it registers its own metrics.
pub fn register() {
    LazyLock::force(&REDIS_ERRORS);
}

/// Counts one failed `operation`.
pub(crate) fn redis_error(operation: &'static str) {
    REDIS_ERRORS
        .get_or_create(&[("operation", operation)])
        .inc();
}

/// The gauges of the hot entries: bytes held, entries held, capacity.
#[derive(Debug)]
pub(crate) struct HotGauges {
    bytes: Gauge,
    entries: Gauge,
    capacity: Gauge,
}

/// `imgmesh_hot_cache_bytes`, `imgmesh_hot_cache_entries` and
/// `imgmesh_hot_cache_capacity_bytes`; registered by the first cache with
/// hot entries (the gateway's), so other processes do not show them.
pub(crate) static HOT: LazyLock<HotGauges> = LazyLock::new(|| {
    let gauges = HotGauges {
        bytes: Gauge::default(),
        entries: Gauge::default(),
        capacity: Gauge::default(),
    };
    let mut registry = imgmesh_metrics::registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.register_with_unit(
        "imgmesh_hot_cache",
        "Bytes of derivatives held in the in-process hot cache (keys included)",
        Unit::Bytes,
        gauges.bytes.clone(),
    );
    registry.register(
        "imgmesh_hot_cache_entries",
        "Derivatives held in the in-process hot cache",
        gauges.entries.clone(),
    );
    registry.register_with_unit(
        "imgmesh_hot_cache_capacity",
        "Most bytes the in-process hot cache may hold (--hot-cache-bytes)",
        Unit::Bytes,
        gauges.capacity.clone(),
    );
    gauges
});

// === impl HotGauges ===

impl HotGauges {
    /// The hot entries now hold `entries` entries in `bytes` of `capacity`.
    pub(crate) fn set(&self, bytes: usize, entries: usize, capacity: usize) {
        let value = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.bytes.set(value(bytes));
        self.entries.set(value(entries));
        self.capacity.set(value(capacity));
    }
}
