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
    passthroughs: Family<Label, Counter>,
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
    render_work_seconds: Histogram,
    render_admission_limit: Gauge,
    render_stretch: Gauge<f64, AtomicU64>,
    originals_decoded: Counter,
    intermediate_hits: Counter,
    intermediate_misses: Counter,
    intermediate_stored: Counter,
    intermediate_evictions: Family<Label, Counter>,
    intermediate_bytes: Gauge,
    render_batches: Counter,
    render_batched: Counter,
    render_batch_refused: Family<Label, Counter>,
    render_batch_memory_waits: Counter,
}

/// The process's renderer metrics.
pub static METRICS: LazyLock<RendererMetrics> = LazyLock::new(|| {
    let metrics = imgmesh_metrics::register(|metrics| {
        RendererMetrics {
        renders: metrics.metric(
            "imgmesh_renders",
            "Derivatives rendered, by output format",
            Family::default(),
        ),
        passthroughs: metrics.metric(
            "imgmesh_passthroughs",
            "Derivatives that are their original unchanged (a request without parameters: imgix's passthrough), stored without a render, by format",
            Family::default(),
        ),
        render_seconds: metrics.metric_with_unit(
            "imgmesh_render_duration",
            "Time spent rendering (decode, transform, encode), by output format",
            Unit::Seconds,
            Family::new_with_constructor(imgmesh_metrics::latency_histogram),
        ),
        cache_lookups: metrics.metric(
            "imgmesh_cache_lookups",
            "Cache lookups by tier and result (hit, miss, stale)",
            Family::default(),
        ),
        lease_waits: metrics.metric(
            "imgmesh_render_lease_waits",
            "Misses that waited for another replica's render, by how the wait ended",
            Family::default(),
        ),
        not_modified: metrics.metric(
            "imgmesh_not_modified",
            "Conditional requests answered not modified",
            Counter::default(),
        ),
        purges: metrics.metric(
            "imgmesh_purges",
            "Purges by scope (asset, prefix, source)",
            Family::default(),
        ),
        render_queue_depth: metrics.metric(
            "imgmesh_render_queue_depth",
            "Renders admitted and waiting for a worker (their original being fetched or fetched)",
            Gauge::default(),
        ),
        renders_in_flight: metrics.metric(
            "imgmesh_renders_in_flight",
            "Renders running on a libvips worker",
            Gauge::default(),
        ),
        render_admitted_bytes: metrics.metric_with_unit(
            "imgmesh_render_admitted",
            "Estimated decode memory reserved by admitted renders",
            Unit::Bytes,
            Gauge::default(),
        ),
        render_shed: metrics.metric(
            "imgmesh_render_shed",
            "Render requests refused by admission control, by reason (queue_full, limit, memory, deadline)",
            Family::default(),
        ),
        render_queue_wait_seconds: metrics.metric_with_unit(
            "imgmesh_render_queue_wait",
            "Time from admission to a free render worker",
            Unit::Seconds,
            imgmesh_metrics::latency_histogram(),
        ),
        render_workers: metrics.metric(
            "imgmesh_render_workers",
            "Render workers (renders that may run at once); utilisation is imgmesh_renders_in_flight over this",
            Gauge::default(),
        ),
        render_queue_capacity: metrics.metric(
            "imgmesh_render_queue_capacity",
            "Renders that may wait for a worker beyond those running (--render-queue-depth)",
            Gauge::default(),
        ),
        render_memory_budget_bytes: metrics.metric_with_unit(
            "imgmesh_render_memory_budget",
            "Estimated decode memory admitted renders may reserve in all",
            Unit::Bytes,
            Gauge::default(),
        ),
        render_worker_busy_seconds: metrics.metric_with_unit(
            "imgmesh_render_worker_busy",
            "Time render workers spent rendering, summed over workers; its rate over imgmesh_render_workers is worker utilisation",
            Unit::Seconds,
            Counter::default(),
        ),
        render_work_seconds: metrics.metric_with_unit(
            "imgmesh_render_work",
            "Time one render held its worker (its service time, without the queue wait); with imgmesh_render_queue_wait_seconds it splits a render's time in the pool",
            Unit::Seconds,
            imgmesh_metrics::latency_histogram(),
        ),
        render_admission_limit: metrics.metric(
            "imgmesh_render_admission_limit",
            "Renders admitted at once now: the adaptive limit within workers + queue places, lowered while renders run stretched",
            Gauge::default(),
        ),
        render_stretch: metrics.metric(
            "imgmesh_render_stretch",
            "Smoothed stretch of the last renders: (CPU time + time runnable but waiting for a core) / CPU time of the renderer's threads over each render",
            Gauge::default(),
        ),
        renders_stopped: metrics.metric(
            "imgmesh_renders_stopped",
            "Renders refused or stopped as too expensive, by reason (frames, pixels, time)",
            Family::default(),
        ),
        originals_decoded: metrics.metric(
            "imgmesh_originals_decoded",
            "Originals decoded (loaded into pixels) by a render; a RenderSet decodes once for all its derivatives that share a shrink",
            Counter::default(),
        ),
        intermediate_hits: metrics.metric(
            "imgmesh_render_intermediate_hits",
            "Renders that resized a kept decode of their original instead of decoding it",
            Counter::default(),
        ),
        intermediate_misses: metrics.metric(
            "imgmesh_render_intermediate_misses",
            "Renders that could have reused a kept decode of their original but found none",
            Counter::default(),
        ),
        intermediate_stored: metrics.metric(
            "imgmesh_render_intermediate_stored",
            "Decodes of originals kept for reuse (an original's second decode within the time to live)",
            Counter::default(),
        ),
        intermediate_evictions: metrics.metric(
            "imgmesh_render_intermediate_evictions",
            "Kept decodes dropped, by reason (ttl, lru, room: a render needed the running memory, replaced: a finer decode of the same original)",
            Family::default(),
        ),
        intermediate_bytes: metrics.metric_with_unit(
            "imgmesh_render_intermediate",
            "Bytes of decoded originals kept for reuse",
            Unit::Bytes,
            Gauge::default(),
        ),
        render_batches: metrics.metric(
            "imgmesh_render_batches",
            "Batches run: renders of one original that waited for a worker together, run on one with one decode",
            Counter::default(),
        ),
        render_batched: metrics.metric(
            "imgmesh_render_batched",
            "Derivatives made from a decode shared with a larger one (a batch or a RenderSet) instead of their own",
            Counter::default(),
        ),
        render_batch_refused: metrics.metric(
            "imgmesh_render_batch_refused",
            "Renders of an original that did not join its batch, by reason (unshared: their plan cannot share its decode; full: the batch had --render-batch-max renders; window: still being fetched when the batch window closed; running: they started waiting after their original's batch had taken its renders, and wait for the next batch)",
            Family::default(),
        ),
        render_batch_memory_waits: metrics.metric(
            "imgmesh_render_batch_memory_waits",
            "Batches that waited for their running memory after taking their renders (not all of it was free)",
            Counter::default(),
        ),
    }
    });
    // Every labelled series whose label values are known, at zero from the
    // start, so dashboards and alerts see them before the first event.
    imgmesh_metrics::start_at_zero(
        &metrics.render_shed,
        ["queue_full", "memory", "deadline"].map(|reason| [("reason", reason)]),
    );
    imgmesh_metrics::start_at_zero(
        &metrics.render_batch_refused,
        ["unshared", "full", "window", "running"].map(|reason| [("reason", reason)]),
    );
    imgmesh_metrics::start_at_zero(
        &metrics.renders_stopped,
        ["frames", "pixels", "time"].map(|reason| [("reason", reason)]),
    );
    imgmesh_metrics::start_at_zero(
        &metrics.intermediate_evictions,
        ["ttl", "lru", "room", "replaced"].map(|reason| [("reason", reason)]),
    );
    imgmesh_metrics::start_at_zero(
        &metrics.lease_waits,
        ["stored", "abandoned", "timeout"].map(|outcome| [("outcome", outcome)]),
    );
    imgmesh_metrics::start_at_zero(
        &metrics.cache_lookups,
        ["hit", "miss", "stale"].map(|result| [("tier", "derivative"), ("result", result)]),
    );
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

    /// One original stored unchanged as its derivative (a passthrough), in
    /// `format`: a derivative cache miss that no render answered.
    pub fn passed_through(&self, format: &'static str) {
        self.passthroughs.get_or_create(&[("format", format)]).inc();
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
        self.render_work_seconds.observe(busy.as_secs_f64());
    }

    /// The adaptive admission limit now and the smoothed stretch it reads.
    pub fn render_admission(&self, limit: usize, stretch: f64) {
        self.render_admission_limit
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
        self.render_stretch.set(stretch);
    }

    /// One original decoded into pixels.
    pub fn original_decoded(&self) {
        self.originals_decoded.inc();
    }

    /// Originals decoded so far by this process.
    pub fn originals_decoded(&self) -> u64 {
        self.originals_decoded.get()
    }

    /// One batch of renders of one original run together.
    pub fn render_batch(&self) {
        self.render_batches.inc();
    }

    /// One derivative made from a shared decode instead of its own.
    pub fn render_batched(&self) {
        self.render_batched.inc();
    }

    /// `count` renders of an original that did not join its batch, for
    /// `reason` (`unshared`, `full`, `window`, `running`).
    pub fn render_batch_refused(&self, reason: &'static str, count: u64) {
        if count > 0 {
            self.render_batch_refused
                .get_or_create(&[("reason", reason)])
                .inc_by(count);
        }
    }

    /// One batch that waited for its running memory after taking its
    /// renders.
    pub fn render_batch_waited_for_memory(&self) {
        self.render_batch_memory_waits.inc();
    }

    /// Batches that waited for their running memory so far.
    pub fn render_batch_memory_waits(&self) -> u64 {
        self.render_batch_memory_waits.get()
    }

    /// Renders that did not join their original's batch so far for `reason`.
    pub fn render_batch_refusals(&self, reason: &'static str) -> u64 {
        self.render_batch_refused
            .get_or_create(&[("reason", reason)])
            .get()
    }

    /// Derivatives made from a shared decode so far.
    pub fn renders_batched(&self) -> u64 {
        self.render_batched.get()
    }

    /// One render served from a kept decode.
    pub fn intermediate_hit(&self) {
        self.intermediate_hits.inc();
    }

    /// Renders served from a kept decode so far.
    pub fn intermediate_hits(&self) -> u64 {
        self.intermediate_hits.get()
    }

    /// One render that could have reused a kept decode and found none.
    pub fn intermediate_miss(&self) {
        self.intermediate_misses.inc();
    }

    /// One decode kept for reuse.
    pub fn intermediate_stored(&self) {
        self.intermediate_stored.inc();
    }

    /// One kept decode dropped, for `reason`.
    pub fn intermediate_evicted(&self, reason: &'static str) {
        self.intermediate_evictions
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Kept decode bytes changed by `change`.
    pub fn intermediate_bytes(&self, change: i64) {
        self.intermediate_bytes.inc_by(change);
    }

    /// One render refused or stopped as too expensive, for `reason`
    /// (frames, pixels, time).
    pub fn render_stopped(&self, reason: &'static str) {
        self.renders_stopped
            .get_or_create(&[("reason", reason)])
            .inc();
    }
}
