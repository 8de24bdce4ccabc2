//! Rendered derivatives cached in Redis, never at the cost of availability.
//!
//! Every Redis operation runs under a short timeout (`--redis-timeout-ms`).
//! A timeout or connection error counts as a miss for reads and is ignored
//! for writes; the render goes on uncached. After a failure Redis is left
//! alone for [`RETRY_AFTER`] (a small circuit breaker), so an outage costs
//! one timeout per window rather than one per request, while the connection
//! manager reconnects in the background. The transition to "unavailable" is
//! logged once at warn, and the recovery at info; every failure is counted
//! in `imgmesh_redis_errors_total`.
//!
//! A lookup is one round trip (a pipeline, no Lua: a script returning a
//! 26 KB entry cost Redis 35.6 µs of CPU per W2 hit, the pipeline 11.4): `MGET` of
//! the purge counters that cover the path (see [`crate::keys`]) and a read
//! of the entry under the key they had the last time this process looked.
//! Only after a purge do they differ, and a second read follows. The entry
//! is read whole or, for conditional requests, only its header.
//!
//! The same `MGET` reads the Source's epoch (see [`crate::keys`]): a
//! lookup answers it with the key ([`Lookup::generation`] joins the two for
//! caches of originals, the fetcher's), and a cache with hot entries (the
//! gateway's: [`DerivativeCache::with_hot_entries`]) never serves a copy
//! read under another. Such a cache serves a hot copy without any round
//! trip while the purge feed vouches for it (see the `hot` and `feed`
//! modules): every purge is one script that bumps the counter and
//! publishes its name.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;

use bytes::Bytes;
use imgmesh_proto::renderer::v1::{CacheStatus, RenderResponse};
use secrecy::SecretString;
use tracing::Instrument as _;

use crate::connection::RedisConnection;
use crate::entry::{
    CachedDerivative, Conditional, EntryMeta, FRESHNESS_OFFSET, MAX_HEADER_LEN, decode_envelope,
    decode_header, encode_envelope, unix_now,
};
use crate::hot::HotEntries;
use crate::keys::{CacheNames, PURGE_CHANNEL};
use crate::metrics::redis_error;
use crate::response::render_response;

/// How long Redis is left alone after a failed operation.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How long one connection attempt may take (in the background; requests
/// never wait longer than the operation timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Rewrites an existing entry's freshness fields and TTL.
const REFRESH_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SETRANGE', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Extends a lease (ARGV[2] ms) only while this holder (ARGV[1]) has it.
const RENEW_LEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Bumps a purge counter and announces its name on the purge channel
/// (ARGV[1]), both or neither: a purge is never applied unannounced.
const PURGE_SCRIPT: &str = r"
local generation = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], KEYS[1])
return generation
";

/// Drops a lease only while this holder (ARGV[1]) has it.
const RELEASE_LEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The Redis derivative cache.
#[derive(Clone)]
pub struct DerivativeCache {
    connection: RedisConnection,
    /// The Redis URL (or cluster seeds), for the purge feed's own
    /// connection.
    url: SecretString,
    timeout: Duration,
    availability: Arc<Availability>,
    scripts: Arc<Scripts>,
    generations: Arc<Generations>,
    hot: Arc<HotEntries>,
}

struct Scripts {
    refresh: redis::Script,
    purge: redis::Script,
    renew_lease: redis::Script,
    release_lease: redis::Script,
}

/// Whether Redis is believed reachable, and when to try again if not.
#[derive(Debug)]
struct Availability {
    epoch: Instant,
    /// Milliseconds after `epoch` before which operations are skipped.
    retry_at_ms: AtomicU64,
    /// Whether the last operation succeeded (drives the once-per-outage log).
    available: AtomicBool,
}

/// What a lookup found under the key the counters named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Only the header was asked for.
    Meta(EntryMeta),
    /// The whole entry.
    Whole(CachedDerivative),
}

// === impl Found ===

impl Found {
    /// The entry's header, and its bytes when they were read.
    pub fn into_parts(self) -> (EntryMeta, Option<Bytes>) {
        match self {
            Found::Meta(meta) => (meta, None),
            Found::Whole(entry) => (entry.meta, Some(entry.data)),
        }
    }
}

/// A lookup's answer from a reachable Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The entry key under the current purge counters.
    pub key: String,
    /// The Source's epoch, read with the counters: it changes when Redis
    /// loses its data, after which the counters (and so `key`) may repeat
    /// values they had before a purge.
    pub epoch: u64,
    /// The entry, when there is one.
    pub found: Option<Found>,
}

// === impl Lookup ===

impl Lookup {
    /// The path's cache generation, for a cache of originals keyed by it
    /// (the fetcher's `cache_generation`): the Source's epoch and the purge
    /// counters of `key`, e.g. `00c0ffee00c0ffee:0.2.0`. Every purge that
    /// covers the path changes it, and so does Redis losing its data: the
    /// counters alone would name a purged original again once they restart
    /// from 0.
    pub fn generation(&self) -> String {
        let counters = self
            .key
            .rsplit_once(':')
            .map_or("", |(_, counters)| counters);
        format!("{:016x}:{counters}", self.epoch)
    }
}

/// How a lease request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This caller holds the lease.
    Acquired,
    /// Another caller (on this or another replica) holds it.
    HeldElsewhere,
    /// Redis could not say; render without one.
    Unavailable,
}

/// What a waiter sees while another holder renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// The holder stored the entry.
    Stored(CachedDerivative),
    /// The lease is still held and nothing is stored yet.
    Held,
    /// The lease is gone and nothing was stored: the holder failed or died.
    Abandoned,
    /// Redis could not say.
    Unavailable,
}

// === impl DerivativeCache ===

impl DerivativeCache {
    /// Creates the cache for `url` (e.g. `redis://127.0.0.1:6379`, or a
    /// comma-separated list of Redis Cluster seed nodes) without
    /// connecting: the first operation connects, so a Redis that is down at
    /// startup only means misses. Must be called inside a tokio runtime.
    pub fn connect_lazily(
        url: &SecretString,
        timeout: Duration,
    ) -> Result<DerivativeCache, redis::RedisError> {
        let connection = RedisConnection::lazy(url.expose_secret(), CONNECT_TIMEOUT, timeout)?;
        Ok(DerivativeCache {
            connection,
            url: url.clone(),
            timeout,
            availability: Arc::new(Availability::new()),
            generations: Arc::new(Generations::default()),
            hot: Arc::new(HotEntries::new(0, Duration::ZERO)),
            scripts: Arc::new(Scripts {
                refresh: redis::Script::new(REFRESH_SCRIPT),
                purge: redis::Script::new(PURGE_SCRIPT),
                renew_lease: redis::Script::new(RENEW_LEASE_SCRIPT),
                release_lease: redis::Script::new(RELEASE_LEASE_SCRIPT),
            }),
        })
    }

    /// The same cache keeping up to `capacity_bytes` of fresh entries it
    /// read in process memory (see the `hot` module). With a non-zero
    /// `trust_for` it follows the purge feed (a task of its own, on a
    /// connection of its own) and serves a copy without asking Redis for
    /// up to `trust_for` while subscribed; with zero, or while the feed is
    /// down, a copy is served only once Redis confirms its purge counters
    /// and epoch. Must be called inside a tokio runtime.
    pub fn with_hot_entries(
        mut self,
        capacity_bytes: usize,
        trust_for: Duration,
    ) -> DerivativeCache {
        self.hot = Arc::new(HotEntries::new(capacity_bytes, trust_for));
        if self.hot.trusts() {
            let seeds = crate::connection::seeds(self.url.expose_secret())
                .into_iter()
                .map(str::to_owned)
                .collect();
            crate::feed::follow(&self.hot, seeds);
        }
        self
    }

    /// Reads the purge counters for `names` and the entry they name, in one
    /// round trip; only the entry's header when `meta_only`. `None` when
    /// Redis is slow or down.
    pub async fn lookup(&self, names: &CacheNames, meta_only: bool) -> Option<Lookup> {
        let span = tracing::info_span!("cache.lookup", hit = tracing::field::Empty);
        async {
            let guessed = self.generations.guess(&names.generations);
            let guessed_key = names.entry_key(&guessed);
            if let Some(held) = self.hot.get(&guessed_key, Instant::now()) {
                if !held.entry.meta.is_fresh(unix_now()) {
                    self.hot.remove(&guessed_key);
                } else if held.trusted {
                    // The purge feed vouches for it: no round trip at all.
                    tracing::Span::current().record("hit", true);
                    return Some(Lookup {
                        key: guessed_key,
                        epoch: held.epoch,
                        found: Some(found_in(&held.entry, meta_only)),
                    });
                } else {
                    // Only the counters move: the image is already here.
                    let sequence = self.hot.sequence();
                    let (epoch, counters, _) =
                        self.run("LOOKUP", self.read_counters(names, None)).await?;
                    let epoch = self.epoch(names, epoch).await?;
                    let current: Vec<u64> =
                        counters.iter().map(|value| value.unwrap_or(0)).collect();
                    self.generations.remember(&names.generations, &current);
                    if current == guessed && epoch == held.epoch {
                        self.hot.confirm(&guessed_key, sequence);
                        tracing::Span::current().record("hit", true);
                        return Some(Lookup {
                            key: guessed_key,
                            epoch,
                            found: Some(found_in(&held.entry, meta_only)),
                        });
                    }
                    if epoch != held.epoch {
                        // Redis lost its data since the copy was read.
                        self.hot.remove(&guessed_key);
                    }
                }
            }
            // One round trip: the counters, and the entry under the key the
            // counters had last time (almost always still right). Another
            // client may bump a counter between the two reads; the request
            // is then answered as if it came just before that purge.
            let sequence = self.hot.sequence();
            let (epoch, counters, value) = self
                .run(
                    "LOOKUP",
                    self.read_counters(names, Some(entry_read(&guessed_key, meta_only))),
                )
                .await?;
            let epoch = self.epoch(names, epoch).await?;
            let current: Vec<u64> = counters.iter().map(|value| value.unwrap_or(0)).collect();
            self.generations.remember(&names.generations, &current);
            let (key, value) = if current == guessed {
                (guessed_key, value)
            } else {
                // A purge since this process last looked: read again.
                let key = names.entry_key(&current);
                let value: Option<Vec<u8>> = self
                    .run(
                        "LOOKUP",
                        entry_read(&key, meta_only).query_async(&mut self.connection.clone()),
                    )
                    .await?;
                (key, value)
            };
            let found = value.filter(|bytes| !bytes.is_empty()).and_then(|bytes| {
                let found = if meta_only {
                    decode_header(&bytes).map(|(meta, _)| Found::Meta(meta))
                } else {
                    decode_envelope(bytes).map(Found::Whole)
                };
                if found.is_none() {
                    tracing::warn!(key, "unreadable derivative cache entry; treating as a miss");
                }
                found
            });
            if let Some(Found::Whole(entry)) = &found
                && entry.meta.is_fresh(unix_now())
            {
                self.hot
                    .insert(&key, entry, &names.generations, epoch, sequence);
            }
            tracing::Span::current().record("hit", found.is_some());
            Some(Lookup { key, epoch, found })
        }
        .instrument(span)
        .await
    }

    /// The Source's epoch: `read` when Redis had one; else (the first
    /// lookup of the Source, or the first since Redis lost its data) a new
    /// random one, set unless another process set one first (and then that
    /// one): one more round trip, once per Source.
    async fn epoch(&self, names: &CacheNames, read: Option<u64>) -> Option<u64> {
        if let Some(epoch) = read {
            return Some(epoch);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&names.epoch)
            .arg(rand::random::<u64>())
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&names.epoch);
        let (epoch,): (Option<u64>,) = self
            .run("LOOKUP", pipe.query_async(&mut self.connection.clone()))
            .await?;
        epoch
    }

    /// The Source's epoch, the purge counters of `names` and, with
    /// `entry`, that read of the entry, in one round trip per slot they
    /// live on: one pipeline on a single server; on a cluster, the epoch
    /// and the Source's counters on their slot and the asset's counter with
    /// the entry on theirs, sent at once (see [`crate::keys`]).
    async fn read_counters(
        &self,
        names: &CacheNames,
        entry: Option<redis::Cmd>,
    ) -> redis::RedisResult<(Option<u64>, Vec<Option<u64>>, Option<Vec<u8>>)> {
        let has_entry = entry.is_some();
        // The epoch comes first in the Source's `MGET`.
        let split_epoch = |mut counters: Vec<Option<u64>>| {
            let epoch = if counters.is_empty() {
                None
            } else {
                counters.remove(0)
            };
            (epoch, counters)
        };
        if !self.connection.is_cluster() {
            let mut pipe = redis::pipe();
            pipe.cmd("MGET").arg(&names.epoch).arg(&names.generations);
            if let Some(entry) = entry {
                pipe.add_command(entry);
                let (counters, value): (Vec<Option<u64>>, Option<Vec<u8>>) =
                    pipe.query_async(&mut self.connection.clone()).await?;
                let (epoch, counters) = split_epoch(counters);
                return Ok((epoch, counters, value));
            }
            let (counters,): (Vec<Option<u64>>,) =
                pipe.query_async(&mut self.connection.clone()).await?;
            let (epoch, counters) = split_epoch(counters);
            return Ok((epoch, counters, None));
        }
        let Some((asset, shared)) = names.generations.split_last() else {
            return Ok((None, Vec::new(), None));
        };
        let mut shared_read = redis::cmd("MGET");
        shared_read.arg(&names.epoch).arg(shared);
        let mut shared_connection = self.connection.clone();
        let shared_read = async {
            shared_read
                .query_async::<Vec<Option<u64>>>(&mut shared_connection)
                .await
        };
        let mut own = redis::pipe();
        own.cmd("GET").arg(asset);
        if let Some(entry) = entry {
            own.add_command(entry);
        }
        let mut own_connection = self.connection.clone();
        let own_read = async {
            if has_entry {
                own.query_async::<(Option<u64>, Option<Vec<u8>>)>(&mut own_connection)
                    .await
            } else {
                own.query_async::<(Option<u64>,)>(&mut own_connection)
                    .await
                    .map(|(counter,)| (counter, None))
            }
        };
        let (counters, (asset_counter, value)) = tokio::try_join!(shared_read, own_read)?;
        let (epoch, mut counters) = split_epoch(counters);
        counters.push(asset_counter);
        Ok((epoch, counters, value))
    }

    /// The answer for the entry under `key` whose header is `meta` and whose
    /// bytes are `data` when they were read: its validators only when
    /// `conditional` matches, else its bytes (read now if only the header
    /// was). `None` when the bytes are needed and the entry vanished.
    pub async fn respond(
        &self,
        key: &str,
        meta: &EntryMeta,
        data: Option<Bytes>,
        conditional: Conditional<'_>,
        status: CacheStatus,
    ) -> Option<RenderResponse> {
        let data = match data {
            Some(data) => Some(data),
            None if conditional.not_modified(&meta.etag, meta.last_modified) => None,
            None => Some(self.get(key).await?.data),
        };
        Some(render_response(meta, data, conditional, status, unix_now()))
    }

    /// The whole entry under `key`; `None` on a miss, an unreadable entry,
    /// or when Redis is slow or down.
    pub async fn get(&self, key: &str) -> Option<CachedDerivative> {
        let mut command = redis::cmd("GET");
        command.arg(key);
        let value: Option<Vec<u8>> = self.query("GET", &command).await.flatten();
        value.and_then(decode_envelope)
    }

    /// Stores `entry` under `key`, kept by Redis for `ttl_seconds` (nothing
    /// when 0); failures are logged, never returned.
    pub async fn set(&self, key: &str, entry: &CachedDerivative, ttl_seconds: u32) {
        if ttl_seconds == 0 {
            return;
        }
        let span = tracing::info_span!("cache.set", bytes = entry.data.len());
        async {
            let mut command = redis::cmd("SET");
            command
                .arg(key)
                .arg(encode_envelope(entry))
                .arg("EX")
                .arg(ttl_seconds);
            let _: Option<()> = self.query("SET", &command).await;
        }
        .instrument(span)
        .await;
    }

    /// Marks the entry under `key` as revalidated at `stored_at` with a new
    /// `max_age`, kept for `ttl_seconds`; `false` when it is gone or Redis
    /// failed.
    pub async fn refresh(&self, key: &str, stored_at: i64, max_age: u32, ttl_seconds: u32) -> bool {
        let mut freshness = Vec::with_capacity(12);
        freshness.extend_from_slice(&stored_at.to_be_bytes());
        freshness.extend_from_slice(&max_age.to_be_bytes());
        let mut invocation = self.scripts.refresh.key(key);
        invocation
            .arg(FRESHNESS_OFFSET)
            .arg(freshness)
            .arg(ttl_seconds.max(1));
        let refreshed: Option<i64> = self
            .run(
                "REFRESH",
                invocation.invoke_async(&mut self.connection.clone()),
            )
            .await;
        refreshed == Some(1)
    }

    /// Takes the render lease `lease_key` for `holder` for `ttl`, unless
    /// someone holds it.
    pub async fn try_lease(&self, lease_key: &str, holder: &str, ttl: Duration) -> LeaseOutcome {
        let mut command = redis::cmd("SET");
        command
            .arg(lease_key)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(duration_ms(ttl));
        match self.query::<Option<String>>("LEASE", &command).await {
            Some(Some(_)) => LeaseOutcome::Acquired,
            Some(None) => LeaseOutcome::HeldElsewhere,
            None => LeaseOutcome::Unavailable,
        }
    }

    /// Extends `holder`'s lease by `ttl`; `false` when it lost it.
    pub async fn renew_lease(&self, lease_key: &str, holder: &str, ttl: Duration) -> bool {
        let mut invocation = self.scripts.renew_lease.key(lease_key);
        invocation.arg(holder).arg(duration_ms(ttl));
        let renewed: Option<i64> = self
            .run(
                "RENEW_LEASE",
                invocation.invoke_async(&mut self.connection.clone()),
            )
            .await;
        renewed == Some(1)
    }

    /// Gives `holder`'s lease back.
    pub async fn release_lease(&self, lease_key: &str, holder: &str) {
        let mut invocation = self.scripts.release_lease.key(lease_key);
        invocation.arg(holder);
        let _: Option<i64> = self
            .run(
                "RELEASE_LEASE",
                invocation.invoke_async(&mut self.connection.clone()),
            )
            .await;
    }

    /// What became of `key` while another holder has `lease_key`.
    pub async fn wait_step(&self, key: &str, lease_key: &str) -> Waiting {
        let mut pipe = redis::pipe();
        pipe.get(key).exists(lease_key);
        let mut connection = self.connection.clone();
        let answer: Option<(Option<Vec<u8>>, bool)> =
            self.run("WAIT", pipe.query_async(&mut connection)).await;
        match answer {
            None => Waiting::Unavailable,
            Some((Some(bytes), _)) => match decode_envelope(bytes) {
                Some(entry) => Waiting::Stored(entry),
                None => Waiting::Abandoned,
            },
            Some((None, true)) => Waiting::Held,
            Some((None, false)) => Waiting::Abandoned,
        }
    }

    /// Bumps the purge counter `generation_key` and announces it on the
    /// purge channel (one script: both or neither), returning its new
    /// value. When this returns, every process following the purge feed
    /// has been sent the message. Unlike the other operations a failure is
    /// returned: a purge that did not happen must not look as if it did.
    pub async fn purge(&self, generation_key: &str) -> Result<u64, redis::RedisError> {
        let mut invocation = self.scripts.purge.key(generation_key);
        invocation.arg(PURGE_CHANNEL);
        let mut connection = self.connection.clone();
        self.attempt("PURGE", invocation.invoke_async::<u64>(&mut connection))
            .await
    }

    /// Sends `PING` under the timeout, whatever the breaker says (a health
    /// check must try), and tells the breaker how it went. The error says
    /// why Redis did not answer, without its URL.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        self.attempt(
            "PING",
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await
        .map(drop)
    }

    /// Runs `command` under the timeout; `None` when Redis is skipped, slow
    /// or failing.
    async fn query<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        command: &redis::Cmd,
    ) -> Option<T> {
        let mut connection = self.connection.clone();
        self.run(operation, command.query_async::<T>(&mut connection))
            .await
    }

    /// Awaits `operation` under the timeout and the breaker.
    async fn run<T>(
        &self,
        name: &'static str,
        operation: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        if !self.availability.should_try() {
            return None;
        }
        self.attempt(name, operation).await.ok()
    }

    /// Awaits `operation` under the timeout, telling the breaker how it went.
    async fn attempt<T>(
        &self,
        name: &'static str,
        operation: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => {
                self.availability.succeeded();
                Ok(value)
            }
            Ok(Err(error)) => {
                self.availability.failed(name, &error);
                Err(error)
            }
            Err(_elapsed) => {
                self.availability.failed(name, &"timed out");
                Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out")))
            }
        }
    }
}

impl std::fmt::Debug for DerivativeCache {
    // The connection's Debug would print the Redis URL, password included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivativeCache")
            .field("timeout", &self.timeout)
            .field("availability", &self.availability)
            .finish_non_exhaustive()
    }
}

/// What a lookup answers for a held copy: its header, or all of it.
fn found_in(entry: &CachedDerivative, meta_only: bool) -> Found {
    if meta_only {
        Found::Meta(entry.meta.clone())
    } else {
        Found::Whole(entry.clone())
    }
}

/// The command reading an entry: whole, or only its header.
fn entry_read(key: &str, meta_only: bool) -> redis::Cmd {
    if meta_only {
        let mut command = redis::cmd("GETRANGE");
        command.arg(key).arg(0).arg(MAX_HEADER_LEN - 1);
        command
    } else {
        let mut command = redis::cmd("GET");
        command.arg(key);
        command
    }
}

/// The purge counters this process saw last, so a lookup can read the
/// entry in the same round trip as the counters. Only non-zero values are
/// kept (most paths are never purged); the memory is bounded by forgetting
/// everything when it fills, which costs one extra round trip per counter.
#[derive(Debug, Default)]
struct Generations {
    seen: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// Counters remembered before [`Generations`] starts over.
const MAX_REMEMBERED_GENERATIONS: usize = 65_536;

// === impl Generations ===

impl Generations {
    /// The values last seen for `keys` (0 for never seen).
    fn guess(&self, keys: &[String]) -> Vec<u64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .map(|key| seen.get(key).copied().unwrap_or(0))
            .collect()
    }

    /// Records the `values` Redis answered for `keys`.
    fn remember(&self, keys: &[String], values: &[u64]) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.is_empty() && values.iter().all(|&value| value == 0) {
            return;
        }
        for (key, &value) in keys.iter().zip(values) {
            if value == 0 {
                seen.remove(key);
            } else {
                if seen.len() >= MAX_REMEMBERED_GENERATIONS {
                    seen.clear();
                }
                seen.insert(key.clone(), value);
            }
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

// === impl Availability ===

impl Availability {
    fn new() -> Availability {
        Availability {
            epoch: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
            available: AtomicBool::new(true),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn should_try(&self) -> bool {
        self.now_ms() >= self.retry_at_ms.load(Ordering::Relaxed)
    }

    fn succeeded(&self) {
        if !self.available.swap(true, Ordering::Relaxed) {
            tracing::info!("redis is reachable again; caching derivatives");
        }
    }

    fn failed(&self, operation: &'static str, error: &dyn std::fmt::Display) {
        redis_error(operation);
        let retry_after = u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX);
        self.retry_at_ms
            .store(self.now_ms().saturating_add(retry_after), Ordering::Relaxed);
        if self.available.swap(false, Ordering::Relaxed) {
            tracing::warn!(operation, %error, "redis unavailable; rendering uncached until it returns");
        } else {
            tracing::debug!(operation, %error, "redis still unavailable");
        }
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::RenderPlan;

    use super::*;
    use crate::entry::tests::sample;
    use crate::keys::{CacheNames, PURGE_CHANNEL, PurgeScope, generation_key, lease_key};
    use imgmesh_test_support::{RedisCluster, RedisServer};

    fn names(path: &str) -> CacheNames {
        let plan = imgmesh_imgix_params::normalize_plan(&RenderPlan {
            width: 100,
            ..RenderPlan::default()
        })
        .unwrap();
        CacheNames::new("src_1", 1, path, &plan)
    }

    async fn cache(redis: &RedisServer) -> DerivativeCache {
        DerivativeCache::connect_lazily(&redis.url().into(), Duration::from_millis(500)).unwrap()
    }

    /// A lookup names the key from the counters; SET under it is found
    /// whole or header-only, and Redis keeps it for the TTL.
    #[tokio::test]
    async fn lookup_set_and_ttl() {
        let redis = RedisServer::start().await;
        let cache = cache(&redis).await;
        let names = names("a/b/cat.jpg");
        let miss = cache.lookup(&names, false).await.unwrap();
        assert_eq!(miss.key, names.entry_key(&[0, 0, 0, 0]));
        assert_eq!(miss.found, None);

        cache.set(&miss.key, &sample(), 600).await;
        let hit = cache.lookup(&names, false).await.unwrap();
        assert_eq!(hit.found, Some(Found::Whole(sample())));
        let header = cache.lookup(&names, true).await.unwrap();
        assert_eq!(header.found, Some(Found::Meta(sample().meta)));
        assert_eq!(cache.get(&miss.key).await, Some(sample()));
        let ttl = redis.ttl(&miss.key).await;
        assert!(ttl > 590 && ttl <= 600, "ttl {ttl}");
    }

    /// Bumping the Source's, a directory's or the asset's counter moves the
    /// key, so the entry is no longer found; other paths keep theirs.
    #[tokio::test]
    async fn purge_counters_move_the_key() {
        let redis = RedisServer::start().await;
        let cache = cache(&redis).await;
        let cat = names("a/b/cat.jpg");
        let dog = names("a/c/dog.jpg");
        let store = |names: CacheNames| {
            let cache = cache.clone();
            async move {
                let key = cache.lookup(&names, false).await.unwrap().key;
                cache.set(&key, &sample(), 600).await;
            }
        };
        let found = |names: CacheNames| {
            let cache = cache.clone();
            async move { cache.lookup(&names, false).await.unwrap().found.is_some() }
        };
        for scope in [
            PurgeScope::Asset("a/b/cat.jpg"),
            PurgeScope::Prefix("a/b/"),
            PurgeScope::Source,
        ] {
            store(cat.clone()).await;
            store(dog.clone()).await;
            assert!(found(cat.clone()).await);
            let generation = cache.purge(&generation_key("src_1", scope)).await.unwrap();
            assert_eq!(generation, 1, "{scope:?}");
            assert!(!found(cat.clone()).await, "{scope:?} purged cat");
            assert_eq!(
                found(dog.clone()).await,
                scope != PurgeScope::Source,
                "{scope:?}"
            );
        }
        let key = cache.lookup(&cat, false).await.unwrap().key;
        assert_eq!(key, cat.entry_key(&[1, 0, 1, 1]));
    }

    /// A purge by another client (another replica) is seen at once, though
    /// this one guessed the old counters; a Redis flush resets them.
    #[tokio::test]
    async fn other_clients_purges_are_seen_at_once() {
        let redis = RedisServer::start().await;
        let (reader, purger) = (cache(&redis).await, cache(&redis).await);
        let cat = names("a/cat.jpg");
        let old_key = reader.lookup(&cat, false).await.unwrap().key;
        reader.set(&old_key, &sample(), 600).await;
        assert!(reader.lookup(&cat, false).await.unwrap().found.is_some());
        purger
            .purge(&generation_key("src_1", PurgeScope::Prefix("a/")))
            .await
            .unwrap();
        let after = reader.lookup(&cat, true).await.unwrap();
        assert_eq!(after.key, cat.entry_key(&[0, 1, 0]));
        assert_eq!(after.found, None);
        reader.set(&after.key, &sample(), 600).await;
        assert!(reader.lookup(&cat, false).await.unwrap().found.is_some());

        redis.command(&["FLUSHALL"]).await.unwrap();
        let flushed = reader.lookup(&cat, false).await.unwrap();
        assert_eq!(flushed.key, old_key);
        assert_eq!(flushed.found, None);
    }

    /// `cmdstat_<command>`'s call count in `INFO commandstats` (0 when
    /// the command was not run).
    async fn calls(redis: &RedisServer, command: &str) -> u64 {
        let stats = redis.cli(&["INFO", "commandstats"]).await.unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        stats
            .iter()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    }

    /// A cache without hot entries (the renderer's) reads the Source's
    /// epoch in the counters' `MGET`, with no other command once the epoch
    /// is set; the generation it gives the fetcher changes with a purge,
    /// and after a FLUSHALL too, though the counters (and the key) are back
    /// at their values from before the purge.
    #[tokio::test]
    async fn the_generation_carries_the_epoch() {
        let redis = RedisServer::start().await;
        let cache = cache(&redis).await;
        let cat = names("a/cat.jpg");
        let first = cache.lookup(&cat, false).await.unwrap();
        let epoch: u64 = redis
            .cli(&["GET", &cat.epoch])
            .await
            .unwrap()
            .concat()
            .parse()
            .expect("the first lookup sets the epoch");
        assert_eq!(first.epoch, epoch);
        assert_eq!(first.generation(), format!("{epoch:016x}:0.0.0"));

        redis.command(&["CONFIG", "RESETSTAT"]).await.unwrap();
        for _ in 0..3 {
            assert_eq!(cache.lookup(&cat, false).await.unwrap(), first);
        }
        assert_eq!(calls(&redis, "mget").await, 3);
        assert_eq!(calls(&redis, "get").await, 3, "the entry's read");
        assert_eq!(calls(&redis, "set").await, 0, "no epoch written");

        cache
            .purge(&generation_key("src_1", PurgeScope::Asset("a/cat.jpg")))
            .await
            .unwrap();
        let purged = cache.lookup(&cat, false).await.unwrap();
        assert_eq!(purged.generation(), format!("{epoch:016x}:0.0.1"));

        redis.command(&["FLUSHALL"]).await.unwrap();
        let flushed = cache.lookup(&cat, false).await.unwrap();
        assert_eq!(flushed.key, first.key, "the counters restarted");
        assert_ne!(flushed.epoch, epoch, "a new epoch");
        assert_ne!(flushed.generation(), first.generation());
        assert_eq!(
            cache.lookup(&cat, false).await.unwrap().generation(),
            flushed.generation(),
            "the new epoch is kept"
        );
    }

    /// Without the feed's trust, hot entries are served once Redis
    /// confirms the counters and the epoch: an entry Redis dropped still
    /// serves, a purge elsewhere never does, nor does a copy read before a
    /// purge once a FLUSHALL reset the counters to its values, nor a Redis
    /// that is down.
    #[tokio::test]
    async fn hot_entries_need_the_counters_confirmed() {
        let mut redis = RedisServer::start().await;
        let reader = cache(&redis)
            .await
            .with_hot_entries(1 << 20, Duration::ZERO);
        let purger = cache(&redis).await;
        let cat = names("a/cat.jpg");
        let mut entry = sample();
        entry.meta.stored_at = unix_now();
        let key = reader.lookup(&cat, false).await.unwrap().key;
        reader.set(&key, &entry, 600).await;
        assert_eq!(
            reader.lookup(&cat, false).await.unwrap().found,
            Some(Found::Whole(entry.clone()))
        );
        redis.command(&["DEL", &key]).await.unwrap();
        assert_eq!(
            reader.lookup(&cat, true).await.unwrap().found,
            Some(Found::Meta(entry.meta.clone())),
            "served from the process's copy"
        );
        purger
            .purge(&generation_key("src_1", PurgeScope::Source))
            .await
            .unwrap();
        assert_eq!(reader.lookup(&cat, false).await.unwrap().found, None);

        // The copy read under the old counters is still held; a FLUSHALL
        // sets the counters back to its values, but not the epoch.
        redis.command(&["FLUSHALL"]).await.unwrap();
        for _ in 0..2 {
            let after = reader.lookup(&cat, false).await.unwrap();
            assert_eq!(after.key, key, "the counters are back at the copy's");
            assert_eq!(after.found, None, "a copy read before the purge");
        }

        let key = reader.lookup(&cat, false).await.unwrap().key;
        reader.set(&key, &entry, 600).await;
        assert!(reader.lookup(&cat, false).await.unwrap().found.is_some());
        redis.kill();
        assert_eq!(reader.lookup(&cat, false).await, None);
    }

    /// Waits until `subscribers` connections follow the purge channel.
    async fn wait_for_subscribers(redis: &RedisServer, subscribers: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let numsub = redis
                .cli(&["PUBSUB", "NUMSUB", PURGE_CHANNEL])
                .await
                .unwrap_or_default();
            if numsub.get(1).and_then(|n| n.parse().ok()) == Some(subscribers) {
                return;
            }
            assert!(Instant::now() < deadline, "subscribers: {numsub:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// With the purge feed, a copy is served without asking Redis (a
    /// counter bumped without a message goes unseen until the trust age
    /// runs out); a purge through [`DerivativeCache::purge`] drops it at
    /// once; after a FLUSHALL a Source purge still drops it; and when the
    /// subscription is killed every copy is dropped, then trusted again
    /// once the feed is back.
    // Two workers, as a gateway has: a trusted lookup never awaits I/O, so
    // on one thread a loop of them would starve the feed's task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_purge_feed_vouches_for_hot_copies() {
        let redis = RedisServer::start().await;
        let trust = Duration::from_millis(1_500);
        let reader = cache(&redis).await.with_hot_entries(1 << 20, trust);
        let purger = cache(&redis).await;
        wait_for_subscribers(&redis, 1).await;
        let cat = names("a/cat.jpg");
        let mut entry = sample();
        entry.meta.stored_at = unix_now();
        let store = || async {
            let key = reader.lookup(&cat, false).await.unwrap().key;
            reader.set(&key, &entry, 600).await;
            // Read once into the copy, trusted: the feed was up.
            assert!(reader.lookup(&cat, false).await.unwrap().found.is_some());
        };
        let served = || async { reader.lookup(&cat, false).await.unwrap().found.is_some() };

        store().await;
        // A purge without a message (an older renderer): unseen, since the
        // copy is trusted, until the trust age has passed.
        let source_counter = generation_key("src_1", PurgeScope::Source);
        redis.command(&["INCR", &source_counter]).await.unwrap();
        assert!(served().await, "trusted: Redis is not asked");
        tokio::time::sleep(trust).await;
        assert!(!served().await, "past the trust age, Redis is asked");

        // A purge with its message: the copy is gone when purge returns
        // (or within the feed's delivery, which the loop bounds).
        store().await;
        purger
            .purge(&generation_key("src_1", PurgeScope::Asset("a/cat.jpg")))
            .await
            .unwrap();
        let purged_at = Instant::now();
        while served().await {
            assert!(
                purged_at.elapsed() < Duration::from_millis(100),
                "still served"
            );
        }

        // Redis loses everything; the Source purge that follows drops the
        // copy though its counters restart from 0.
        store().await;
        redis.command(&["FLUSHALL"]).await.unwrap();
        purger
            .purge(&generation_key("src_1", PurgeScope::Source))
            .await
            .unwrap();
        let purged_at = Instant::now();
        while served().await {
            assert!(
                purged_at.elapsed() < Duration::from_millis(100),
                "served after FLUSHALL and a purge"
            );
        }

        // The subscription is killed: every copy goes, and copies are
        // confirmed with Redis until the feed is back.
        store().await;
        redis
            .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
            .await
            .unwrap();
        let killed_at = Instant::now();
        while reader
            .hot
            .get(
                &reader.lookup(&cat, true).await.unwrap().key,
                Instant::now(),
            )
            .is_some_and(|held| held.trusted)
        {
            assert!(
                killed_at.elapsed() < Duration::from_secs(2),
                "trusted after the feed was lost"
            );
        }
        wait_for_subscribers(&redis, 1).await;
        store().await;
        let key = reader.lookup(&cat, false).await.unwrap().key;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !reader
            .hot
            .get(&key, Instant::now())
            .is_some_and(|held| held.trusted)
        {
            assert!(Instant::now() < deadline, "never trusted again");
            assert!(served().await);
        }
    }

    /// A refresh rewrites stored-at and max-age in place and resets the TTL;
    /// a missing entry is not created.
    #[tokio::test]
    async fn refresh_extends_in_place() {
        let redis = RedisServer::start().await;
        let cache = cache(&redis).await;
        cache.set("k", &sample(), 60).await;
        assert!(cache.refresh("k", 1_900_000_000, 120, 900).await);
        let refreshed = cache.get("k").await.unwrap();
        assert_eq!(refreshed.meta.stored_at, 1_900_000_000);
        assert_eq!(refreshed.meta.max_age, 120);
        assert_eq!(refreshed.data, sample().data);
        assert!(redis.ttl("k").await > 800);
        assert!(!cache.refresh("gone", 1, 1, 1).await);
        assert_eq!(redis.ttl("gone").await, -2);
    }

    /// One holder at a time; only the holder renews or releases; a waiter
    /// sees held, stored or abandoned.
    #[tokio::test]
    async fn leases_have_one_holder() {
        let redis = RedisServer::start().await;
        let cache = cache(&redis).await;
        let lease = lease_key("entry");
        let ttl = Duration::from_secs(5);
        assert_eq!(
            cache.try_lease(&lease, "a", ttl).await,
            LeaseOutcome::Acquired
        );
        assert_eq!(
            cache.try_lease(&lease, "b", ttl).await,
            LeaseOutcome::HeldElsewhere
        );
        assert!(cache.renew_lease(&lease, "a", ttl).await);
        assert!(!cache.renew_lease(&lease, "b", ttl).await);
        assert_eq!(cache.wait_step("entry", &lease).await, Waiting::Held);
        cache.release_lease(&lease, "b").await;
        assert_eq!(cache.wait_step("entry", &lease).await, Waiting::Held);
        cache.release_lease(&lease, "a").await;
        assert_eq!(cache.wait_step("entry", &lease).await, Waiting::Abandoned);
        cache.set("entry", &sample(), 60).await;
        assert_eq!(
            cache.wait_step("entry", &lease).await,
            Waiting::Stored(sample())
        );
    }

    /// A TTL of 0 stores nothing.
    #[tokio::test]
    async fn zero_ttl_is_not_cached() {
        let redis = RedisServer::start().await;
        let cache = cache(&redis).await;
        cache.set("imgmesh:d:zero", &sample(), 0).await;
        assert_eq!(cache.get("imgmesh:d:zero").await, None);
        assert_eq!(redis.ttl("imgmesh:d:zero").await, -2);
    }

    /// With Redis killed, reads miss, writes are no-ops and leases are
    /// unavailable, each within the timeout; a purge fails loudly.
    #[tokio::test]
    async fn redis_down_is_a_fast_miss() {
        let mut redis = RedisServer::start().await;
        let timeout = Duration::from_millis(50);
        let cache = DerivativeCache::connect_lazily(&redis.url().into(), timeout).unwrap();
        cache.set("k", &sample(), 60).await;
        assert_eq!(cache.get("k").await, Some(sample()));

        redis.kill();
        // Allow scheduling slack on a busy machine, but far less than any
        // reconnect backoff or TCP timeout.
        let bound = timeout + Duration::from_millis(200);
        for _ in 0..3 {
            let started = Instant::now();
            assert_eq!(cache.get("k").await, None);
            assert_eq!(cache.lookup(&names("cat.jpg"), false).await, None);
            cache.set("k", &sample(), 60).await;
            assert_eq!(
                cache.try_lease("l", "a", Duration::from_secs(1)).await,
                LeaseOutcome::Unavailable
            );
            assert!(started.elapsed() < bound * 4, "{:?}", started.elapsed());
        }
        assert!(cache.purge("imgmesh:{src_1}:g").await.is_err());
    }

    /// A cache built while Redis is down still answers (misses) and works once Redis is up.
    #[tokio::test]
    async fn starts_without_redis_and_recovers() {
        let port = imgmesh_test_support::unused_port();
        let url = format!("redis://127.0.0.1:{port}");
        let cache =
            DerivativeCache::connect_lazily(&url.as_str().into(), Duration::from_millis(50))
                .unwrap();
        let started = Instant::now();
        assert_eq!(cache.get("k").await, None);
        assert!(started.elapsed() < Duration::from_millis(300));

        let _redis = RedisServer::start_on(port).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            cache.set("k", &sample(), 60).await;
            if cache.get("k").await == Some(sample()) {
                break;
            }
            assert!(Instant::now() < deadline, "cache never recovered");
            tokio::time::sleep(RETRY_AFTER / 5).await;
        }
    }

    fn names_in(source: &str, path: &str) -> CacheNames {
        let plan = imgmesh_imgix_params::normalize_plan(&RenderPlan {
            width: 100,
            ..RenderPlan::default()
        })
        .unwrap();
        CacheNames::new(source, 1, path, &plan)
    }

    /// On a Redis Cluster (three masters, comma-separated seed list) every
    /// operation works as on one server: entries are found whole or
    /// header-only, leases have one holder, and purges of an asset, a
    /// directory and a Source move the keys. The entries spread over more
    /// than one master, so one Source's derivatives are not one node's load.
    #[tokio::test]
    async fn a_cluster_serves_hits_leases_and_purges() {
        let cluster = RedisCluster::start().await;
        let cache = DerivativeCache::connect_lazily(
            &cluster.url().as_str().into(),
            Duration::from_millis(500),
        )
        .unwrap();
        let paths: Vec<String> = (0..40)
            .map(|i| format!("a/{}/img-{i}.jpg", i % 3))
            .collect();
        for path in &paths {
            let names = names_in("src_1", path);
            let miss = cache.lookup(&names, false).await.expect("cluster answers");
            assert_eq!(miss.found, None);
            cache.set(&miss.key, &sample(), 600).await;
            let hit = cache.lookup(&names, false).await.unwrap();
            assert_eq!(hit.found, Some(Found::Whole(sample())), "{path}");
            let header = cache.lookup(&names, true).await.unwrap();
            assert_eq!(header.found, Some(Found::Meta(sample().meta)), "{path}");
        }
        let masters = cluster.masters().await;
        assert_eq!(masters.len(), 3, "{masters:?}");
        let mut holding = 0;
        for &port in &masters {
            if cluster.keys_on(port, "imgmesh:*:d:*").await > 0 {
                holding += 1;
            }
        }
        assert!(holding >= 2, "the entries sit on {holding} of 3 masters");

        let lease = lease_key(
            &cache
                .lookup(&names_in("src_1", &paths[0]), false)
                .await
                .unwrap()
                .key,
        );
        let ttl = Duration::from_secs(5);
        assert_eq!(
            cache.try_lease(&lease, "a", ttl).await,
            LeaseOutcome::Acquired
        );
        assert_eq!(
            cache.try_lease(&lease, "b", ttl).await,
            LeaseOutcome::HeldElsewhere
        );
        cache.release_lease(&lease, "a").await;
        assert_eq!(
            cache.try_lease(&lease, "b", ttl).await,
            LeaseOutcome::Acquired
        );

        let found = |path: &str| {
            let cache = cache.clone();
            let names = names_in("src_1", path);
            async move { cache.lookup(&names, false).await.unwrap().found.is_some() }
        };
        cache
            .purge(&generation_key("src_1", PurgeScope::Asset(&paths[1])))
            .await
            .unwrap();
        assert!(!found(&paths[1]).await, "purged asset still found");
        assert!(found(&paths[4]).await);
        cache
            .purge(&generation_key("src_1", PurgeScope::Prefix("a/2/")))
            .await
            .unwrap();
        assert!(!found(&paths[2]).await, "purged directory still found");
        assert!(found(&paths[3]).await);
        cache
            .purge(&generation_key("src_1", PurgeScope::Source))
            .await
            .unwrap();
        for path in &paths {
            assert!(!found(path).await, "{path} survived the Source purge");
        }
    }

    /// When a cluster master is killed, lookups on its slots miss quickly
    /// (never hang past the timeout) until its replica takes over; then
    /// every path caches and hits again, with no restart of the client.
    #[tokio::test]
    async fn a_killed_cluster_master_means_misses_then_hits_after_failover() {
        let mut cluster = RedisCluster::start().await;
        let timeout = Duration::from_millis(200);
        let cache =
            DerivativeCache::connect_lazily(&cluster.url().as_str().into(), timeout).unwrap();
        let paths: Vec<String> = (0..30).map(|i| format!("img-{i}.jpg")).collect();
        for path in &paths {
            let names = names_in("src_1", path);
            let key = cache.lookup(&names, false).await.unwrap().key;
            cache.set(&key, &sample(), 600).await;
        }
        let masters = cluster.masters().await;
        let mut victim = masters[0];
        for &port in &masters {
            if cluster.keys_on(port, "imgmesh:*:d:*").await > 0 {
                victim = port;
                break;
            }
        }
        cluster.kill(victim);

        let bound = timeout * 4 + Duration::from_millis(500);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all_hit = true;
            for path in &paths {
                let names = names_in("src_1", path);
                let started = Instant::now();
                let answer = cache.lookup(&names, false).await;
                assert!(
                    started.elapsed() < bound,
                    "lookup took {:?}",
                    started.elapsed()
                );
                match answer {
                    Some(Lookup { found: Some(_), .. }) => {}
                    Some(miss) => {
                        cache.set(&miss.key, &sample(), 600).await;
                        all_hit = false;
                    }
                    None => all_hit = false,
                }
            }
            if all_hit {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cache did not recover after the replica took over"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(cluster.masters().await.len(), 3, "a replica was promoted");
    }
}
