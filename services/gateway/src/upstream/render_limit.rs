//! The gateway's own bound on the renders it has asked the renderer tier
//! for, learnt from the tier's refusals, so that a full tier's refusals are
//! answered here in microseconds instead of after a round trip.
//!
//! A renderer that has no place for a render answers `RESOURCE_EXHAUSTED`
//! at once (its admission control), but that answer still costs the
//! gateway a gRPC call and the renderer a request on its async thread, and
//! under overload (clients resending at once) those refusals are most of
//! the traffic. So the gateway keeps an AIMD limit on its renders in
//! flight, as TCP does on its window and Netflix's concurrency-limits'
//! `AIMDLimit` does on a client: every render the tier refuses as
//! overloaded sets the limit to [`BACKOFF`] times the lesser of the limit
//! and the renders in flight (never below [`MIN_LIMIT`]), except a render
//! refused only because it did not fit the memory free now
//! ([`Answer::Unfit`]: one large original beside another says nothing of
//! how many renders the tier runs, and lowering the limit for it refused
//! four connections the tier had room for by the hundred, `scripts/bench.sh
//! badbytes`, 2026-12-07, until two renders were taken); every render it
//! accepts while the gateway used at least half the limit adds
//! `1 / limit` (about one per limit's worth of renders). A miss past the
//! limit is refused here with 503 and `Retry-After`, like every shed
//! request, and counted in `imgmesh_renders_shed_locally_total`;
//! `imgmesh_render_limit` shows the limit. Until the tier refuses anything
//! the limit stays at its maximum (1024 renders per gateway, the default
//! `--max-in-flight`), so a tier with room never sees a local refusal. A
//! learnt limit holds only while the tier keeps refusing: after [`HOLD`]
//! (the tier's `Retry-After`, 1 s) without a refusal by the tier it is back
//! at its maximum. Refusals here do not hold it: clients resending at once
//! (wrk, W4's) would keep a limit learnt once from a single refusal for as
//! long as they send, and four connections a renderer has room for were
//! refused 503 by the thousand (`scripts/bench.sh badbytes`, 2026-12-07).
//!
//! A storm (clients resending a refused request at once, as W4's do) is
//! told apart from a few requests more than the limit by the *demand*: the
//! renders in flight plus the distinct clients refused here in the last
//! [`DEMAND_WINDOW`] (a client is its HTTP/1 connection, else the request
//! it sends: see `upstream::refusal_key`; counted by request alone, four
//! connections stepping to their next URL after each 503 read as hundreds
//! of clients and held a limit learnt from one refusal for as long as they
//! sent). The limit grows only while the demand is at most
//! [`storm_threshold`] of it (about twice), so a normal load right after an
//! overload climbs back in a few renders; under a storm it does not climb
//! at all. That matters because the renderer closes its queue under
//! overload (it admits only what a free worker can start at once, see its
//! `admission_limit` module) and reopens it a second after its places were
//! last all taken: a limit climbing back during a storm would fill the
//! reopened queue again, and every queued render waits for the ones ahead.
//!
//! For the same reason a learnt limit outlasts [`HOLD`] while the storm
//! goes on: the tier refuses nothing then because this limit keeps its
//! renders to what it starts at once, and back at the maximum the storm's
//! requests would reach it in a burst about once a second (W4 on HEAD
//! d7ab15e: the renderer refused 850-1050 renders a run in such bursts, and
//! up to six of each were admitted to wait behind the two running).
//!
//! And a storm's refusals are paced: a client refused again within
//! [`DEMAND_WINDOW`] of its last refusal while the demand is a storm (it
//! resent at once, ignoring `Retry-After`) gets its refusal after
//! [`REFUSAL_PACE`]. Answered as fast as they resend, W4's 64 clients sent
//! ~22k requests a second, and answering them (this thread, Redis's
//! lookups, the clients themselves) took the cores from the renders
//! admitted: their threads waited for a core 46 % of the time they held
//! it. Paced, they send ~9.5k a second.
//!
//! And a render started during a storm asks the renderer to start it at
//! once or refuse it ([`RenderPermit::start_now`], sent as
//! `imgmesh-admission: start-now`): one admitted behind others, or one
//! that finds the running memory taken (two large originals), would wait
//! on the renderer for what a refusal answers at once, and the storm's
//! clients resend a refused request anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::metrics::METRICS;

/// What one refusal keeps of the limit.
pub(crate) const BACKOFF: f64 = 0.9;

/// The lowest the limit goes: one render is always tried, so the gateway
/// finds out when the tier has room again.
pub(crate) const MIN_LIMIT: f64 = 1.0;

/// How long a learnt limit holds without a refusal: the tier's
/// `Retry-After` (1 s). A tier that refused nothing for that long is not
/// full any more (its queue has drained), so the limit goes back to its
/// maximum instead of climbing back render by render while the clients of
/// a normal load after the overload are refused for nothing.
pub(crate) const HOLD: Duration = Duration::from_secs(1);

/// How long a request refused here counts in the demand. A client that
/// resends at once is back within milliseconds (W4's shed p99 is under
/// 20 ms), so each of a storm's clients counts once in it; one that waits
/// for `Retry-After` (1 s) does not count and is no storm.
pub(crate) const DEMAND_WINDOW: Duration = Duration::from_millis(100);

/// How long a refusal here waits before it is answered when its client
/// was refused within [`DEMAND_WINDOW`] already and the demand is a storm
/// ([`RenderLimit::note_refused`]): W4's clients, which resend at once,
/// then send ~9.5k requests a second instead of ~23k, and the cores they
/// took from the renders go back to them. 3 ms rather than 5: at 5 ms (~7k
/// a second) the shed p99 reached 28 ms in one repetition on a shared
/// machine (issue 18 asks under 20 ms); at 3 ms it was 12-13 ms.
pub(crate) const REFUSAL_PACE: Duration = Duration::from_millis(3);

/// The most refused requests the demand remembers: past it the demand is
/// a storm for any limit the tier may teach, and memory stays bounded.
const MAX_REMEMBERED: usize = 4096;

/// The demand up to which the limit may grow: twice the renders it allows,
/// plus two so that one render with a couple of requests waiting is no
/// storm. W1 right after W4 (4 connections against a limit of 1–3) stays
/// under it; W4 (64 connections resending at once) is far over it.
pub(crate) fn storm_threshold(limit: f64) -> f64 {
    2.0 * limit.floor() + 2.0
}

/// The limit on renders in flight and how many are, shared by every
/// request of the gateway.
#[derive(Debug, Clone)]
pub(crate) struct RenderLimit {
    state: Arc<Mutex<State>>,
    max: f64,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// When the tier last refused a render.
    refused_at: Option<Instant>,
    /// The requests refused here lately, by [`RenderLimit::note_refused`]'s
    /// key, with when each was last refused.
    refused_here: HashMap<u64, Instant>,
}

/// One render asked of the tier, counted in flight until it is dropped;
/// [`RenderPermit::finished`] says how the tier answered.
#[derive(Debug)]
pub(crate) struct RenderPermit {
    state: Arc<Mutex<State>>,
    max: f64,
    /// Whether it was started during a storm.
    start_now: bool,
}

/// How the tier answered a render, as the limit reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The tier took the render (whatever its outcome for the image).
    Taken,
    /// The tier refused it as overloaded.
    Refused,
    /// The tier refused it because it did not fit the memory free now,
    /// though it would take another render: it teaches the limit nothing.
    Unfit,
}

// === impl RenderLimit ===

impl RenderLimit {
    /// A limit of at most `max` renders in flight (at least one), starting
    /// at `max`.
    pub(crate) fn new(max: usize) -> RenderLimit {
        let max = (max as f64).max(MIN_LIMIT);
        METRICS.render_limit(max);
        RenderLimit {
            state: Arc::new(Mutex::new(State {
                limit: max,
                in_flight: 0,
                refused_at: None,
                refused_here: HashMap::new(),
            })),
            max,
        }
    }

    /// A permit for one more render, or `None` when the limit's worth are
    /// in flight: refuse the request as overloaded, and say which it was
    /// with [`RenderLimit::note_refused`].
    pub(crate) fn try_start(&self) -> Option<RenderPermit> {
        self.try_start_at(Instant::now())
    }

    /// Counts the request `key` (the same for the same request resent)
    /// that [`RenderLimit::try_start`] just refused in the demand.
    /// Returns how long to wait before answering the refusal: a client
    /// that resends at once during a storm is answered after
    /// [`REFUSAL_PACE`], others at once.
    pub(crate) fn note_refused(&self, key: u64) -> Option<Duration> {
        self.note_refused_at(key, Instant::now())
    }

    /// [`RenderLimit::note_refused`] at `now`.
    fn note_refused_at(&self, key: u64, now: Instant) -> Option<Duration> {
        let mut state = lock(&self.state);
        if state.refused_here.len() >= MAX_REMEMBERED {
            state
                .refused_here
                .retain(|_, at| now.saturating_duration_since(*at) < DEMAND_WINDOW);
        }
        let resent = state
            .refused_here
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(*at) < DEMAND_WINDOW);
        if state.refused_here.len() < MAX_REMEMBERED || resent {
            state.refused_here.insert(key, now);
        }
        (resent && state.demand(now) as f64 > storm_threshold(state.limit)).then_some(REFUSAL_PACE)
    }

    /// [`RenderLimit::try_start`] at `now`.
    fn try_start_at(&self, now: Instant) -> Option<RenderPermit> {
        let mut state = lock(&self.state);
        if state
            .refused_at
            .is_some_and(|refused| now.saturating_duration_since(refused) >= HOLD)
        {
            if state.demand(now) as f64 > storm_threshold(state.limit) {
                // The storm goes on: the tier refused nothing for HOLD
                // because this limit kept it to the renders it starts at
                // once. Back at the maximum, the storm's requests would
                // reach it in a burst that fills its reopened queue.
                state.refused_at = Some(now);
            } else {
                state.refused_at = None;
                state.refused_here.clear();
                state.limit = self.max;
                METRICS.render_limit(self.max);
            }
        }
        if state.in_flight as f64 >= state.limit.floor() {
            // The caller's `note_refused` counts it in the demand; it does
            // not hold the limit (only the tier's refusals do).
            drop(state);
            METRICS.render_shed_locally();
            return None;
        }
        state.in_flight += 1;
        let start_now = state.demand(now) as f64 > storm_threshold(state.limit);
        Some(RenderPermit {
            state: Arc::clone(&self.state),
            max: self.max,
            start_now,
        })
    }

    /// The limit now.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> f64 {
        lock(&self.state).limit
    }

    /// Renders in flight now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.state).in_flight
    }
}

// === impl State ===

impl State {
    /// Renders in flight plus the distinct requests refused here within
    /// [`DEMAND_WINDOW`] of `now` (forgetting the older ones).
    fn demand(&mut self, now: Instant) -> usize {
        self.refused_here
            .retain(|_, at| now.saturating_duration_since(*at) < DEMAND_WINDOW);
        self.in_flight + self.refused_here.len()
    }
}

// === impl RenderPermit ===

impl RenderPermit {
    /// Whether the render was started during a storm (the demand past
    /// [`storm_threshold`] of the limit), so the tier is to start it at
    /// once or refuse it, never queue it.
    pub(crate) fn start_now(&self) -> bool {
        self.start_now
    }

    /// Adjusts the limit to how the tier answered this render.
    pub(crate) fn finished(self, answer: Answer) {
        self.finished_at(answer, Instant::now());
    }

    /// [`RenderPermit::finished`] at `now`.
    fn finished_at(self, answer: Answer, now: Instant) {
        let mut state = lock(&self.state);
        if answer == Answer::Refused {
            state.refused_at = Some(now);
        }
        let limit = match answer {
            // Back off from what the tier refused at, when less was in
            // flight than the limit allowed.
            Answer::Refused => (state.limit.min(state.in_flight as f64) * BACKOFF).max(MIN_LIMIT),
            // Grow only while the limit is what bounds the gateway (a
            // limit far above its use would say nothing about the tier),
            // and not in a storm.
            Answer::Taken
                if state.in_flight as f64 * 2.0 >= state.limit
                    && state.demand(now) as f64 <= storm_threshold(state.limit) =>
            {
                (state.limit + 1.0 / state.limit).min(self.max)
            }
            Answer::Taken | Answer::Unfit => state.limit,
        };
        if limit != state.limit {
            state.limit = limit;
            METRICS.render_limit(limit);
        }
    }
}

impl Drop for RenderPermit {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    imgmesh_runtime::lock(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With room at the tier, nothing is refused up to the maximum.
    #[test]
    fn starts_at_the_maximum() {
        let limit = RenderLimit::new(4);
        let permits: Vec<_> = (0..4).map(|_| limit.try_start()).collect();
        assert!(permits.iter().all(Option::is_some));
        assert!(limit.try_start().is_none(), "a fifth past a maximum of 4");
        drop(permits);
        assert_eq!(limit.in_flight(), 0);
    }

    /// Each refusal by the tier lowers the limit to BACKOFF times what was
    /// in flight, down to one render, which is always allowed.
    #[test]
    fn refusals_lower_the_limit_to_one() {
        let limit = RenderLimit::new(100);
        let mut ten: Vec<_> = (0..10).map(|_| limit.try_start().unwrap()).collect();
        ten.pop().unwrap().finished(Answer::Refused);
        assert!((limit.limit() - 9.0).abs() < 1e-9, "{}", limit.limit());
        ten.pop().unwrap().finished(Answer::Refused);
        assert!((limit.limit() - 8.1).abs() < 1e-9, "{}", limit.limit());
        drop(ten);
        for _ in 0..100 {
            limit.try_start().unwrap().finished(Answer::Refused);
        }
        assert_eq!(limit.limit(), MIN_LIMIT);
        let one = limit.try_start();
        assert!(one.is_some(), "one render is always tried");
        assert!(limit.try_start().is_none(), "a second past a limit of 1");
        drop(one);
        assert!(limit.try_start().is_some());
    }

    /// A render refused for memory leaves the limit where it was, lowered
    /// or not, and does not hold a lowered one past HOLD; nor does it grow
    /// it as a taken render would.
    #[test]
    fn memory_refusals_teach_nothing() {
        let limit = RenderLimit::new(4);
        let start = Instant::now();
        let mut four: Vec<_> = (0..4).map(|_| limit.try_start_at(start).unwrap()).collect();
        four.pop().unwrap().finished_at(Answer::Unfit, start);
        assert_eq!(limit.limit(), 4.0, "the fourth still fits");
        four.pop().unwrap().finished_at(Answer::Refused, start);
        let lowered = limit.limit();
        assert!((lowered - 2.7).abs() < 1e-9, "{lowered}");
        let later = start + HOLD - Duration::from_millis(1);
        four.pop().unwrap().finished_at(Answer::Unfit, later);
        assert_eq!(limit.limit(), lowered, "not grown");
        drop(four);
        let after = start + HOLD;
        let all: Vec<_> = (0..4).map(|_| limit.try_start_at(after)).collect();
        assert!(
            all.iter().all(Option::is_some),
            "the memory refusal did not hold the lowered limit"
        );
    }

    /// Renders the tier takes raise a lowered limit again (by about one per
    /// limit's worth), but never past the maximum.
    #[test]
    fn accepted_renders_raise_it_again() {
        let limit = RenderLimit::new(8);
        for _ in 0..100 {
            limit.try_start().unwrap().finished(Answer::Refused);
        }
        assert_eq!(limit.limit(), 1.0);
        limit.try_start().unwrap().finished(Answer::Taken);
        assert!((limit.limit() - 2.0).abs() < 1e-9, "{}", limit.limit());
        for _ in 0..1000 {
            // Keep the gateway using the limit, as a loaded gateway does.
            let busy: Vec<_> = std::iter::from_fn(|| limit.try_start()).collect();
            for permit in busy {
                permit.finished(Answer::Taken);
            }
        }
        assert_eq!(limit.limit(), 8.0);
    }

    /// A learnt limit holds while the tier keeps refusing, and goes back to
    /// the maximum once it has refused nothing for HOLD.
    #[test]
    fn the_limit_holds_only_while_the_tier_refuses() {
        let limit = RenderLimit::new(64);
        let start = Instant::now();
        let mut two: Vec<_> = (0..2).map(|_| limit.try_start_at(start).unwrap()).collect();
        two.pop().unwrap().finished_at(Answer::Refused, start);
        drop(two);
        assert!((limit.limit() - 1.8).abs() < 1e-9, "{}", limit.limit());
        let almost = start + HOLD - Duration::from_millis(1);
        let one = limit.try_start_at(almost);
        assert!(one.is_some());
        assert!(limit.try_start_at(almost).is_none(), "still learnt");
        drop(one);
        // A refusal just now keeps it.
        limit
            .try_start_at(almost)
            .unwrap()
            .finished_at(Answer::Refused, almost);
        let held = limit.try_start_at(start + HOLD);
        assert!(held.is_some());
        assert!(
            limit.try_start_at(start + HOLD).is_none(),
            "held by the later refusal"
        );
        drop(held);
        let later = almost + HOLD;
        let many: Vec<_> = (0..64).map(|_| limit.try_start_at(later)).collect();
        assert!(many.iter().all(Option::is_some), "back to the maximum");
        assert_eq!(limit.limit(), 64.0);
    }

    /// An idle gateway's successes say nothing about the tier's room: the
    /// limit does not grow while less than half of it is used.
    #[test]
    fn an_unused_limit_does_not_grow() {
        let limit = RenderLimit::new(64);
        let mut ten: Vec<_> = (0..10).map(|_| limit.try_start().unwrap()).collect();
        ten.pop().unwrap().finished(Answer::Refused);
        drop(ten);
        let lowered = limit.limit();
        assert!((lowered - 9.0).abs() < 1e-9, "{lowered}");
        for _ in 0..50 {
            limit.try_start().unwrap().finished(Answer::Taken);
        }
        assert_eq!(limit.limit(), lowered);
    }

    /// A limit of at most `max` lowered by `refusals` refusals of one
    /// render at a time by the tier, at `now`.
    fn learnt(max: usize, refusals: usize, now: Instant) -> RenderLimit {
        let limit = RenderLimit::new(max);
        for _ in 0..refusals {
            limit
                .try_start_at(now)
                .unwrap()
                .finished_at(Answer::Refused, now);
        }
        limit
    }

    /// The demand is the renders in flight plus the distinct requests
    /// refused here within DEMAND_WINDOW: a request resent counts once,
    /// one refused longer ago not at all.
    #[test]
    fn the_demand_counts_each_refused_request_once() {
        let now = Instant::now();
        let limit = RenderLimit::new(8);
        let _two: Vec<_> = (0..2).map(|_| limit.try_start_at(now).unwrap()).collect();
        for key in [1, 2, 2, 2, 3] {
            limit.note_refused_at(key, now);
        }
        let later = now + DEMAND_WINDOW / 2;
        limit.note_refused_at(4, later);
        assert_eq!(lock(&limit.state).demand(later), 2 + 4);
        let past = now + DEMAND_WINDOW;
        assert_eq!(
            lock(&limit.state).demand(past),
            2 + 1,
            "only key 4 is recent"
        );
    }

    /// Under a storm (far more distinct requests refused than the limit
    /// allows) renders the tier takes do not raise the limit; with a few
    /// requests beyond it they do.
    #[test]
    fn a_storm_holds_the_limit_a_few_more_raise_it() {
        let now = Instant::now();
        let storm = learnt(64, 30, now);
        let held = storm.limit();
        assert!(held < 3.0, "{held}");
        for round in 0..50u32 {
            let at = now + Duration::from_millis(u64::from(round));
            for key in 0..60 {
                storm.note_refused_at(key, at);
            }
            let busy: Vec<_> = std::iter::from_fn(|| storm.try_start_at(at)).collect();
            for permit in busy {
                permit.finished_at(Answer::Taken, at);
            }
        }
        assert_eq!(storm.limit(), held, "60 clients resending: no growth");

        let few = learnt(64, 30, now);
        for round in 0..50u32 {
            let at = now + Duration::from_millis(u64::from(round));
            for key in 0..2 {
                few.note_refused_at(key, at);
            }
            let busy: Vec<_> = std::iter::from_fn(|| few.try_start_at(at)).collect();
            for permit in busy {
                permit.finished_at(Answer::Taken, at);
            }
        }
        assert!(few.limit() > 4.0, "two more clients: {}", few.limit());
    }

    /// The threshold: about twice the limit, never under four.
    #[test]
    fn the_storm_threshold_is_about_twice_the_limit() {
        assert_eq!(storm_threshold(1.0), 4.0);
        assert_eq!(storm_threshold(2.7), 6.0);
        assert_eq!(storm_threshold(6.3), 14.0);
    }

    /// Refusals here do not hold a learnt limit: clients resending at once
    /// past a limit learnt from one refusal by the tier get the maximum
    /// back HOLD after it, however fast they resend.
    #[test]
    fn refusals_here_do_not_hold_the_limit() {
        let start = Instant::now();
        let limit = learnt(64, 30, start);
        assert_eq!(limit.limit(), MIN_LIMIT);
        let mut at = start;
        while at + Duration::from_millis(100) < start + HOLD {
            at += Duration::from_millis(100);
            let one = limit.try_start_at(at);
            assert!(one.is_some());
            assert!(limit.try_start_at(at).is_none(), "a second past the limit");
            limit.note_refused_at(7, at);
        }
        assert_eq!(limit.limit(), MIN_LIMIT, "learnt until HOLD");
        let after = start + HOLD;
        let many: Vec<_> = (0..64).map(|_| limit.try_start_at(after)).collect();
        assert!(many.iter().all(Option::is_some), "back to the maximum");
        assert_eq!(limit.limit(), 64.0);
    }

    /// A render started while the demand is a storm asks to start at once
    /// or be refused; one started with a few requests beyond the limit, or
    /// with none, does not.
    #[test]
    fn renders_started_in_a_storm_ask_to_start_now() {
        let now = Instant::now();
        let limit = learnt(64, 30, now);
        assert_eq!(limit.limit(), MIN_LIMIT);
        let calm = limit.try_start_at(now).unwrap();
        assert!(!calm.start_now(), "no demand beyond it");
        drop(calm);
        // Demand 1 + 3 refused = 4: the threshold of a limit of 1.
        for key in 0..3 {
            limit.note_refused_at(key, now);
        }
        let few = limit.try_start_at(now).unwrap();
        assert!(!few.start_now(), "a few requests beyond the limit");
        drop(few);
        limit.note_refused_at(3, now);
        let storm = limit.try_start_at(now).unwrap();
        assert!(storm.start_now(), "demand 5 past a threshold of 4");
        drop(storm);
        let later = now + DEMAND_WINDOW;
        assert!(
            !limit.try_start_at(later).unwrap().start_now(),
            "the refused requests forgotten: the storm is over"
        );
    }

    /// A learnt limit outlasts HOLD while the storm goes on, even with no
    /// refusal by the tier, and is back at the maximum HOLD after the storm
    /// ends.
    #[test]
    fn a_storm_keeps_the_limit_past_the_hold() {
        let start = Instant::now();
        let limit = learnt(64, 30, start);
        assert_eq!(limit.limit(), MIN_LIMIT);
        let mut at = start;
        while at < start + 3 * HOLD {
            at += Duration::from_millis(50);
            for key in 0..60 {
                limit.note_refused_at(key, at);
            }
            let one = limit.try_start_at(at);
            assert!(one.is_some());
            assert!(limit.try_start_at(at).is_none(), "still learnt at {at:?}");
        }
        assert_eq!(limit.limit(), MIN_LIMIT);
        // The storm ends: its requests are forgotten after DEMAND_WINDOW,
        // the hold renewed last runs out HOLD after it was renewed.
        let calm = at + HOLD;
        let many: Vec<_> = (0..64).map(|_| limit.try_start_at(calm)).collect();
        assert!(many.iter().all(Option::is_some), "back to the maximum");
        assert_eq!(limit.limit(), 64.0);
    }

    /// During a storm, a client refused again within DEMAND_WINDOW of its
    /// last refusal (it resent at once) is answered after the pace; its
    /// first refusal, a client back after the window, and any client while
    /// the demand is no storm are answered at once.
    #[test]
    fn clients_resending_in_a_storm_are_paced() {
        let now = Instant::now();
        let limit = learnt(64, 30, now);
        let _busy = limit.try_start_at(now).unwrap();
        assert_eq!(limit.note_refused_at(1, now), None, "a first refusal");
        assert_eq!(
            limit.note_refused_at(1, now),
            None,
            "resent, but demand 2 is no storm for a limit of 1"
        );
        for key in 2..60 {
            assert_eq!(
                limit.note_refused_at(key, now),
                None,
                "first refusal of {key}"
            );
        }
        let soon = now + Duration::from_millis(3);
        assert_eq!(
            limit.note_refused_at(7, soon),
            Some(REFUSAL_PACE),
            "resent at once in a storm"
        );
        let later = soon + DEMAND_WINDOW;
        for key in 100..160 {
            limit.note_refused_at(key, later);
        }
        assert_eq!(
            limit.note_refused_at(7, later),
            None,
            "back after the window: not a client resending at once"
        );
    }

    /// The requests remembered for the demand are bounded.
    #[test]
    fn the_demand_remembers_a_bounded_number() {
        let now = Instant::now();
        let limit = RenderLimit::new(8);
        for key in 0..(MAX_REMEMBERED as u64 + 100) {
            limit.note_refused_at(key, now);
        }
        assert_eq!(lock(&limit.state).refused_here.len(), MAX_REMEMBERED);
        let later = now + DEMAND_WINDOW;
        limit.note_refused_at(u64::MAX, later);
        assert_eq!(
            lock(&limit.state).demand(later),
            1,
            "the old ones forgotten"
        );
    }
}
