//! The service value and a request's path through it: checks, the plan
//! resolved once, the derivative cache's lookup, then a fresh answer, a
//! revalidation, or a run shared by every concurrent miss of the entry.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use imgmesh_derivative_cache::{
    CacheNames, CachedDerivative, Conditional, DerivativeCache, render_response, unix_now,
};
use imgmesh_proto::renderer::v1::renderer_service_server::RendererServiceServer;
use imgmesh_proto::renderer::v1::{CacheStatus, RenderRequest, RenderResponse};
use imgmesh_runtime::{Dependency, GrpcChannel, HealthArgs, Impact, Transport};
use tokio::net::TcpListener;

use crate::config::{Caching, RendererConfig};
use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::{ResolvedPlan, libvips};
use crate::service::job::{Job, Produced};
use crate::service::origin_fetch::OriginFetcher;
use crate::service::render_pool::{self, RenderPool};
use crate::service::single_flight::SingleFlight;

/// The renderer: answers `Render` from Redis when it can, otherwise fetches
/// the original, renders it on the bounded pool and caches the result.
#[derive(Debug, Clone)]
pub struct Renderer {
    pub(super) cache: DerivativeCache,
    pub(super) fetcher: OriginFetcher,
    pub(super) pool: RenderPool,
    pub(super) caching: Caching,
    /// Runs by the derivative's key without generations (so requests share
    /// a run whatever Redis answered them), with the entry key each run
    /// was made under.
    pub(super) in_flight: Arc<SingleFlight<(String, Produced)>>,
    /// The fetcher's channel and how to check it (and Redis) for health;
    /// `None` serves SERVING whatever they do.
    pub(super) health_checks: Option<(GrpcChannel, HealthArgs)>,
    /// How the renderer is called: plaintext, or mutual TLS as
    /// [`Renderer::build`] was told.
    pub(super) transport: Transport,
}

// === impl Renderer ===

impl Renderer {
    /// Starts libvips and builds the renderer from `config`. Connects to
    /// neither Redis nor the fetcher yet: both connect on first use, so
    /// either being down does not stop the renderer from starting. Must be
    /// called inside a tokio runtime. It dials the fetcher over `transport`
    /// (with mutual TLS, presenting the renderer's certificate).
    pub fn build(config: &RendererConfig, transport: &Transport) -> anyhow::Result<Renderer> {
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
        )
        .with_running_memory(config.running_memory_bytes())
        .with_intermediates(config.render_intermediate_bytes, config.intermediate_ttl())
        .with_batching(config.render_batch_max, render_pool::BATCH_WINDOW)
        .with_stretch_tolerance(config.render_stretch_tolerance)
        .with_render_nice(config.render_nice);
        spawn_intermediate_expiry(&pool, config.intermediate_ttl());
        tracing::info!(
            workers = pool.workers(),
            queue_depth = pool.queue_depth(),
            memory_budget_bytes = pool.memory_budget(),
            running_memory_bytes = pool.running_memory(),
            stretch_tolerance = config.render_stretch_tolerance,
            intermediate_bytes = config.render_intermediate_bytes,
            batch_max = pool.batch_max(),
            render_nice = pool.render_nice(),
            max_pixels = config.max_pixels,
            max_object_bytes = config.max_object_bytes,
            redis_timeout_ms = config.redis_timeout_ms,
            "renderer ready"
        );
        let mut renderer = Renderer::new(cache, fetcher, pool).with_caching(config.caching());
        renderer.health_checks = Some((channel, config.health.clone()));
        renderer.transport = transport.clone();
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
            transport: Transport::Plaintext,
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
    pub async fn serve<F>(mut self, listener: TcpListener, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (dependencies, args) = match self.health_checks.take() {
            Some((fetcher, args)) => {
                let cache = self.cache.clone();
                let redis = Dependency::new("redis", Impact::Degrades, move || {
                    let cache = cache.clone();
                    async move { cache.ping().await.map_err(|error| error.to_string()) }
                });
                let fetcher = Dependency::grpc_peer("fetcher", Impact::Required, fetcher);
                (vec![fetcher, redis], args)
            }
            None => (Vec::new(), HealthArgs::default()),
        };
        let transport = self.transport.clone();
        let service = RendererServiceServer::new(self);
        imgmesh_runtime::serve_service(listener, &transport, service, dependencies, &args, shutdown)
            .await
    }

    /// Answers one render request; `timeout` is the caller's remaining
    /// budget, passed on to the fetcher.
    pub async fn render_derivative(
        &self,
        request: RenderRequest,
        timeout: Option<Duration>,
    ) -> Result<RenderResponse, RenderError> {
        self.render_derivative_as(request, timeout, false).await
    }

    /// [`Renderer::render_derivative`], whose miss, with `start_now`, is
    /// rendered only if it can start at once and is refused as overloaded
    /// otherwise (`RenderPool::admit_to_start`), never queued.
    pub async fn render_derivative_as(
        &self,
        request: RenderRequest,
        timeout: Option<Duration>,
        start_now: bool,
    ) -> Result<RenderResponse, RenderError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        check_names_an_original(&request)?;
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
        let (mut job, found) = Job::new(Arc::clone(&request), plan, lookup, &names.base, deadline);
        job.start_now = start_now;

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

        self.render_missing(&job, &names.base, conditional).await
    }

    /// Renders the job's missing entry (or takes it from the replica that
    /// holds its lease) in one run shared by every concurrent miss of
    /// `base`, the key without purge counters, and answers with it.
    async fn render_missing(
        &self,
        job: &Job,
        base: &str,
        conditional: Conditional<'_>,
    ) -> Result<RenderResponse, RenderError> {
        METRICS.derivative_lookup("miss");
        let run = {
            let (renderer, job) = (self.clone(), job.clone());
            move |abandoned| async move {
                let job = Job { abandoned, ..job };
                let generation = job.generation.clone();
                renderer
                    .produce(job)
                    .await
                    .map(|produced| (generation, produced))
            }
        };
        let (made_for, mut produced) = self.in_flight.run(base, run).await.0?;
        if job.cacheable && !made_for.is_empty() && made_for != job.generation {
            // A purge (or Redis losing its data) came between the run's
            // lookup and this one's: the run may have read the original
            // before it; render afresh.
            produced = self.clone().produce(job.clone()).await?;
        }
        match produced {
            Produced::Entry(entry) => Ok(answer(&entry, conditional)),
            Produced::Refreshed { .. } => Err(RenderError::Internal {
                context: "answering a render run",
            }),
        }
    }
}

/// Refuses a request that names no Source or no path.
fn check_names_an_original(request: &RenderRequest) -> Result<(), RenderError> {
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
    Ok(())
}

/// The response for a new entry: validators only (`not_modified`) when the
/// request's match, else its bytes too.
pub(super) fn answer(entry: &CachedDerivative, conditional: Conditional<'_>) -> RenderResponse {
    counted(render_response(
        &entry.meta,
        Some(entry.data.clone()),
        conditional,
        CacheStatus::Miss,
        unix_now(),
    ))
}

/// `response`, counted in `imgmesh_not_modified_total` when it is one.
pub(super) fn counted(response: RenderResponse) -> RenderResponse {
    if response.not_modified {
        METRICS.not_modified();
    }
    response
}

/// Drops `pool`'s kept decodes once they are older than `ttl`, checking
/// every `ttl`, so an idle renderer gives their memory back. Ends with the
/// runtime.
fn spawn_intermediate_expiry(pool: &RenderPool, ttl: Duration) {
    if pool.intermediates().is_none() {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ttl);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            pool.expire_intermediates();
        }
    });
}
