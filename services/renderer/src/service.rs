//! The `RendererService` gRPC API: derivative cache → fetch → render →
//! derivative cache.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use imgmesh_errors::ErrorCode;
use imgmesh_proto::renderer::v1::renderer_service_server::{
    RendererService, RendererServiceServer,
};
use imgmesh_proto::renderer::v1::{RenderRequest, RenderResponse, blend};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::cache_key::derivative_key;
use crate::config::RendererConfig;
use crate::derivative_cache::DerivativeCache;
use crate::error::RenderError;
use crate::libvips;
use crate::origin_fetch::{self, ObjectRef, OriginFetcher};
use crate::render::{Derivative, RenderSources};
use crate::render_plan::ResolvedPlan;
use crate::render_pool::RenderPool;

/// The renderer: answers `Render` from Redis when it can, otherwise fetches
/// the original, renders it on the bounded pool and caches the result.
#[derive(Debug, Clone)]
pub struct Renderer {
    cache: DerivativeCache,
    fetcher: OriginFetcher,
    pool: RenderPool,
}

// === impl Renderer ===

impl Renderer {
    /// Starts libvips and builds the renderer from `config`. Connects to
    /// neither Redis nor the fetcher yet: both connect on first use, so
    /// either being down does not stop the renderer from starting. Must be
    /// called inside a tokio runtime.
    pub fn build(config: &RendererConfig) -> anyhow::Result<Renderer> {
        libvips::init()?;
        let cache = DerivativeCache::connect_lazily(&config.redis_url, config.redis_timeout())
            .context("invalid --redis-url")?;
        let channel = imgmesh_runtime::grpc_channel(&config.fetcher_url)?;
        let fetcher = OriginFetcher::new(channel, config.max_object_bytes);
        let pool = RenderPool::new(config.worker_count(), config.limits());
        tracing::info!(
            workers = pool.workers(),
            max_pixels = config.max_pixels,
            max_object_bytes = config.max_object_bytes,
            redis_timeout_ms = config.redis_timeout_ms,
            "renderer ready"
        );
        Ok(Renderer::new(cache, fetcher, pool))
    }

    /// A renderer from its parts.
    pub fn new(cache: DerivativeCache, fetcher: OriginFetcher, pool: RenderPool) -> Renderer {
        Renderer {
            cache,
            fetcher,
            pool,
        }
    }

    /// Serves `RendererService` and `grpc.health.v1` on `listener` until
    /// `shutdown` resolves, then drains in-flight renders.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<RendererServiceServer<Renderer>>()
            .await;
        let routes = tonic::service::Routes::new(RendererServiceServer::new(self));
        imgmesh_runtime::serve_grpc(listener, routes, health, health_service, shutdown).await
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
        let plan = ResolvedPlan::resolve(&request.plan.unwrap_or_default())?;
        let key = derivative_key(
            &request.source_id,
            request.source_config_version,
            &request.path,
            &plan,
        );
        if let Some(derivative) = self.cache.get(&key).await {
            return Ok(response(derivative, true));
        }

        let object = ObjectRef {
            source_id: &request.source_id,
            source_config_version: request.source_config_version,
            path: &request.path,
        };
        let remaining = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let canonical = plan.canonical();
        let overlay = |path: Option<&str>| {
            let path = path.map(str::to_owned);
            let fetcher = &self.fetcher;
            let source_id = &request.source_id;
            let source_config_version = request.source_config_version;
            async move {
                let Some(path) = path else {
                    return Ok(None);
                };
                let object = ObjectRef {
                    source_id,
                    source_config_version,
                    path: &path,
                };
                match fetcher.fetch(object, remaining).await {
                    Ok(bytes) => Ok(Some(bytes)),
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
        let (original, watermark, blend) = tokio::join!(
            self.fetcher.fetch(object, remaining),
            overlay(canonical.watermark.as_ref().map(|m| m.path.as_str())),
            overlay(blend_path),
        );
        let sources = RenderSources {
            original: original?,
            watermark: watermark?,
            blend: blend?,
        };
        let derivative = self.pool.render(sources, canonical.clone()).await?;
        self.cache
            .set(&key, &derivative, request.cache_ttl_seconds)
            .await;
        Ok(response(derivative, false))
    }
}

fn response(derivative: Derivative, cache_hit: bool) -> RenderResponse {
    RenderResponse {
        content_type: derivative.format.content_type().to_owned(),
        cache_hit,
        width: derivative.width,
        height: derivative.height,
        data: derivative.data.into(),
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
            cache_hit = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        async {
            match self.render_derivative(request, timeout).await {
                Ok(response) => {
                    tracing::Span::current().record("cache_hit", response.cache_hit);
                    Ok(tonic::Response::new(response))
                }
                Err(error) => {
                    let code = error.code();
                    tracing::Span::current().record("error", code.reason());
                    if code.http_status() >= 500 {
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
}

#[cfg(test)]
mod tests {
    use imgmesh_errors::ErrorCode;
    use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
    use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan};

    use super::*;
    use crate::fake_fetcher::{FakeFetcher, FakeObject};
    use crate::redis_process::RedisProcess;
    use crate::render::RenderLimits;
    use crate::test_images;

    const MAX_OBJECT_BYTES: u64 = 1024 * 1024;

    fn renderer(redis_url: &str, fetcher: tonic::transport::Channel) -> Renderer {
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
        let port = crate::redis_process::free_port();
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
