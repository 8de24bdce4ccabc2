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
//! The cache is bounded: when it is full, entries past their stale window go
//! first, then the oldest answer.
//!
//! An answer outlives its TTL by a stale window (`--source-stale-seconds`):
//! when the registry is down or does not answer in time, the last answer it
//! gave for the host ([`SourceCache::get_stale`]) is served instead of a
//! 503, so known Sources keep serving through a registry outage. After such
//! a failure the stale answer counts as fresh again for one TTL (never past
//! its window), so a stuck registry costs one timed-out lookup per host and
//! TTL, not one per request.

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
        if self.source.deploy_state().status() != SourceStatus::Deployed {
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
    /// How long past its TTL an answer may still stand in for the registry.
    stale_window: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    lookup: Lookup,
    /// Until when the answer is served without asking the registry.
    expires_at: Instant,
    /// Until when it may be served while the registry fails: the stale
    /// window after the registry last answered.
    stale_until: Instant,
}

// === impl SourceCache ===

impl SourceCache {
    /// How long an answer is served without asking the registry.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A cache keeping each answer for `ttl` and at most `capacity` hosts.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> SourceCache {
        SourceCache {
            ttl,
            stale_window: Duration::ZERO,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The same cache keeping answers `window` past their TTL for
    /// [`SourceCache::get_stale`].
    pub(crate) fn with_stale_window(mut self, window: Duration) -> SourceCache {
        self.stale_window = window;
        self
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

    /// Whether a past answer for `host` could stand in at `now` (see
    /// [`SourceCache::get_stale`]); not counted as a lookup.
    pub(crate) fn has_stale(&self, host: &str, now: Instant) -> bool {
        self.lock()
            .get(host)
            .is_some_and(|entry| entry.stale_until > now)
    }

    /// The last answer for `host` when it is past its TTL but within its
    /// stale window at `now` — for when the registry failed to answer —
    /// counted as a `stale` source lookup. The answer is then served
    /// without asking the registry for one more TTL (never past its window).
    pub(crate) fn get_stale(&self, host: &str, now: Instant) -> Option<Lookup> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(host)
            .filter(|entry| entry.stale_until > now)?;
        entry.expires_at = (now + self.ttl).min(entry.stale_until);
        let lookup = entry.lookup.clone();
        drop(entries);
        METRICS.source_lookup(SourceLookup::Stale);
        Some(lookup)
    }

    /// Remembers the answer for `host` from `now` on.
    pub(crate) fn insert(&self, host: &str, lookup: Lookup, now: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(host) {
            entries.retain(|_, entry| entry.stale_until > now);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.stale_until)
                    .map(|(host, _)| host.clone());
                if let Some(soonest) = soonest {
                    entries.remove(&soonest);
                }
            }
        }
        // Only a real Source gets the stale window: anyone can make the
        // gateway remember unknown hosts, and a flood of those must not
        // outlive (and so push out) the Sources it should keep serving.
        let stale_window = match lookup {
            Lookup::Source(_) => self.stale_window,
            Lookup::Disabled | Lookup::Unknown => Duration::ZERO,
        };
        entries.insert(
            host.to_owned(),
            Entry {
                lookup,
                expires_at: now + self.ttl,
                stale_until: now + self.ttl + stale_window,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated in
        // a way that matters for a cache, so keep using it.
        imgmesh_runtime::lock(&self.entries)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::registry::v1::DeployState;

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
                deploy_state: Some(DeployState {
                    status: status.into(),
                    ..DeployState::default()
                }),
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

    /// Past its TTL an answer is no longer a hit, but stands in for a failing registry until its stale window ends.
    #[test]
    fn expired_entries_serve_stale_within_the_window() {
        let cache = SourceCache::new(Duration::from_secs(2), 10)
            .with_stale_window(Duration::from_secs(300));
        let t0 = Instant::now();
        cache.insert("demo.localhost", source("src_1"), t0);
        cache.insert("nope.localhost", Lookup::Unknown, t0);
        assert!(
            cache.get_stale("other.localhost", t0).is_none(),
            "never answered"
        );

        let expired = t0 + Duration::from_secs(3);
        assert!(cache.get("demo.localhost", expired).is_none());
        let stale = cache.get_stale("demo.localhost", expired);
        assert_eq!(cached_id(stale).as_deref(), Some("src_1"));
        // Negative answers get no stale window (see
        // `unknown_hosts_do_not_evict_known_sources`): past the TTL an
        // unknown host waits for the registry again.
        assert!(cache.get_stale("nope.localhost", expired).is_none());

        let window_over = t0 + Duration::from_secs(2 + 300);
        assert!(cache.get_stale("demo.localhost", window_over).is_none());
        assert!(cache.get("demo.localhost", window_over).is_none());
    }

    /// After serving stale, the answer counts as fresh for one TTL, but never past its stale window.
    #[test]
    fn serving_stale_backs_off_the_registry_for_one_ttl() {
        let cache =
            SourceCache::new(Duration::from_secs(2), 10).with_stale_window(Duration::from_secs(10));
        let t0 = Instant::now();
        cache.insert("demo.localhost", source("src_1"), t0);
        let failed_at = t0 + Duration::from_secs(5);
        assert!(cache.get_stale("demo.localhost", failed_at).is_some());
        let soon = failed_at + Duration::from_millis(1999);
        assert_eq!(
            cached_id(cache.get("demo.localhost", soon)).as_deref(),
            Some("src_1")
        );
        assert!(
            cache
                .get("demo.localhost", failed_at + Duration::from_secs(2))
                .is_none()
        );

        // Near the end of the window the back-off stops where the window does.
        let late = t0 + Duration::from_secs(11);
        assert!(cache.get_stale("demo.localhost", late).is_some());
        assert!(
            cache
                .get("demo.localhost", t0 + Duration::from_secs(12))
                .is_none()
        );
        assert!(
            cache
                .get_stale("demo.localhost", t0 + Duration::from_secs(12))
                .is_none()
        );
    }

    /// Without a stale window (the default) nothing is served past the TTL.
    #[test]
    fn no_stale_window_serves_nothing_stale() {
        let cache = SourceCache::new(Duration::from_secs(2), 10);
        let t0 = Instant::now();
        cache.insert("demo.localhost", source("src_1"), t0);
        assert!(
            cache
                .get_stale("demo.localhost", t0 + Duration::from_secs(2))
                .is_none()
        );
    }

    /// Stale entries still count against the capacity, and go first once their window is over.
    #[test]
    fn stale_entries_are_bounded_too() {
        let cache =
            SourceCache::new(Duration::from_secs(1), 2).with_stale_window(Duration::from_secs(10));
        let t0 = Instant::now();
        cache.insert("a.localhost", source("a"), t0);
        cache.insert("b.localhost", source("b"), t0 + Duration::from_secs(5));
        // a is expired but within its window: a third host evicts the oldest (a).
        cache.insert("c.localhost", source("c"), t0 + Duration::from_secs(6));
        assert_eq!(cache.len(), 2);
        let now = t0 + Duration::from_secs(6);
        assert!(cache.get_stale("a.localhost", now).is_none());
        assert!(cache.get_stale("b.localhost", now).is_some());
        // Once b's and c's windows are over, a new host drops both.
        cache.insert("d.localhost", source("d"), t0 + Duration::from_secs(30));
        assert_eq!(cache.len(), 1);
    }

    /// A flood of unknown hosts does not push a known Source out while its
    /// stale window lasts: negative answers get no stale window, so they
    /// are the ones evicted.
    #[test]
    fn unknown_hosts_do_not_evict_known_sources() {
        let cache =
            SourceCache::new(Duration::from_secs(1), 3).with_stale_window(Duration::from_secs(60));
        let t0 = Instant::now();
        cache.insert("shop.localhost", source("src_shop"), t0);
        for n in 0..50u64 {
            let at = t0 + Duration::from_millis(1500 + n * 10);
            cache.insert(&format!("nope{n}.localhost"), Lookup::Unknown, at);
        }
        assert_eq!(cache.len(), 3);
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            cached_id(cache.get_stale("shop.localhost", later)).as_deref(),
            Some("src_shop")
        );
        assert!(cache.get_stale("nope0.localhost", later).is_none());
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
