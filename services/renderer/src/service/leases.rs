//! Render leases: one replica renders a missing derivative while the
//! others wait for its entry in Redis, and take over if the holder dies
//! (its lease lapses) or their wait runs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgmesh_derivative_cache::{LeaseOutcome, Waiting, lease_key};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::service::job::{Job, Produced};
use crate::service::renderer::Renderer;

// === impl Renderer ===

impl Renderer {
    /// Renders a missing derivative once across replicas: the holder of the
    /// Redis lease renders; the others wait for its entry, and take over if
    /// it dies (the lease lapses) or their wait runs out. With no place free
    /// in the render pool it is refused as overloaded at once, before any
    /// lease is asked for.
    pub(super) async fn produce(self, job: Job) -> Result<Produced, RenderError> {
        // A full pool sheds before the lease's round trips to Redis.
        if job.start_now {
            self.pool.check_room_to_start()?;
        } else {
            self.pool.check_room()?;
        }
        if !job.cacheable {
            return self.fetch_and_render(&job).await.map(Produced::Entry);
        }
        let lease = lease_key(&job.key);
        let holder = format!("{:016x}", rand::random::<u64>());
        let mut wait = self.caching.lease_wait;
        if let Some(remaining) = job.remaining() {
            // Leave half the budget for rendering here if the wait is in vain.
            wait = wait.min(remaining / 2);
        }
        let wait_until = Instant::now() + wait;
        loop {
            match self
                .cache
                .try_lease(&lease, &holder, self.caching.lease_ttl)
                .await
            {
                LeaseOutcome::Acquired => {
                    // A holder that finished between this request's lookup
                    // and now has stored the entry: no second render.
                    if let Some(entry) = self.cache.get(&job.key).await {
                        self.cache.release_lease(&lease, &holder).await;
                        return Ok(Produced::Entry(Arc::new(entry)));
                    }
                    let renewal = self.keep_lease(lease.clone(), holder.clone());
                    let rendered = self.fetch_and_render(&job).await;
                    renewal.abort();
                    self.cache.release_lease(&lease, &holder).await;
                    return rendered.map(Produced::Entry);
                }
                LeaseOutcome::Unavailable => {
                    return self.fetch_and_render(&job).await.map(Produced::Entry);
                }
                LeaseOutcome::HeldElsewhere => {}
            }
            let mut poll = Duration::from_millis(10);
            loop {
                if Instant::now() >= wait_until {
                    METRICS.lease_wait("timeout");
                    tracing::debug!(key = %job.key, "waited too long for another replica's render");
                    return self.fetch_and_render(&job).await.map(Produced::Entry);
                }
                tokio::time::sleep(poll.min(wait_until.saturating_duration_since(Instant::now())))
                    .await;
                poll = (poll * 2).min(Duration::from_millis(100));
                match self.cache.wait_step(&job.key, &lease).await {
                    Waiting::Stored(entry) => {
                        METRICS.lease_wait("stored");
                        return Ok(Produced::Entry(Arc::new(entry)));
                    }
                    Waiting::Held => {}
                    Waiting::Abandoned => {
                        METRICS.lease_wait("abandoned");
                        break;
                    }
                    Waiting::Unavailable => {
                        return self.fetch_and_render(&job).await.map(Produced::Entry);
                    }
                }
            }
        }
    }

    /// Renews `holder`'s lease until the returned task is aborted.
    fn keep_lease(&self, lease: String, holder: String) -> tokio::task::JoinHandle<()> {
        let (cache, ttl) = (self.cache.clone(), self.caching.lease_ttl);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if !cache.renew_lease(&lease, &holder, ttl).await {
                    return;
                }
            }
        })
    }
}
