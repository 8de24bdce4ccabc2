//! A small in-process cache of host → Source lookups.
//!
//! Every image request needs its Source; asking the registry each time would
//! put it on the hot path. Answers are kept for a short TTL — long enough to
//! absorb bursts, short enough that Source edits (which bump the config
//! version in the cache key) show up within seconds. Unknown hosts are cached
//! too, so a flood of requests for a missing subdomain does not become a
//! flood of registry calls. The cache is bounded: when it is full, expired
//! entries go first, then the entry closest to expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imgmesh_proto::registry::v1::Source;

/// Default bound on the number of hosts remembered.
pub(crate) const DEFAULT_CAPACITY: usize = 10_000;

/// What the registry said about a host: its Source, or that it has none.
pub(crate) type Lookup = Option<Arc<Source>>;

/// Host → Source answers with a TTL, positive and negative alike.
#[derive(Debug)]
pub(crate) struct SourceCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    lookup: Lookup,
    expires_at: Instant,
}

// === impl SourceCache ===

impl SourceCache {
    /// A cache keeping each answer for `ttl` and at most `capacity` hosts.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> SourceCache {
        SourceCache {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached answer for `host` at `now`: `None` when there is none (or it
    /// expired), `Some(None)` when the host is known to have no Source.
    pub(crate) fn get(&self, host: &str, now: Instant) -> Option<Lookup> {
        let entries = self.lock();
        let entry = entries.get(host)?;
        (entry.expires_at > now).then(|| entry.lookup.clone())
    }

    /// Remembers the answer for `host` from `now` on.
    pub(crate) fn insert(&self, host: &str, lookup: Lookup, now: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(host) {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires_at)
                    .map(|(host, _)| host.clone());
                if let Some(soonest) = soonest {
                    entries.remove(&soonest);
                }
            }
        }
        entries.insert(
            host.to_owned(),
            Entry {
                lookup,
                expires_at: now + self.ttl,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated in
        // a way that matters for a cache, so keep using it.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(id: &str) -> Lookup {
        Some(Arc::new(Source {
            id: id.to_owned(),
            ..Source::default()
        }))
    }

    /// A positive answer is served until its TTL passes, then forgotten.
    #[test]
    fn positive_entries_expire() {
        let cache = SourceCache::new(Duration::from_secs(2), 10);
        let t0 = Instant::now();
        assert_eq!(cache.get("demo.localhost", t0), None);
        cache.insert("demo.localhost", source("src_1"), t0);
        let hit = cache.get("demo.localhost", t0 + Duration::from_millis(1999));
        assert_eq!(hit.flatten().unwrap().id, "src_1");
        assert_eq!(
            cache.get("demo.localhost", t0 + Duration::from_secs(2)),
            None
        );
    }

    /// "No such host" is remembered as well, for the same TTL.
    #[test]
    fn negative_entries_are_cached() {
        let cache = SourceCache::new(Duration::from_secs(2), 10);
        let t0 = Instant::now();
        cache.insert("nope.localhost", None, t0);
        assert_eq!(
            cache.get("nope.localhost", t0 + Duration::from_secs(1)),
            Some(None)
        );
        assert_eq!(
            cache.get("nope.localhost", t0 + Duration::from_secs(3)),
            None
        );
    }

    /// The cache never holds more than its capacity, evicting expired entries first, then the oldest.
    #[test]
    fn capacity_is_bounded() {
        let cache = SourceCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        cache.insert("a.localhost", source("a"), t0);
        cache.insert("b.localhost", source("b"), t0 + Duration::from_secs(1));
        cache.insert("c.localhost", None, t0 + Duration::from_secs(2));
        cache.insert("d.localhost", source("d"), t0 + Duration::from_secs(3));
        assert_eq!(cache.len(), 3);
        let now = t0 + Duration::from_secs(3);
        assert_eq!(cache.get("a.localhost", now), None, "oldest evicted");
        assert!(cache.get("b.localhost", now).is_some());
        assert!(cache.get("d.localhost", now).is_some());

        // Once b, c and d have expired, a new host drops all of them.
        let later = t0 + Duration::from_secs(14);
        cache.insert("e.localhost", source("e"), later);
        assert_eq!(cache.len(), 1);

        // Refreshing a host already present never evicts another.
        cache.insert("f.localhost", None, later);
        cache.insert("g.localhost", None, later);
        cache.insert("e.localhost", source("e2"), later);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("e.localhost", later).flatten().unwrap().id, "e2");
    }

    /// A zero TTL turns the cache off.
    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = SourceCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        cache.insert("demo.localhost", source("src_1"), t0);
        assert_eq!(cache.get("demo.localhost", t0), None);
    }
}
