//! The purge feed: a dedicated Redis connection subscribed to
//! [`PURGE_CHANNEL`], on which every purge announces the counter it bumped
//! (see `DerivativeCache::purge`), so hot copies can be served without a
//! Redis round trip and still never outlive a purge (see `hot`).
//!
//! The subscription is checked with a `PING` every [`PING_EVERY`] answered
//! within [`PING_TIMEOUT`]; a closed connection, a failed ping or a failed
//! subscription count as the feed lost: every hot copy is dropped and none
//! is trusted until the feed is subscribed again (reconnecting with backoff
//! from [`RETRY_FIRST`] to [`RETRY_MAX`], over the seed nodes in turn on a
//! Redis Cluster, where `PUBLISH` reaches every node's subscribers). The
//! task ends once the cache it feeds is gone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_stream::StreamExt as _;

use crate::hot::HotEntries;
use crate::keys::PURGE_CHANNEL;
use crate::metrics::FEED;

/// How often the subscription is pinged.
pub(crate) const PING_EVERY: Duration = Duration::from_millis(500);

/// How long a ping (or connecting and subscribing) may take before the
/// feed counts as lost.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// The first wait before subscribing again.
const RETRY_FIRST: Duration = Duration::from_millis(50);

/// The longest wait before subscribing again.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Follows the purge channel on `seeds` (one server, or a cluster's seed
/// nodes) for `hot`, in a task of its own, until `hot` is dropped.
pub(crate) fn follow(hot: &Arc<HotEntries>, seeds: Vec<String>) {
    let hot = Arc::downgrade(hot);
    tokio::spawn(async move {
        // However the task ends (a panic included), nothing is trusted on
        // the word of a feed no one follows.
        let _distrust = Distrust(hot.clone());
        let mut retry = RETRY_FIRST;
        let mut turn = 0usize;
        let mut was_up = true;
        loop {
            if hot.strong_count() == 0 || seeds.is_empty() {
                return;
            }
            let seed = &seeds[turn % seeds.len()];
            turn = turn.wrapping_add(1);
            match subscribe(seed).await {
                Ok(pubsub) => {
                    retry = RETRY_FIRST;
                    if !was_up {
                        tracing::info!("purge feed subscribed again; trusting hot copies");
                    }
                    was_up = true;
                    let lost = listen(&hot, pubsub).await;
                    if let Some(hot) = hot.upgrade() {
                        hot.feed_lost();
                    }
                    FEED.set_subscribed(false);
                    match lost {
                        Lost::Dropped => return,
                        Lost::Because(reason) => {
                            tracing::warn!(%reason, "purge feed lost; hot copies dropped and confirmed with redis until it is back");
                        }
                    }
                }
                Err(error) => {
                    if was_up {
                        tracing::warn!(%error, "purge feed cannot subscribe; hot copies confirmed with redis");
                    }
                    was_up = false;
                }
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    });
}

/// Drops every hot copy and trusts none when the feed's task ends.
struct Distrust(Weak<HotEntries>);

impl Drop for Distrust {
    fn drop(&mut self) {
        if let Some(hot) = self.0.upgrade() {
            hot.feed_lost();
        }
        FEED.set_subscribed(false);
    }
}

/// Why listening stopped.
enum Lost {
    /// The cache is gone.
    Dropped,
    /// The subscription broke.
    Because(String),
}

/// A connection to `url` subscribed to the purge channel.
async fn subscribe(url: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(url)?;
    let subscribing = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(PURGE_CHANNEL).await?;
        Ok(pubsub)
    };
    tokio::time::timeout(PING_TIMEOUT * 2, subscribing)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "subscribing timed out",
            )))
        })
}

/// Applies the purge messages of `pubsub` to `hot` until the subscription
/// breaks or `hot` is dropped. The feed is up from the first line: the
/// subscription is confirmed.
async fn listen(hot: &Weak<HotEntries>, pubsub: redis::aio::PubSub) -> Lost {
    let Some(entries) = hot.upgrade() else {
        return Lost::Dropped;
    };
    entries.feed_up();
    drop(entries);
    FEED.set_subscribed(true);
    let (mut sink, mut messages) = pubsub.split();
    let mut pings = tokio::time::interval(PING_EVERY);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Lost::Because("the connection closed".to_owned());
                };
                let Some(entries) = hot.upgrade() else {
                    return Lost::Dropped;
                };
                match std::str::from_utf8(message.get_payload_bytes()) {
                    Ok(generation_key) => {
                        let dropped = entries.purged(generation_key);
                        FEED.message();
                        tracing::debug!(generation_key, dropped, "purge message");
                    }
                    // Not one of ours: a purge of something unknown is
                    // still a purge, so nothing held can be vouched for.
                    Err(_) => {
                        entries.feed_lost();
                        entries.feed_up();
                    }
                }
            }
            _ = pings.tick() => {
                if hot.strong_count() == 0 {
                    return Lost::Dropped;
                }
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Lost::Because(format!("ping failed: {error}")),
                    Err(_) => return Lost::Because("ping timed out".to_owned()),
                }
            }
        }
    }
}
