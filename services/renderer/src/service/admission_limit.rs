//! The adaptive part of the render pool's admission: how many renders it
//! admits at once, lowered while renders run slower than they can and
//! raised again once they do not.
//!
//! The pool's static capacity (`workers + queue_depth` places) says how
//! many renders may be admitted when the renderer has the machine to
//! itself. When something else takes the cores — a storm of refused
//! requests resent at once, other processes — each render runs slower, and
//! every admitted request waits longer, even though nothing is queued
//! beyond the static capacity. This limit follows the *stretch* of the
//! renders that finish: the wall time a render held its worker over the
//! CPU time its threads were given (1.0 when it never waited for a core).
//! It is a Vegas-style limit (as in Netflix's concurrency-limits or
//! Envoy's adaptive concurrency filter) with the uncontended render as its
//! baseline:
//!
//! - the stretch is smoothed over the last renders (an exponentially
//!   weighted mean, [`SMOOTHING`]);
//! - at most once per limit's worth of finished renders (one "round"), a
//!   smoothed stretch above `tolerance` lowers the limit by one (never
//!   below `min`), and one below [`RAISE_BELOW`] of the tolerance's excess
//!   raises it by one (never above `max`);
//! - between the two it stays, so it does not flap.
//!
//! A request admitted while the limit's worth are already admitted is
//! refused at once as overloaded, like one that finds no place.
//!
//! It also closes the queue under overload, whatever the tolerance. The
//! queue places exist for throughput: with as many requests as places (W1's
//! four connections on two workers) a worker that finishes starts the next
//! render at once instead of waiting for its request to come in. But when
//! more renders are wanted than there are places (the pool refused one
//! because every place was taken), each admitted request waits behind the
//! ones queued ahead of it, and since some are refused anyway, admitting
//! fewer costs nothing. So for [`OVERLOAD_HOLD`] after its places were last
//! all taken, the pool admits only what a free worker can start at once
//! ([`AdaptiveLimit::queue_closed`]); the excess is refused as it would be
//! anyway, and the admitted ones keep their unloaded latency instead of
//! waiting for a worker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The weight of the newest stretch in the smoothed one.
pub const SMOOTHING: f64 = 0.3;

/// The share of the tolerance's excess over 1.0 below which the limit is
/// raised: with a tolerance of 1.5, a smoothed stretch under 1.25.
pub const RAISE_BELOW: f64 = 0.5;

/// How long the queue stays closed after the pool's places were last all
/// taken: the `Retry-After` of its refusals (1 s). The gateway's render
/// limit, which learns from the refusals, keeps the renders it sends
/// within what starts at once for as long as its clients' demand stays a
/// storm, so the queue does not refill when it reopens.
pub const OVERLOAD_HOLD: Duration = Duration::from_secs(1);

/// How many renders the pool admits at once, adapted to their stretch, and
/// whether its queue is closed by an overload.
#[derive(Debug)]
pub struct AdaptiveLimit {
    state: Mutex<State>,
    /// Wakes the renders waiting for a worker when an overload closes the
    /// queue ([`AdaptiveLimit::closes`]).
    closed: tokio::sync::Notify,
    min: usize,
    max: usize,
    tolerance: f64,
}

#[derive(Debug)]
struct State {
    limit: usize,
    smoothed: Option<f64>,
    /// Renders finished since the limit last changed.
    since_change: usize,
    /// When a render was last refused because every place was taken.
    full_at: Option<Instant>,
}

// === impl AdaptiveLimit ===

impl AdaptiveLimit {
    /// A limit between `min` (at least 1) and `max` (at least `min`),
    /// starting at `max`, lowered while renders stretch past `tolerance`
    /// (at least 1.0; `f64::INFINITY` never lowers it).
    pub fn new(min: usize, max: usize, tolerance: f64) -> AdaptiveLimit {
        let min = min.max(1);
        let max = max.max(min);
        AdaptiveLimit {
            state: Mutex::new(State {
                limit: max,
                smoothed: None,
                since_change: 0,
                full_at: None,
            }),
            closed: tokio::sync::Notify::new(),
            min,
            max,
            tolerance: tolerance.max(1.0),
        }
    }

    /// Renders admitted at once now.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// The smoothed stretch of the last renders (1.0 before any).
    pub fn stretch(&self) -> f64 {
        self.lock().smoothed.unwrap_or(1.0)
    }

    /// One finished render that held its worker `stretch` times as long as
    /// its threads ran (1.0: never waited for a core). Returns the limit.
    pub fn sample(&self, stretch: f64) -> usize {
        let mut state = self.lock();
        if !stretch.is_finite() || stretch <= 0.0 {
            return state.limit;
        }
        let smoothed = match state.smoothed {
            Some(previous) => previous + SMOOTHING * (stretch - previous),
            None => stretch,
        };
        state.smoothed = Some(smoothed);
        state.since_change += 1;
        if state.since_change < state.limit {
            return state.limit;
        }
        let raise_below = 1.0 + (self.tolerance - 1.0) * RAISE_BELOW;
        let limit = if smoothed > self.tolerance {
            state.limit.saturating_sub(1).max(self.min)
        } else if smoothed < raise_below {
            (state.limit + 1).min(self.max)
        } else {
            state.limit
        };
        if limit != state.limit {
            state.limit = limit;
            state.since_change = 0;
        }
        limit
    }

    /// The pool refused a render at `now` because every place was taken:
    /// more renders are wanted than it has places.
    pub fn refused_full(&self, now: Instant) {
        self.lock().full_at = Some(now);
        self.closed.notify_waiters();
    }

    /// Resolves when the pool next refuses a render because every place
    /// was taken ([`AdaptiveLimit::refused_full`]). A render still waiting
    /// for a worker then is refused too: the queue it waits in has just
    /// closed, so it would wait behind the renders ahead of it for what a
    /// refusal answers at once. This empties the queue at the onset of an
    /// overload, which the queue's closing alone does not: a burst (W4's 64
    /// clients at once) fills every place before the first refusal, and
    /// under W4 those first queued renders waited 250-760 ms for a worker,
    /// the slowest admitted requests of the run (more than 1 % of them
    /// over two repetitions, so they set the admitted p99).
    /// (Enable the future before reading [`AdaptiveLimit::queue_closed`],
    /// so that no refusal falls between the two.)
    pub fn closes(&self) -> tokio::sync::futures::Notified<'_> {
        self.closed.notified()
    }

    /// Whether the pool admits only what a free worker can start at once:
    /// its places were all taken within [`OVERLOAD_HOLD`] of `now`.
    pub fn queue_closed(&self, now: Instant) -> bool {
        self.lock()
            .full_at
            .is_some_and(|full| now.saturating_duration_since(full) < OVERLOAD_HOLD)
    }

    /// When the pool last refused a render because every place was taken.
    #[cfg(test)]
    pub(crate) fn last_full(&self) -> Option<Instant> {
        self.lock().full_at
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        imgmesh_runtime::lock(&self.state)
    }
}

/// CPU time and time spent runnable but waiting for a core, summed over
/// the process's threads, in nanoseconds (`/proc/self/task/*/schedstat`);
/// `None` where the kernel does not keep them. Two readings around a
/// render give its stretch: `(cpu + waited) / cpu` over the render, for
/// every thread of the process (the render's libvips threads, the other
/// renders', the async threads answering requests).
pub fn process_cpu_and_wait() -> Option<(u64, u64)> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let (mut cpu, mut waited) = (0u64, 0u64);
    for task in tasks.flatten() {
        // A thread that ended between the listing and the read is skipped.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = stat.split_ascii_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(on_cpu)), Some(Ok(runnable))) = (fields.next(), fields.next()) {
            cpu = cpu.saturating_add(on_cpu);
            waited = waited.saturating_add(runnable);
        }
    }
    (cpu > 0).then_some((cpu, waited))
}

/// The stretch between two [`process_cpu_and_wait`] readings: 1.0 when no
/// thread waited for a core, 3.0 when they waited twice as long as they
/// ran. `None` without CPU time between them.
pub fn stretch_between(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let cpu = after.0.checked_sub(before.0)?;
    let waited = after.1.checked_sub(before.1)?;
    (cpu > 0).then(|| (cpu as f64 + waited as f64) / cpu as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders that run as fast as they can keep the limit at its maximum.
    #[test]
    fn unstretched_renders_keep_the_maximum() {
        let limit = AdaptiveLimit::new(1, 4, 1.5);
        for _ in 0..100 {
            assert_eq!(limit.sample(1.05), 4);
        }
    }

    /// Stretched renders lower the limit by one per round of renders, down
    /// to the minimum and no further.
    #[test]
    fn stretched_renders_lower_it_round_by_round() {
        let limit = AdaptiveLimit::new(1, 4, 1.5);
        let mut seen = vec![limit.limit()];
        for _ in 0..40 {
            let now = limit.sample(3.0);
            if seen.last() != Some(&now) {
                seen.push(now);
            }
        }
        assert_eq!(seen, [4, 3, 2, 1], "one step at a time, down to min");
        // The first round (4 renders) passes before the first step.
        let fresh = AdaptiveLimit::new(1, 4, 1.5);
        let steps: Vec<usize> = (0..4).map(|_| fresh.sample(3.0)).collect();
        assert_eq!(steps, [4, 4, 4, 3]);
    }

    /// Once renders run at speed again, the limit climbs back to its
    /// maximum; a stretch between the raise mark and the tolerance holds it.
    #[test]
    fn it_grows_back_and_holds_in_between() {
        let limit = AdaptiveLimit::new(1, 6, 1.5);
        for _ in 0..50 {
            limit.sample(4.0);
        }
        assert_eq!(limit.limit(), 1);
        for _ in 0..50 {
            limit.sample(1.4);
        }
        assert_eq!(limit.limit(), 1, "1.4 is under 1.5 but over 1.25: held");
        for _ in 0..100 {
            limit.sample(1.0);
        }
        assert_eq!(limit.limit(), 6);
    }

    /// One slow render among fast ones is smoothed away.
    #[test]
    fn one_outlier_does_not_lower_it() {
        let limit = AdaptiveLimit::new(1, 2, 1.5);
        for _ in 0..10 {
            limit.sample(1.0);
        }
        assert_eq!(limit.sample(2.5), 2, "1.0 + 0.3 × 1.5 = 1.45");
        assert!((limit.stretch() - 1.45).abs() < 1e-9);
    }

    /// The stretch is the share of runnable time spent waiting, plus one.
    #[test]
    fn stretch_reads_waiting_over_running() {
        assert_eq!(stretch_between((100, 50), (300, 50)), Some(1.0));
        assert_eq!(stretch_between((100, 50), (300, 450)), Some(3.0));
        assert_eq!(stretch_between((100, 50), (100, 90)), None, "no CPU time");
        assert_eq!(stretch_between((100, 50), (90, 90)), None, "went backwards");
    }

    /// This process's own threads are read (on Linux, where the kernel
    /// keeps schedstat), and their CPU time only grows.
    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let Some(before) = process_cpu_and_wait() else {
            return; // a kernel without schedstat: nothing to read
        };
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::black_box(spin.elapsed());
        }
        let after = process_cpu_and_wait().unwrap();
        assert!(after.0 > before.0, "{before:?} → {after:?}");
        assert!(stretch_between(before, after).unwrap() >= 1.0);
    }

    /// Nonsense samples change nothing; an infinite tolerance never lowers.
    #[test]
    fn ignores_nonsense_and_can_be_turned_off() {
        let limit = AdaptiveLimit::new(1, 3, 1.5);
        for bad in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
            assert_eq!(limit.sample(bad), 3);
        }
        assert_eq!(limit.stretch(), 1.0);
        let off = AdaptiveLimit::new(1, 3, f64::INFINITY);
        for _ in 0..100 {
            off.sample(50.0);
        }
        assert_eq!(off.limit(), 3);
    }

    /// The queue is open until the places are all taken, closed for
    /// OVERLOAD_HOLD after the last time they were, then open again.
    #[test]
    fn an_overload_closes_the_queue_for_a_while() {
        let limit = AdaptiveLimit::new(1, 6, f64::INFINITY);
        let start = Instant::now();
        assert!(!limit.queue_closed(start), "open before any overload");
        limit.refused_full(start);
        assert!(limit.queue_closed(start));
        let almost = start + OVERLOAD_HOLD - Duration::from_millis(1);
        assert!(limit.queue_closed(almost));
        limit.refused_full(almost);
        assert!(
            limit.queue_closed(start + OVERLOAD_HOLD),
            "held by the later refusal"
        );
        assert!(!limit.queue_closed(almost + OVERLOAD_HOLD), "open again");
        assert_eq!(limit.limit(), 6, "the stretch limit is another matter");
    }

    /// A render waiting on `closes` is woken by the next refusal for a full
    /// queue, not before.
    #[tokio::test]
    async fn a_waiter_learns_when_the_queue_closes() {
        let limit = std::sync::Arc::new(AdaptiveLimit::new(1, 6, f64::INFINITY));
        let waiter = tokio::spawn({
            let limit = std::sync::Arc::clone(&limit);
            async move { limit.closes().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing refused yet");
        limit.refused_full(Instant::now());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the refusal")
            .expect("the waiter task");
    }
}
