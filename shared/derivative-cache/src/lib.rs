//! The Redis derivative cache: written by the renderer, read by the
//! renderer and — for hits, without a gRPC hop — by the gateway.
//!
//! - [`keys`]: the key layout, with the purge counters that make a purge
//!   O(1) and effective on every replica at once;
//! - [`entry`]: what an entry holds (a small binary envelope: validators,
//!   freshness, then the bytes) and the HTTP rules applied to it (freshness,
//!   `If-None-Match` / `If-Modified-Since`, the strong ETag);
//! - [`client`]: [`DerivativeCache`], every Redis operation under a short
//!   timeout and a circuit breaker, so Redis trouble costs misses, never
//!   errors, on one Redis server or a Redis Cluster; with hot entries
//!   (the gateway), a copy in memory served without a round trip while
//!   the purge feed (Redis Pub/Sub) vouches that no purge touched it;
//! - [`response`]: an entry as the renderer's `RenderResponse`.

#![warn(missing_docs)]

pub mod client;
pub mod entry;
pub mod keys;
pub mod response;

mod connection;
mod feed;
mod hot;
mod metrics;

pub use crate::client::{DerivativeCache, Found, LeaseOutcome, Lookup, RETRY_AFTER, Waiting};
pub use crate::entry::{CachedDerivative, Conditional, EntryMeta, strong_etag, unix_now};
pub use crate::keys::{
    CacheNames, PURGE_CHANNEL, PurgeScope, directory_prefix, epoch_key, generation_key, hash_tag,
    lease_key,
};
pub use crate::metrics::register as register_metrics;
pub use crate::response::render_response;
