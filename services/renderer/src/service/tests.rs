//! The renderer service end to end against a real Redis and a fake
//! fetcher: renders, overlays, admission, limits and errors, and the gRPC
//! server with its health service.

use std::time::Duration;

use imgmesh_derivative_cache::DerivativeCache;
use imgmesh_errors::ErrorCode;
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan, RenderRequest, blend};
use imgmesh_test_support::RedisServer;
use tokio::net::TcpListener;

use crate::error::RenderError;
use crate::fake_fetcher::{FakeFetcher, FakeObject};
use crate::pipeline::RenderLimits;
use crate::service::Renderer;
use crate::service::origin_fetch::OriginFetcher;
use crate::service::render_pool::RenderPool;
use crate::test_images;

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
    let redis = RedisServer::start().await;
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
    let redis = RedisServer::start().await;
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

/// A miss asked to start now is refused as overloaded, before its original
/// is fetched, while every worker has a render admitted; the same miss
/// asked plainly takes a queue place and is rendered.
#[tokio::test]
async fn start_now_misses_are_refused_while_every_worker_has_a_render() {
    let redis = RedisServer::start().await;
    let fetcher = fetcher_with_cat().await;
    let mut renderer = renderer(&redis.url(), fetcher.channel());
    renderer.pool = RenderPool::with_admission(1, 2, 1 << 30, RenderLimits::default());
    let fetching = renderer.pool.admit(None).unwrap();
    let refused = renderer
        .render_derivative_as(request("cat.jpg", webp_200(), 60), None, true)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RenderError::Overloaded { .. }),
        "{refused:?}"
    );
    assert_eq!(fetcher.fetches(), 0, "nothing fetched for the refused miss");
    let rendered = renderer
        .render_derivative_as(request("cat.jpg", webp_200(), 60), None, false)
        .await
        .unwrap();
    assert!(!rendered.cache_hit);
    assert_eq!(fetcher.fetches(), 1);
    drop(fetching);
}

/// A TTL of 0 is never cached, so every render fetches again.
#[tokio::test]
async fn zero_ttl_renders_every_time() {
    let redis = RedisServer::start().await;
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
    let redis = RedisServer::start().await;
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
    let mut redis = RedisServer::start().await;
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
    let redis = RedisServer::start().await;
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
    let redis = RedisServer::start().await;
    let port = imgmesh_test_support::unused_port();
    let channel = imgmesh_runtime::grpc_channel(&format!("http://127.0.0.1:{port}")).unwrap();
    let renderer = renderer(&redis.url(), channel);
    let error = renderer
        .render_derivative(request("cat.jpg", webp_200(), 60), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unavailable);
    assert_eq!(error.to_string(), "the fetcher is unavailable");
}

/// A fetcher whose connection closes mid-answer (killed while streaming an
/// original) is UNAVAILABLE, so the gateway answers 503 with `Retry-After`,
/// never a 500: h2 ends the stream with an I/O error tonic reads as UNKNOWN.
#[tokio::test]
async fn fetcher_cut_mid_stream_is_unavailable() {
    let redis = RedisServer::start().await;
    let fetcher = FakeFetcher::start([(
        "cut.jpg",
        FakeObject::CutMidStream(test_images::jpeg(400, 300)),
    )])
    .await;
    let renderer = renderer(&redis.url(), fetcher.channel());
    let error = renderer
        .render_derivative(request("cut.jpg", webp_200(), 60), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unavailable, "{error}");
    assert_eq!(error.to_string(), "the fetcher is unavailable");
    assert_eq!(fetcher.fetches(), 1);
}

/// Originals over the byte cap are refused, whether announced or only streamed.
#[tokio::test]
async fn oversized_originals_are_refused() {
    let redis = RedisServer::start().await;
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
    let redis = RedisServer::start().await;
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
    let redis = RedisServer::start().await;
    let fetcher = fetcher_with_cat().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        renderer(&redis.url(), fetcher.channel()).serve(listener, async {
            let _ = stopped.await;
        }),
    );

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
