//! The `RendererService` gRPC API: derivative cache → (revalidate | fetch →
//! render) → derivative cache, with HTTP caching semantics.
//!
//! A request looks its derivative up in Redis (one round trip that also
//! reads the purge counters; see `derivative_cache`). A fresh entry is the
//! answer — or just its validators, when the caller's `If-None-Match` /
//! `If-Modified-Since` match. An expired entry is revalidated: the original
//! is fetched conditionally with the ETag it was rendered from, and an
//! unchanged original extends the entry in place without decoding
//! anything. A miss renders once: concurrent misses in this process share
//! one run ([`SingleFlight`]), and across replicas a short lease in Redis
//! lets one holder render while the others wait for its entry (rendering
//! themselves if it dies or their wait runs out). Whatever renders is
//! admitted to the [`RenderPool`] before its original is fetched, and is
//! refused at once as overloaded when the pool has no room. A plan that
//! asks for nothing stores the original itself, unchanged (imgix's
//! passthrough; see `passthrough`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use imgmesh_errors::ErrorCode;
use imgmesh_imgix_params::is_empty_plan;
use imgmesh_proto::registry::v1::CacheTtlBehavior;
use imgmesh_proto::renderer::v1::renderer_service_server::{
    RendererService, RendererServiceServer,
};
use imgmesh_proto::renderer::v1::{
    CacheStatus, PurgeRequest, PurgeResponse, RenderRequest, RenderResponse, blend, purge_request,
};
use imgmesh_runtime::{Dependency, GrpcChannel, HealthArgs, Impact, ServiceHealth};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use bytes::Bytes;
use imgmesh_derivative_cache::{
    CacheNames, CachedDerivative, Conditional, DerivativeCache, EntryMeta, LeaseOutcome, Lookup,
    PurgeScope, Waiting, directory_prefix, generation_key, lease_key, render_response, strong_etag,
    unix_now,
};

use crate::config::RendererConfig;
use crate::encode::EncodedFormat;
use crate::error::RenderError;
use crate::http_cache::lifetime;
use crate::libvips;
use crate::metrics::METRICS;
use crate::origin_fetch::{self, ObjectRef, OriginFetcher, Original, Revalidated};
use crate::passthrough::passthrough;
use crate::render::RenderSources;
use crate::render_plan::ResolvedPlan;
use crate::render_pool::{Admission, RenderPool};
use crate::single_flight::{Abandoned, SingleFlight};

/// The renderer: answers `Render` from Redis when it can, otherwise fetches
/// the original, renders it on the bounded pool and caches the result.
#[derive(Debug, Clone)]
pub struct Renderer {
    cache: DerivativeCache,
    fetcher: OriginFetcher,
    pool: RenderPool,
    caching: Caching,
    /// Runs by the derivative's key without generations (so requests share
    /// a run whatever Redis answered them), with the entry key each run
    /// was made under.
    in_flight: Arc<SingleFlight<(String, Produced)>>,
    /// The fetcher's channel and how to check it (and Redis) for health;
    /// `None` serves SERVING whatever they do.
    health_checks: Option<(GrpcChannel, HealthArgs)>,
}

/// How derivatives are kept and renders shared across replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caching {
    /// How long Redis keeps an entry past its freshness, for revalidation.
    pub revalidate_window_seconds: u32,
    /// Lifetime of a render lease (renewed while the holder works).
    pub lease_ttl: Duration,
    /// Longest wait for another replica's render.
    pub lease_wait: Duration,
}

/// What one shared run produced.
#[derive(Debug, Clone)]
enum Produced {
    /// A new entry, rendered here or by the replica this one waited for.
    Entry(Arc<CachedDerivative>),
    /// The expired entry's original is unchanged: its new freshness.
    Refreshed {
        /// When it was revalidated, Unix seconds.
        stored_at: i64,
        /// Its new lifetime.
        max_age: u32,
    },
}

/// What becomes an entry: the bytes served (a render, or the original
/// passed through) and what the original's fetch said about it.
#[derive(Debug)]
struct Stored {
    content_type: &'static str,
    width: u32,
    height: u32,
    data: Vec<u8>,
    origin_etag: String,
    last_modified: i64,
    caching: crate::http_cache::OriginCaching,
}

/// Everything a run needs, owned so it can outlive the request.
#[derive(Debug, Clone)]
struct Job {
    request: Arc<RenderRequest>,
    plan: Arc<ResolvedPlan>,
    /// The entry key under the current purge counters.
    key: String,
    /// Whether `key` came from Redis (else Redis is down: nothing is stored).
    cacheable: bool,
    deadline: Option<Instant>,
    /// Fires when every caller of the shared run has gone: a render that
    /// has not started by then is not started.
    abandoned: Abandoned,
}

// === impl Caching ===

impl Default for Caching {
    fn default() -> Caching {
        Caching {
            revalidate_window_seconds: 86_400,
            lease_ttl: Duration::from_secs(3),
            lease_wait: Duration::from_secs(15),
        }
    }
}

impl Caching {
    /// How long Redis keeps an entry fresh for `max_age` seconds.
    fn redis_ttl(&self, max_age: u32) -> u32 {
        max_age.saturating_add(self.revalidate_window_seconds)
    }
}

// === impl Job ===

impl Job {
    /// The request's original. The path's purge counters (the key's last
    /// part, e.g. `0.2.0`) keep the fetcher from reusing a copy it cached
    /// before a purge, while every derivative of one original still shares
    /// its cached copy.
    fn object(&self) -> ObjectRef<'_> {
        let generation = match self.key.rsplit_once(':') {
            Some((_, generations)) if self.cacheable => generations,
            _ => "",
        };
        ObjectRef {
            source_id: &self.request.source_id,
            source_config_version: self.request.source_config_version,
            path: &self.request.path,
            generation,
        }
    }

    /// What is left of the caller's budget.
    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The derivative's lifetime given what the origin said.
    fn lifetime(&self, caching: &crate::http_cache::OriginCaching, now: i64) -> u32 {
        let behavior = CacheTtlBehavior::try_from(self.request.cache_ttl_behavior)
            .unwrap_or(CacheTtlBehavior::Unspecified);
        lifetime(behavior, self.request.cache_ttl_seconds, caching, now)
    }
}

// === impl Renderer ===

impl Renderer {
    /// Starts libvips and builds the renderer from `config`. Connects to
    /// neither Redis nor the fetcher yet: both connect on first use, so
    /// either being down does not stop the renderer from starting. Must be
    /// called inside a tokio runtime. It dials the fetcher over `transport`
    /// (with mutual TLS, presenting the renderer's certificate).
    pub fn build(
        config: &RendererConfig,
        transport: &imgmesh_runtime::Transport,
    ) -> anyhow::Result<Renderer> {
        libvips::init()?;
        let cache = DerivativeCache::connect_lazily(&config.redis_url, config.redis_timeout())
            .context("invalid --redis-url")?;
        let channel = imgmesh_runtime::grpc_channel_over(&config.fetcher_url, transport)?;
        let fetcher = OriginFetcher::new(channel.clone(), config.max_object_bytes);
        let pool = RenderPool::with_admission(
            config.worker_count(),
            config.render_queue_depth(),
            config.render_memory_budget_bytes,
            config.limits(),
        );
        tracing::info!(
            workers = pool.workers(),
            queue_depth = pool.queue_depth(),
            memory_budget_bytes = pool.memory_budget(),
            max_pixels = config.max_pixels,
            max_object_bytes = config.max_object_bytes,
            redis_timeout_ms = config.redis_timeout_ms,
            "renderer ready"
        );
        let mut renderer = Renderer::new(cache, fetcher, pool).with_caching(config.caching());
        renderer.health_checks = Some((channel, config.health.clone()));
        Ok(renderer)
    }

    /// A renderer from its parts, with the default [`Caching`].
    pub fn new(cache: DerivativeCache, fetcher: OriginFetcher, pool: RenderPool) -> Renderer {
        Renderer {
            cache,
            fetcher,
            pool,
            caching: Caching::default(),
            in_flight: Arc::new(SingleFlight::new()),
            health_checks: None,
        }
    }

    /// The same renderer keeping and sharing derivatives as `caching` says.
    pub fn with_caching(mut self, caching: Caching) -> Renderer {
        self.caching = caching;
        self
    }

    /// Serves `RendererService` and `grpc.health.v1` on `listener` until
    /// `shutdown` resolves, then drains in-flight renders. A renderer from
    /// [`Renderer::build`] reports NOT_SERVING while no fetcher reports
    /// SERVING, and stays SERVING, degraded, while Redis does not answer
    /// (`imgmesh_health_status{dependency="redis"}` 0). With mutual TLS
    /// only the identities the policy allows (the gateway, and the CLI for
    /// purges) may call it.
    pub async fn serve<F>(
        mut self,
        listener: TcpListener,
        transport: imgmesh_runtime::Transport,
        shutdown: F,
    ) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let health = ServiceHealth::new().with_service::<RendererServiceServer<Renderer>>();
        health.start().await;
        if let Some((fetcher, args)) = self.health_checks.take() {
            let cache = self.cache.clone();
            let redis = Dependency::new("redis", Impact::Degrades, move || {
                let cache = cache.clone();
                async move { cache.ping().await.map_err(|error| error.to_string()) }
            });
            let fetcher = Dependency::grpc_peer("fetcher", Impact::Required, fetcher);
            health.watch(vec![fetcher, redis], &args);
        }
        let routes = tonic::service::Routes::new(RendererServiceServer::new(self));
        imgmesh_runtime::serve_grpc_over(listener, &transport, routes, health, shutdown).await
    }

    /// Answers one render request; `timeout` is the caller's remaining
    /// budget, passed on to the fetcher.
    pub async fn render_derivative(
        &self,
        request: RenderRequest,
        timeout: Option<Duration>,
    ) -> Result<RenderResponse, RenderError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        if request.source_id.is_empty() {
            return Err(RenderError::InvalidRequest {
                field: "source_id",
                problem: "must not be empty".into(),
            });
        }
        if request.path.is_empty() {
            return Err(RenderError::InvalidRequest {
                field: "path",
                problem: "must not be empty".into(),
            });
        }
        let plan = ResolvedPlan::resolve(request.plan.as_ref().unwrap_or(&Default::default()))?;
        let names = CacheNames::new(
            &request.source_id,
            request.source_config_version,
            &request.path,
            plan.canonical(),
        );
        let request = Arc::new(request);
        let conditional = Conditional {
            if_none_match: &request.if_none_match,
            if_modified_since: request.if_modified_since,
        };
        let lookup = self
            .cache
            .lookup(&names, conditional.is_conditional())
            .await;
        let cacheable = lookup.is_some();
        // Without Redis the key only coalesces renders in this process.
        let Lookup { key, found } = lookup.unwrap_or(Lookup {
            key: names.base.clone(),
            found: None,
        });
        let job = Job {
            request: Arc::clone(&request),
            plan: Arc::new(plan),
            key,
            cacheable,
            deadline,
            abandoned: Abandoned::never(),
        };

        if let Some(found) = found {
            let (meta, data) = found.into_parts();
            if meta.is_fresh(unix_now()) {
                let fresh = self
                    .cache
                    .respond(&job.key, &meta, data, conditional, CacheStatus::Hit)
                    .await;
                if let Some(response) = fresh {
                    METRICS.derivative_lookup("hit");
                    return Ok(counted(response));
                }
            } else if let Some(response) = self.revalidate(&job, meta, data, conditional).await? {
                return Ok(response);
            }
        }

        METRICS.derivative_lookup("miss");
        let run = {
            let (renderer, job) = (self.clone(), job.clone());
            move |abandoned| async move {
                let job = Job { abandoned, ..job };
                let key = job.key.clone();
                renderer.produce(job).await.map(|produced| (key, produced))
            }
        };
        let (made_for, mut produced) = self.in_flight.run(&names.base, run).await.0?;
        if job.cacheable && made_for != names.base && made_for != job.key {
            // A purge came between the run's lookup and this one's: the
            // run may have read the original before it; render afresh.
            produced = self.clone().produce(job.clone()).await?;
        }
        match produced {
            Produced::Entry(entry) => Ok(answer(&entry, conditional)),
            Produced::Refreshed { .. } => Err(RenderError::Internal {
                context: "answering a render run",
            }),
        }
    }

    /// Revalidates an expired entry with the origin (one run per entry in
    /// this process). `None` when the entry must be rendered anew after all
    /// (it vanished from Redis).
    async fn revalidate(
        &self,
        job: &Job,
        meta: EntryMeta,
        data: Option<Bytes>,
        conditional: Conditional<'_>,
    ) -> Result<Option<RenderResponse>, RenderError> {
        let run = {
            let (renderer, job, origin_etag) =
                (self.clone(), job.clone(), meta.origin_etag.clone());
            move |abandoned| async move {
                let job = Job { abandoned, ..job };
                let key = job.key.clone();
                renderer
                    .refresh_or_render(job, origin_etag)
                    .await
                    .map(|produced| (key, produced))
            }
        };
        let flight = format!("{}#revalidate", job.key);
        match self.in_flight.run(&flight, run).await.0?.1 {
            Produced::Entry(entry) => {
                METRICS.derivative_lookup("miss");
                Ok(Some(answer(&entry, conditional)))
            }
            Produced::Refreshed { stored_at, max_age } => {
                METRICS.derivative_lookup("stale");
                let refreshed = EntryMeta {
                    stored_at,
                    max_age,
                    ..meta
                };
                let response = self
                    .cache
                    .respond(&job.key, &refreshed, data, conditional, CacheStatus::Stale)
                    .await;
                Ok(response.map(counted))
            }
        }
    }

    /// Asks the origin whether the original rendered with `origin_etag`
    /// changed: unchanged extends the entry in Redis, changed renders it.
    async fn refresh_or_render(
        self,
        job: Job,
        origin_etag: String,
    ) -> Result<Produced, RenderError> {
        let fetched = self
            .fetcher
            .fetch_if_changed(job.object(), &origin_etag, job.remaining())
            .await?;
        match fetched {
            Revalidated::Unchanged(caching) => {
                let now = unix_now();
                let max_age = job.lifetime(&caching, now);
                if job.cacheable {
                    self.cache
                        .refresh(&job.key, now, max_age, self.caching.redis_ttl(max_age))
                        .await;
                }
                Ok(Produced::Refreshed {
                    stored_at: now,
                    max_age,
                })
            }
            Revalidated::Changed(original) => {
                // Only now is a render needed: an unchanged original took
                // no render capacity.
                let admission = self.admit(&job)?;
                self.render_and_store(&job, admission, original)
                    .await
                    .map(Produced::Entry)
            }
        }
    }

    /// Renders a missing derivative once across replicas: the holder of the
    /// Redis lease renders; the others wait for its entry, and take over if
    /// it dies (the lease lapses) or their wait runs out.
    async fn produce(self, job: Job) -> Result<Produced, RenderError> {
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

    /// Takes a place in the render pool, then fetches the original and
    /// renders it: admitted first, so a refused request fetches nothing and
    /// at most the pool's capacity of originals is ever held.
    async fn fetch_and_render(&self, job: &Job) -> Result<Arc<CachedDerivative>, RenderError> {
        let admission = self.admit(job)?;
        let original = self.fetcher.fetch(job.object(), job.remaining()).await?;
        self.render_and_store(job, admission, original).await
    }

    /// A place in the render pool for `job`, unless nobody waits for it
    /// any more or there is no room (refused at once, never queued).
    fn admit(&self, job: &Job) -> Result<Admission, RenderError> {
        if job.abandoned.is_set() {
            return Err(RenderError::Abandoned);
        }
        self.pool.admit(job.deadline)
    }

    /// Renders `original` with the job's plan (fetching its overlays), or
    /// takes it as it is when the plan asks for nothing and the original
    /// can be passed through ([`passthrough`]), and stores the entry for
    /// its lifetime.
    async fn render_and_store(
        &self,
        job: &Job,
        admission: Admission,
        original: Original,
    ) -> Result<Arc<CachedDerivative>, RenderError> {
        let canonical = job.plan.canonical();
        let original = if is_empty_plan(canonical) {
            let (original, passed) = tokio::task::spawn_blocking(move || {
                let passed = passthrough(&original.bytes);
                (original, passed)
            })
            .await
            .map_err(|_| RenderError::Internal {
                context: "reading an original's header",
            })?;
            if let Some(passed) = passed {
                // Nothing is decoded: the render place goes back at once.
                drop(admission);
                let Original {
                    bytes,
                    etag,
                    last_modified,
                    caching,
                } = original;
                let stored = Stored {
                    content_type: passed.format.content_type(),
                    width: passed.width,
                    height: passed.height,
                    data: bytes,
                    origin_etag: etag,
                    last_modified,
                    caching,
                };
                return Ok(self.store(job, stored).await);
            }
            original
        } else {
            original
        };
        let remaining = job.remaining();
        let overlay = |path: Option<&str>| {
            let path = path.map(str::to_owned);
            let fetcher = &self.fetcher;
            let request = &job.request;
            async move {
                let Some(path) = path else {
                    return Ok(None);
                };
                let object = ObjectRef {
                    source_id: &request.source_id,
                    source_config_version: request.source_config_version,
                    path: &path,
                    generation: "",
                };
                match fetcher.fetch(object, remaining).await {
                    Ok(original) => Ok(Some(original.bytes)),
                    // imgix renders the base image when the overlay is missing.
                    Err(RenderError::Fetch {
                        code: ErrorCode::ObjectNotFound,
                        ..
                    }) => Ok(None),
                    Err(error) => Err(error),
                }
            }
        };
        let blend_path = match canonical.blend.as_ref().and_then(|b| b.source.as_ref()) {
            Some(blend::Source::Path(path)) => Some(path.as_str()),
            _ => None,
        };
        let (watermark, blend) = tokio::join!(
            overlay(canonical.watermark.as_ref().map(|m| m.path.as_str())),
            overlay(blend_path),
        );
        let sources = RenderSources {
            original: original.bytes,
            watermark: watermark?,
            blend: blend?,
        };
        let started = Instant::now();
        let derivative = self
            .pool
            .render_admitted(
                admission,
                sources,
                canonical.clone(),
                job.deadline,
                job.abandoned.wait(),
            )
            .await?;
        METRICS.rendered(format_label(derivative.format), started.elapsed());
        let stored = Stored {
            content_type: derivative.format.content_type(),
            width: derivative.width,
            height: derivative.height,
            data: derivative.data,
            origin_etag: original.etag,
            last_modified: original.last_modified,
            caching: original.caching,
        };
        Ok(self.store(job, stored).await)
    }

    /// Makes `stored` the job's entry, kept in Redis for its lifetime.
    async fn store(&self, job: &Job, stored: Stored) -> Arc<CachedDerivative> {
        let now = unix_now();
        let max_age = job.lifetime(&stored.caching, now);
        let entry = CachedDerivative {
            meta: EntryMeta {
                content_type: stored.content_type.to_owned(),
                width: stored.width,
                height: stored.height,
                etag: strong_etag(&stored.data),
                origin_etag: stored.origin_etag,
                last_modified: stored.last_modified,
                stored_at: now,
                max_age,
            },
            data: stored.data.into(),
        };
        if job.cacheable && max_age > 0 {
            self.cache
                .set(&job.key, &entry, self.caching.redis_ttl(max_age))
                .await;
        }
        Arc::new(entry)
    }

    /// Bumps the purge counter `request` names.
    pub async fn purge_derivatives(&self, request: &PurgeRequest) -> Result<u64, RenderError> {
        if request.source_id.is_empty() {
            return Err(RenderError::InvalidRequest {
                field: "source_id",
                problem: "must not be empty".into(),
            });
        }
        let prefix;
        let (scope, name) = match &request.target {
            None => (PurgeScope::Source, "source"),
            Some(purge_request::Target::Path(path)) => {
                let path = path.trim_start_matches('/');
                if path.is_empty() || path.ends_with('/') {
                    return Err(RenderError::InvalidRequest {
                        field: "path",
                        problem: "must name an asset (purge a prefix for a directory)".into(),
                    });
                }
                (PurgeScope::Asset(path), "asset")
            }
            Some(purge_request::Target::Prefix(raw)) => {
                prefix = directory_prefix(raw).ok_or_else(|| RenderError::InvalidRequest {
                    field: "prefix",
                    problem: "must name a directory (purge the Source for everything)".into(),
                })?;
                (PurgeScope::Prefix(&prefix), "prefix")
            }
        };
        let generation = self
            .cache
            .purge(&generation_key(&request.source_id, scope))
            .await
            .map_err(|error| {
                tracing::warn!(%error, "purge failed");
                RenderError::CacheUnavailable
            })?;
        METRICS.purged(name);
        tracing::info!(source_id = %request.source_id, scope = name, generation, "purged");
        Ok(generation)
    }
}

/// The response for a new entry: validators only (`not_modified`) when the
/// request's match, else its bytes too.
fn answer(entry: &CachedDerivative, conditional: Conditional<'_>) -> RenderResponse {
    counted(render_response(
        &entry.meta,
        Some(entry.data.clone()),
        conditional,
        CacheStatus::Miss,
        unix_now(),
    ))
}

/// `response`, counted in `imgmesh_not_modified_total` when it is one.
fn counted(response: RenderResponse) -> RenderResponse {
    if response.not_modified {
        METRICS.not_modified();
    }
    response
}

/// The metrics label of an output format.
fn format_label(format: EncodedFormat) -> &'static str {
    match format {
        EncodedFormat::Jpeg => "jpeg",
        EncodedFormat::Png => "png",
        EncodedFormat::Webp => "webp",
        EncodedFormat::Avif => "avif",
        EncodedFormat::Gif => "gif",
        EncodedFormat::Json => "json",
        EncodedFormat::Blurhash => "blurhash",
    }
}

#[tonic::async_trait]
impl RendererService for Renderer {
    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderResponse>, tonic::Status> {
        let timeout = origin_fetch::grpc_timeout(request.metadata());
        let request = request.into_inner();
        let span = tracing::info_span!(
            "render",
            source_id = %request.source_id,
            path = %request.path,
            cache = tracing::field::Empty,
            not_modified = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        async {
            match self.render_derivative(request, timeout).await {
                Ok(response) => {
                    let span = tracing::Span::current();
                    span.record("cache", response.cache_status().as_str_name());
                    span.record("not_modified", response.not_modified);
                    Ok(tonic::Response::new(response))
                }
                Err(error) => {
                    let code = error.code();
                    tracing::Span::current().record("error", code.reason());
                    // Shedding is the renderer working as designed; a
                    // warning per refusal would flood the log under load.
                    if code.http_status() >= 500 && code != ErrorCode::Overloaded {
                        tracing::warn!(%error, %code, "render failed");
                    } else {
                        tracing::debug!(%error, %code, "render refused");
                    }
                    Err(error.into())
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn purge(
        &self,
        request: tonic::Request<PurgeRequest>,
    ) -> Result<tonic::Response<PurgeResponse>, tonic::Status> {
        let generation = self.purge_derivatives(request.get_ref()).await?;
        Ok(tonic::Response::new(PurgeResponse { generation }))
    }
}

#[cfg(test)]
mod cache_tests;

#[cfg(test)]
mod tests {
    use imgmesh_errors::ErrorCode;
    use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
    use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan};

    use super::*;
    use crate::fake_fetcher::{FakeFetcher, FakeObject};
    use crate::render::RenderLimits;
    use crate::test_images;
    use imgmesh_derivative_cache::test_redis::RedisProcess;

    const MAX_OBJECT_BYTES: u64 = 1024 * 1024;

    fn renderer(redis_url: &str, fetcher: imgmesh_runtime::GrpcChannel) -> Renderer {
        let cache =
            DerivativeCache::connect_lazily(&redis_url.into(), Duration::from_millis(200)).unwrap();
        let limits = RenderLimits {
            max_object_bytes: MAX_OBJECT_BYTES,
            ..RenderLimits::default()
        };
        Renderer::new(
            cache,
            OriginFetcher::new(fetcher, MAX_OBJECT_BYTES),
            RenderPool::new(2, limits),
        )
    }

    fn request(path: &str, plan: RenderPlan, ttl: u32) -> RenderRequest {
        RenderRequest {
            source_id: "src_1".into(),
            source_config_version: 1,
            path: path.into(),
            plan: Some(plan),
            cache_ttl_seconds: ttl,
            ..RenderRequest::default()
        }
    }

    fn webp_200() -> RenderPlan {
        RenderPlan {
            width: 200,
            format: OutputFormat::Webp.into(),
            ..RenderPlan::default()
        }
    }

    async fn fetcher_with_cat() -> FakeFetcher {
        FakeFetcher::start([("cat.jpg", FakeObject::Bytes(test_images::jpeg(400, 300)))]).await
    }

    /// The first render is a miss that fetches; the second is a Redis hit with the same bytes.
    #[tokio::test]
    async fn second_render_is_a_cache_hit() {
        let redis = RedisProcess::start().await;
        let fetcher = fetcher_with_cat().await;
        let renderer = renderer(&redis.url(), fetcher.channel());

        let first = renderer
            .render_derivative(request("cat.jpg", webp_200(), 60), None)
            .await
            .unwrap();
        assert!(!first.cache_hit);
        assert_eq!((first.width, first.height), (200, 150));
        assert_eq!(first.content_type, "image/webp");

        let second = renderer
            .render_derivative(request("cat.jpg", webp_200(), 60), None)
            .await
            .unwrap();
        assert!(second.cache_hit);
        assert_eq!(second.data, first.data);
        assert_eq!((second.width, second.height), (200, 150));
        assert_eq!(second.content_type, "image/webp");
        assert_eq!(fetcher.fetches(), 1);
    }

    /// With every render slot taken, a cache hit is still answered, while a
    /// miss is refused as overloaded before its original is fetched.
    #[tokio::test]
    async fn hits_need_no_slot_and_misses_are_refused_before_fetching() {
        let redis = RedisProcess::start().await;
        let fetcher = fetcher_with_cat().await;
        let mut renderer = renderer(&redis.url(), fetcher.channel());
        renderer.pool = RenderPool::with_admission(1, 0, 1 << 30, RenderLimits::default());
        renderer
            .render_derivative(request("cat.jpg", webp_200(), 60), None)
            .await
            .unwrap();
        assert_eq!(fetcher.fetches(), 1);

        let _only_slot = renderer.pool.admit(None).unwrap();
        let hit = renderer
            .render_derivative(request("cat.jpg", webp_200(), 60), None)
            .await
            .unwrap();
        assert!(hit.cache_hit);
        let refused = renderer
            .render_derivative(
                request(
                    "cat.jpg",
                    RenderPlan {
                        width: 100,
                        ..webp_200()
                    },
                    60,
                ),
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, RenderError::Overloaded { .. }),
            "{refused:?}"
        );
        assert_eq!(fetcher.fetches(), 1, "nothing fetched for the refused miss");
    }

    /// A TTL of 0 is never cached, so every render fetches again.
    #[tokio::test]
    async fn zero_ttl_renders_every_time() {
        let redis = RedisProcess::start().await;
        let fetcher = fetcher_with_cat().await;
        let renderer = renderer(&redis.url(), fetcher.channel());
        for _ in 0..2 {
            let response = renderer
                .render_derivative(request("cat.jpg", webp_200(), 0), None)
                .await
                .unwrap();
            assert!(!response.cache_hit);
        }
        assert_eq!(fetcher.fetches(), 2);
    }

    /// Watermark and blend images are fetched from the same Source; a missing
    /// one renders without it, any other fetch error fails the render.
    #[tokio::test]
    async fn overlays_come_from_the_same_source() {
        let redis = RedisProcess::start().await;
        let fetcher = FakeFetcher::start([
            ("cat.jpg", FakeObject::Bytes(test_images::jpeg(400, 300))),
            ("logo.png", FakeObject::Bytes(test_images::png(40, 20))),
            (
                "locked.png",
                FakeObject::Error(
                    ErrorCode::OriginAccessDenied,
                    "the origin rejected the source's credentials",
                ),
            ),
        ])
        .await;
        let renderer = renderer(&redis.url(), fetcher.channel());
        let with = |mark: &str| RenderPlan {
            watermark: Some(imgmesh_proto::renderer::v1::Watermark {
                path: mark.into(),
                ..Default::default()
            }),
            blend: Some(imgmesh_proto::renderer::v1::Blend {
                source: Some(blend::Source::Path("logo.png".into())),
                ..Default::default()
            }),
            ..webp_200()
        };
        let marked = renderer
            .render_derivative(request("cat.jpg", with("logo.png"), 0), None)
            .await
            .unwrap();
        assert_eq!((marked.width, marked.height), (200, 150));
        assert_eq!(fetcher.fetches(), 3, "original, watermark and blend");
        let plain = renderer
            .render_derivative(request("cat.jpg", webp_200(), 0), None)
            .await
            .unwrap();
        assert_ne!(marked.data, plain.data, "the overlays changed the pixels");
        let missing = renderer
            .render_derivative(request("cat.jpg", with("nope.png"), 0), None)
            .await
            .unwrap();
        assert_eq!((missing.width, missing.height), (200, 150));
        let error = renderer
            .render_derivative(request("cat.jpg", with("locked.png"), 0), None)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::OriginAccessDenied);
    }

    /// With Redis down the renderer still answers, uncached.
    #[tokio::test]
    async fn renders_without_redis() {
        let mut redis = RedisProcess::start().await;
        let url = redis.url();
        redis.kill();
        let fetcher = fetcher_with_cat().await;
        let renderer = renderer(&url, fetcher.channel());
        for _ in 0..2 {
            let response = renderer
                .render_derivative(request("cat.jpg", webp_200(), 60), None)
                .await
                .unwrap();
            assert!(!response.cache_hit);
            assert_eq!((response.width, response.height), (200, 150));
        }
    }

    /// Fetcher errors reach the caller with their code and message unchanged.
    #[tokio::test]
    async fn fetcher_errors_pass_through() {
        let redis = RedisProcess::start().await;
        let fetcher = FakeFetcher::start([(
            "denied.jpg",
            FakeObject::Error(
                ErrorCode::OriginAccessDenied,
                "the origin rejected the source's credentials",
            ),
        )])
        .await;
        let renderer = renderer(&redis.url(), fetcher.channel());
        for (path, code, message) in [
            ("missing.jpg", ErrorCode::ObjectNotFound, "object not found"),
            (
                "denied.jpg",
                ErrorCode::OriginAccessDenied,
                "the origin rejected the source's credentials",
            ),
        ] {
            let status = tonic::Status::from(
                renderer
                    .render_derivative(request(path, webp_200(), 60), None)
                    .await
                    .unwrap_err(),
            );
            assert_eq!(ErrorCode::of_status(&status), code, "{path}");
            assert_eq!(status.message(), message, "{path}");
        }
    }

    /// An unreachable fetcher is UNAVAILABLE with a generic message, not transport text.
    #[tokio::test]
    async fn unreachable_fetcher_is_unavailable() {
        let redis = RedisProcess::start().await;
        let port = imgmesh_derivative_cache::test_redis::free_port();
        let channel = imgmesh_runtime::grpc_channel(&format!("http://127.0.0.1:{port}")).unwrap();
        let renderer = renderer(&redis.url(), channel);
        let error = renderer
            .render_derivative(request("cat.jpg", webp_200(), 60), None)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::Unavailable);
        assert_eq!(error.to_string(), "the fetcher is unavailable");
    }

    /// Originals over the byte cap are refused, whether announced or only streamed.
    #[tokio::test]
    async fn oversized_originals_are_refused() {
        let redis = RedisProcess::start().await;
        let big = vec![0u8; MAX_OBJECT_BYTES as usize + 1];
        let fetcher = FakeFetcher::start([
            ("announced.jpg", FakeObject::Bytes(big.clone())),
            (
                "understated.jpg",
                FakeObject::Understated {
                    announced: 10,
                    bytes: big,
                },
            ),
        ])
        .await;
        let renderer = renderer(&redis.url(), fetcher.channel());
        for path in ["announced.jpg", "understated.jpg"] {
            let error = renderer
                .render_derivative(request(path, webp_200(), 60), None)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    RenderError::ObjectTooLarge {
                        limit: MAX_OBJECT_BYTES
                    }
                ),
                "{path}: {error:?}"
            );
        }
    }

    /// Requests without a Source, a path, or with an unknown fit are INVALID_ARGUMENT.
    #[tokio::test]
    async fn invalid_requests_are_refused() {
        let redis = RedisProcess::start().await;
        let fetcher = fetcher_with_cat().await;
        let renderer = renderer(&redis.url(), fetcher.channel());
        let no_source = RenderRequest {
            source_id: String::new(),
            ..request("cat.jpg", webp_200(), 60)
        };
        let no_path = request("", webp_200(), 60);
        let bad_fit = request(
            "cat.jpg",
            RenderPlan {
                fit: 99,
                ..webp_200()
            },
            60,
        );
        for (request, field) in [
            (no_source, "source_id"),
            (no_path, "path"),
            (bad_fit, "plan.fit"),
        ] {
            let error = renderer.render_derivative(request, None).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidArgument);
            assert!(error.to_string().starts_with(field), "{error}");
        }
        assert_eq!(fetcher.fetches(), 0);
    }

    /// Over gRPC, Render answers with the derivative and health reports SERVING.
    #[tokio::test]
    async fn serves_render_and_health_over_grpc() {
        let redis = RedisProcess::start().await;
        let fetcher = fetcher_with_cat().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(renderer(&redis.url(), fetcher.channel()).serve(
            listener,
            imgmesh_runtime::Transport::Plaintext,
            async {
                let _ = stopped.await;
            },
        ));

        let channel = imgmesh_runtime::grpc_channel(&format!("http://{addr}")).unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let serving = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "imgmesh.renderer.v1.RendererService".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            serving.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );

        let mut client = RendererServiceClient::new(channel);
        let plan = RenderPlan {
            width: 100,
            height: 100,
            fit: Fit::Crop.into(),
            format: OutputFormat::Png.into(),
            ..RenderPlan::default()
        };
        let response = client
            .render(request("cat.jpg", plan.clone(), 60))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((response.width, response.height), (100, 100));
        assert_eq!(response.content_type, "image/png");
        assert!(response.data.starts_with(b"\x89PNG"));

        let status = client
            .render(request("missing.jpg", plan, 60))
            .await
            .unwrap_err();
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::ObjectNotFound);

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
