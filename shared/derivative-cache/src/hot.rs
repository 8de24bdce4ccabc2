//! A small in-process copy of hot entries, for readers that serve the same
//! derivatives over and over (the gateway).
//!
//! A copy is used only while it is fresh, and only when one of two things
//! vouches that no purge touched it since it was read:
//!
//! - **the purge feed** (see `feed`): while this process is subscribed to
//!   the purge channel, every purge reaches it as a message naming the
//!   counter it bumped, and the copies depending on that counter are dropped
//!   at once. A copy read while the feed was up, with no purge message
//!   arriving between the start of its read and its insertion, is
//!   *trusted*: served without asking Redis, for at most the trust age (a
//!   safety net for purges made without a message, e.g. by an older
//!   renderer during an upgrade). Losing the feed drops every copy; so does
//!   each message's counter for the copies it covers.
//! - **Redis**, in the same round trip as always: the path's purge counters
//!   and the Source's epoch still have the values the copy was read under.
//!   An untrusted copy (no feed, or past its trust age) is used only so;
//!   the confirmation makes it trusted again when the feed allows.
//!
//! The start-of-read sequence closes the race between a read and a purge:
//! a purge applied after the read started publishes its message after the
//! read was sent, so the message bumps the sequence before (or while) the
//! copy is inserted, under the same lock, and the copy is not trusted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::entry::CachedDerivative;
use crate::metrics::HOT;

/// Entries by key, within a byte budget.
#[derive(Debug)]
pub(crate) struct HotEntries {
    capacity_bytes: usize,
    /// How long a copy is served on the feed's word alone; zero never
    /// trusts a copy (every use is confirmed by Redis).
    trust_for: Duration,
    entries: Mutex<State>,
}

/// One held copy.
#[derive(Debug)]
pub(crate) struct HotCopy {
    /// The entry.
    pub(crate) entry: Arc<CachedDerivative>,
    /// The purge counters the copy's key depends on (their names).
    generations: Arc<[String]>,
    /// The Source's epoch when the copy was read (see `keys::epoch_key`).
    pub(crate) epoch: u64,
    /// Until when the feed vouches for the copy, if it does.
    trusted_until: Option<Instant>,
}

/// A copy found under a key, and whether it may be served without Redis.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The entry.
    pub(crate) entry: Arc<CachedDerivative>,
    /// The Source's epoch when the copy was read.
    pub(crate) epoch: u64,
    /// The feed vouches for it now: serve it as it is.
    pub(crate) trusted: bool,
}

#[derive(Debug, Default)]
struct State {
    by_key: HashMap<String, HotCopy>,
    bytes: usize,
    /// Bumped by every purge message and every change of the feed.
    sequence: u64,
    /// Whether the purge feed is subscribed now.
    subscribed: bool,
}

// === impl HotEntries ===

impl HotEntries {
    /// At most `capacity_bytes` of entries (0 keeps nothing), each trusted
    /// on the purge feed's word for at most `trust_for`.
    pub(crate) fn new(capacity_bytes: usize, trust_for: Duration) -> HotEntries {
        if capacity_bytes > 0 {
            HOT.set(0, 0, capacity_bytes);
        }
        HotEntries {
            capacity_bytes,
            trust_for,
            entries: Mutex::new(State::default()),
        }
    }

    /// Whether copies may ever be trusted (a feed is worth following).
    pub(crate) fn trusts(&self) -> bool {
        self.capacity_bytes > 0 && !self.trust_for.is_zero()
    }

    /// The sequence to pass to [`HotEntries::insert`] and
    /// [`HotEntries::confirm`]: read it before the Redis read starts.
    pub(crate) fn sequence(&self) -> u64 {
        self.lock().sequence
    }

    /// The copy under `key`, if one is held.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Held> {
        if self.capacity_bytes == 0 {
            return None;
        }
        let state = self.lock();
        let copy = state.by_key.get(key)?;
        Some(Held {
            entry: copy.entry.clone(),
            epoch: copy.epoch,
            trusted: state.subscribed && copy.trusted_until.is_some_and(|until| now < until),
        })
    }

    /// Keeps a copy of `entry`, read from Redis under `key` (whose purge
    /// counters are `generations`) at the Source's `epoch`, making room by
    /// dropping others (in no particular order: hot entries come straight
    /// back). It is trusted when the feed was up and no purge message came
    /// since `sequence` was read.
    pub(crate) fn insert(
        &self,
        key: &str,
        entry: &CachedDerivative,
        generations: &[String],
        epoch: u64,
        sequence: u64,
    ) {
        let size = entry.data.len() + key.len();
        // One entry may not take more than a quarter of the budget.
        if size > self.capacity_bytes / 4 {
            return;
        }
        let mut state = self.lock();
        if let Some(previous) = state.by_key.remove(key) {
            state.bytes -= previous.entry.data.len() + key.len();
        }
        while state.bytes + size > self.capacity_bytes {
            let Some(victim) = state.by_key.keys().next().cloned() else {
                break;
            };
            if let Some(dropped) = state.by_key.remove(&victim) {
                state.bytes -= dropped.entry.data.len() + victim.len();
            }
        }
        let trusted_until = self.trust_from(&state, sequence);
        state.bytes += size;
        state.by_key.insert(
            key.to_owned(),
            HotCopy {
                entry: Arc::new(entry.clone()),
                generations: generations.into(),
                epoch,
                trusted_until,
            },
        );
        self.report(&state);
    }

    /// Redis confirmed the copy under `key` in a read that started at
    /// `sequence`: trust it again when the feed allows.
    pub(crate) fn confirm(&self, key: &str, sequence: u64) {
        let mut state = self.lock();
        let trusted_until = self.trust_from(&state, sequence);
        if let Some(copy) = state.by_key.get_mut(key) {
            copy.trusted_until = trusted_until;
        }
    }

    /// Until when a copy read in a read that started at `sequence` may be
    /// trusted, given `state`.
    fn trust_from(&self, state: &State, sequence: u64) -> Option<Instant> {
        (self.trusts() && state.subscribed && state.sequence == sequence)
            .then(|| Instant::now() + self.trust_for)
    }

    /// Drops the copy under `key`.
    pub(crate) fn remove(&self, key: &str) {
        let mut state = self.lock();
        if let Some(dropped) = state.by_key.remove(key) {
            state.bytes -= dropped.entry.data.len() + key.len();
            self.report(&state);
        }
    }

    /// A purge bumped the counter `generation_key`: drops every copy whose
    /// key depends on it. Returns how many were dropped.
    pub(crate) fn purged(&self, generation_key: &str) -> usize {
        let mut state = self.lock();
        state.sequence += 1;
        let before = state.by_key.len();
        let mut freed = 0;
        state.by_key.retain(|key, copy| {
            let keep = !copy.generations.iter().any(|name| name == generation_key);
            if !keep {
                freed += copy.entry.data.len() + key.len();
            }
            keep
        });
        state.bytes -= freed;
        let dropped = before - state.by_key.len();
        if dropped > 0 {
            self.report(&state);
        }
        dropped
    }

    /// The feed is subscribed: copies read from now on may be trusted.
    pub(crate) fn feed_up(&self) {
        let mut state = self.lock();
        state.sequence += 1;
        state.subscribed = true;
    }

    /// The feed is lost: purges may go unseen, so every copy goes.
    pub(crate) fn feed_lost(&self) {
        let mut state = self.lock();
        state.sequence += 1;
        state.subscribed = false;
        state.by_key.clear();
        state.bytes = 0;
        self.report(&state);
    }

    /// Sets the hot cache gauges to what `state` holds.
    fn report(&self, state: &State) {
        HOT.set(state.bytes, state.by_key.len(), self.capacity_bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::tests::sample;

    const TRUST: Duration = Duration::from_secs(60);

    fn sized(bytes: usize) -> CachedDerivative {
        CachedDerivative {
            data: Bytes::from(vec![1u8; bytes]),
            ..sample()
        }
    }

    fn counters(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Entries come back until the budget forces others out; oversized ones
    /// are never kept; a zero budget keeps nothing.
    #[test]
    fn held_within_the_budget() {
        let hot = HotEntries::new(10_000, TRUST);
        let now = Instant::now();
        let g = counters(&["g"]);
        hot.insert("a", &sized(2_000), &g, 1, 0);
        hot.insert("b", &sized(2_000), &g, 1, 0);
        assert!(hot.get("a", now).is_some() && hot.get("b", now).is_some());
        for key in ["c", "d", "e", "f"] {
            hot.insert(key, &sized(2_000), &g, 1, 0);
        }
        assert!(hot.lock().bytes <= 10_000);
        assert_eq!(hot.lock().by_key.len(), 4);
        hot.insert("huge", &sized(3_000), &g, 1, 0);
        assert!(hot.get("huge", now).is_none());
        hot.insert("c", &sized(100), &g, 1, 0);
        assert_eq!(hot.get("c", now).unwrap().entry.data.len(), 100);
        hot.remove("c");
        assert!(hot.get("c", now).is_none());

        let off = HotEntries::new(0, TRUST);
        off.insert("a", &sized(1), &g, 1, 0);
        assert!(off.get("a", now).is_none());
    }

    /// A copy is trusted only when it was read while the feed was up, with
    /// no purge message between the read's start and its insertion, and
    /// only within the trust age; Redis's confirmation trusts it again.
    #[test]
    fn trust_needs_the_feed_and_a_quiet_read() {
        let hot = HotEntries::new(1 << 20, TRUST);
        let g = counters(&["g:src", "g:asset"]);
        let now = Instant::now();
        let before_feed = hot.sequence();
        hot.insert("early", &sized(10), &g, 1, before_feed);
        assert!(!hot.get("early", now).unwrap().trusted, "no feed yet");

        hot.feed_up();
        let started = hot.sequence();
        hot.insert("quiet", &sized(10), &g, 1, started);
        assert!(hot.get("quiet", Instant::now()).unwrap().trusted);
        assert!(
            !hot.get("quiet", Instant::now() + TRUST + Duration::from_millis(1))
                .unwrap()
                .trusted,
            "past the trust age"
        );

        // A purge of another asset lands while this copy is being read: it
        // is kept, but not trusted until Redis confirms it.
        let started = hot.sequence();
        assert_eq!(hot.purged("g:other"), 0);
        hot.insert("raced", &sized(10), &g, 1, started);
        assert!(!hot.get("raced", Instant::now()).unwrap().trusted);
        hot.confirm("raced", hot.sequence());
        assert!(hot.get("raced", Instant::now()).unwrap().trusted);
        // A confirmation whose read raced a purge does not trust.
        hot.confirm("early", started);
        assert!(!hot.get("early", Instant::now()).unwrap().trusted);

        let never = HotEntries::new(1 << 20, Duration::ZERO);
        never.feed_up();
        never.insert("a", &sized(10), &g, 1, never.sequence());
        assert!(!never.get("a", Instant::now()).unwrap().trusted);
        assert!(!never.trusts());
    }

    /// A purge message drops exactly the copies depending on its counter,
    /// and losing the feed drops every copy and trusts none until it is
    /// back.
    #[test]
    fn purges_and_feed_loss_drop_copies() {
        let hot = HotEntries::new(1 << 20, TRUST);
        hot.feed_up();
        let cat = counters(&["g:src", "g:p:a/", "g:cat"]);
        let dog = counters(&["g:src", "g:p:b/", "g:dog"]);
        let other = counters(&["g:other", "g:cow"]);
        let insert_all = || {
            for (key, generations) in [("cat", &cat), ("dog", &dog), ("cow", &other)] {
                hot.insert(key, &sized(10), generations, 1, hot.sequence());
            }
        };
        let held = |key: &str| hot.get(key, Instant::now()).is_some();
        insert_all();
        assert_eq!(hot.purged("g:cat"), 1);
        assert!(!held("cat") && held("dog") && held("cow"));
        assert_eq!(hot.purged("g:p:b/"), 1);
        assert!(!held("dog") && held("cow"));
        insert_all();
        assert_eq!(hot.purged("g:src"), 2);
        assert!(!held("cat") && !held("dog") && held("cow"));
        assert_eq!(hot.lock().bytes, 10 + "cow".len());

        insert_all();
        hot.feed_lost();
        assert!(!held("cat") && !held("dog") && !held("cow"));
        assert_eq!(hot.lock().bytes, 0);
        hot.insert("cat", &sized(10), &cat, 1, hot.sequence());
        assert!(!hot.get("cat", Instant::now()).unwrap().trusted);
        hot.feed_up();
        hot.confirm("cat", hot.sequence());
        assert!(hot.get("cat", Instant::now()).unwrap().trusted);
    }
}
