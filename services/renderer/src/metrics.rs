//! The renderer's Prometheus metrics, registered in the process registry
//! (`imgmesh_metrics::registry()`) on first use and served on `/metrics`.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

/// One label: `[("name", "value")]`.
type Label = [(&'static str, &'static str); 1];
/// Two labels.
type Labels = [(&'static str, &'static str); 2];

/// The renderer's metrics.
#[derive(Debug)]
pub struct RendererMetrics {
    renders: Family<Label, Counter>,
    render_seconds: Family<Label, Histogram, fn() -> Histogram>,
    cache_lookups: Family<Labels, Counter>,
    lease_waits: Family<Label, Counter>,
    not_modified: Counter,
    purges: Family<Label, Counter>,
    renders_stopped: Family<Label, Counter>,
    render_queue_depth: Gauge,
    renders_in_flight: Gauge,
    render_admitted_bytes: Gauge,
    render_shed: Family<Label, Counter>,
    render_queue_wait_seconds: Histogram,
    render_workers: Gauge,
    render_queue_capacity: Gauge,
    render_memory_budget_bytes: Gauge,
    render_worker_busy_seconds: Counter<f64, AtomicU64>,
}

/// The process's renderer metrics.
pub static METRICS: LazyLock<RendererMetrics> = LazyLock::new(|| {
    let metrics = RendererMetrics {
        renders: Family::default(),
        render_seconds: Family::new_with_constructor(imgmesh_metrics::latency_histogram),
        cache_lookups: Family::default(),
        lease_waits: Family::default(),
        not_modified: Counter::default(),
        purges: Family::default(),
        renders_stopped: Family::default(),
        render_queue_depth: Gauge::default(),
        renders_in_flight: Gauge::default(),
        render_admitted_bytes: Gauge::default(),
        render_shed: Family::default(),
        render_queue_wait_seconds: imgmesh_metrics::latency_histogram(),
        render_workers: Gauge::default(),
        render_queue_capacity: Gauge::default(),
        render_memory_budget_bytes: Gauge::default(),
        render_worker_busy_seconds: Counter::default(),
    };
    let mut registry = imgmesh_metrics::registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.register(
        "imgmesh_renders",
        "Derivatives rendered, by output format",
        metrics.renders.clone(),
    );
    registry.register_with_unit(
        "imgmesh_render_duration",
        "Time spent rendering (decode, transform, encode), by output format",
        Unit::Seconds,
        metrics.render_seconds.clone(),
    );
    registry.register(
        "imgmesh_cache_lookups",
        "Cache lookups by tier and result (hit, miss, stale)",
        metrics.cache_lookups.clone(),
    );
    registry.register(
        "imgmesh_render_lease_waits",
        "Misses that waited for another replica's render, by how the wait ended",
        metrics.lease_waits.clone(),
    );
    registry.register(
        "imgmesh_not_modified",
        "Conditional requests answered not modified",
        metrics.not_modified.clone(),
    );
    registry.register(
        "imgmesh_purges",
        "Purges by scope (asset, prefix, source)",
        metrics.purges.clone(),
    );
    registry.register(
        "imgmesh_render_queue_depth",
        "Renders admitted and waiting for a worker (their original being fetched or fetched)",
        metrics.render_queue_depth.clone(),
    );
    registry.register(
        "imgmesh_renders_in_flight",
        "Renders running on a libvips worker",
        metrics.renders_in_flight.clone(),
    );
    registry.register_with_unit(
        "imgmesh_render_admitted",
        "Estimated decode memory reserved by admitted renders",
        Unit::Bytes,
        metrics.render_admitted_bytes.clone(),
    );
    registry.register(
        "imgmesh_render_shed",
        "Render requests refused by admission control, by reason (queue_full, memory, deadline)",
        metrics.render_shed.clone(),
    );
    registry.register_with_unit(
        "imgmesh_render_queue_wait",
        "Time from admission to a free render worker",
        Unit::Seconds,
        metrics.render_queue_wait_seconds.clone(),
    );
    registry.register(
        "imgmesh_render_workers",
        "Render workers (renders that may run at once); utilisation is imgmesh_renders_in_flight over this",
        metrics.render_workers.clone(),
    );
    registry.register(
        "imgmesh_render_queue_capacity",
        "Renders that may wait for a worker beyond those running (--render-queue-depth)",
        metrics.render_queue_capacity.clone(),
    );
    registry.register_with_unit(
        "imgmesh_render_memory_budget",
        "Estimated decode memory admitted renders may reserve in all",
        Unit::Bytes,
        metrics.render_memory_budget_bytes.clone(),
    );
    registry.register_with_unit(
        "imgmesh_render_worker_busy",
        "Time render workers spent rendering, summed over workers; its rate over imgmesh_render_workers is worker utilisation",
        Unit::Seconds,
        metrics.render_worker_busy_seconds.clone(),
    );
    registry.register(
        "imgmesh_renders_stopped",
        "Renders refused or stopped as too expensive, by reason (frames, pixels, time)",
        metrics.renders_stopped.clone(),
    );
    drop(registry);
    // Every labelled series whose label values are known, at zero from the
    // start, so dashboards and alerts see them before the first event.
    for reason in ["queue_full", "memory", "deadline"] {
        metrics
            .render_shed
            .get_or_create_owned(&[("reason", reason)]);
    }
    for reason in ["frames", "pixels", "time"] {
        metrics
            .renders_stopped
            .get_or_create_owned(&[("reason", reason)]);
    }
    for outcome in ["stored", "abandoned", "timeout"] {
        metrics
            .lease_waits
            .get_or_create_owned(&[("outcome", outcome)]);
    }
    for result in ["hit", "miss", "stale"] {
        metrics
            .cache_lookups
            .get_or_create_owned(&[("tier", "derivative"), ("result", result)]);
    }
    imgmesh_derivative_cache::register_metrics();
    metrics
});

// === impl RendererMetrics ===

impl RendererMetrics {
    /// One render to `format` that took `elapsed`.
    pub fn rendered(&self, format: &'static str, elapsed: Duration) {
        let label = [("format", format)];
        self.renders.get_or_create(&label).inc();
        self.render_seconds
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    /// One derivative cache lookup that ended as `result` (hit, miss, stale).
    pub fn derivative_lookup(&self, result: &'static str) {
        self.cache_lookups
            .get_or_create(&[("tier", "derivative"), ("result", result)])
            .inc();
    }

    /// One wait for another replica's render that ended as `outcome`.
    pub fn lease_wait(&self, outcome: &'static str) {
        self.lease_waits
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }

    /// One conditional request answered not modified.
    pub fn not_modified(&self) {
        self.not_modified.inc();
    }

    /// One purge of `scope`.
    pub fn purged(&self, scope: &'static str) {
        self.purges.get_or_create(&[("scope", scope)]).inc();
    }

    /// One more render admitted and waiting for a worker (`-1`: one less).
    pub fn render_queued(&self, change: i64) {
        self.render_queue_depth.inc_by(change);
    }

    /// One more render running on a worker (`-1`: one less).
    pub fn render_running(&self, change: i64) {
        self.renders_in_flight.inc_by(change);
    }

    /// `change` more bytes of decode memory reserved (negative: released).
    pub fn render_memory(&self, change: i64) {
        self.render_admitted_bytes.inc_by(change);
    }

    /// One request refused by admission control for `reason` (queue_full,
    /// memory, deadline).
    pub fn render_shed(&self, reason: &'static str) {
        self.render_shed.get_or_create(&[("reason", reason)]).inc();
    }

    /// One admitted render that waited `waited` for its worker.
    pub fn render_queue_wait(&self, waited: Duration) {
        self.render_queue_wait_seconds.observe(waited.as_secs_f64());
    }

    /// The pool's size: `workers` running at once, `queue_depth` more
    /// waiting, within `memory_budget` estimated bytes.
    pub fn render_capacity(&self, workers: usize, queue_depth: usize, memory_budget: u64) {
        self.render_workers
            .set(i64::try_from(workers).unwrap_or(i64::MAX));
        self.render_queue_capacity
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        self.render_memory_budget_bytes
            .set(i64::try_from(memory_budget).unwrap_or(i64::MAX));
    }

    /// A render held a worker for `busy`.
    pub fn worker_busy(&self, busy: Duration) {
        self.render_worker_busy_seconds.inc_by(busy.as_secs_f64());
    }

    /// One render refused or stopped as too expensive, for `reason`
    /// (frames, pixels, time).
    pub fn render_stopped(&self, reason: &'static str) {
        self.renders_stopped
            .get_or_create(&[("reason", reason)])
            .inc();
    }
}
