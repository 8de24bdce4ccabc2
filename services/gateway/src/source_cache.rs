//! A small in-process cache of host → Source lookups.
//!
//! Every image request needs its Source; asking the registry each time would
//! put it on the hot path. Answers are kept for a short TTL — long enough to
//! absorb bursts, short enough that Source edits (which bump the config
//! version in the cache key), state changes and token rotations show up
//! within seconds. Unknown and disabled hosts are cached too, so a flood of
//! requests for a missing subdomain or custom domain does not become a flood
//! of registry calls. Subdomain hosts (under the base domain) and custom
//! domains (outside it) never share a name, so the host alone is the key.
//! The cache is bounded: when it is full, expired entries go first, then the
//! entry closest to expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imgmesh_proto::registry::v1::{Source, SourceStatus};

use crate::metrics::{METRICS, SourceLookup};
use crate::signing::SigningKey;

/// Default bound on the number of hosts remembered.
pub(crate) const DEFAULT_CAPACITY: usize = 10_000;

/// What the registry said about a host.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// A Source has the host (in whatever state: see [`ResolvedSource::serving`]).
    Source(Arc<ResolvedSource>),
    /// The registry refused the host because its Source is disabled.
    Disabled,
    /// No Source has the host.
    Unknown,
}

/// A Source as the gateway serves it: its settings and the tokens its
/// `s` signatures may be made with.
#[derive(Debug)]
pub(crate) struct ResolvedSource {
    /// The Source's settings.
    pub(crate) source: Source,
    /// Tokens accepted for signatures (used when `secure_url_enabled`).
    pub(crate) signing_keys: Vec<SigningKey>,
}

/// Whether a resolved Source may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serving {
    /// Deployed and enabled.
    Yes,
    /// Never (successfully) deployed: answered exactly like an unknown host.
    NotDeployed,
    /// Deployed but disabled: 410 Gone.
    Disabled,
}

// === impl ResolvedSource ===

impl ResolvedSource {
    /// Whether the Source serves. A Source that is not deployed is not
    /// revealed, even when it is also disabled.
    pub(crate) fn serving(&self) -> Serving {
        if self.source.status() != SourceStatus::Deployed {
            Serving::NotDeployed
        } else if !self.source.enabled {
            Serving::Disabled
        } else {
            Serving::Yes
        }
    }
}

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

    /// The cached answer for `host` at `now`, or `None` when there is none
    /// (or it expired); counted as a `source` tier hit or miss.
    pub(crate) fn get(&self, host: &str, now: Instant) -> Option<Lookup> {
        let found = self
            .lock()
            .get(host)
            .filter(|entry| entry.expires_at > now)
            .map(|entry| entry.lookup.clone());
        METRICS.source_lookup(if found.is_some() {
            SourceLookup::Hit
        } else {
            SourceLookup::Miss
        });
        found
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
        Lookup::Source(Arc::new(ResolvedSource {
            source: Source {
                id: id.to_owned(),
                ..Source::default()
            },
            signing_keys: vec![],
        }))
    }

    /// The Source id of a cached answer, `Some("")` for a cached "unknown".
    fn cached_id(lookup: Option<Lookup>) -> Option<String> {
        match lookup? {
            Lookup::Source(resolved) => Some(resolved.source.id.clone()),
            Lookup::Disabled => Some("(disabled)".to_owned()),
            Lookup::Unknown => Some(String::new()),
        }
    }

    /// A positive answer is served until its TTL passes, then forgotten.
    #[test]
    fn positive_entries_expire() {
        let cache = SourceCache::new(Duration::from_secs(2), 10);
        let t0 = Instant::now();
        assert!(cache.get("demo.localhost", t0).is_none());
        cache.insert("demo.localhost", source("src_1"), t0);
        let hit = cache.get("demo.localhost", t0 + Duration::from_millis(1999));
        assert_eq!(cached_id(hit).as_deref(), Some("src_1"));
        assert!(
            cache
                .get("demo.localhost", t0 + Duration::from_secs(2))
                .is_none()
        );
    }

    /// "No such host" and "disabled" are remembered as well, for the same TTL.
    #[test]
    fn negative_entries_are_cached() {
        let cache = SourceCache::new(Duration::from_secs(2), 10);
        let t0 = Instant::now();
        cache.insert("nope.localhost", Lookup::Unknown, t0);
        cache.insert("off.example.com", Lookup::Disabled, t0);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            cached_id(cache.get("nope.localhost", later)).as_deref(),
            Some("")
        );
        assert_eq!(
            cached_id(cache.get("off.example.com", later)).as_deref(),
            Some("(disabled)")
        );
        assert!(
            cache
                .get("nope.localhost", t0 + Duration::from_secs(3))
                .is_none()
        );
    }

    /// Only a deployed, enabled Source serves; an undeployed one is hidden even when disabled.
    #[test]
    fn serving_states() {
        let resolved = |status: SourceStatus, enabled: bool| ResolvedSource {
            source: Source {
                status: status.into(),
                enabled,
                ..Source::default()
            },
            signing_keys: vec![],
        };
        let cases = [
            (SourceStatus::Deployed, true, Serving::Yes),
            (SourceStatus::Deployed, false, Serving::Disabled),
            (SourceStatus::Pending, true, Serving::NotDeployed),
            (SourceStatus::Pending, false, Serving::NotDeployed),
            (SourceStatus::Deploying, true, Serving::NotDeployed),
            (SourceStatus::Failed, true, Serving::NotDeployed),
            (SourceStatus::Unspecified, true, Serving::NotDeployed),
        ];
        for (status, enabled, want) in cases {
            assert_eq!(
                resolved(status, enabled).serving(),
                want,
                "{status:?} enabled={enabled}"
            );
        }
    }

    /// The cache never holds more than its capacity, evicting expired entries first, then the oldest.
    #[test]
    fn capacity_is_bounded() {
        let cache = SourceCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        cache.insert("a.localhost", source("a"), t0);
        cache.insert("b.localhost", source("b"), t0 + Duration::from_secs(1));
        cache.insert("c.localhost", Lookup::Unknown, t0 + Duration::from_secs(2));
        cache.insert("d.localhost", source("d"), t0 + Duration::from_secs(3));
        assert_eq!(cache.len(), 3);
        let now = t0 + Duration::from_secs(3);
        assert!(cache.get("a.localhost", now).is_none(), "oldest evicted");
        assert!(cache.get("b.localhost", now).is_some());
        assert!(cache.get("d.localhost", now).is_some());

        // Once b, c and d have expired, a new host drops all of them.
        let later = t0 + Duration::from_secs(14);
        cache.insert("e.localhost", source("e"), later);
        assert_eq!(cache.len(), 1);

        // Refreshing a host already present never evicts another.
        cache.insert("f.localhost", Lookup::Unknown, later);
        cache.insert("g.localhost", Lookup::Unknown, later);
        cache.insert("e.localhost", source("e2"), later);
        assert_eq!(cache.len(), 3);
        assert_eq!(
            cached_id(cache.get("e.localhost", later)).as_deref(),
            Some("e2")
        );
    }

    /// A zero TTL turns the cache off.
    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = SourceCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        cache.insert("demo.localhost", source("src_1"), t0);
        assert!(cache.get("demo.localhost", t0).is_none());
    }
}
