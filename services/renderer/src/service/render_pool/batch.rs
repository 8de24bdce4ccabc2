//! Renders of one original that wait for a worker together, run as one
//! batch (see [`super`], step 6).
//!
//! A render that may share a decode (from its plan:
//! [`may_share_a_decode`](crate::pipeline::render_set::may_share_a_decode))
//! waits for a worker in [`Batches`], under its original's key and with
//! its bytes. The first of them to get a worker *leads*: it takes the
//! others of the same key and bytes that are still waiting ([`Batches::gather`])
//! and renders them all on its worker with one decode
//! ([`render_batch`](crate::pipeline::render_set::render_batch)); each
//! taken render gets its own answer through its [`Waiting::answer`]. A
//! render of the same original still being fetched is *announced*
//! ([`Incoming`]), and a leader waits for it up to the batch window, so
//! that a srcset whose requests arrive together is batched even when a
//! worker is free for the first of them; a leader of an original whose
//! batch has just ended waits the linger for more of it, announced or not
//! ([`Batches::followed`]). While a leader of its original
//! gathers or runs its batch, a render that waits does not take a free
//! worker of its own ([`Batches::until_no_leader`]): a gathering leader
//! takes it; one whose batch runs already cannot, and the render waits for
//! that batch to end, then leads (or joins) the next batch of its original
//! with every other render of it that came too late meanwhile
//! ([`Batches::claim`] decides who leads, atomically). Without that, the
//! second of a srcset's widths to be fetched found the other worker free
//! and led a batch of its own, and on W6 widths that arrived while their
//! original's batch ran (the larger ones of the page: they arrive as that
//! batch's answers free the page's connections) led batches beside it as
//! workers came free.
//!
//! Renders of an original that do not join its batch are counted by
//! reason in `imgmesh_render_batch_refused_total`: `unshared` (its plan
//! cannot share the batch's decode: it cuts the original, or loads it
//! otherwise than the leader), `full` (the batch had its most renders),
//! `window` (still being fetched when the leader's window closed),
//! `running` (it started waiting after its original's batch had taken its
//! renders: it waits for that batch to end and needs another decode, in
//! the next batch of its original). The running memory refuses
//! none: a render whose share is not free joins all the same, and the
//! batch waits for its whole running memory before it starts
//! (`imgmesh_render_batch_memory_waits_total`). Left out, such a render
//! took a worker of its own and waited there for running memory, holding
//! what the others freed meanwhile, then decoded the original again: on
//! W6 every width of the progressive corpus JPEG (a batch of its renders
//! needs most of the running memory) was decoded on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::{Derivative, ResolvedPlan};

use super::{Admission, MemoryReservation};

/// The renders waiting for a worker that a batch may take, and the
/// renders announced before their fetch.
#[derive(Debug)]
pub(super) struct Batches {
    /// The most renders in one batch.
    max: usize,
    /// How long a leader waits for announced renders.
    window: Duration,
    /// How long a leader of an original whose batch has just ended waits
    /// for more renders of it.
    linger: Duration,
    state: Mutex<State>,
    /// Woken when a render starts waiting, an announced one stops being
    /// announced or a leader stops leading.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    waiting: Vec<Waiting>,
    /// Announced renders (being fetched) by key.
    incoming: HashMap<Arc<str>, usize>,
    /// The render leading a batch (gathering it or running it) on a
    /// worker now, by key: at most one of each key ([`Batches::claim`]);
    /// `true` once its batch has taken its renders and runs
    /// ([`Leading::runs`]).
    leading: HashMap<Arc<str>, bool>,
    /// When the last batch of each key ended, for those that ended less
    /// than a linger ago ([`Batches::followed`]).
    ended: HashMap<Arc<str>, Instant>,
    next_id: u64,
}

/// A render waiting for a worker, which a render of the same original may
/// take into its batch. It carries what it holds (its place and memory
/// reservation), so that these stay held while a batch renders it, even
/// after its caller has gone.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) id: u64,
    /// Its original's identity (Source, version, path, generation).
    pub(super) key: Arc<str>,
    pub(super) original: Vec<u8>,
    pub(super) plan: Arc<ResolvedPlan>,
    /// Its estimated peak memory ([`super::estimate_render_bytes`]).
    pub(super) estimated: u64,
    pub(super) deadline: Option<Instant>,
    /// Where a batch that took it sends its outcome.
    pub(super) answer: oneshot::Sender<Result<Derivative, RenderError>>,
    /// Dropped when a batch takes it: its caller then stops waiting for a
    /// worker of its own (else it would take the next free worker and hold
    /// it idle until its batch answers).
    pub(super) _taken: oneshot::Sender<()>,
    pub(super) admission: Admission,
    pub(super) reservation: MemoryReservation,
}

/// A render announced before its original's fetch: while it lives, a
/// leader of the same key waits (up to the window) for the render to join
/// its batch. Dropped when the render waits for a worker, or fails first.
#[derive(Debug)]
pub struct Incoming {
    batches: Arc<Batches>,
    key: Arc<str>,
}

/// A render leading its batch on a worker (registered by
/// [`Batches::claim`]); dropped when the batch ends, whether it ran or
/// failed first.
#[derive(Debug)]
pub(super) struct Leading {
    batches: Arc<Batches>,
    key: Arc<str>,
}

/// What a waiting render that got a worker does ([`Batches::claim`]).
#[derive(Debug)]
pub(super) enum Claim {
    /// It leads a batch of its original: out of the waiting renders.
    Lead(Box<Waiting>, Leading),
    /// A batch took it meanwhile: that batch answers.
    Taken,
    /// Another render of its original leads: it waits on for that batch
    /// (which takes it while gathering) or for the next.
    Behind,
}

// === impl Batches ===

impl Batches {
    /// Batches of at most `max` renders, whose leaders wait up to
    /// `window` for announced renders, and `linger` for more renders of an
    /// original whose batch has just ended.
    pub(super) fn new(max: usize, window: Duration, linger: Duration) -> Batches {
        Batches {
            max: max.max(1),
            window,
            linger,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    /// The most renders in one batch.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// How long a leader waits for announced renders.
    pub(super) fn window(&self) -> Duration {
        self.window
    }

    /// Announces a render of `key`'s original (see [`Incoming`]).
    pub(super) fn announce(self: &Arc<Self>, key: &str) -> Incoming {
        let key: Arc<str> = key.into();
        count_in(&mut self.lock().incoming, Arc::clone(&key));
        Incoming {
            batches: Arc::clone(self),
            key,
        }
    }

    /// Makes `waiting` (its `id` is set here) one that a batch may take;
    /// returns its id. A render that starts waiting while its original's
    /// batch runs has come too late for that batch: counted as refused for
    /// `running`.
    pub(super) fn wait(&self, mut waiting: Waiting) -> u64 {
        let (id, late) = {
            let mut state = self.lock();
            state.next_id += 1;
            waiting.id = state.next_id;
            let late = state.leading.get(&waiting.key) == Some(&true);
            state.waiting.push(waiting);
            (state.next_id, late)
        };
        if late {
            METRICS.render_batch_refused("running", 1);
        }
        self.changed.notify_waiters();
        id
    }

    /// Takes the waiting render `id` back, unless a batch took it.
    pub(super) fn withdraw(&self, id: u64) -> Option<Waiting> {
        let mut state = self.lock();
        let index = state.waiting.iter().position(|waiting| waiting.id == id)?;
        Some(state.waiting.remove(index))
    }

    /// How long a leader of an original whose batch has just ended waits
    /// for more renders of it.
    pub(super) fn linger(&self) -> Duration {
        self.linger
    }

    /// Whether a batch of `key` ended less than a linger ago: its callers,
    /// answered, may be sending more renders of the same original (a
    /// page's larger widths, sent as its smaller ones are answered).
    pub(super) fn followed(&self, key: &str) -> bool {
        self.lock()
            .ended
            .get(key)
            .is_some_and(|ended| ended.elapsed() < self.linger)
    }

    /// Whether other renders of `key` wait or are announced.
    pub(super) fn has_company(&self, key: &str) -> bool {
        let state = self.lock();
        state.incoming.contains_key(key) || state.waiting.iter().any(|waiting| *waiting.key == *key)
    }

    /// What the waiting render `id`, which got a worker, does: it leads a
    /// batch (taken out of the waiting renders and registered as leading
    /// until the [`Leading`] is dropped) unless a batch took it meanwhile
    /// or another render of its original leads. Decided under one lock, so
    /// that of the renders of one original that get workers at once only
    /// one leads (the others are taken into its batch, or wait for it).
    pub(super) fn claim(self: &Arc<Self>, id: u64) -> Claim {
        let mut state = self.lock();
        let Some(index) = state.waiting.iter().position(|waiting| waiting.id == id) else {
            return Claim::Taken;
        };
        if state.leading.contains_key(&*state.waiting[index].key) {
            return Claim::Behind;
        }
        let waiting = state.waiting.remove(index);
        state.leading.insert(Arc::clone(&waiting.key), false);
        let leading = Leading {
            batches: Arc::clone(self),
            key: Arc::clone(&waiting.key),
        };
        Claim::Lead(Box::new(waiting), leading)
    }

    /// Resolves once no render of `key` leads a batch (gathering or
    /// running it): a render of `key` that waits for a worker waits for
    /// this first. A gathering leader takes it; a running batch cannot,
    /// and a worker of its own would decode the original a second time
    /// beside that batch, while the renders of `key` that wait for the
    /// batch to end share the next decode.
    pub(super) async fn until_no_leader(&self, key: &str) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.lock().leading.contains_key(key) {
                return;
            }
            changed.await;
        }
    }

    /// Renders waiting now.
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Takes the renders waiting with `key` and the same `original` bytes
    /// for a batch led by another, oldest first, until the batch has
    /// [`Batches::max`] renders, each only if `fits` takes it (what `fits`
    /// gives goes with it); while renders of `key` are announced, waits for
    /// them until `until`, and with `linger` until `until` in any case.
    /// Renders whose caller has gone or whose deadline is too close to
    /// start are left to end their own wait.
    pub(super) async fn gather<M>(
        &self,
        key: &str,
        original: &[u8],
        until: Instant,
        linger: bool,
        mut fits: impl FnMut(&Waiting) -> Option<M>,
    ) -> Vec<(Waiting, M)> {
        let mut taken = Vec::new();
        // Renders of `key` that `fits` refused.
        let mut refused = Vec::new();
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so no change after the look is missed.
            changed.as_mut().enable();
            let announced = {
                let mut state = self.lock();
                let mut index = 0;
                while index < state.waiting.len() && taken.len() + 1 < self.max {
                    let waiting = &state.waiting[index];
                    let joins = *waiting.key == *key
                        && !waiting.answer.is_closed()
                        && !waiting.deadline.is_some_and(super::too_close)
                        && waiting.original == original;
                    if !joins {
                        index += 1;
                        continue;
                    }
                    match fits(waiting) {
                        Some(memory) => taken.push((state.waiting.remove(index), memory)),
                        None => {
                            if !refused.contains(&waiting.id) {
                                refused.push(waiting.id);
                            }
                            index += 1;
                        }
                    }
                }
                state.incoming.get(key).copied().unwrap_or(0)
            };
            if (announced == 0 && !linger) || taken.len() + 1 >= self.max {
                self.count_left_out(key, original, &refused, 0);
                return taken;
            }
            if tokio::time::timeout_at(until.into(), changed)
                .await
                .is_err()
            {
                let announced = self.lock().incoming.get(key).copied().unwrap_or(0);
                self.count_left_out(key, original, &refused, announced);
                return taken;
            }
        }
    }

    /// Counts the renders of `key` and `original` a batch that stopped
    /// gathering left out: those still waiting (`unshared` when `refused`
    /// holds them, else `full`: the batch was full) and `announced` still
    /// being fetched (`window`).
    fn count_left_out(&self, key: &str, original: &[u8], refused: &[u64], announced: usize) {
        let (mut unshared, mut full) = (0, 0);
        for waiting in &self.lock().waiting {
            if *waiting.key == *key && waiting.original == original {
                if refused.contains(&waiting.id) {
                    unshared += 1;
                } else {
                    full += 1;
                }
            }
        }
        METRICS.render_batch_refused("unshared", unshared);
        METRICS.render_batch_refused("full", full);
        METRICS.render_batch_refused("window", announced as u64);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        imgmesh_runtime::lock(&self.state)
    }
}

/// One more render of `key` in `counts` (announced).
fn count_in(counts: &mut HashMap<Arc<str>, usize>, key: Arc<str>) {
    *counts.entry(key).or_default() += 1;
}

/// One render of `key` fewer in `counts`; a key with none left is
/// forgotten, so the maps hold only originals in flight.
fn count_out(counts: &mut HashMap<Arc<str>, usize>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

// === impl Leading ===

impl Leading {
    /// Its batch has taken its renders (it runs, alone or not): a render
    /// of its original that starts waiting now has come too late for it.
    pub(super) fn runs(&self) {
        if let Some(running) = self.batches.lock().leading.get_mut(&self.key) {
            *running = true;
        }
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        {
            let mut state = self.batches.lock();
            state.leading.remove(&self.key);
            let (now, linger) = (Instant::now(), self.batches.linger);
            state
                .ended
                .retain(|_, ended| now.duration_since(*ended) < linger);
            state.ended.insert(Arc::clone(&self.key), now);
        }
        // The renders of its original that waited for it take workers again.
        self.batches.changed.notify_waiters();
    }
}

// === impl Incoming ===

impl Drop for Incoming {
    fn drop(&mut self) {
        count_out(&mut self.batches.lock().incoming, &self.key);
        self.batches.changed.notify_waiters();
    }
}
