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
//! 6. **Batches** (with `--render-batch-max` above 1; off by default
//!    until measured on W1). A render that can share a decode (a whole
//!    upright original resized, one frame, no overlays)
//!    waits for its worker where the renders of the same original can see
//!    it ([`RenderPool::render_batched`]). The first of them to get a
//!    worker leads a batch: it takes every other render of the same key
//!    and bytes still waiting (up to `--render-batch-max`, each only if its
//!    share of the running memory is free now) and renders them all from
//!    one decode at the scale its largest needs, each smaller width
//!    resized from a larger one ([`render_batch`], a cascade): the decode
//!    on its worker, the derivatives on its worker and on every worker
//!    free once the decode is done (each freed as soon as it has nothing
//!    left to make), so a batch does not leave the other cores idle. A
//!    render taken into a batch stops waiting for a worker of its own (it
//!    would take the next free worker and hold it idle until its batch
//!    answers: before, W6's batches ran one at a time on one core). A
//!    render announced before its fetch ([`RenderPool::announce`]) is
//!    waited for, up to [`BATCH_WINDOW`], so the widths of a srcset that
//!    arrive together batch even when a worker is free for the first.
//!    Every render keeps its own place, memory reservation, deadline and
//!    answer: a render whose caller leaves while it waits is withdrawn
//!    (the batch goes on without it; taken already, it is not encoded),
//!    one whose deadline comes before its batch starts is refused as
//!    before, and each taken render's place and reservation are held
//!    until the batch ends. The batch holds from the running memory its
//!    largest render's estimate and 4 bytes a pixel of every derivative it
//!    keeps meanwhile. While a leader gathers, a render of its original
//!    waits to be taken instead of taking a free worker of its own; while
//!    its batch runs, one waits for it to end and then leads (or joins)
//!    the next batch of that original with every other render of it that
//!    came too late meanwhile, instead of decoding it on its own beside
//!    the batch (before, W6's larger widths, sent as the batch of their
//!    page's smaller ones answered, led batches beside it: 55–67 of its
//!    200 renders were counted as `running`). A render that leads a batch
//!    of an original whose previous batch ended less than
//!    [`BATCH_LINGER`] ago waits that long for more renders of it,
//!    announced or not: the callers that batch answered may be sending
//!    the page's next widths.
//!    `imgmesh_render_batches_total` counts batches,
//!    `imgmesh_render_batched_total` the derivatives made from another's
//!    decode, `imgmesh_render_batch_refused_total{reason}` the renders of
//!    an original left out of its batch, by reason (module `batch`).
//!
//! 7. **Adaptive limit** (with `--render-stretch-tolerance`; off by
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

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::config::{
    DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_RUNNING_MEMORY_PER_WORKER, DEFAULT_STRETCH_TOLERANCE,
};
use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::estimate::estimate_render_bytes;
use crate::pipeline::libvips;
use crate::pipeline::render_set::{Helpers, SharedOriginal, may_share_a_decode, render_batch_each};
use crate::pipeline::{
    Derivative, Intermediates, RenderLimits, RenderSources, ResolvedPlan, render_reusing,
    render_set,
};
use crate::service::admission_limit::{AdaptiveLimit, process_cpu_and_wait, stretch_between};

mod batch;

pub use batch::Incoming;
use batch::{Batches, Claim, Leading, Waiting};

/// How long a render that got a worker waits at most for renders of the
/// same original that are still being fetched to join its batch: 20 ms,
/// a fetch of an original the fetcher holds, and little beside a render's
/// 50 to 150 ms.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// How long a render that got a worker waits for more renders of its
/// original when a batch of that original ended less than this ago: 50 ms.
/// The callers that batch answered may be sending more widths of the same
/// page: W6 sends a page's widths in order over 6 connections, each answer
/// frees a connection for the next width, and (traced) a batch's members
/// reached the renderer a median 70 ms (p90 ~250 ms) after the batch
/// before theirs started, so without the wait each follow-up batch held
/// the one to three that had arrived. W6 (scripts/bench.sh w6, 2 cores at
/// load 4.5–6, 2026-12-08): decodes 92–98 of 200 without it, 79 with 50 ms
/// and 66 with 100 ms (01:10–01:15 UTC), but 100 ms idled workers long
/// enough to lose wall time (×1.38 of independent against ×1.51); at
/// 50 ms, 3 repetitions each (01:18–01:25 UTC): 76–77 decodes, batched
/// ×1.56 time and ×1.51 CPU of independent, against 89–93, ×1.47 and ×1.38
/// with neither this nor waiting for a running batch (a temporary build
/// emulating the rules before). A leader waits the whole linger (its
/// worker idle): nothing tells it that no more are coming.
pub const BATCH_LINGER: Duration = Duration::from_millis(50);

/// The most renders in one batch by default: a srcset's widths.
pub const DEFAULT_BATCH_MAX: usize = 16;

/// The least time a request must have left before its deadline for its
/// work to start: 50 ms. Less cannot fetch an original, render it and send
/// it back (a cached original and a small render already take tens of
/// milliseconds), so such a request is refused with the timeout code at
/// admission, and a queued one stops waiting for a worker this long before
/// its deadline, instead of doing work whose answer nobody will receive.
pub const MIN_REMAINING: Duration = Duration::from_millis(50);

/// The niceness libvips work runs at by default (its threads inherit it
/// from the blocking thread that starts them; `--render-nice`,
/// [`RenderPool::with_render_nice`]): 0, the same as every other thread.
/// It was 10, so that the async threads answering refusals and health
/// checks ran at once while renders filled the cores; but on a machine
/// shared with other processes (a gateway answering a storm of refusals
/// on the same cores) renders at 10 got only what those left, and W4's
/// admitted renders took twice their unloaded time on a worker. At 0, two
/// quiet W4 runs gave admitted p99 ×2.39 and ×2.27 of unloaded against
/// ×4.4–5.2 at 10, 40 % more renders, the same shed p99 (8.5 ms), and W1
/// the same (docs/benchmarks.md, section w4-admission).
pub const RENDER_NICE: i32 = 0;

/// The estimate from which a render first hands the heap's free pages back
/// to the kernel ([`libvips::release_free_memory`]): 32 MiB. Such a render's
/// large buffers (a progressive JPEG's coefficient buffer) are mapped
/// outside the heap, so what the heap holds free when it starts only adds
/// to the peak it makes; smaller renders skip it, since the next render
/// would fault the same pages in again.
pub const TRIM_BEFORE_BYTES: u64 = 32 * 1024 * 1024;

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
    /// Renders waiting for a worker that a batch may take, if batching is
    /// on ([`RenderPool::with_batching`]).
    batches: Option<Arc<Batches>>,
    /// How many of the places may be taken now ([`AdaptiveLimit`]).
    limit: Arc<AdaptiveLimit>,
    /// The niceness render threads run at (0–19).
    nice: i32,
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
    /// Whether it runs in another render's batch, on that render's worker
    /// (whose busy time that render counts).
    joined: bool,
    /// Whether it starts at once or not at all ([`RenderPool::admit_to_start`]):
    /// refused, instead of waiting, when its worker or running memory is not
    /// free by the time its original is fetched.
    start_now: bool,
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
    /// (48 MiB per worker).
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
            batches: Some(Arc::new(Batches::new(
                DEFAULT_BATCH_MAX,
                BATCH_WINDOW,
                BATCH_LINGER,
            ))),
            limit: Arc::new(adaptive_limit(
                workers + queue_depth,
                DEFAULT_STRETCH_TOLERANCE,
            )),
            nice: RENDER_NICE,
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

    /// The same pool running its renders at niceness `nice` (clamped to
    /// 0–19: a process may lower its threads' priority, not raise it).
    pub fn with_render_nice(mut self, nice: i32) -> RenderPool {
        self.nice = nice.clamp(0, 19);
        self
    }

    /// The niceness renders run at.
    pub fn render_nice(&self) -> i32 {
        self.nice
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

    /// The same pool running the renders of one original that wait for a
    /// worker together as one batch of at most `max` renders, with one
    /// decode (see the module docs, step 6), a render that gets a worker
    /// waiting up to `window` for announced renders of its original (and
    /// [`BATCH_LINGER`] for any, when a batch of it has just ended); `max`
    /// 1 turns batching off (every render decodes on its own). On by
    /// default, with [`DEFAULT_BATCH_MAX`] and [`BATCH_WINDOW`].
    pub fn with_batching(mut self, max: usize, window: Duration) -> RenderPool {
        self.batches = (max > 1).then(|| Arc::new(Batches::new(max, window, BATCH_LINGER)));
        self
    }

    /// The same pool with batches whose leaders wait `linger` (instead of
    /// [`BATCH_LINGER`]) for more renders of an original whose batch has
    /// just ended.
    #[cfg(test)]
    fn with_batch_linger(mut self, linger: Duration) -> RenderPool {
        if let Some(batches) = &self.batches {
            let (max, window) = (batches.max(), batches.window());
            self.batches = Some(Arc::new(Batches::new(max, window, linger)));
        }
        self
    }

    /// The most renders in one batch (1: batching is off).
    pub fn batch_max(&self) -> usize {
        self.batches.as_ref().map_or(1, |batches| batches.max())
    }

    /// Renders waiting for a worker where a batch may take them.
    pub fn batch_waiting(&self) -> usize {
        self.batches.as_ref().map_or(0, |batches| batches.waiting())
    }

    /// Announces a render of the original `key` names before it is
    /// fetched, so that a render of the same original that gets a worker
    /// meanwhile waits for it (up to [`BATCH_WINDOW`]) to join its batch:
    /// `None` when batching is off or `plan` cannot share a decode. Pass
    /// it to [`RenderPool::render_batched`].
    pub fn announce(&self, key: &str, plan: &ResolvedPlan) -> Option<Incoming> {
        let batches = self.batches.as_ref()?;
        may_share_a_decode(plan).then(|| batches.announce(key))
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
        self.admit_as(deadline, false)
    }

    /// Takes a place for one render that is to start at once or not at
    /// all: as [`RenderPool::admit`], but refused as overloaded while every
    /// worker has a render admitted already (fetching or running), and,
    /// once its original is fetched, refused instead of waiting when its
    /// worker or its running memory is not free. For a caller whose clients
    /// resend a refused request at once (the gateway marks such renders):
    /// a render that waits in the queue only makes the admitted ones wait,
    /// while its refusal costs the client nothing it would not resend.
    pub fn admit_to_start(&self, deadline: Option<Instant>) -> Result<Admission, RenderError> {
        self.admit_as(deadline, true)
    }

    /// [`RenderPool::admit`], or [`RenderPool::admit_to_start`] with
    /// `start_now`.
    fn admit_as(
        &self,
        deadline: Option<Instant>,
        start_now: bool,
    ) -> Result<Admission, RenderError> {
        if deadline.is_some_and(too_close) {
            METRICS.render_shed("deadline");
            return Err(RenderError::DeadlineExceeded);
        }
        self.check_limit()?;
        if start_now {
            self.check_free_worker()?;
        }
        let slot = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_full| {
                METRICS.render_shed("queue_full");
                self.limit.refused_full(Instant::now());
                RenderError::Overloaded {
                    reason: "render queue full",
                }
            })?;
        METRICS.render_queued(1);
        Ok(Admission {
            _slot: slot,
            admitted_at: Instant::now(),
            started_at: None,
            joined: false,
            start_now,
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
            self.limit.refused_full(Instant::now());
            return Err(RenderError::Overloaded {
                reason: "render queue full",
            });
        }
        Ok(())
    }

    /// [`RenderPool::check_room`] for a render that is to start at once
    /// ([`RenderPool::admit_to_start`]): also refused while every worker
    /// has a render admitted already.
    pub fn check_room_to_start(&self) -> Result<(), RenderError> {
        self.check_room()?;
        self.check_free_worker()
    }

    /// Refuses at once, as overloaded, when every worker has a render
    /// admitted already (fetching, waiting or running): one more could not
    /// start when its original is in.
    fn check_free_worker(&self) -> Result<(), RenderError> {
        if self.admitted() >= self.workers {
            METRICS.render_shed("overload");
            return Err(RenderError::Overloaded {
                reason: "no render worker free",
            });
        }
        Ok(())
    }

    /// Refuses at once when the adaptive limit, lowered below the pool's
    /// places, is admitted already (at the places themselves the slots
    /// refuse, as a full queue), and, while an overload closes the queue
    /// ([`AdaptiveLimit::queue_closed`]), when no worker is free for one
    /// more.
    fn check_limit(&self) -> Result<(), RenderError> {
        self.check_limit_at(Instant::now())
    }

    /// [`RenderPool::check_limit`] at `now`.
    fn check_limit_at(&self, now: Instant) -> Result<(), RenderError> {
        let limit = self.limit.limit();
        let admitted = self.admitted();
        if limit < self.workers + self.queue_depth && admitted >= limit {
            METRICS.render_shed("limit");
            return Err(RenderError::Overloaded {
                reason: "render admission limit reached",
            });
        }
        if self.queue_depth > 0 && admitted >= self.workers && self.limit.queue_closed(now) {
            METRICS.render_shed("overload");
            return Err(RenderError::Overloaded {
                reason: "render queue closed by overload",
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
            sources.lend(|input| render_reusing(input, &plan, &limits, intermediates.as_deref()))
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

    /// Renders `sources` with `plan` as [`RenderPool::render_admitted`]
    /// does, in a batch with the other renders of the same original (`key`:
    /// its Source, version, path and generation) that wait for a worker at
    /// the same time (see the module docs, step 6). `incoming` is the
    /// render's announcement, if it was announced
    /// ([`RenderPool::announce`]): withdrawn once the render waits. A
    /// render that cannot share a decode, or any render while batching is
    /// off, renders on its own.
    #[allow(clippy::too_many_arguments)]
    pub async fn render_batched(
        &self,
        admission: Admission,
        sources: RenderSources,
        plan: Arc<ResolvedPlan>,
        deadline: Option<Instant>,
        gone: impl Future<Output = ()>,
        key: &str,
        incoming: Option<Incoming>,
    ) -> Result<Derivative, RenderError> {
        let batches = match &self.batches {
            Some(batches)
                if !admission.start_now
                    && sources.watermark.is_none()
                    && sources.blend.is_none()
                    && may_share_a_decode(&plan) =>
            {
                batches
            }
            _ => {
                drop(incoming);
                return self
                    .render_admitted(admission, sources, plan, deadline, gone)
                    .await;
            }
        };
        let estimated = estimate_render_bytes(&sources, &plan, &self.limits)?;
        let reservation = self.reserve(estimated)?;
        let (answer, mut answered) = oneshot::channel();
        let (taken, mut was_taken) = oneshot::channel();
        let id = batches.wait(Waiting {
            id: 0,
            key: key.into(),
            original: sources.original,
            plan,
            estimated,
            deadline,
            answer,
            _taken: taken,
            admission,
            reservation,
        });
        drop(incoming);
        let mut gone = std::pin::pin!(gone);
        let mut deadline_passed = std::pin::pin!(last_start(deadline));
        /// How this render's wait ended.
        enum Turn {
            Answered(Result<Result<Derivative, RenderError>, oneshot::error::RecvError>),
            Taken,
            Worker(OwnedSemaphorePermit),
            Deadline,
            Gone,
        }
        let (me, worker, leading) = loop {
            // Not while a render of its original leads a batch: a gathering
            // leader takes it, and after a running one it leads (or joins)
            // the next batch with the others that came too late for it.
            let worker = async {
                batches.until_no_leader(key).await;
                Arc::clone(&self.running).acquire_owned().await
            };
            let turn = tokio::select! {
                biased;
                answer = &mut answered => Turn::Answered(answer),
                _ = &mut was_taken => Turn::Taken,
                worker = worker => Turn::Worker(worker.map_err(|_closed| RenderError::Internal {
                    context: "waiting for a render worker",
                })?),
                () = deadline_passed.as_mut() => Turn::Deadline,
                () = gone.as_mut() => Turn::Gone,
            };
            match turn {
                Turn::Answered(answer) => return batch_answer(answer),
                // Taken into a batch, which answers: no worker of its own
                // (the acquire is dropped here), and a caller that leaves is
                // not encoded for.
                Turn::Taken => {
                    return tokio::select! {
                        answer = answered => batch_answer(answer),
                        () = gone.as_mut() => Err(RenderError::Abandoned),
                    };
                }
                Turn::Worker(worker) => match batches.claim(id) {
                    Claim::Lead(me, leading) => break (*me, worker, leading),
                    // Taken into a batch just now: it answers; the worker
                    // is free for others meanwhile.
                    Claim::Taken => {
                        drop(worker);
                        return batch_answer(answered.await);
                    }
                    // Another render of its original got a worker at the
                    // same time and leads: this one waits on (the worker
                    // is free for others).
                    Claim::Behind => drop(worker),
                },
                Turn::Deadline => {
                    if batches.withdraw(id).is_none() {
                        // Its batch has started: like a running render, it
                        // ends.
                        return batch_answer(answered.await);
                    }
                    METRICS.render_shed("deadline");
                    return Err(RenderError::DeadlineExceeded);
                }
                // Withdrawn, or left for its batch to skip (the answer's
                // receiver is gone).
                Turn::Gone => {
                    batches.withdraw(id);
                    return Err(RenderError::Abandoned);
                }
            }
        };
        self.lead(batches, (me, worker, leading), deadline, gone)
            .await
    }

    /// Runs the batch `leader` leads on `worker`: its own running memory
    /// first (as a render on its own), then the renders of its original
    /// that wait (each with its share of the running memory), all on one
    /// blocking run with one decode.
    async fn lead(
        &self,
        batches: &Arc<Batches>,
        (leader, worker, leading): (Waiting, OwnedSemaphorePermit, Leading),
        deadline: Option<Instant>,
        gone: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Derivative, RenderError> {
        let Waiting {
            key,
            original,
            plan,
            estimated,
            mut admission,
            reservation,
            ..
        } = leader;
        let kib = self.running_kib(estimated);
        if let Some(intermediates) = &self.intermediates {
            intermediates.make_room(kib);
        }
        let mut running_memory = start_within(
            Arc::clone(&self.running_memory).acquire_many_owned(kib),
            deadline,
            gone,
            std::future::pending(),
        )
        .await?;
        // Whether the others can share this one's decode, and at what size,
        // needs the original's header: read once, and only when others of
        // it wait or are being fetched.
        let linger = batches.followed(&key);
        let company = linger || batches.has_company(&key);
        let shared = company
            .then(|| SharedOriginal::read(&original, &self.limits))
            .flatten();
        let own_size = shared.as_ref().and_then(|shared| shared.resize(&plan));
        // The batch's running memory (KiB), and whether some of it was not
        // free when its follower joined.
        let (mut held, mut short) = (kib, false);
        let followers = match (&shared, own_size) {
            (Some(shared), Some(own_size)) => {
                // The batch's peak: its largest render's, and 4 bytes a
                // pixel of every derivative it keeps in memory meanwhile
                // (at most the whole running memory: a larger batch runs
                // alone, as a larger render does).
                let (mut largest, mut kept) = (estimated, kept_bytes(own_size));
                let most = self.running_memory_kib;
                let running = Arc::clone(&self.running_memory);
                let window = if linger {
                    batches.linger()
                } else {
                    batches.window()
                };
                let window = deadline.map_or(window, |deadline| {
                    window.min(deadline.saturating_duration_since(Instant::now()) / 2)
                });
                batches
                    .gather(
                        &key,
                        &original,
                        Instant::now() + window,
                        linger,
                        |waiting| {
                            let size = shared.resize(&waiting.plan)?;
                            let need = largest
                                .max(waiting.estimated)
                                .saturating_add(kept)
                                .saturating_add(kept_bytes(size));
                            let more = running_kib_of(need, most).saturating_sub(held);
                            // Taken even when its share is not free now: left
                            // out, it would take a worker of its own and wait
                            // there for running memory (holding what is freed
                            // meanwhile), then decode the original again.
                            let memory = Arc::clone(&running).try_acquire_many_owned(more).ok();
                            short |= memory.is_none();
                            largest = largest.max(waiting.estimated);
                            kept = kept.saturating_add(kept_bytes(size));
                            held += more;
                            Some(memory)
                        },
                    )
                    .await
            }
            _ => Vec::new(),
        };
        // From here, a render of its original that starts waiting waits
        // for the next batch.
        leading.runs();
        let mut followers = followers;
        if short {
            // Not all of the batch's running memory was free: it gives
            // back what it holds and waits for the whole of it at once (a
            // render that waited holding a part could keep another that
            // holds the rest from ever getting its own). Its followers are
            // taken, so it waits whatever its own caller does: the running
            // renders it waits for end within their time limit.
            for (_, memory) in &mut followers {
                *memory = None;
            }
            drop(running_memory);
            METRICS.render_batch_waited_for_memory();
            if let Some(intermediates) = &self.intermediates {
                intermediates.make_room(held);
            }
            running_memory = Arc::clone(&self.running_memory)
                .acquire_many_owned(held)
                .await
                .map_err(|_closed| RenderError::Internal {
                    context: "waiting for a batch's running memory",
                })?;
        }
        admission.start();
        // Each follower's answer and place, handed back as soon as its
        // derivative is made; its reservation and running memory, held
        // until the batch ends (its derivative may be a smaller one's
        // source until then).
        let mut joined = Vec::with_capacity(followers.len());
        let mut joined_memory = Vec::with_capacity(followers.len());
        for (follower, memory) in followers {
            let Waiting {
                plan,
                answer,
                mut admission,
                reservation,
                ..
            } = follower;
            admission.join();
            joined.push((plan, Mutex::new(Some((answer, admission)))));
            joined_memory.push((reservation, memory));
        }
        if !joined.is_empty() {
            METRICS.render_batch();
        }
        // Workers free after its decode (no render waits for them) help
        // make the batch's derivatives, each freed as soon as its thread
        // has nothing left.
        let workers = Arc::clone(&self.running);
        let helpers = move || {
            let worker = Arc::clone(&workers).try_acquire_owned().ok()?;
            Some(Box::new(worker) as Box<dyn Send>)
        };
        let limits = self.limits;
        // Its lead ends first: the renders of its original that waited
        // for it may take the worker it frees next.
        let held = (leading, worker, running_memory, reservation, admission);
        self.run_on_worker(held, estimated, move || {
            // A render alone (W1) renders as without batching.
            let own = if joined.is_empty() {
                RenderSources::original(original)
                    .lend(|input| render_reusing(input, &plan, &limits, None))
            } else {
                render_joined(&original, &plan, &joined, &limits, &helpers)
            };
            drop(joined_memory);
            own
        })
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
        let reservation = self.reserve(estimated)?;
        let worker = Arc::clone(&self.running).acquire_owned();
        let running_memory = Arc::clone(&self.running_memory);
        let kib = self.running_kib(estimated);
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
        let overload = refuse_unless_free(admission.start_now, &self.limit);
        let (worker, running_memory) = start_within(started, deadline, gone, overload).await?;
        admission.start();
        let held = (worker, running_memory, reservation, admission);
        self.run_on_worker(held, estimated, work).await
    }

    /// Reserves `estimated` bytes of the memory budget: refused as too
    /// large past the whole budget, as overloaded past what is left.
    fn reserve(&self, estimated: u64) -> Result<MemoryReservation, RenderError> {
        if estimated > self.memory.total {
            return Err(RenderError::DecodeTooLarge {
                estimated,
                budget: self.memory.total,
            });
        }
        MemoryBudget::try_reserve(&self.memory, estimated).ok_or_else(|| {
            METRICS.render_shed("memory");
            RenderError::MemorySpent
        })
    }

    /// The running memory a render of `estimated` bytes takes, in KiB
    /// (at most the whole: a larger render runs alone).
    fn running_kib(&self, estimated: u64) -> u32 {
        running_kib_of(estimated, self.running_memory_kib)
    }

    /// Runs `work` on a blocking thread, holding `held` (its worker,
    /// memory and place) until libvips is done, whether or not anyone
    /// awaits the outcome; the heap trimmed first when it is estimated at
    /// [`TRIM_BEFORE_BYTES`] or more.
    async fn run_on_worker<T: Send + 'static, H: Send + 'static>(
        &self,
        held: H,
        estimated: u64,
        work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
    ) -> Result<T, RenderError> {
        // The blocking thread has neither the caller's span nor (with a
        // scoped subscriber) its dispatcher: carry both over.
        let parent = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        let slots = Arc::clone(&self.slots);
        let capacity = self.workers + self.queue_depth;
        let limit = Arc::clone(&self.limit);
        let nice = self.nice;
        tokio::task::spawn_blocking(move || {
            // Released when libvips is done, whether or not anyone awaits.
            let held = held;
            imgmesh_runtime::lower_thread_priority(nice);
            if estimated >= TRIM_BEFORE_BYTES {
                libvips::release_free_memory();
            }
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

    /// The render runs in another render's batch: it leaves the queue, on
    /// that render's worker.
    fn join(&mut self) {
        self.start();
        self.joined = true;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(started_at) = self.started_at {
            METRICS.render_running(-1);
            if !self.joined {
                METRICS.worker_busy(started_at.elapsed());
            }
        } else {
            METRICS.render_queued(-1);
        }
    }
}

// === impl MemoryBudget ===

impl MemoryBudget {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        imgmesh_runtime::lock(&self.reserved)
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

/// `estimated` bytes in KiB of running memory, at most `most`.
fn running_kib_of(estimated: u64, most: u32) -> u32 {
    estimated.div_ceil(1024).min(u64::from(most)) as u32
}

/// A batch's renders, taken followers included: the leader's `plan`
/// (index 0) and each of `joined` from `original` on this thread
/// ([`render_batch_each`]), with `helpers`' threads beside this one after
/// the decode, each follower answered as soon as its derivative is made;
/// the leader's own outcome.
fn render_joined(
    original: &[u8],
    plan: &Arc<ResolvedPlan>,
    joined: &[(Arc<ResolvedPlan>, Mutex<Option<Follower>>)],
    limits: &RenderLimits,
    helpers: Helpers<'_>,
) -> Result<Derivative, RenderError> {
    let plans: Vec<_> = std::iter::once(Arc::clone(plan))
        .chain(joined.iter().map(|(plan, _)| Arc::clone(plan)))
        .collect();
    // Wanted while its caller still waits for the answer.
    let wanted = |index: usize| {
        index == 0
            || imgmesh_runtime::lock(&joined[index - 1].1)
                .as_ref()
                .is_some_and(|(answer, _)| !answer.is_closed())
    };
    let mut own = None;
    let mut deliver = |index: usize, outcome: Result<Derivative, RenderError>| {
        if index == 0 {
            own = Some(outcome);
        } else if let Some((answer, admission)) = imgmesh_runtime::lock(&joined[index - 1].1).take()
        {
            // The place first: the caller may answer, and its client ask
            // again, before this thread runs on after the send.
            drop(admission);
            let _ = answer.send(outcome);
        }
    };
    render_batch_each(original, &plans, limits, helpers, &wanted, &mut deliver);
    own.unwrap_or(Err(RenderError::Internal {
        context: "rendering a batch",
    }))
}

/// A follower's answer and place, until its derivative is made.
type Follower = (oneshot::Sender<Result<Derivative, RenderError>>, Admission);

/// Resolves when a render waiting for a worker must give up: when
/// `deadline` is [`MIN_REMAINING`] away; never without a deadline.
async fn last_start(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => {
            let last_start = deadline.checked_sub(MIN_REMAINING).unwrap_or(deadline);
            tokio::time::sleep_until(last_start.into()).await;
        }
        None => std::future::pending().await,
    }
}

/// What a derivative of `width × height` holds in memory in a batch: 4
/// bytes a pixel.
fn kept_bytes((width, height): (u32, u32)) -> u64 {
    u64::from(width) * u64::from(height) * 4
}

/// A batched render's outcome, as its batch sent it.
fn batch_answer(
    answer: Result<Result<Derivative, RenderError>, oneshot::error::RecvError>,
) -> Result<Derivative, RenderError> {
    answer.unwrap_or(Err(RenderError::Internal {
        context: "rendering a batch",
    }))
}

/// Waits for what a render needs to start (`started`: its worker, its
/// running memory) while the caller's `deadline` leaves time to start, the
/// caller is not `gone` and no `overload` says to refuse it instead (what
/// is free at once still starts: the select prefers it). What came free at
/// the last moment is still no reason to start work the caller cannot
/// receive.
async fn start_within<T>(
    started: impl Future<Output = Result<T, tokio::sync::AcquireError>>,
    deadline: Option<Instant>,
    gone: impl Future<Output = ()>,
    overload: impl Future<Output = ()>,
) -> Result<T, RenderError> {
    let started = tokio::select! {
        biased;
        started = started => started.map_err(|_closed| RenderError::Internal {
            context: "waiting for a render worker",
        })?,
        () = last_start(deadline) => {
            METRICS.render_shed("deadline");
            return Err(RenderError::DeadlineExceeded);
        }
        () = gone => return Err(RenderError::Abandoned),
        () = overload => {
            METRICS.render_shed("overload");
            return Err(RenderError::Overloaded {
                reason: "render could not start at once",
            });
        }
    };
    if deadline.is_some_and(too_close) {
        METRICS.render_shed("deadline");
        return Err(RenderError::DeadlineExceeded);
    }
    Ok(started)
}

/// Resolves at once for a render admitted to start now (`start_now`: it
/// is refused rather than wait for its worker or running memory) or one
/// that would wait while an overload has closed the queue, else when an
/// overload closes it ([`AdaptiveLimit::closes`]): a render queued then is
/// refused instead of waiting behind the ones ahead of it.
async fn refuse_unless_free(start_now: bool, limit: &AdaptiveLimit) {
    let mut closes = std::pin::pin!(limit.closes());
    closes.as_mut().enable();
    if !start_now && !limit.queue_closed(Instant::now()) {
        closes.await;
    }
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
        imgmesh_metrics::series_value(name).unwrap_or(0.0)
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
    /// as overloaded at once; a place freed right after takes only what a
    /// free worker can start (the overload closed the queue), and with the
    /// worker free it is admitted again.
    #[tokio::test]
    async fn a_full_pool_refuses_at_once() {
        let pool =
            RenderPool::with_admission(1, 1, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let first = pool.admit(None).unwrap();
        let second = pool.admit(None).unwrap();
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
        // The one admitted holds the one worker: the queue is closed.
        let full = pool.limit.last_full().expect("the refusal was noted");
        assert!(matches!(
            pool.check_limit_at(full),
            Err(RenderError::Overloaded {
                reason: "render queue closed by overload"
            })
        ));
        drop(second);
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
        assert!(matches!(refused, RenderError::MemorySpent), "{refused:?}");
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

    /// A render estimated at [`TRIM_BEFORE_BYTES`] or more trims the heap
    /// before it starts; a smaller one does not (each trims once more when
    /// the pool falls idle after it). Counted per process: nextest runs
    /// each test in its own.
    #[tokio::test]
    async fn large_renders_trim_the_heap_first() {
        let pool = RenderPool::new(1, RenderLimits::default());
        let trims = || libvips::HEAP_TRIMS.load(std::sync::atomic::Ordering::Relaxed);
        let limits = RenderLimits::default();
        for (side, trims_per_render) in [(64, 1), (2_500, 2)] {
            let sources = RenderSources::original(test_images::jpeg(side, side));
            let estimated = estimate_render_bytes(&sources, &width(side), &limits).unwrap();
            assert_eq!(estimated >= TRIM_BEFORE_BYTES, side > 64, "{estimated}");
            let before = trims();
            pool.render(sources, width(side)).await.unwrap();
            assert_eq!(trims() - before, trims_per_render, "{side} × {side}");
        }
    }

    /// Renders run at the pool's niceness (0 by default, `--render-nice`
    /// otherwise), read back from the kernel on the render's own thread;
    /// what no process may ask for is clamped to 0–19.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn renders_run_at_the_pools_niceness() {
        fn own_nice() -> Result<i32, RenderError> {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // Field 19 is the niceness; fields count from 3 after the
            // command name's closing parenthesis.
            let after_name = &stat[stat.rfind(')').unwrap() + 1..];
            Ok(after_name
                .split_whitespace()
                .nth(16)
                .unwrap()
                .parse()
                .unwrap())
        }
        let pool = RenderPool::new(1, RenderLimits::default());
        assert_eq!(pool.render_nice(), RENDER_NICE);
        let lowered = pool.clone().with_render_nice(7);
        assert_eq!(lowered.run_on_worker((), 0, own_nice).await.unwrap(), 7);
        assert_eq!(pool.clone().with_render_nice(25).render_nice(), 19);
        assert_eq!(pool.clone().with_render_nice(-3).render_nice(), 0);
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
        // One worker and one queue place, but the render in the queue place
        // is refused once the third finds every place taken (the queue
        // closes, and empties): one renders.
        assert_eq!(
            done, 1,
            "one worker, the queued render refused: {outcomes:?}"
        );
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
        assert!(metric("imgmesh_render_queue_wait_seconds_count") >= 1.0);
    }

    /// Yields until `ready` holds, failing the test if `renders` finishes
    /// first: the caller holds the only worker, so nothing may render yet.
    async fn until_waiting<F: Future + Unpin>(renders: &mut F, ready: impl Fn() -> bool) {
        let waiting = async {
            while !ready() {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            _ = renders => panic!("rendered without the worker"),
            () = waiting => {}
        }
    }

    /// A render of `original` at `w` wide through the batches, under `key`.
    async fn batched(
        pool: &RenderPool,
        original: &[u8],
        w: u32,
        key: &str,
        incoming: Option<Incoming>,
    ) -> Result<Derivative, RenderError> {
        let admission = pool.admit(None)?;
        pool.render_batched(
            admission,
            RenderSources::original(original.to_vec()),
            Arc::new(width(w)),
            None,
            std::future::pending(),
            key,
            incoming,
        )
        .await
    }

    /// Renders of one original that wait for the worker together run as
    /// one batch with one decode, each at its own size; the memory they
    /// reserved is held while they wait and all of it comes back, and the
    /// metrics count the batch and the renders made from its decode.
    #[tokio::test]
    async fn renders_of_one_original_waiting_together_share_a_decode() {
        let pool =
            RenderPool::with_admission(1, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let original = test_images::jpeg(800, 500);
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let before = METRICS.originals_decoded();
        let widths = [80, 160, 320, 400, 640];
        let renders = futures::future::join_all(
            widths.map(|w| batched(&pool, &original, w, "demo/a.jpg", None)),
        );
        let mut renders = std::pin::pin!(renders);
        let estimates: u64 = widths
            .iter()
            .map(|&w| {
                estimate_render_bytes(
                    &RenderSources::original(original.clone()),
                    &width(w),
                    &pool.limits(),
                )
                .unwrap()
            })
            .sum();
        until_waiting(&mut renders, || pool.batch_waiting() >= widths.len()).await;
        assert_eq!(pool.reserved_bytes(), estimates, "each render's estimate");
        drop(busy);
        let derivatives = renders.await;
        for (derivative, w) in derivatives.into_iter().zip(widths) {
            let derivative = derivative.unwrap();
            assert_eq!((derivative.width, derivative.height), (w, w * 5 / 8));
        }
        assert_eq!(METRICS.originals_decoded() - before, 1, "one decode");
        assert_eq!(metric("imgmesh_render_batches_total"), 1.0);
        assert_eq!(metric("imgmesh_render_batched_total"), 4.0);
        assert_eq!(
            (pool.admitted(), pool.reserved_bytes(), pool.batch_waiting()),
            (0, 0, 0)
        );
        assert_eq!(
            pool.running_memory.available_permits() as u64,
            pool.running_memory() / 1024,
            "the batch's running memory is back"
        );
        for gauge in ["imgmesh_render_queue_depth", "imgmesh_renders_in_flight"] {
            assert_eq!(metric(gauge), 0.0, "{gauge}");
        }
    }

    /// A render taken into a batch stops waiting for a worker of its own:
    /// a worker freed while the batch runs goes to the next render that
    /// needs one (here of another original), not to a taken render that
    /// would hold it idle until its batch answers.
    #[tokio::test]
    async fn taken_renders_leave_free_workers_to_others() {
        let pool =
            RenderPool::with_admission(2, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let (large, small) = (test_images::jpeg(1600, 1000), test_images::jpeg(160, 100));
        let busy = [
            Arc::clone(&pool.running).acquire_owned().await.unwrap(),
            Arc::clone(&pool.running).acquire_owned().await.unwrap(),
        ];
        let mut batch = Vec::new();
        for (queued, w) in [1200, 1000, 800, 600, 400, 200].into_iter().enumerate() {
            let (render_pool, large) = (pool.clone(), large.clone());
            batch.push(tokio::spawn(async move {
                batched(&render_pool, &large, w, "demo/large.jpg", None).await
            }));
            eventually("the render waits", || pool.batch_waiting() > queued).await;
        }
        let other = {
            let pool = pool.clone();
            tokio::spawn(async move { batched(&pool, &small, 100, "demo/small.jpg", None).await })
        };
        eventually("all wait", || pool.batch_waiting() == 7).await;
        let [first, second] = busy;
        drop(first);
        eventually("the batch takes its renders", || pool.batch_waiting() == 1).await;
        drop(second);
        let other = other.await.unwrap().unwrap();
        assert_eq!(other.width, 100);
        assert!(
            batch.iter().any(|render| !render.is_finished()),
            "the other original's render waited for the batch"
        );
        for render in batch {
            render.await.unwrap().unwrap();
        }
        assert_eq!(pool.running.available_permits(), 2, "both workers free");
    }

    /// Renders of different originals, or of one original under different
    /// bytes, do not batch; with batching off nothing does.
    #[tokio::test]
    async fn only_the_same_bytes_batch() {
        for (batch_max, key_b, expected) in [(16, "a", 2), (16, "b", 3), (1, "a", 3)] {
            let pool = RenderPool::with_admission(
                1,
                8,
                DEFAULT_MEMORY_BUDGET_BYTES,
                RenderLimits::default(),
            )
            .with_batching(batch_max, BATCH_WINDOW);
            let (one, other) = (test_images::jpeg(400, 300), test_images::jpeg(400, 300));
            let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
            let before = METRICS.originals_decoded();
            let renders = futures::future::join3(
                batched(&pool, &one, 100, "a", None),
                batched(&pool, &one, 200, key_b, None),
                batched(&pool, &other, 50, "a", None),
            );
            let mut renders = std::pin::pin!(renders);
            let queued = if batch_max > 1 { 3 } else { 0 };
            until_waiting(&mut renders, || {
                pool.batch_waiting() >= queued && pool.admitted() >= 3
            })
            .await;
            drop(busy);
            let (a, b, c) = renders.await;
            assert_eq!(
                [a.unwrap().width, b.unwrap().width, c.unwrap().width],
                [100, 200, 50]
            );
            assert_eq!(
                METRICS.originals_decoded() - before,
                expected,
                "batch max {batch_max}, second key {key_b}"
            );
        }
    }

    /// A waiting render whose caller leaves is withdrawn (its place and
    /// memory back at once); the others of its original still batch and
    /// get their derivatives.
    #[tokio::test]
    async fn a_render_leaving_does_not_cancel_its_batch() {
        let pool =
            RenderPool::with_admission(1, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let original = test_images::jpeg(800, 500);
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let before = METRICS.originals_decoded();
        let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
        let leaving = async {
            let admission = pool.admit(None)?;
            pool.render_batched(
                admission,
                RenderSources::original(original.clone()),
                Arc::new(width(640)),
                None,
                async {
                    let _ = gone_rx.await;
                },
                "a",
                None,
            )
            .await
        };
        let staying = futures::future::join(
            batched(&pool, &original, 320, "a", None),
            batched(&pool, &original, 160, "a", None),
        );
        let mut staying = std::pin::pin!(staying);
        let mut leaving = std::pin::pin!(leaving);
        let waiting = async {
            while pool.batch_waiting() < 3 {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            _ = &mut staying => panic!("rendered without the worker"),
            _ = &mut leaving => panic!("rendered without the worker"),
            () = waiting => {}
        }
        gone_tx.send(()).unwrap();
        let left = leaving.await.unwrap_err();
        assert!(matches!(left, RenderError::Abandoned), "{left:?}");
        assert_eq!((pool.batch_waiting(), pool.admitted()), (2, 2));
        drop(busy);
        let (a, b) = staying.await;
        assert_eq!((a.unwrap().width, b.unwrap().width), (320, 160));
        assert_eq!(METRICS.originals_decoded() - before, 1);
        assert_eq!((pool.admitted(), pool.reserved_bytes()), (0, 0));
    }

    /// A render that gets a free worker while another render of its
    /// original is announced (being fetched) waits for it, and the two
    /// share a decode; without the announcement it would have run alone.
    #[tokio::test]
    async fn a_leader_waits_for_announced_renders() {
        // A window long enough for a loaded test machine: the leader stops
        // waiting as soon as the announced render arrives.
        let pool =
            RenderPool::with_admission(1, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default())
                .with_batching(DEFAULT_BATCH_MAX, Duration::from_secs(10));
        let original = test_images::jpeg(800, 500);
        let incoming = pool.announce("a", &width(200)).expect("a plan that shares");
        let json = ResolvedPlan::resolve(&RenderPlan {
            format: imgmesh_proto::renderer::v1::OutputFormat::Json.into(),
            ..RenderPlan::default()
        })
        .unwrap();
        assert!(pool.announce("a", &json).is_none(), "JSON shares no decode");
        let before = METRICS.originals_decoded();
        let first = batched(&pool, &original, 400, "a", None);
        let second = async {
            // The fetch of the second render, a moment after the first got
            // the worker.
            tokio::task::yield_now().await;
            batched(&pool, &original, 200, "a", Some(incoming)).await
        };
        let (first, second) = futures::future::join(first, second).await;
        assert_eq!((first.unwrap().width, second.unwrap().width), (400, 200));
        assert_eq!(METRICS.originals_decoded() - before, 1, "one decode");
        assert_eq!(metric("imgmesh_render_batches_total"), 1.0);
    }

    /// A render of an original whose leader is gathering its batch joins
    /// that batch even when a second worker is free: it does not lead a
    /// batch of its own, which would decode the original a second time
    /// (the second of a srcset's widths to be fetched did, with two
    /// workers free).
    #[tokio::test]
    async fn a_render_joins_a_gathering_leader_instead_of_a_free_worker() {
        let pool =
            RenderPool::with_admission(2, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default())
                .with_batching(DEFAULT_BATCH_MAX, Duration::from_secs(10));
        let original = test_images::jpeg(800, 500);
        let incoming = pool.announce("a", &width(200)).expect("a plan that shares");
        let before = METRICS.originals_decoded();
        let first = batched(&pool, &original, 400, "a", None);
        let second = async {
            // Fetched a moment after the first got its worker, with the
            // other worker free.
            tokio::task::yield_now().await;
            assert_eq!(pool.running.available_permits(), 1, "a worker is free");
            batched(&pool, &original, 200, "a", Some(incoming)).await
        };
        let (first, second) = futures::future::join(first, second).await;
        assert_eq!((first.unwrap().width, second.unwrap().width), (400, 200));
        assert_eq!(METRICS.originals_decoded() - before, 1, "one decode");
        assert_eq!(metric("imgmesh_render_batches_total"), 1.0);
        assert_eq!(METRICS.render_batch_refusals("running"), 0);
    }

    /// Renders of an original that start waiting while its batch runs
    /// (here: waits for its running memory) do not take the free worker
    /// to decode the original beside it, each on its own; they wait for
    /// the batch to end and then share one decode, in one second batch.
    /// (On W6 the larger widths of a page, sent as the batch of its
    /// smaller ones answered, each decoded the original alone.)
    #[tokio::test]
    async fn renders_too_late_for_a_running_batch_share_the_next() {
        let pool =
            RenderPool::with_admission(2, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let original = test_images::jpeg(800, 500);
        let leader = estimate_render_bytes(
            &RenderSources::original(original.clone()),
            &width(80),
            &pool.limits(),
        )
        .unwrap();
        let [busy, other_busy] = [
            Arc::clone(&pool.running).acquire_owned().await.unwrap(),
            Arc::clone(&pool.running).acquire_owned().await.unwrap(),
        ];
        // Room for the leader's estimate and no more: its batch, once it
        // has taken its follower, waits for the rest.
        let taken = Arc::clone(&pool.running_memory)
            .acquire_many_owned(pool.running_memory_kib - pool.running_kib(leader))
            .await
            .unwrap();
        let (decoded, waits, late) = (
            METRICS.originals_decoded(),
            METRICS.render_batch_memory_waits(),
            METRICS.render_batch_refusals("running"),
        );
        let first = [Arc::new(width(80)), Arc::new(width(160))];
        let mut renders = spawn_waiting(&pool, &original, &first, "demo/a.jpg").await;
        // One worker first: the first render (the smaller estimate) leads.
        drop(busy);
        eventually("the batch runs, waiting for its memory", || {
            pool.batch_waiting() == 0 && METRICS.render_batch_memory_waits() > waits
        })
        .await;
        drop(other_busy);
        let later = [Arc::new(width(640)), Arc::new(width(800))];
        renders.extend(spawn_waiting(&pool, &original, &later, "demo/a.jpg").await);
        assert_eq!(
            (pool.batch_waiting(), pool.running.available_permits()),
            (2, 1),
            "the renders too late for the batch wait for it, the free worker stays free"
        );
        assert_eq!(METRICS.render_batch_refusals("running") - late, 2);
        drop(taken);
        for (render, w) in renders.into_iter().zip([80, 160, 640, 800]) {
            assert_eq!(render.await.unwrap().unwrap().width, w);
        }
        assert_eq!(
            METRICS.originals_decoded() - decoded,
            2,
            "one decode a batch"
        );
        assert_eq!(metric("imgmesh_render_batches_total"), 2.0);
        assert_eq!(
            (pool.admitted(), pool.reserved_bytes(), pool.batch_waiting()),
            (0, 0, 0)
        );
        assert_eq!(pool.running.available_permits(), 2, "both workers free");
    }

    /// A render that leads a batch of an original whose batch has just
    /// ended waits the linger for more renders of it, announced or not,
    /// and shares its decode with one that starts waiting meanwhile; the
    /// first render of an original does not linger. (Without the linger
    /// the second led alone and the third decoded a third time.)
    #[tokio::test]
    async fn a_leader_after_a_batch_lingers_for_more_of_its_original() {
        let linger = Duration::from_secs(1);
        let pool =
            RenderPool::with_admission(1, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default())
                .with_batch_linger(linger);
        let original = test_images::jpeg(800, 500);
        let before = METRICS.originals_decoded();
        let started = Instant::now();
        let first = batched(&pool, &original, 400, "a", None).await.unwrap();
        assert!(
            started.elapsed() < linger,
            "the first render did not linger"
        );
        let second = {
            let pool = pool.clone();
            let original = original.clone();
            tokio::spawn(async move { batched(&pool, &original, 200, "a", None).await })
        };
        eventually("the second render leads", || {
            pool.in_flight() == 1 && pool.batch_waiting() == 0
        })
        .await;
        let third = batched(&pool, &original, 100, "a", None).await.unwrap();
        let second = second.await.unwrap().unwrap();
        assert_eq!((first.width, second.width, third.width), (400, 200, 100));
        assert_eq!(
            METRICS.originals_decoded() - before,
            2,
            "the second batch shares"
        );
        assert_eq!(metric("imgmesh_render_batches_total"), 1.0);
    }

    /// A leader whose window closes while a render of its original is
    /// still being fetched counts it as refused for `window`.
    #[tokio::test]
    async fn a_closed_window_counts_the_render_left_out() {
        let pool =
            RenderPool::with_admission(1, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default())
                .with_batching(DEFAULT_BATCH_MAX, Duration::from_millis(30));
        let original = test_images::jpeg(400, 300);
        let still_fetching = pool.announce("a", &width(200)).expect("a plan that shares");
        let alone = batched(&pool, &original, 100, "a", None).await.unwrap();
        assert_eq!(alone.width, 100);
        assert_eq!(METRICS.render_batch_refusals("window"), 1);
        drop(still_fetching);
        for reason in ["unshared", "full", "running"] {
            assert_eq!(METRICS.render_batch_refusals(reason), 0, "{reason}");
        }
    }

    /// `query` parsed as a resolved plan.
    fn query(query: &str) -> Arc<ResolvedPlan> {
        let parsed = imgmesh_imgix_params::parse_render_plan("", query, None).unwrap();
        Arc::new(ResolvedPlan::resolve(&parsed.plan).unwrap())
    }

    /// Renders `plans` of `original` through the batches under `key`,
    /// each spawned and waiting for a worker (in order) before the next
    /// is spawned.
    async fn spawn_waiting(
        pool: &RenderPool,
        original: &[u8],
        plans: &[Arc<ResolvedPlan>],
        key: &'static str,
    ) -> Vec<tokio::task::JoinHandle<Result<Derivative, RenderError>>> {
        let mut renders = Vec::new();
        for (queued, plan) in plans.iter().enumerate() {
            let (render_pool, original, plan) = (pool.clone(), original.to_vec(), Arc::clone(plan));
            renders.push(tokio::spawn(async move {
                let admission = render_pool.admit(None)?;
                render_pool
                    .render_batched(
                        admission,
                        RenderSources::original(original),
                        plan,
                        None,
                        std::future::pending(),
                        key,
                        None,
                    )
                    .await
            }));
            eventually("the render waits", || pool.batch_waiting() > queued).await;
        }
        renders
    }

    /// A waiting render of the leader's original whose plan cannot share
    /// its decode (it crops) is left out of its batch (`unshared`), one
    /// past the batch's most renders too (`full`); each, rendering on its
    /// own after the batch has ended, is not counted as late (`running`).
    #[tokio::test]
    async fn renders_left_out_of_a_batch_are_counted_by_reason() {
        let reasons = ["unshared", "full", "window", "running"];
        for (batch_max, queries, reason) in [
            (16, &["w=80", "w=50&h=50&fit=crop"][..], "unshared"),
            (2, &["w=80", "w=160", "w=320"][..], "full"),
        ] {
            let pool = RenderPool::with_admission(
                1,
                8,
                DEFAULT_MEMORY_BUDGET_BYTES,
                RenderLimits::default(),
            )
            .with_batching(batch_max, BATCH_WINDOW);
            let original = test_images::jpeg(800, 500);
            let before = reasons.map(|reason| METRICS.render_batch_refusals(reason));
            let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
            let plans: Vec<_> = queries.iter().map(|q| query(q)).collect();
            let renders = spawn_waiting(&pool, &original, &plans, "demo/a.jpg").await;
            drop(busy);
            for (render, q) in renders.into_iter().zip(queries) {
                render.await.unwrap().unwrap_or_else(|e| panic!("{q}: {e}"));
            }
            for (index, other) in reasons.into_iter().enumerate() {
                let expected = u64::from(other == reason);
                assert_eq!(
                    METRICS.render_batch_refusals(other) - before[index],
                    expected,
                    "{reason}: {other}"
                );
            }
        }
    }

    /// A render of the leader's original whose share of the running
    /// memory is not free joins its batch all the same, and the batch
    /// waits for its whole running memory before it starts: one decode.
    /// (Left out, it took a worker of its own, waited there for running
    /// memory and decoded the original again: every width of W6's
    /// progressive JPEG was decoded on its own.)
    #[tokio::test]
    async fn a_render_whose_memory_is_not_free_joins_and_the_batch_waits() {
        let pool =
            RenderPool::with_admission(1, 8, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let original = test_images::jpeg(800, 500);
        let leader = estimate_render_bytes(
            &RenderSources::original(original.clone()),
            &width(80),
            &pool.limits(),
        )
        .unwrap();
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        // Room for the leader's estimate and no more.
        let taken = Arc::clone(&pool.running_memory)
            .acquire_many_owned(pool.running_memory_kib - pool.running_kib(leader))
            .await
            .unwrap();
        let (decoded, waits) = (
            METRICS.originals_decoded(),
            METRICS.render_batch_memory_waits(),
        );
        let plans = [Arc::new(width(80)), Arc::new(width(640))];
        let renders = spawn_waiting(&pool, &original, &plans, "demo/a.jpg").await;
        drop(busy);
        eventually("the batch waits for its memory", || {
            pool.batch_waiting() == 0 && METRICS.render_batch_memory_waits() > waits
        })
        .await;
        assert!(
            renders.iter().all(|render| !render.is_finished()),
            "nothing rendered before the memory is free"
        );
        drop(taken);
        for (render, w) in renders.into_iter().zip([80, 640]) {
            assert_eq!(render.await.unwrap().unwrap().width, w);
        }
        assert_eq!(METRICS.originals_decoded() - decoded, 1, "one decode");
        assert_eq!(metric("imgmesh_render_batches_total"), 1.0);
        assert_eq!(
            pool.running_memory.available_permits() as u64,
            pool.running_memory() / 1024,
            "the batch's running memory is back"
        );
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

    /// A pool whose places were all taken closes its queue: until
    /// OVERLOAD_HOLD after that refusal it admits only what a free worker
    /// can start at once, then it queues again.
    #[tokio::test]
    async fn an_overload_closes_the_queue() {
        let pool =
            RenderPool::with_admission(1, 2, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let before = Instant::now();
        let mut held: Vec<_> = (0..3).map(|_| pool.admit(None).unwrap()).collect();
        let closed = metric(r#"imgmesh_render_shed_total{reason="overload"}"#);
        assert!(matches!(
            pool.admit(None),
            Err(RenderError::Overloaded {
                reason: "render queue full"
            })
        ));
        let full = pool.limit.last_full().expect("the refusal was noted");
        assert!(full >= before);
        held.truncate(1);
        assert_eq!(pool.admitted(), 1, "one admitted, as many as workers");
        assert!(matches!(
            pool.check_limit_at(full),
            Err(RenderError::Overloaded {
                reason: "render queue closed by overload"
            })
        ));
        assert!(metric(r#"imgmesh_render_shed_total{reason="overload"}"#) > closed);
        assert!(
            pool.check_limit_at(full + crate::service::admission_limit::OVERLOAD_HOLD)
                .is_ok(),
            "queues again after the hold"
        );
        held.clear();
        assert!(pool.check_limit_at(full).is_ok(), "a free worker: admitted");
    }

    /// A render admitted to start now is refused at once while every
    /// worker has a render admitted (fetching or running), by `admit` and
    /// by the check before the lease alike, and admitted once one is free.
    #[tokio::test]
    async fn start_now_is_refused_while_every_worker_has_a_render() {
        let pool =
            RenderPool::with_admission(1, 2, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let first = pool.admit(None).unwrap();
        assert!(pool.check_room().is_ok(), "a queue place is free");
        let refused = pool.admit_to_start(None).unwrap_err();
        assert!(matches!(
            refused,
            RenderError::Overloaded {
                reason: "no render worker free"
            }
        ));
        assert_eq!(refused.code(), imgmesh_errors::ErrorCode::Overloaded);
        assert!(matches!(
            pool.check_room_to_start(),
            Err(RenderError::Overloaded {
                reason: "no render worker free"
            })
        ));
        assert_eq!(
            metric(r#"imgmesh_render_shed_total{reason="overload"}"#),
            2.0
        );
        assert_eq!(pool.admitted(), 1, "the refusals took no place");
        drop(first);
        assert!(pool.check_room_to_start().is_ok());
        let now = pool.admit_to_start(None).unwrap();
        assert!(now.start_now);
        assert!(!pool.admit(None).unwrap().start_now);
    }

    /// A render admitted to start now whose worker, or running memory, is
    /// taken by the time it would start is refused as overloaded at once
    /// instead of waiting, and gives its place back; with both free it
    /// renders.
    #[tokio::test]
    async fn start_now_renders_do_not_wait() {
        let original = test_images::jpeg(400, 300);
        let plan = Arc::new(width(40));
        let pool =
            RenderPool::with_admission(1, 2, DEFAULT_MEMORY_BUDGET_BYTES, RenderLimits::default());
        let render = |admission| {
            let sources = RenderSources::original(original.clone());
            pool.render_admitted(
                admission,
                sources,
                Arc::clone(&plan),
                None,
                std::future::pending(),
            )
        };

        let admission = pool.admit_to_start(None).unwrap();
        // Another render took the worker while this one was fetched.
        let busy = Arc::clone(&pool.running).acquire_owned().await.unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(5), render(admission))
            .await
            .expect("refused at once, not queued")
            .unwrap_err();
        assert!(matches!(
            refused,
            RenderError::Overloaded {
                reason: "render could not start at once"
            }
        ));
        assert_eq!(pool.admitted(), 0, "its place is back");
        drop(busy);

        let admission = pool.admit_to_start(None).unwrap();
        let memory = Arc::clone(&pool.running_memory)
            .acquire_many_owned(pool.running_memory_kib)
            .await
            .unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(5), render(admission))
            .await
            .expect("refused at once, not waiting for running memory")
            .unwrap_err();
        assert!(matches!(refused, RenderError::Overloaded { .. }));
        assert_eq!((pool.admitted(), pool.in_flight()), (0, 0));
        drop(memory);

        let admission = pool.admit_to_start(None).unwrap();
        assert_eq!(render(admission).await.unwrap().width, 40);
    }
}
