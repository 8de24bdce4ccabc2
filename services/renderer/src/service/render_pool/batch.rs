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
//! worker is free for the first of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, oneshot};

use crate::error::RenderError;
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
    state: Mutex<State>,
    /// Woken when a render starts waiting or an announced one stops
    /// being announced.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    waiting: Vec<Waiting>,
    /// Announced renders (being fetched) by key.
    incoming: HashMap<Arc<str>, usize>,
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

// === impl Batches ===

impl Batches {
    /// Batches of at most `max` renders, whose leaders wait up to
    /// `window` for announced renders.
    pub(super) fn new(max: usize, window: Duration) -> Batches {
        Batches {
            max: max.max(1),
            window,
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
        *self.lock().incoming.entry(Arc::clone(&key)).or_default() += 1;
        Incoming {
            batches: Arc::clone(self),
            key,
        }
    }

    /// Makes `waiting` (its `id` is set here) one that a batch may take;
    /// returns its id.
    pub(super) fn wait(&self, mut waiting: Waiting) -> u64 {
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            waiting.id = state.next_id;
            state.waiting.push(waiting);
            state.next_id
        };
        self.changed.notify_waiters();
        id
    }

    /// Takes the waiting render `id` back, unless a batch took it.
    pub(super) fn withdraw(&self, id: u64) -> Option<Waiting> {
        let mut state = self.lock();
        let index = state.waiting.iter().position(|waiting| waiting.id == id)?;
        Some(state.waiting.remove(index))
    }

    /// Whether other renders of `key` wait or are announced.
    pub(super) fn has_company(&self, key: &str) -> bool {
        let state = self.lock();
        state.incoming.contains_key(key) || state.waiting.iter().any(|waiting| *waiting.key == *key)
    }

    /// Renders waiting now.
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Takes the renders waiting with `key` and the same `original` bytes
    /// for a batch led by another, oldest first, until the batch has
    /// [`Batches::max`] renders, each only if `fits` gives it its share of
    /// the running memory; while renders of `key` are announced, waits for
    /// them until `until`. Renders whose caller has gone or whose deadline
    /// is too close to start are left to end their own wait.
    pub(super) async fn gather(
        &self,
        key: &str,
        original: &[u8],
        until: Instant,
        mut fits: impl FnMut(&Waiting) -> Option<OwnedSemaphorePermit>,
    ) -> Vec<(Waiting, OwnedSemaphorePermit)> {
        let mut taken = Vec::new();
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
                    match joins.then(|| fits(waiting)).flatten() {
                        Some(memory) => taken.push((state.waiting.remove(index), memory)),
                        None => index += 1,
                    }
                }
                state.incoming.get(key).copied().unwrap_or(0)
            };
            if announced == 0 || taken.len() + 1 >= self.max {
                return taken;
            }
            if tokio::time::timeout_at(until.into(), changed)
                .await
                .is_err()
            {
                return taken;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// === impl Incoming ===

impl Drop for Incoming {
    fn drop(&mut self) {
        {
            let mut state = self.batches.lock();
            if let Some(count) = state.incoming.get_mut(&self.key) {
                *count -= 1;
                if *count == 0 {
                    state.incoming.remove(&self.key);
                }
            }
        }
        self.batches.changed.notify_waiters();
    }
}
