//! A bounded in-memory cache of recently read originals, and coalescing of
//! concurrent reads of one object.
//!
//! Renders of one hot original (a hero image in many sizes, a burst of cold
//! requests for a new page) would otherwise each read the whole object from
//! S3. Entries are keyed by Source, Source config version and S3 key; an
//! entry younger than `fresh_for` is served as is, an older one is handed to
//! the loader so it can revalidate with the stored ETag instead of reading
//! the body again. Concurrent loads of one key share a single origin read.
//! The cache is bounded by the bytes it holds, evicting least recently used
//! entries first; a copy under a newer purge generation or config version
//! replaces the object's older copy at once. Every lookup is counted in
//! `imgmesh_cache_lookups_total{tier="original"}` as a `hit` (fresh entry),
//! `stale` (entry to revalidate) or `miss`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::metrics::{LookupCounters, METRICS};
use crate::s3_client::OriginCaching;

/// Identifies one original: the Source, its config version (a changed
/// Source never sees its old objects) and the full S3 key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OriginalKey {
    pub(crate) source_id: String,
    pub(crate) config_version: u64,
    pub(crate) key: String,
    /// The caller's cache generation token (see `FetchObjectRequest`): a
    /// purge changes it, so a purged path never reuses a cached copy.
    pub(crate) generation: String,
}

/// An original read in full, with what the origin said about it.
#[derive(Debug)]
pub(crate) struct CachedOriginal {
    /// The object's bytes.
    pub(crate) body: Bytes,
    /// Content-Type the origin reported.
    pub(crate) content_type: String,
    /// ETag the origin reported (with its quotes).
    pub(crate) etag: String,
    /// Last-Modified, Unix seconds; 0 when unknown.
    pub(crate) last_modified: i64,
    /// What the origin said about caching it.
    pub(crate) caching: OriginCaching,
    /// When the copy started its current freshness period: the origin's
    /// last confirmation, or — for a copy served because the origin failed
    /// (see `fetch_object::StaleIfError`) — a time set so that it stays
    /// fresh only until the origin is worth asking again.
    pub(crate) validated_at: Instant,
    /// When the origin last confirmed these bytes; bounds how long a copy
    /// may be served while the origin fails.
    pub(crate) confirmed_at: Instant,
}

/// How a lookup was answered, for spans and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A fresh entry; the origin was not asked.
    Hit,
    /// This call ran the loader.
    Loaded,
    /// Another call's load was shared.
    Coalesced,
}

// === impl Lookup ===

impl Lookup {
    /// A short name for span fields.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Loaded => "loaded",
            Lookup::Coalesced => "coalesced",
        }
    }
}

type Load<E> = Arc<OnceCell<Result<Arc<CachedOriginal>, E>>>;

/// The cache; cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct OriginalCache<E> {
    capacity_bytes: u64,
    fresh_for: Duration,
    entries: Mutex<Entries>,
    in_flight: Mutex<HashMap<OriginalKey, Load<E>>>,
    lookups: LookupCounters,
}

/// LRU bookkeeping: entries with their last-use tick, and ticks in order;
/// and, per object (Source and S3 key), the key of its newest copy.
#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<OriginalKey, (Arc<CachedOriginal>, u64)>,
    by_use: BTreeMap<u64, OriginalKey>,
    newest: HashMap<(String, String), OriginalKey>,
    bytes: u64,
    tick: u64,
}

// === impl OriginalCache ===

impl<E: Clone> OriginalCache<E> {
    /// A cache holding at most `capacity_bytes` of originals, each served
    /// without revalidation for `fresh_for` after the origin confirmed it.
    /// A capacity of 0 turns caching off (loads are still coalesced).
    pub(crate) fn new(capacity_bytes: u64, fresh_for: Duration) -> OriginalCache<E> {
        METRICS.original_cache_held(0, capacity_bytes);
        OriginalCache {
            capacity_bytes,
            fresh_for,
            entries: Mutex::new(Entries::default()),
            in_flight: Mutex::new(HashMap::new()),
            lookups: METRICS.original_lookups(),
        }
    }

    /// The original for `key`: a fresh cached entry, or the result of
    /// `load`, which receives the stale entry (if any) so it can revalidate.
    /// Concurrent calls for one key run `load` once and share its result;
    /// if the loading call is dropped, a waiting call takes over.
    pub(crate) async fn get_or_load<F, Fut>(
        &self,
        key: &OriginalKey,
        load: F,
    ) -> Result<(Arc<CachedOriginal>, Lookup), E>
    where
        F: FnOnce(Option<Arc<CachedOriginal>>) -> Fut,
        Fut: Future<Output = Result<Arc<CachedOriginal>, E>>,
    {
        let stale = match self.lookup(key, Instant::now()) {
            Some(Ok(fresh)) => return Ok((fresh, Lookup::Hit)),
            Some(Err(stale)) => Some(stale),
            None => None,
        };
        let cell = self
            .in_flight
            .lock()
            .expect("in-flight lock")
            .entry(key.clone())
            .or_default()
            .clone();
        let mut ran_loader = false;
        let result = cell
            .get_or_init(|| {
                ran_loader = true;
                load(stale)
            })
            .await
            .clone();
        if ran_loader {
            self.finish_load(key, &cell, &result);
        }
        let how = if ran_loader {
            Lookup::Loaded
        } else {
            Lookup::Coalesced
        };
        result.map(|original| (original, how))
    }

    /// How long an entry is served without asking the origin.
    pub(crate) fn fresh_for(&self) -> Duration {
        self.fresh_for
    }

    /// Bytes currently held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.entries.lock().expect("entries lock").bytes
    }

    /// Whether a copy of `key` is held, fresh or stale (not counted as a
    /// lookup, and not marking it used).
    pub(crate) fn holds(&self, key: &OriginalKey) -> bool {
        self.entries
            .lock()
            .expect("entries lock")
            .by_key
            .contains_key(key)
    }

    /// `Some(Ok(_))` for a fresh entry, `Some(Err(_))` for a stale one;
    /// counted as a hit, stale or miss.
    #[allow(clippy::type_complexity)]
    fn lookup(
        &self,
        key: &OriginalKey,
        now: Instant,
    ) -> Option<Result<Arc<CachedOriginal>, Arc<CachedOriginal>>> {
        let mut entries = self.entries.lock().expect("entries lock");
        let Some(original) = entries.touch(key) else {
            self.lookups.miss.inc();
            return None;
        };
        let age = now.saturating_duration_since(original.validated_at);
        Some(if age <= self.fresh_for {
            self.lookups.hit.inc();
            Ok(original)
        } else {
            self.lookups.stale.inc();
            Err(original)
        })
    }

    /// Stores a successful load and retires the in-flight entry, so the
    /// next miss loads afresh.
    fn finish_load(
        &self,
        key: &OriginalKey,
        cell: &Load<E>,
        result: &Result<Arc<CachedOriginal>, E>,
    ) {
        if let Ok(original) = result {
            self.insert(key, original.clone());
        }
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if in_flight
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, cell))
        {
            in_flight.remove(key);
        }
    }

    fn insert(&self, key: &OriginalKey, original: Arc<CachedOriginal>) {
        let size = original.body.len() as u64;
        // One object may not take more than an eighth of the cache, so a
        // single huge original cannot flush everything else.
        if size > self.capacity_bytes / 8 {
            return;
        }
        let mut entries = self.entries.lock().expect("entries lock");
        entries.remove(key);
        entries.push(key.clone(), original);
        while entries.bytes > self.capacity_bytes {
            if !entries.evict_oldest() {
                break;
            }
        }
        METRICS.original_cache_held(entries.bytes, self.capacity_bytes);
    }
}

// === impl Entries ===

impl Entries {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The entry for `key`, marked as just used.
    fn touch(&mut self, key: &OriginalKey) -> Option<Arc<CachedOriginal>> {
        let tick = self.next_tick();
        let (original, used) = self.by_key.get_mut(key)?;
        let previous = std::mem::replace(used, tick);
        let original = original.clone();
        self.by_use.remove(&previous);
        self.by_use.insert(tick, key.clone());
        Some(original)
    }

    /// Adds `key`'s copy. A copy of the same object under another
    /// generation or config version is dropped: a purge or a Source change
    /// made it, and no caller asks for it again (a request still in flight
    /// under the old one only misses). Without this, every purge left its
    /// object's old copy in memory until the LRU reached it.
    fn push(&mut self, key: OriginalKey, original: Arc<CachedOriginal>) {
        let object = (key.source_id.clone(), key.key.clone());
        if let Some(superseded) = self.newest.insert(object, key.clone())
            && superseded != key
        {
            self.remove(&superseded);
        }
        let tick = self.next_tick();
        self.bytes += original.body.len() as u64;
        self.by_use.insert(tick, key.clone());
        self.by_key.insert(key, (original, tick));
    }

    fn remove(&mut self, key: &OriginalKey) {
        if let Some((original, used)) = self.by_key.remove(key) {
            self.by_use.remove(&used);
            self.bytes -= original.body.len() as u64;
            self.forget_newest(key);
        }
    }

    /// Drops the least recently used entry; `false` when empty.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, key)) = self.by_use.pop_first() else {
            return false;
        };
        if let Some((original, _)) = self.by_key.remove(&key) {
            self.bytes -= original.body.len() as u64;
            self.forget_newest(&key);
        }
        true
    }

    /// Forgets `key` as its object's newest copy, if it is.
    fn forget_newest(&mut self, key: &OriginalKey) {
        let object = (key.source_id.clone(), key.key.clone());
        if self.newest.get(&object) == Some(key) {
            self.newest.remove(&object);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn key(name: &str) -> OriginalKey {
        OriginalKey {
            source_id: "src_1".to_owned(),
            config_version: 1,
            key: name.to_owned(),
            generation: String::new(),
        }
    }

    fn original(bytes: usize, etag: &str) -> Arc<CachedOriginal> {
        Arc::new(CachedOriginal {
            body: Bytes::from(vec![7u8; bytes]),
            content_type: "image/jpeg".to_owned(),
            etag: etag.to_owned(),
            last_modified: 0,
            caching: OriginCaching::default(),
            validated_at: Instant::now(),
            confirmed_at: Instant::now(),
        })
    }

    /// A second read of one object is served from memory without loading.
    #[tokio::test]
    async fn second_read_is_a_hit() {
        let cache = OriginalCache::<String>::new(1 << 20, Duration::from_secs(60));
        let loads = AtomicUsize::new(0);
        for expected in [Lookup::Loaded, Lookup::Hit] {
            let (got, how) = cache
                .get_or_load(&key("a.jpg"), |_| async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(original(100, "\"e1\""))
                })
                .await
                .unwrap();
            assert_eq!(how, expected);
            assert_eq!(got.body.len(), 100);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.bytes(), 100);
    }

    /// Concurrent misses for one object run the loader once.
    #[tokio::test]
    async fn concurrent_misses_share_one_load() {
        let cache = Arc::new(OriginalCache::<String>::new(
            1 << 20,
            Duration::from_secs(60),
        ));
        let loads = Arc::new(AtomicUsize::new(0));
        // The load blocks until released, so every task has to meet it.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(&key("hot.jpg"), |_| async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _permit = gate.acquire().await.expect("gate open");
                        Ok(original(10, "\"e\""))
                    })
                    .await
                    .map(|(_, how)| how)
            }));
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        let mut how = Vec::new();
        for task in tasks {
            how.push(task.await.unwrap().unwrap());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(how.iter().filter(|h| **h == Lookup::Loaded).count(), 1);
    }

    /// A failed load is shared with the waiting callers but not cached.
    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = OriginalCache::<String>::new(1 << 20, Duration::from_secs(60));
        let failed = cache
            .get_or_load(&key("x.jpg"), |_| async { Err("origin down".to_owned()) })
            .await;
        assert_eq!(failed.unwrap_err(), "origin down");
        let (_, how) = cache
            .get_or_load(&key("x.jpg"), |_| async { Ok(original(5, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Loaded);
    }

    /// A copy under a new generation (a purge) or config version replaces
    /// the object's old copy instead of sitting beside it; other objects
    /// and other Sources' copies of the same key stay.
    #[tokio::test]
    async fn a_newer_generation_replaces_the_old_copy() {
        let cache = OriginalCache::<String>::new(1 << 20, Duration::from_secs(60));
        let at = |source: &str, version: u64, generation: &str, name: &str| OriginalKey {
            source_id: source.to_owned(),
            config_version: version,
            key: name.to_owned(),
            generation: generation.to_owned(),
        };
        let keys = [
            at("src_1", 1, "e:1", "a.jpg"),
            at("src_1", 1, "e:1", "b.jpg"),
            at("src_2", 1, "e:1", "a.jpg"),
        ];
        for key in &keys {
            cache
                .get_or_load(key, |_| async { Ok(original(100, "\"e\"")) })
                .await
                .unwrap();
        }
        assert_eq!(cache.bytes(), 300);
        let purged = at("src_1", 1, "e:2", "a.jpg");
        cache
            .get_or_load(&purged, |_| async { Ok(original(100, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(cache.bytes(), 300);
        assert!(!cache.holds(&keys[0]));
        assert!(cache.holds(&purged) && cache.holds(&keys[1]) && cache.holds(&keys[2]));
        let edited = at("src_1", 2, "e:2", "a.jpg");
        cache
            .get_or_load(&edited, |_| async { Ok(original(100, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(cache.bytes(), 300);
        assert!(!cache.holds(&purged) && cache.holds(&edited));
        // Evicted and reloaded under its own key, bookkeeping stays exact.
        let (_, how) = cache
            .get_or_load(&keys[0], |_| async { Ok(original(100, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Loaded);
        assert_eq!(cache.bytes(), 300);
        assert!(!cache.holds(&edited));
    }

    /// A stale entry is handed to the loader for revalidation.
    #[tokio::test]
    async fn stale_entry_goes_to_the_loader() {
        let cache = OriginalCache::<String>::new(1 << 20, Duration::ZERO);
        cache
            .get_or_load(&key("s.jpg"), |_| async { Ok(original(5, "\"v1\"")) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let (_, how) = cache
            .get_or_load(&key("s.jpg"), |stale| async move {
                let stale = stale.expect("the stale entry is offered");
                assert_eq!(stale.etag, "\"v1\"");
                Ok(original(5, "\"v1\""))
            })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Loaded);
    }

    /// The cache never holds more than its capacity, evicting the least
    /// recently used entry first, and skips objects over an eighth of it.
    #[tokio::test]
    async fn bounded_by_bytes_with_lru_eviction() {
        let cache = OriginalCache::<String>::new(800, Duration::from_secs(60));
        for name in ["a", "b", "c", "d"] {
            cache
                .get_or_load(&key(name), |_| async { Ok(original(100, "\"e\"")) })
                .await
                .unwrap();
        }
        // Use "a" so "b" becomes the oldest.
        let (_, how) = cache
            .get_or_load(&key("a"), |_| async { Ok(original(100, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Hit);
        for name in ["e", "f", "g", "h", "i"] {
            cache
                .get_or_load(&key(name), |_| async { Ok(original(100, "\"e\"")) })
                .await
                .unwrap();
        }
        assert!(cache.bytes() <= 800);
        let (_, a) = cache
            .get_or_load(&key("a"), |_| async { Ok(original(100, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(a, Lookup::Hit, "recently used entry kept");
        let (_, b) = cache
            .get_or_load(&key("b"), |_| async { Ok(original(100, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(b, Lookup::Loaded, "oldest entry evicted");

        let (_, big) = cache
            .get_or_load(&key("big"), |_| async { Ok(original(101, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(big, Lookup::Loaded);
        let (_, again) = cache
            .get_or_load(&key("big"), |_| async { Ok(original(101, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(again, Lookup::Loaded, "objects over an eighth are not kept");
    }

    /// Each lookup is counted once: a miss, a hit while fresh, stale after.
    #[tokio::test]
    async fn lookups_are_counted_by_result() {
        let mut cache = OriginalCache::<String>::new(1 << 20, Duration::from_secs(60));
        // Counters of this cache alone, not the process-wide ones.
        cache.lookups = LookupCounters::default();
        let counts = |cache: &OriginalCache<String>| {
            let lookups = &cache.lookups;
            (lookups.hit.get(), lookups.stale.get(), lookups.miss.get())
        };
        cache
            .get_or_load(&key("m.jpg"), |_| async { Ok(original(5, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(counts(&cache), (0, 0, 1));
        cache
            .get_or_load(&key("m.jpg"), |_| async { Ok(original(5, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(counts(&cache), (1, 0, 1));
        let later = Instant::now() + Duration::from_secs(120);
        assert!(matches!(cache.lookup(&key("m.jpg"), later), Some(Err(_))));
        assert_eq!(counts(&cache), (1, 1, 1));
    }

    /// A changed Source config version is a different entry.
    #[tokio::test]
    async fn config_version_is_part_of_the_key() {
        let cache = OriginalCache::<String>::new(1 << 20, Duration::from_secs(60));
        cache
            .get_or_load(&key("v.jpg"), |_| async { Ok(original(5, "\"e\"")) })
            .await
            .unwrap();
        let mut newer = key("v.jpg");
        newer.config_version = 2;
        let (_, how) = cache
            .get_or_load(&newer, |_| async { Ok(original(5, "\"e\"")) })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Loaded);
    }
}
