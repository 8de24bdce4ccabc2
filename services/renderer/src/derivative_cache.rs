//! Rendered derivatives cached in Redis, never at the cost of availability.
//!
//! Every Redis operation runs under a short timeout (`--redis-timeout-ms`).
//! A timeout or connection error counts as a miss for `GET` and is ignored
//! for `SET`; the render goes on uncached. After a failure Redis is left
//! alone for [`RETRY_AFTER`] (a small circuit breaker), so an outage costs
//! one timeout per window rather than one per request, while the connection
//! manager reconnects in the background. The transition to "unavailable" is
//! logged once at warn, and the recovery at info.
//!
//! Values are a small binary envelope, not JSON:
//!
//! ```text
//! "imd" | version (1) | content-type length (u8) | content type
//!       | width (u32 BE) | height (u32 BE) | encoded image bytes ...
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret as _, SecretString};
use tracing::Instrument as _;

use crate::encode::EncodedFormat;
use crate::render::Derivative;

/// How long Redis is left alone after a failed operation.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How long one connection attempt may take (in the background; requests
/// never wait longer than the operation timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const ENVELOPE_MAGIC: &[u8; 3] = b"imd";
const ENVELOPE_VERSION: u8 = 1;

/// The Redis derivative cache.
#[derive(Clone)]
pub struct DerivativeCache {
    connection: ConnectionManager,
    timeout: Duration,
    availability: Arc<Availability>,
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

// === impl DerivativeCache ===

impl DerivativeCache {
    /// Creates the cache for `url` (e.g. `redis://127.0.0.1:6379`) without
    /// connecting: the first operation connects, so a Redis that is down at
    /// startup only means misses. Must be called inside a tokio runtime.
    pub fn connect_lazily(
        url: &SecretString,
        timeout: Duration,
    ) -> Result<DerivativeCache, redis::RedisError> {
        let client = redis::Client::open(url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(DerivativeCache {
            connection,
            timeout,
            availability: Arc::new(Availability::new()),
        })
    }

    /// The cached derivative under `key`; `None` on a miss, an unreadable
    /// entry, or when Redis is slow or down.
    pub async fn get(&self, key: &str) -> Option<Derivative> {
        let span = tracing::info_span!("cache.get", hit = tracing::field::Empty);
        async {
            let mut command = redis::cmd("GET");
            command.arg(key);
            let value: Option<Vec<u8>> = self.run("GET", &command).await.flatten();
            let derivative = value.and_then(|bytes| {
                let decoded = decode_envelope(bytes);
                if decoded.is_none() {
                    tracing::warn!(key, "unreadable derivative cache entry; treating as a miss");
                }
                decoded
            });
            tracing::Span::current().record("hit", derivative.is_some());
            derivative
        }
        .instrument(span)
        .await
    }

    /// Stores `derivative` under `key` for `ttl_seconds` (nothing when 0);
    /// failures are logged, never returned.
    pub async fn set(&self, key: &str, derivative: &Derivative, ttl_seconds: u32) {
        if ttl_seconds == 0 {
            return;
        }
        let span = tracing::info_span!("cache.set", bytes = derivative.data.len());
        async {
            let mut command = redis::cmd("SET");
            command
                .arg(key)
                .arg(encode_envelope(derivative))
                .arg("EX")
                .arg(ttl_seconds);
            let _: Option<()> = self.run("SET", &command).await;
        }
        .instrument(span)
        .await;
    }

    /// Runs `command` under the timeout; `None` when Redis is skipped, slow
    /// or failing.
    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        command: &redis::Cmd,
    ) -> Option<T> {
        if !self.availability.should_try() {
            return None;
        }
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, command.query_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => {
                self.availability.succeeded();
                Some(value)
            }
            Ok(Err(error)) => {
                self.availability.failed(operation, &error);
                None
            }
            Err(_elapsed) => {
                self.availability.failed(operation, &"timed out");
                None
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

/// Packs `derivative` into the cache envelope.
pub fn encode_envelope(derivative: &Derivative) -> Vec<u8> {
    let content_type = derivative.format.content_type().as_bytes();
    let mut bytes = Vec::with_capacity(4 + 1 + content_type.len() + 8 + derivative.data.len());
    bytes.extend_from_slice(ENVELOPE_MAGIC);
    bytes.push(ENVELOPE_VERSION);
    // Content types are short constants; see EncodedFormat::content_type.
    bytes.push(content_type.len() as u8);
    bytes.extend_from_slice(content_type);
    bytes.extend_from_slice(&derivative.width.to_be_bytes());
    bytes.extend_from_slice(&derivative.height.to_be_bytes());
    bytes.extend_from_slice(&derivative.data);
    bytes
}

/// Unpacks a cache envelope; `None` when it is not one this version wrote.
pub fn decode_envelope(mut bytes: Vec<u8>) -> Option<Derivative> {
    let rest = bytes.strip_prefix(ENVELOPE_MAGIC.as_slice())?;
    let (&version, rest) = rest.split_first()?;
    if version != ENVELOPE_VERSION {
        return None;
    }
    let (&type_len, rest) = rest.split_first()?;
    let (content_type, rest) = rest.split_at_checked(usize::from(type_len))?;
    let format = EncodedFormat::from_content_type(std::str::from_utf8(content_type).ok()?)?;
    let (width, rest) = rest.split_first_chunk::<4>()?;
    let (height, _data) = rest.split_first_chunk::<4>()?;
    let (width, height) = (u32::from_be_bytes(*width), u32::from_be_bytes(*height));
    let header_len = ENVELOPE_MAGIC.len() + 2 + usize::from(type_len) + 8;
    bytes.drain(..header_len);
    Some(Derivative {
        format,
        width,
        height,
        data: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_process::RedisProcess;

    fn sample() -> Derivative {
        Derivative {
            format: EncodedFormat::Webp,
            width: 320,
            height: 213,
            data: b"RIFF\x10\0\0\0WEBPVP8 some bytes".to_vec(),
        }
    }

    /// A derivative survives the envelope unchanged, for every format.
    #[test]
    fn envelope_round_trips() {
        for format in EncodedFormat::ALL {
            let derivative = Derivative { format, ..sample() };
            assert_eq!(
                decode_envelope(encode_envelope(&derivative)),
                Some(derivative)
            );
        }
        let empty = Derivative {
            data: Vec::new(),
            ..sample()
        };
        assert_eq!(decode_envelope(encode_envelope(&empty)), Some(empty));
    }

    /// Truncated, foreign or future-version envelopes are refused, not misread.
    #[test]
    fn envelope_refuses_garbage() {
        let good = encode_envelope(&sample());
        for len in 0..(4 + 1 + "image/webp".len() + 8) {
            assert_eq!(decode_envelope(good[..len].to_vec()), None, "prefix {len}");
        }
        let mut future = good.clone();
        future[3] = 2;
        assert_eq!(decode_envelope(future), None);
        let mut unknown_type = good.clone();
        unknown_type[5..15].copy_from_slice(b"image/gif!");
        assert_eq!(decode_envelope(unknown_type), None);
        assert_eq!(decode_envelope(b"{\"json\":true}".to_vec()), None);
    }

    /// SET then GET returns the derivative, and the key carries the TTL.
    #[tokio::test]
    async fn set_then_get_round_trips_with_ttl() {
        let redis = RedisProcess::start().await;
        let cache =
            DerivativeCache::connect_lazily(&redis.url().into(), Duration::from_millis(500))
                .unwrap();
        let key = "imgmesh:d:v1:test";
        assert_eq!(cache.get(key).await, None);
        cache.set(key, &sample(), 600).await;
        assert_eq!(cache.get(key).await, Some(sample()));
        let ttl = redis.ttl(key).await;
        assert!(ttl > 0 && ttl <= 600, "ttl {ttl}");
    }

    /// A TTL of 0 stores nothing.
    #[tokio::test]
    async fn zero_ttl_is_not_cached() {
        let redis = RedisProcess::start().await;
        let cache =
            DerivativeCache::connect_lazily(&redis.url().into(), Duration::from_millis(500))
                .unwrap();
        cache.set("imgmesh:d:v1:zero", &sample(), 0).await;
        assert_eq!(cache.get("imgmesh:d:v1:zero").await, None);
        assert_eq!(redis.ttl("imgmesh:d:v1:zero").await, -2);
    }

    /// With Redis killed, GET is a miss and SET a no-op, each within the timeout.
    #[tokio::test]
    async fn redis_down_is_a_fast_miss() {
        let mut redis = RedisProcess::start().await;
        let timeout = Duration::from_millis(50);
        let cache = DerivativeCache::connect_lazily(&redis.url().into(), timeout).unwrap();
        cache.set("imgmesh:d:v1:k", &sample(), 60).await;
        assert_eq!(cache.get("imgmesh:d:v1:k").await, Some(sample()));

        redis.kill();
        // Allow scheduling slack on a busy machine, but far less than any
        // reconnect backoff or TCP timeout.
        let bound = timeout + Duration::from_millis(200);
        for _ in 0..3 {
            let started = Instant::now();
            assert_eq!(cache.get("imgmesh:d:v1:k").await, None);
            cache.set("imgmesh:d:v1:k", &sample(), 60).await;
            assert!(started.elapsed() < bound * 2, "{:?}", started.elapsed());
        }
    }

    /// A cache built while Redis is down still answers (misses) and works once Redis is up.
    #[tokio::test]
    async fn starts_without_redis_and_recovers() {
        let port = crate::redis_process::free_port();
        let url = format!("redis://127.0.0.1:{port}");
        let cache =
            DerivativeCache::connect_lazily(&url.as_str().into(), Duration::from_millis(50))
                .unwrap();
        let started = Instant::now();
        assert_eq!(cache.get("imgmesh:d:v1:k").await, None);
        assert!(started.elapsed() < Duration::from_millis(300));

        let _redis = RedisProcess::start_on(port).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            cache.set("imgmesh:d:v1:k", &sample(), 60).await;
            if cache.get("imgmesh:d:v1:k").await == Some(sample()) {
                break;
            }
            assert!(Instant::now() < deadline, "cache never recovered");
            tokio::time::sleep(RETRY_AFTER / 5).await;
        }
    }
}
