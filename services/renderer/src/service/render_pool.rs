//! The bounded pool libvips work runs on, and admission to it.
//!
//! A render is CPU-bound and blocking, so it runs under
//! `tokio::task::spawn_blocking`, never on the async workers, on at most
//! `workers` threads at once. In front of the workers sits admission
//! control, so that overload is refused in milliseconds instead of queued
//! without bound:
//!
//! 1. **Slots.** The pool has `workers + queue_depth` slots. A miss takes
//!    one ([`RenderPool::admit`]) *before* its original is fetched, so no
//!    more than that many originals are ever held, and keeps it through
//!    the render. No free slot: [`RenderError::Overloaded`] at once.
//! 2. **Memory.** Once the original (and any overlay) is fetched, the
//!    render's peak memory is estimated from the image headers
//!    ([`estimate_render_bytes`]) and reserved from the memory budget; a
//!    render that does not fit what is left is refused as overloaded, one
//!    larger than the whole budget as too large.
//! 3. **Workers.** An admitted render waits for a worker only until its
//!    deadline is less than [`MIN_REMAINING`] away (then
//!    [`RenderError::DeadlineExceeded`]) or until nobody waits for it any
//!    more (then [`RenderError::Abandoned`]). A request admitted with less
//!    than [`MIN_REMAINING`] left is refused the same way, before its
//!    fetch. A render that reached its libvips thread runs to the end; its
//!    slot, worker and memory are released when it finishes, even if the
//!    caller has gone away meanwhile.
//! 4. **Running memory.** On its worker, a render also takes its estimate
//!    from the running memory (`--render-running-memory-bytes`), which
//!    only running renders hold: one that does not fit what the others
//!    left waits for them to finish (FIFO, within the same deadline), and
//!    one larger than the whole runs alone. This is what keeps two
//!    progressive JPEGs' whole-image coefficient buffers (55 MB each at
//!    3840 × 2400) from being decoded at once on a small renderer, without
//!    refusing either.
//!
//! 5. **Kept decodes.** Renders load through the pool's
//!    [`Intermediates`] (when turned on, [`RenderPool::with_intermediates`]):
//!    an original decoded twice within a few seconds is kept decoded, so
//!    the other widths of a srcset resize it instead of decoding again. A
//!    kept decode holds its bytes from the running memory; a render that
//!    finds too little running memory left evicts kept decodes before it
//!    waits, so they only use what no running render needs.
//!
//! 5. **Adaptive limit** (with `--render-stretch-tolerance`; off by
//!    default). Within its places the pool admits only as many renders as
//!    run at speed ([`AdaptiveLimit`]): when the renders that
//!    finish ran stretched (their threads waited for a core more than
//!    `stretch_tolerance − 1` of the time they ran, e.g. while a storm of
//!    refused requests takes the cores), the limit comes down one place
//!    per round of renders, queue places first, down to one render; when
//!    they run at speed again it climbs back. A request past it is refused
//!    at once like one that finds no place, so admitted requests keep
//!    their unloaded latency instead of all getting slower.
//!
//! The gauges `imgmesh_render_queue_depth`, `imgmesh_renders_in_flight`,
//! `imgmesh_render_admitted_bytes`, `imgmesh_render_admission_limit` and
//! `imgmesh_render_stretch`, the counter `imgmesh_render_shed_total` and
//! the histograms `imgmesh_render_queue_wait_seconds` and
//! `imgmesh_render_work_seconds` follow each step.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{
    DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_RUNNING_MEMORY_PER_WORKER, DEFAULT_STRETCH_TOLERANCE,
};
use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::estimate::estimate_render_bytes;
use crate::pipeline::libvips;
use crate::pipeline::{
    Derivative, Intermediates, RenderLimits, RenderSources, ResolvedPlan, render_reusing,
    render_set,
};
use crate::service::admission_limit::{AdaptiveLimit, process_cpu_and_wait, stretch_between};

/// The least time a request must have left before its deadline for its
/// work to start: 50 ms. Less cannot fetch an original, render it and send
/// it back (a cached original and a small render already take tens of
/// milliseconds), so such a request is refused with the timeout code at
/// admission, and a queued one stops waiting for a worker this long before
/// its deadline, instead of doing work whose answer nobody will receive.
pub const MIN_REMAINING: Duration = Duration::from_millis(50);

/// The niceness libvips work runs at (its threads inherit it from the
/// blocking thread that starts them): when renders fill the cores, the
/// async threads that answer refusals, hits and health checks still run at
/// once (see `imgmesh_runtime::lower_thread_priority`).
pub const RENDER_NICE: i32 = 10;

/// Runs renders on at most `workers` blocking threads at a time, admitting
/// at most `workers + queue_depth` at once within a memory budget.
#[derive(Debug, Clone)]
pub struct RenderPool {
    /// One permit per admitted render (`workers + queue_depth`).
    slots: Arc<Semaphore>,
    /// One permit per running render.
    running: Arc<Semaphore>,
    memory: Arc<MemoryBudget>,
    /// The running memory, one permit per KiB of estimate
    /// ([`RenderPool::with_running_memory`]).
    running_memory: Arc<Semaphore>,
    /// Its size in KiB (what a render larger than the whole takes).
    running_memory_kib: u32,
    /// Decodes kept for reuse, if turned on.
    intermediates: Option<Arc<Intermediates>>,
    /// How many of the places may be taken now ([`AdaptiveLimit`]).
    limit: Arc<AdaptiveLimit>,
    workers: usize,
    queue_depth: usize,
    limits: RenderLimits,
}

/// A render's place in the pool, taken before its original is fetched and
/// held until the render ends (dropping it gives the place back).
#[derive(Debug)]
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    admitted_at: Instant,
    /// When the render reached a worker, if it did (for the gauges and the
    /// workers' busy time).
    started_at: Option<Instant>,
}

/// Estimated render memory, shared by every admitted render.
#[derive(Debug)]
struct MemoryBudget {
    total: u64,
    reserved: Mutex<u64>,
}

/// Memory reserved for one render; released when dropped.
#[derive(Debug)]
struct MemoryReservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

// === impl RenderPool ===

impl RenderPool {
    /// A pool of `workers` concurrent renders (at least one) under `limits`,
    /// with the default queue (twice the workers) and memory budget.
    pub fn new(workers: usize, limits: RenderLimits) -> RenderPool {
        let workers = workers.max(1);
        RenderPool::with_admission(workers, workers * 2, DEFAULT_MEMORY_BUDGET_BYTES, limits)
    }

    /// A pool of `workers` concurrent renders (at least one), admitting
    /// `queue_depth` more to wait for them, all within `memory_budget`
    /// estimated bytes, the running ones within the default running memory
    /// (64 MiB per worker).
    pub fn with_admission(
        workers: usize,
        queue_depth: usize,
        memory_budget: u64,
        limits: RenderLimits,
    ) -> RenderPool {
        let workers = workers.max(1);
        METRICS.render_capacity(workers, queue_depth, memory_budget);
        let running_memory = DEFAULT_RUNNING_MEMORY_PER_WORKER.saturating_mul(workers as u64);
        let running_memory_kib = running_memory_kib(running_memory);
        RenderPool {
            slots: Arc::new(Semaphore::new(workers + queue_depth)),
            running: Arc::new(Semaphore::new(workers)),
            memory: Arc::new(MemoryBudget {
                total: memory_budget,
                reserved: Mutex::new(0),
            }),
            running_memory: Arc::new(Semaphore::new(running_memory_kib as usize)),
            running_memory_kib,
            intermediates: None,
            limit: Arc::new(adaptive_limit(
                workers + queue_depth,
                DEFAULT_STRETCH_TOLERANCE,
            )),
            workers,
            queue_depth,
            limits,
        }
    }

    /// The same pool lowering its admission limit while finished renders
    /// ran more than `tolerance` times as long as their threads were on a
    /// core ([`AdaptiveLimit`]); `f64::INFINITY` turns it off.
    pub fn with_stretch_tolerance(mut self, tolerance: f64) -> RenderPool {
        self.limit = Arc::new(adaptive_limit(self.workers + self.queue_depth, tolerance));
        self
    }

    /// How many renders may be admitted at once now (at most `workers +
    /// queue_depth`, lowered while renders run stretched).
    pub fn admission_limit(&self) -> usize {
        self.limit.limit()
    }

    /// The same pool with `bytes` of running memory: the estimates of the
    /// renders running at once stay within it (a render that does not fit
    /// waits on its worker; one larger than the whole runs alone). 0 turns
    /// it off.
    pub fn with_running_memory(mut self, bytes: u64) -> RenderPool {
        self.running_memory_kib = running_memory_kib(bytes);
        self.running_memory = Arc::new(Semaphore::new(self.running_memory_kib as usize));
        if let Some(intermediates) = self.intermediates.take() {
            let ttl = intermediates.ttl();
            self = self.with_intermediates(intermediates.budget(), ttl);
        }
        self
    }

    /// The same pool keeping decodes of originals for reuse within
    /// `budget` bytes, each for at most `ttl`, holding their bytes from the
    /// running memory (when it is on). A budget of 0 turns reuse off.
    pub fn with_intermediates(mut self, budget: u64, ttl: Duration) -> RenderPool {
        let running = (self.running_memory_kib > 0).then(|| Arc::clone(&self.running_memory));
        self.intermediates =
            (budget > 0).then(|| Arc::new(Intermediates::new(budget, ttl, running)));
        self
    }

    /// The decodes kept for reuse, if turned on.
    pub fn intermediates(&self) -> Option<&Intermediates> {
        self.intermediates.as_deref()
    }

    /// Drops the kept decodes older than their time to live (run every
    /// time to live, so an idle renderer gives their memory back).
    pub fn expire_intermediates(&self) {
        if let Some(intermediates) = &self.intermediates {
            intermediates.expire();
        }
    }

    /// The running memory, in bytes (see [`RenderPool::with_running_memory`]).
    pub fn running_memory(&self) -> u64 {
        u64::from(self.running_memory_kib) * 1024
    }

    /// How many renders may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many admitted renders may wait for a worker.
    pub fn queue_depth(&self) -> usize {
        self.queue_depth
    }

    /// The memory budget of all admitted renders, in estimated bytes.
    pub fn memory_budget(&self) -> u64 {
        self.memory.total
    }

    /// The limits every render on the pool runs under.
    pub fn limits(&self) -> RenderLimits {
        self.limits
    }

    /// Renders admitted now (waiting or running).
    pub fn admitted(&self) -> usize {
        self.workers + self.queue_depth - self.slots.available_permits()
    }

    /// Renders running on a worker now.
    pub fn in_flight(&self) -> usize {
        self.workers - self.running.available_permits()
    }

    /// Estimated bytes reserved by admitted renders now.
    pub fn reserved_bytes(&self) -> u64 {
        *self.memory.lock()
    }

    /// Takes a place for one render, at once or not at all: no free slot
    /// (or a `deadline` less than [`MIN_REMAINING`] away) refuses it
    /// without waiting. Take it before fetching the original, so a refused
    /// request costs nothing.
    pub fn admit(&self, deadline: Option<Instant>) -> Result<Admission, RenderError> {
        if deadline.is_some_and(too_close) {
            METRICS.render_shed("deadline");
            return Err(RenderError::DeadlineExceeded);
        }
        self.check_limit()?;
        let slot = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_full| {
                METRICS.render_shed("queue_full");
                RenderError::Overloaded {
                    reason: "render queue full",
                }
            })?;
        METRICS.render_queued(1);
        Ok(Admission {
            _slot: slot,
            admitted_at: Instant::now(),
            started_at: None,
        })
    }

    /// Refuses at once, as [`RenderPool::admit`] would, when no place is
    /// free, without taking one. A miss asks this before the work that
    /// precedes its admission (the render lease's round trips to Redis), so
    /// that a full renderer sheds with no round trip at all; `admit` still
    /// decides.
    pub fn check_room(&self) -> Result<(), RenderError> {
        self.check_limit()?;
        if self.slots.available_permits() == 0 {
            METRICS.render_shed("queue_full");
            return Err(RenderError::Overloaded {
                reason: "render queue full",
            });
        }
        Ok(())
    }

    /// Refuses at once when the adaptive limit, lowered below the pool's
    /// places, is admitted already (at the places themselves the slots
    /// refuse, as a full queue).
    fn check_limit(&self) -> Result<(), RenderError> {
        let limit = self.limit.limit();
        if limit < self.workers + self.queue_depth && self.admitted() >= limit {
            METRICS.render_shed("limit");
            return Err(RenderError::Overloaded {
                reason: "render admission limit reached",
            });
        }
        Ok(())
    }

    /// Admits and renders `sources` with `plan`, with no deadline.
    pub async fn render(
        &self,
        sources: RenderSources,
        plan: ResolvedPlan,
    ) -> Result<Derivative, RenderError> {
        let admission = self.admit(None)?;
        let plan = Arc::new(plan);
        self.render_admitted(admission, sources, plan, None, std::future::pending())
            .await
    }

    /// Renders `sources` with `plan` in the place `admission` holds:
    /// reserves its estimated memory, then waits for a free worker until
    /// `deadline` is less than [`MIN_REMAINING`] away or `gone` resolves
    /// (nobody wants the result any more). The libvips spans are children
    /// of the caller's current span.
    pub async fn render_admitted(
        &self,
        admission: Admission,
        sources: RenderSources,
        plan: Arc<ResolvedPlan>,
        deadline: Option<Instant>,
        gone: impl Future<Output = ()>,
    ) -> Result<Derivative, RenderError> {
        // Header-only reads (no pixels): cheap enough for the async thread.
        let estimated = estimate_render_bytes(&sources, &plan, &self.limits)?;
        let limits = self.limits;
        let intermediates = self.intermediates.clone();
        self.run_admitted(admission, estimated, deadline, gone, move || {
            render_reusing(
                &sources.as_input(),
                &plan,
                &limits,
                intermediates.as_deref(),
            )
        })
        .await
    }

    /// Renders every plan of `plans` from `original` with one decode where
    /// they can share it ([`render_set()`]), in the one place `admission`
    /// holds, as [`RenderPool::render_admitted`] does one render. It
    /// reserves twice the largest plan's estimate: the largest derivative's
    /// decode, kept while each smaller one (never larger) is made from it.
    pub async fn render_set_admitted(
        &self,
        admission: Admission,
        original: Vec<u8>,
        plans: Vec<Arc<ResolvedPlan>>,
        deadline: Option<Instant>,
        gone: impl Future<Output = ()>,
    ) -> Result<Vec<Derivative>, RenderError> {
        let sources = RenderSources::original(original);
        let mut largest = 0;
        for plan in &plans {
            largest = largest.max(estimate_render_bytes(&sources, plan, &self.limits)?);
        }
        let limits = self.limits;
        self.run_admitted(
            admission,
            largest.saturating_mul(2),
            deadline,
            gone,
            move || render_set(&sources.original, &plans, &limits),
        )
        .await
    }

    /// Runs `work` on a blocking thread in the place `admission` holds,
    /// with `estimated` bytes of the memory budget reserved, once a worker
    /// is free (see [`RenderPool::render_admitted`]).
    async fn run_admitted<T: Send + 'static>(
        &self,
        mut admission: Admission,
        estimated: u64,
        deadline: Option<Instant>,
        gone: impl Future<Output = ()>,
        work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
    ) -> Result<T, RenderError> {
        if estimated > self.memory.total {
            return Err(RenderError::DecodeTooLarge {
                estimated,
                budget: self.memory.total,
            });
        }
        let reservation = MemoryBudget::try_reserve(&self.memory, estimated).ok_or_else(|| {
            METRICS.render_shed("memory");
            RenderError::Overloaded {
                reason: "render memory budget spent",
            }
        })?;
        let worker = Arc::clone(&self.running).acquire_owned();
        let running_memory = Arc::clone(&self.running_memory);
        let kib = estimated
            .div_ceil(1024)
            .min(u64::from(self.running_memory_kib)) as u32;
        let intermediates = self.intermediates.clone();
        let started = async move {
            let worker = worker.await?;
            if let Some(intermediates) = intermediates {
                // Kept decodes give way to a render that needs their room.
                intermediates.make_room(kib);
            }
            // On the worker, so that only running renders hold it: a
            // render that waits here keeps its worker, and the next one in
            // the queue cannot start a second large decode beside the
            // first.
            let memory = running_memory.acquire_many_owned(kib).await?;
            Ok::<_, tokio::sync::AcquireError>((worker, memory))
        };
        let deadline_passed = async {
            match deadline {
                Some(deadline) => {
                    let last_start = deadline.checked_sub(MIN_REMAINING).unwrap_or(deadline);
                    tokio::time::sleep_until(last_start.into()).await;
                }
                None => std::future::pending().await,
            }
        };
        let (worker, running_memory) = tokio::select! {
            biased;
            started = started => started.map_err(|_closed| RenderError::Internal {
                context: "waiting for a render worker",
            })?,
            () = deadline_passed => {
                METRICS.render_shed("deadline");
                return Err(RenderError::DeadlineExceeded);
            }
            () = gone => return Err(RenderError::Abandoned),
        };
        // A worker that came free at the last moment (the select prefers
        // it) is no reason to start work the caller cannot receive.
        if deadline.is_some_and(too_close) {
            METRICS.render_shed("deadline");
            return Err(RenderError::DeadlineExceeded);
        }
        admission.start();
        // The blocking thread has neither the caller's span nor (with a
        // scoped subscriber) its dispatcher: carry both over.
        let parent = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        let slots = Arc::clone(&self.slots);
        let capacity = self.workers + self.queue_depth;
        let limit = Arc::clone(&self.limit);
        tokio::task::spawn_blocking(move || {
            // Released when libvips is done, whether or not anyone awaits.
            let held = (worker, running_memory, reservation, admission);
            imgmesh_runtime::lower_thread_priority(RENDER_NICE);
            let before = process_cpu_and_wait();
            let rendered = tracing::dispatcher::with_default(&dispatch, || parent.in_scope(work));
            if let Some(stretch) = before
                .zip(process_cpu_and_wait())
                .and_then(|(before, after)| stretch_between(before, after))
            {
                METRICS.render_admission(limit.sample(stretch), limit.stretch());
            }
            drop(held);
            // The last render of a burst (nothing else admitted) hands what
            // the renders freed back to the kernel. Not after every render:
            // the next one would fault the same pages in again.
            if slots.available_permits() == capacity {
                libvips::release_free_memory();
            }
            rendered
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "render task failed");
            RenderError::Internal {
                context: "rendering",
            }
        })?
    }
}

// === impl Admission ===

impl Admission {
    /// The render got its worker: it leaves the queue.
    fn start(&mut self) {
        METRICS.render_queue_wait(self.admitted_at.elapsed());
        METRICS.render_queued(-1);
        METRICS.render_running(1);
        self.started_at = Some(Instant::now());
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(started_at) = self.started_at {
            METRICS.render_running(-1);
            METRICS.worker_busy(started_at.elapsed());
        } else {
            METRICS.render_queued(-1);
        }
    }
}

// === impl MemoryBudget ===

impl MemoryBudget {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.reserved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `bytes` if they fit what is left.
    fn try_reserve(budget: &Arc<MemoryBudget>, bytes: u64) -> Option<MemoryReservation> {
        let mut reserved = budget.lock();
        if reserved.saturating_add(bytes) > budget.total {
            return None;
        }
        *reserved += bytes;
        METRICS.render_memory(gauge_bytes(bytes));
        Some(MemoryReservation {
            budget: Arc::clone(budget),
            bytes,
        })
    }
}

// === impl MemoryReservation ===

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        let mut reserved = self.budget.lock();
        *reserved = reserved.saturating_sub(self.bytes);
        METRICS.render_memory(-gauge_bytes(self.bytes));
    }
}

/// `bytes` of running memory in KiB permits (at most what a semaphore and
/// `acquire_many` take).
fn running_memory_kib(bytes: u64) -> u32 {
    let most = Semaphore::MAX_PERMITS.min(u32::MAX as usize) as u64;
    (bytes / 1024).min(most) as u32
}

/// The adaptive limit of a pool with `places` places: from one render to
/// all of them, starting at all.
fn adaptive_limit(places: usize, tolerance: f64) -> AdaptiveLimit {
    METRICS.render_admission(places, 1.0);
    AdaptiveLimit::new(1, places, tolerance)
}

/// Whether `deadline` leaves too little time ([`MIN_REMAINING`]) to start.
fn too_close(deadline: Instant) -> bool {
    deadline.saturating_duration_since(Instant::now()) < MIN_REMAINING
}

fn gauge_bytes(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use imgmesh_proto::renderer::v1::RenderPlan;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::test_images;

    /// (span name, parent span name) pairs, in creation order.
    type SpanNames = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// Records each new span's name with its parent's name.
    struct SpanTree(SpanNames);

    impl<S> tracing_subscriber::Layer<S> for SpanTree
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_new_span(
            &self,
            _attrs: &tracing::span::Attributes<'_>,
            id: &tracing::span::Id,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let span = ctx.span(id).expect("new span is registered");
            let parent = span.parent().map(|parent| parent.name().to_owned());
            self.0
                .lock()
                .unwrap()
                .push((span.name().to_owned(), parent));
        }
    }

    /// The libvips spans opened on the blocking pool are children of the caller's span.
    #[tokio::test]
    async fn libvips_spans_nest_under_the_callers_span() {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(SpanTree(Arc::clone(&spans)));
        let _default = tracing::subscriber::set_default(subscriber);

        let pool = RenderPool::new(1, RenderLimits::default());
        let render = pool.render(
            RenderSources::original(test_images::jpeg(100, 80)),
            width(50),
        );
        let derivative = tracing::Instrument::instrument(render, tracing::info_span!("render"))
            .await
            .unwrap();
        assert_eq!((derivative.width, derivative.height), (50, 40));

        let spans = spans.lock().unwrap();
        for name in ["vips.thumbnail", "vips.encode"] {
            assert!(
                spans.contains(&(name.to_owned(), Some("render".to_owned()))),
                "{name} is not a child of render: {spans:?}"
            );
        }
    }

    fn width(width: u32) -> ResolvedPlan {
        ResolvedPlan::resolve(&RenderPlan {
            width,
            ..RenderPlan::default()
        })
        .unwrap()
    }

    /// The value of an unlabelled metric on `/metrics`.
    fn metric(name: &str) -> f64 {
        imgmesh_metrics::encode()
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (bounded) until `done` holds.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A render waits while every worker is busy, and returns its permit when done.
    #[tokio::test]
    async fn renders_wait_for_a_free_worker() {
        let pool = RenderPool::new(1, RenderLimits::default());
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let mut render = std::pin::pin!(pool.render(
            RenderSources::original(test_images::jpeg(200, 100)),
            width(20)
        ));
        let waited = tokio::time::timeout(Duration::from_millis(100), &mut render).await;
        assert!(waited.is_err(), "rendered without a free worker");

        drop(busy);
        let derivative = render.await.unwrap();
        assert_eq!((derivative.width, derivative.height), (20, 10));
        assert_eq!(pool.running.available_permits(), 1);
    }

    /// With every worker and queue place taken, the next request is refused
    /// as overloaded at once, and admitted again once a place is free.
    #[tokio::test]
    async fn a_full_pool_refuses_at_once() {
        let pool =
            RenderPool::with_admission(1, 1, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let first = pool.admit(None).unwrap();
        let _second = pool.admit(None).unwrap();
        assert_eq!(pool.admitted(), 2);
        assert_eq!(metric("imgmesh_render_queue_depth"), 2.0);

        let sources = RenderSources::original(test_images::jpeg(64, 64));
        let started = Instant::now();
        let refused = pool.render(sources, width(8)).await.unwrap_err();
        // No wait at all: generous only for a loaded test machine.
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(
            refused,
            RenderError::Overloaded {
                reason: "render queue full"
            }
        ));
        assert_eq!(refused.code(), imgmesh_errors::ErrorCode::Overloaded);
        assert_eq!(
            metric(r#"imgmesh_render_shed_total{reason="queue_full"}"#),
            1.0
        );

        drop(first);
        assert!(pool.admit(None).is_ok());
    }

    /// Renders that ran stretched lower the admission limit: past it a
    /// request is refused at once as overloaded (reason `limit`) with free
    /// places left; renders at speed raise it back to every place; the
    /// gauges follow and nothing stays admitted.
    #[tokio::test]
    async fn the_adaptive_limit_sheds_at_once_and_grows_back() {
        let pool =
            RenderPool::with_admission(2, 2, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default())
                .with_stretch_tolerance(1.5);
        assert_eq!(pool.admission_limit(), 4);
        for _ in 0..40 {
            let limit = pool.limit.sample(3.0);
            METRICS.render_admission(limit, pool.limit.stretch());
        }
        assert_eq!(pool.admission_limit(), 1, "down to one render");
        assert_eq!(metric("imgmesh_render_admission_limit"), 1.0);

        let first = pool.admit(None).unwrap();
        let started = Instant::now();
        let refused = pool.admit(None).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(200));
        assert!(
            matches!(
                refused,
                RenderError::Overloaded {
                    reason: "render admission limit reached"
                }
            ),
            "{refused:?}"
        );
        assert_eq!(refused.code(), imgmesh_errors::ErrorCode::Overloaded);
        assert!(pool.check_room().is_err(), "the lease check refuses too");
        assert_eq!(metric(r#"imgmesh_render_shed_total{reason="limit"}"#), 2.0);
        assert_eq!(pool.admitted(), 1, "three places were free");
        drop(first);
        assert_eq!(metric("imgmesh_render_queue_depth"), 0.0);

        for _ in 0..40 {
            pool.limit.sample(1.0);
        }
        assert_eq!(pool.admission_limit(), 4);
        let all: Vec<_> = (0..4).map(|_| pool.admit(None).unwrap()).collect();
        assert!(matches!(
            pool.admit(None).unwrap_err(),
            RenderError::Overloaded {
                reason: "render queue full"
            }
        ));
        drop(all);
        assert_eq!(pool.admitted(), 0);
    }

    /// A finished render feeds its stretch to the limit (on Linux, where
    /// the kernel keeps schedstat): the smoothed stretch is a real reading.
    #[tokio::test]
    async fn a_render_samples_its_stretch() {
        let pool = RenderPool::new(1, RenderLimits::default());
        pool.render(
            RenderSources::original(test_images::jpeg(300, 200)),
            width(100),
        )
        .await
        .unwrap();
        if process_cpu_and_wait().is_some() {
            assert!(metric("imgmesh_render_stretch") >= 1.0);
        }
        assert!(pool.limit.stretch() >= 1.0);
    }

    /// A render that does not fit the memory left is refused as overloaded;
    /// one larger than the whole budget is too large; memory comes back.
    #[tokio::test]
    async fn memory_budget_refuses_what_does_not_fit() {
        let original = test_images::jpeg(400, 300);
        let plan = width(400);
        let estimated = estimate_render_bytes(
            &RenderSources::original(original.clone()),
            &plan,
            &RenderLimits::default(),
        )
        .unwrap();
        assert!(
            estimated >= 400 * 300 * 3,
            "at least the decoded pixels: {estimated}"
        );

        let pool =
            RenderPool::with_admission(1, 4, estimated + estimated / 2, RenderLimits::default());
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let waiting = pool.render(RenderSources::original(original.clone()), plan.clone());
        let mut waiting = std::pin::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        assert_eq!(pool.reserved_bytes(), estimated);
        assert_eq!(metric("imgmesh_render_admitted_bytes"), estimated as f64);

        let refused = pool
            .render(RenderSources::original(original.clone()), plan.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                RenderError::Overloaded {
                    reason: "render memory budget spent"
                }
            ),
            "{refused:?}"
        );
        assert_eq!(metric(r#"imgmesh_render_shed_total{reason="memory"}"#), 1.0);

        drop(busy);
        waiting.await.unwrap();
        assert_eq!(pool.reserved_bytes(), 0);

        let tiny = RenderPool::with_admission(1, 1, estimated / 2, RenderLimits::default());
        let too_large = tiny
            .render(RenderSources::original(original), plan)
            .await
            .unwrap_err();
        assert!(
            matches!(too_large, RenderError::DecodeTooLarge { .. }),
            "{too_large:?}"
        );
        assert_eq!(too_large.code(), imgmesh_errors::ErrorCode::InputTooLarge);
    }

    /// A render that does not fit the running memory left waits on its
    /// worker (it is not refused) until the running renders give it back,
    /// and a render larger than the whole running memory runs alone.
    #[tokio::test]
    async fn running_memory_makes_large_renders_take_turns() {
        let original = test_images::jpeg(400, 300);
        let plan = width(400);
        let estimated = estimate_render_bytes(
            &RenderSources::original(original.clone()),
            &plan,
            &RenderLimits::default(),
        )
        .unwrap();
        let pool =
            RenderPool::with_admission(2, 2, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default())
                .with_running_memory(estimated + estimated / 2);
        // What a running render of the same original holds.
        let running = Arc::clone(&pool.running_memory)
            .acquire_many_owned(u32::try_from(estimated.div_ceil(1024)).unwrap())
            .await
            .unwrap();
        let waiting = pool.render(RenderSources::original(original.clone()), plan.clone());
        let mut waiting = std::pin::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut waiting)
                .await
                .is_err(),
            "rendered beside a render holding most of the running memory"
        );
        assert_eq!(pool.in_flight(), 1, "it waits on its worker");
        drop(running);
        let derivative = waiting.await.unwrap();
        assert_eq!(derivative.width, 400);
        assert_eq!(
            pool.running_memory.available_permits() as u64,
            pool.running_memory() / 1024
        );

        let small = RenderPool::new(1, RenderLimits::default()).with_running_memory(estimated / 4);
        let alone = small
            .render(RenderSources::original(original), plan)
            .await
            .unwrap();
        assert_eq!(alone.width, 400);
    }

    /// A spent deadline is refused before admission; a deadline that comes
    /// within [`MIN_REMAINING`] while waiting for a worker ends the wait
    /// with the timeout code.
    #[tokio::test]
    async fn deadlines_bound_the_wait() {
        let pool = RenderPool::new(1, RenderLimits::default());
        let spent = pool.admit(Some(Instant::now())).unwrap_err();
        assert!(matches!(spent, RenderError::DeadlineExceeded));

        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let admission = pool.admit(None).unwrap();
        let started = Instant::now();
        let wait = Duration::from_millis(100);
        let error = pool
            .render_admitted(
                admission,
                RenderSources::original(test_images::jpeg(64, 64)),
                Arc::new(width(8)),
                Some(Instant::now() + MIN_REMAINING + wait),
                std::future::pending(),
            )
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= wait && waited < Duration::from_secs(1),
            "waited {waited:?}"
        );
        assert!(matches!(error, RenderError::DeadlineExceeded), "{error:?}");
        assert_eq!(error.code(), imgmesh_errors::ErrorCode::OriginTimeout);
        assert_eq!(
            metric(r#"imgmesh_render_shed_total{reason="deadline"}"#),
            2.0
        );
        assert_eq!((pool.admitted(), pool.reserved_bytes()), (0, 0));
        drop(busy);
    }

    /// A request with less than [`MIN_REMAINING`] left is refused before it
    /// fetches anything; one with a little more is admitted.
    #[tokio::test]
    async fn nearly_spent_deadlines_are_not_admitted() {
        let pool = RenderPool::new(1, RenderLimits::default());
        let nearly = Instant::now() + MIN_REMAINING / 2;
        let refused = pool.admit(Some(nearly)).unwrap_err();
        assert!(
            matches!(refused, RenderError::DeadlineExceeded),
            "{refused:?}"
        );
        assert_eq!(refused.code(), imgmesh_errors::ErrorCode::OriginTimeout);
        assert_eq!(
            metric(r#"imgmesh_render_shed_total{reason="deadline"}"#),
            1.0
        );
        assert_eq!(pool.admitted(), 0);

        let enough = Instant::now() + MIN_REMAINING + Duration::from_secs(1);
        let _admitted = pool.admit(Some(enough)).unwrap();
        assert_eq!(pool.admitted(), 1);
    }

    /// After renders (done, refused and timed out) every slot, worker and
    /// byte is back, and the gauges read zero.
    #[tokio::test]
    async fn permits_and_gauges_return_to_zero() {
        let pool =
            RenderPool::with_admission(1, 1, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let renders = (0..6).map(|n| {
            pool.render(
                RenderSources::original(test_images::jpeg(300, 200)),
                width(30 + n),
            )
        });
        let outcomes = futures::future::join_all(renders).await;
        let done = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert!(done >= 2, "a worker and a queue place: {outcomes:?}");
        assert!(outcomes.iter().all(|outcome| match outcome {
            Ok(_) => true,
            Err(error) => matches!(error, RenderError::Overloaded { .. }),
        }));

        assert_eq!(
            (pool.admitted(), pool.in_flight(), pool.reserved_bytes()),
            (0, 0, 0)
        );
        for gauge in [
            "imgmesh_render_queue_depth",
            "imgmesh_renders_in_flight",
            "imgmesh_render_admitted_bytes",
        ] {
            assert_eq!(metric(gauge), 0.0, "{gauge}");
        }
        assert!(metric("imgmesh_render_queue_wait_seconds_count") >= 2.0);
    }

    /// A shared run whose every caller left while it waited for a worker
    /// gives its place back without ever starting the render.
    #[tokio::test]
    async fn a_dropped_callers_queued_work_never_starts() {
        let pool = RenderPool::new(1, RenderLimits::default());
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let flights = crate::service::single_flight::SingleFlight::<()>::new();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
        let caller = flights.run("k", |abandoned| {
            let pool = pool.clone();
            async move {
                let admission = pool.admit(None)?;
                let outcome = pool
                    .render_admitted(
                        admission,
                        RenderSources::original(test_images::jpeg(64, 64)),
                        Arc::new(width(8)),
                        None,
                        abandoned.wait(),
                    )
                    .await;
                let _ = ended_tx.send(outcome.map(drop));
                Ok(())
            }
        });
        let left = tokio::time::timeout(Duration::from_millis(50), caller).await;
        assert!(left.is_err(), "the caller left while the run waited");

        let outcome = tokio::time::timeout(Duration::from_secs(5), ended_rx)
            .await
            .expect("the abandoned run ended")
            .unwrap();
        assert!(
            matches!(outcome, Err(RenderError::Abandoned)),
            "{outcome:?}"
        );
        eventually("the slot is back", || pool.admitted() == 0).await;
        assert_eq!(metric("imgmesh_renders_in_flight"), 0.0);
        assert_eq!(metric("imgmesh_render_queue_wait_seconds_count"), 0.0);
        assert_eq!(
            pool.running.available_permits(),
            0,
            "only the test's worker was taken"
        );
        drop(busy);
    }
}
