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
        let errors = imgmesh_metrics::register(|metrics| {
            metrics.metric(
                "imgmesh_redis_errors",
                "Failed or timed-out Redis operations of the derivative cache, by operation",
                Family::default(),
            )
        });
        imgmesh_metrics::start_at_zero(
            &errors,
            OPERATIONS.map(|operation| [("operation", operation)]),
        );
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
    imgmesh_metrics::register(|metrics| HotGauges {
        bytes: metrics.metric_with_unit(
            "imgmesh_hot_cache",
            "Bytes of derivatives held in the in-process hot cache (keys included)",
            Unit::Bytes,
            Gauge::default(),
        ),
        entries: metrics.metric(
            "imgmesh_hot_cache_entries",
            "Derivatives held in the in-process hot cache",
            Gauge::default(),
        ),
        capacity: metrics.metric_with_unit(
            "imgmesh_hot_cache_capacity",
            "Most bytes the in-process hot cache may hold (--hot-cache-bytes)",
            Unit::Bytes,
            Gauge::default(),
        ),
    })
});

/// The purge feed's metrics: whether it is subscribed, messages applied.
#[derive(Debug)]
pub(crate) struct FeedMetrics {
    subscribed: Gauge,
    messages: Counter,
}

/// `imgmesh_purge_feed_subscribed` and `imgmesh_purge_feed_messages_total`;
/// registered by the first purge feed (the gateway's).
pub(crate) static FEED: LazyLock<FeedMetrics> = LazyLock::new(|| {
    imgmesh_metrics::register(|metrics| {
        FeedMetrics {
        subscribed: metrics.metric(
            "imgmesh_purge_feed_subscribed",
            "1 while the purge feed (Redis Pub/Sub) is subscribed and hot copies may be served without asking Redis",
            Gauge::default(),
        ),
        messages: metrics.metric(
            "imgmesh_purge_feed_messages",
            "Purge messages received on the purge feed",
            Counter::default(),
        ),
    }
    })
});

// === impl FeedMetrics ===

impl FeedMetrics {
    /// The feed is (or is no longer) subscribed.
    pub(crate) fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.set(i64::from(subscribed));
    }

    /// One purge message was applied.
    pub(crate) fn message(&self) {
        self.messages.inc();
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation name the cache client passes to its timed runner
    /// (`run`, `query`, `attempt`) is one created at zero, so a new
    /// operation cannot be missing from dashboards until it first fails.
    #[test]
    fn every_client_operation_is_pre_created() {
        let source = include_str!("client.rs");
        let mut found = Vec::new();
        // Method calls, possibly on a line of their own (`self\n.run(`) and
        // with a turbofish (`.query::<T>(`).
        for call in [".run", ".query", ".attempt"] {
            for (at, _) in source.match_indices(call) {
                let rest = &source[at + call.len()..];
                if !rest.starts_with('(') && !rest.starts_with("::<") {
                    continue;
                }
                let Some(open) = rest.find('(') else { continue };
                let argument = rest[open + 1..].trim_start();
                if let Some(quoted) = argument.strip_prefix('"') {
                    let name = &quoted[..quoted.find('"').expect("a closed string")];
                    found.push(name.to_owned());
                }
            }
        }
        assert!(found.len() >= 8, "only {found:?} found in client.rs");
        for name in &found {
            assert!(
                OPERATIONS.contains(&name.as_str()),
                "{name} is not in OPERATIONS"
            );
        }
        register();
        let text = imgmesh_metrics::encode();
        for operation in OPERATIONS {
            let series = format!("imgmesh_redis_errors_total{{operation=\"{operation}\"}} ");
            assert!(text.contains(&series), "{series} missing");
        }
    }
}
