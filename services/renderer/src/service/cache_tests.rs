//! The renderer's HTTP caching against a real Redis and a fake fetcher:
//! lifetimes per policy, validators and 304s, revalidation with the origin,
//! purges, and one render for many concurrent misses (in one renderer and
//! across two sharing Redis).

use std::time::Duration;

use imgmesh_proto::registry::v1::CacheTtlBehavior;
use imgmesh_proto::renderer::v1::{
    CacheStatus, OutputFormat, PurgeRequest, RenderPlan, RenderRequest, purge_request,
};

use imgmesh_derivative_cache::{CacheNames, DerivativeCache, LeaseOutcome, lease_key};
use imgmesh_test_support::RedisServer;

use crate::config::Caching;
use crate::error::RenderError;
use crate::fake_fetcher::{FakeFetcher, FakeObject, fake_etag};
use crate::pipeline::{RenderLimits, ResolvedPlan};
use crate::service::Renderer;
use crate::service::origin_fetch::OriginFetcher;
use crate::service::render_pool::RenderPool;
use crate::test_images;

/// The value of one series (name and labels) on `/metrics`; 0 when absent.
fn series(name: &str) -> f64 {
    imgmesh_metrics::series_value(name).unwrap_or(0.0)
}

const MAX_OBJECT_BYTES: u64 = 1024 * 1024;
const WINDOW: u32 = 1_000;

fn renderer(redis: &RedisServer, fetcher: &FakeFetcher) -> Renderer {
    let cache =
        DerivativeCache::connect_lazily(&redis.url().into(), Duration::from_millis(500)).unwrap();
    let limits = RenderLimits {
        max_object_bytes: MAX_OBJECT_BYTES,
        ..RenderLimits::default()
    };
    Renderer::new(
        cache,
        OriginFetcher::new(fetcher.channel(), MAX_OBJECT_BYTES),
        RenderPool::new(2, limits),
    )
    .with_caching(Caching {
        revalidate_window_seconds: WINDOW,
        lease_ttl: Duration::from_millis(600),
        lease_wait: Duration::from_secs(10),
    })
}

fn plan() -> RenderPlan {
    RenderPlan {
        width: 200,
        format: OutputFormat::Webp.into(),
        ..RenderPlan::default()
    }
}

fn request(path: &str, behavior: CacheTtlBehavior, ttl: u32) -> RenderRequest {
    RenderRequest {
        source_id: "src_1".into(),
        source_config_version: 1,
        path: path.into(),
        plan: Some(plan()),
        cache_ttl_seconds: ttl,
        cache_ttl_behavior: behavior.into(),
        ..RenderRequest::default()
    }
}

/// The entry key a request is stored under (no purges yet).
fn entry_key(path: &str, generations: &[u64]) -> String {
    let plan = ResolvedPlan::resolve(&plan()).unwrap();
    CacheNames::new("src_1", 1, path, plan.canonical()).entry_key(generations)
}

async fn cat_fetcher() -> FakeFetcher {
    FakeFetcher::start([
        ("cat.jpg", FakeObject::Bytes(test_images::jpeg(400, 300))),
        (
            "a/b/cat.jpg",
            FakeObject::Bytes(test_images::jpeg(400, 300)),
        ),
        (
            "a/c/dog.jpg",
            FakeObject::Bytes(test_images::jpeg(300, 300)),
        ),
    ])
    .await
}

/// Each cache_ttl_behavior combines the Source's lifetime with the
/// original's Cache-Control; the response's max-age is that lifetime and
/// Redis keeps the entry for it plus the revalidation window.
#[tokio::test]
async fn lifetimes_follow_the_sources_policy() {
    let redis = RedisServer::start().await;
    let fetcher = cat_fetcher().await;
    let renderer = renderer(&redis, &fetcher);
    use CacheTtlBehavior::*;
    let cases = [
        ("max-age=120", RespectOrigin, 3_600, 120),
        ("", RespectOrigin, 3_600, 3_600),
        ("max-age=120", OverrideOrigin, 3_600, 3_600),
        ("max-age=120", EnforceMinimum, 3_600, 3_600),
        ("max-age=7200", EnforceMinimum, 3_600, 7_200),
        ("max-age=120, s-maxage=30", Unspecified, 3_600, 30),
    ];
    for (cache_control, behavior, source_ttl, expected) in cases {
        fetcher.set_cache_control(cache_control);
        // A purge per case: each renders afresh under a new key.
        let generation = renderer
            .purge_derivatives(&PurgeRequest {
                source_id: "src_1".into(),
                target: None,
            })
            .await
            .unwrap();
        let rendered = renderer
            .render_derivative(request("cat.jpg", behavior, source_ttl), None)
            .await
            .unwrap();
        assert_eq!(rendered.cache_status(), CacheStatus::Miss);
        assert_eq!(
            rendered.max_age_seconds, expected,
            "{cache_control} {behavior:?}"
        );
        let ttl = redis.ttl(&entry_key("cat.jpg", &[generation, 0])).await;
        let redis_ttl = i64::from(expected + WINDOW);
        assert!(
            ttl <= redis_ttl && ttl > redis_ttl - 5,
            "{cache_control} {behavior:?}: redis ttl {ttl}, wanted {redis_ttl}"
        );
        let hit = renderer
            .render_derivative(request("cat.jpg", behavior, source_ttl), None)
            .await
            .unwrap();
        assert_eq!(hit.cache_status(), CacheStatus::Hit);
        assert_eq!(hit.max_age_seconds, expected);
        assert_eq!(hit.data, rendered.data);
    }

    // An original that must not be cached is rendered every time, never stored.
    fetcher.set_cache_control("no-store");
    renderer
        .purge_derivatives(&PurgeRequest {
            source_id: "src_1".into(),
            target: None,
        })
        .await
        .unwrap();
    let fetches = fetcher.fetches();
    for _ in 0..2 {
        let rendered = renderer
            .render_derivative(request("cat.jpg", RespectOrigin, 3_600), None)
            .await
            .unwrap();
        assert_eq!(rendered.max_age_seconds, 0);
        assert_eq!(rendered.cache_status(), CacheStatus::Miss);
    }
    assert_eq!(fetcher.fetches(), fetches + 2);
}

/// A strong ETag and the original's Last-Modified come with every answer;
/// a matching If-None-Match or If-Modified-Since answers not modified with
/// no bytes and without rendering.
#[tokio::test]
async fn validators_answer_not_modified_without_rendering() {
    let redis = RedisServer::start().await;
    let fetcher = cat_fetcher().await;
    let renderer = renderer(&redis, &fetcher);
    let first = renderer
        .render_derivative(
            request("cat.jpg", CacheTtlBehavior::OverrideOrigin, 600),
            None,
        )
        .await
        .unwrap();
    assert!(
        first.etag.starts_with('"') && first.etag.len() == 34,
        "{}",
        first.etag
    );
    assert_eq!(first.last_modified, 1_700_000_000);
    assert!(!first.not_modified);

    let conditional = |if_none_match: &str, if_modified_since: i64| RenderRequest {
        if_none_match: if_none_match.to_owned(),
        if_modified_since,
        ..request("cat.jpg", CacheTtlBehavior::OverrideOrigin, 600)
    };
    for (if_none_match, if_modified_since) in [
        (first.etag.as_str(), 0),
        ("*", 0),
        ("", 1_700_000_000),
        ("", 1_800_000_000),
    ] {
        let answer = renderer
            .render_derivative(conditional(if_none_match, if_modified_since), None)
            .await
            .unwrap();
        assert!(answer.not_modified, "{if_none_match} {if_modified_since}");
        assert!(answer.data.is_empty());
        assert_eq!(answer.etag, first.etag);
        assert_eq!(answer.cache_status(), CacheStatus::Hit);
    }
    for (if_none_match, if_modified_since) in [("\"other\"", 1_800_000_000), ("", 1_600_000_000)] {
        let answer = renderer
            .render_derivative(conditional(if_none_match, if_modified_since), None)
            .await
            .unwrap();
        assert!(!answer.not_modified, "{if_none_match} {if_modified_since}");
        assert_eq!(answer.data, first.data);
    }
    assert_eq!(
        fetcher.fetches(),
        1,
        "only the first request fetched and rendered"
    );
}

/// An expired entry is revalidated with the ETag of the original it was
/// rendered from: unchanged extends it (stale, no render); changed renders.
#[tokio::test]
async fn expired_entries_are_revalidated_with_the_origin() {
    let redis = RedisServer::start().await;
    let fetcher = cat_fetcher().await;
    let renderer = renderer(&redis, &fetcher);
    let cache =
        DerivativeCache::connect_lazily(&redis.url().into(), Duration::from_millis(500)).unwrap();
    let key = entry_key("cat.jpg", &[0, 0]);
    let ask = || request("cat.jpg", CacheTtlBehavior::OverrideOrigin, 600);
    let first = renderer.render_derivative(ask(), None).await.unwrap();

    // Age the entry past its lifetime.
    assert!(cache.refresh(&key, 1_000, 600, 60).await);
    let stale = renderer.render_derivative(ask(), None).await.unwrap();
    assert_eq!(stale.cache_status(), CacheStatus::Stale);
    assert_eq!(stale.data, first.data);
    assert_eq!(stale.age_seconds, 0);
    assert_eq!((fetcher.fetches(), fetcher.not_modified()), (2, 1));
    assert!(
        redis.ttl(&key).await > 1_500,
        "extended by lifetime + window"
    );
    let hit = renderer.render_derivative(ask(), None).await.unwrap();
    assert_eq!(hit.cache_status(), CacheStatus::Hit);
    assert_eq!(fetcher.fetches(), 2);

    // The original changes in S3: the next revalidation renders it.
    let square = test_images::jpeg(300, 300);
    fetcher.put("cat.jpg", FakeObject::Bytes(square.clone()));
    assert!(cache.refresh(&key, 1_000, 600, 60).await);
    let changed = renderer.render_derivative(ask(), None).await.unwrap();
    assert_eq!(changed.cache_status(), CacheStatus::Miss);
    assert_eq!((changed.width, changed.height), (200, 200));
    assert_ne!(changed.etag, first.etag);
    assert_eq!((fetcher.fetches(), fetcher.not_modified()), (3, 1));
    let stored = cache.get(&key).await.unwrap();
    assert_eq!(stored.meta.origin_etag, fake_etag(&square));
}

/// Purging an asset, a prefix or the whole Source makes the next request
/// render afresh; other assets keep their entries unless the Source goes.
#[tokio::test]
async fn purges_render_afresh() {
    let redis = RedisServer::start().await;
    let fetcher = cat_fetcher().await;
    let renderer = renderer(&redis, &fetcher);
    let ask = |path: &str| request(path, CacheTtlBehavior::OverrideOrigin, 600);
    let status = |path: &'static str| {
        let renderer = renderer.clone();
        async move {
            renderer
                .render_derivative(ask(path), None)
                .await
                .unwrap()
                .cache_status()
        }
    };
    assert_eq!(status("a/b/cat.jpg").await, CacheStatus::Miss);
    assert_eq!(status("a/c/dog.jpg").await, CacheStatus::Miss);
    assert_eq!(status("a/b/cat.jpg").await, CacheStatus::Hit);

    let purge = |target: Option<purge_request::Target>| {
        let renderer = renderer.clone();
        async move {
            renderer
                .purge_derivatives(&PurgeRequest {
                    source_id: "src_1".into(),
                    target,
                })
                .await
        }
    };
    purge(Some(purge_request::Target::Path("/a/b/cat.jpg".into())))
        .await
        .unwrap();
    assert_eq!(status("a/b/cat.jpg").await, CacheStatus::Miss);
    assert_eq!(status("a/c/dog.jpg").await, CacheStatus::Hit);

    purge(Some(purge_request::Target::Prefix("a/b".into())))
        .await
        .unwrap();
    assert_eq!(status("a/b/cat.jpg").await, CacheStatus::Miss);
    assert_eq!(status("a/c/dog.jpg").await, CacheStatus::Hit);

    purge(None).await.unwrap();
    assert_eq!(status("a/b/cat.jpg").await, CacheStatus::Miss);
    assert_eq!(status("a/c/dog.jpg").await, CacheStatus::Miss);
    assert_eq!(status("a/c/dog.jpg").await, CacheStatus::Hit);

    // Bad targets are refused before Redis is touched.
    for (target, field) in [
        (Some(purge_request::Target::Path("".into())), "path"),
        (Some(purge_request::Target::Path("a/".into())), "path"),
        (Some(purge_request::Target::Prefix("/".into())), "prefix"),
    ] {
        let error = purge(target).await.unwrap_err();
        assert!(
            matches!(error, RenderError::InvalidRequest { field: f, .. } if f == field),
            "{error:?}"
        );
    }
}

/// A hundred concurrent cold requests make one fetch and one render, all
/// answered with the same bytes — within one renderer, and across two
/// renderers sharing Redis (the second waits on the first's lease).
#[tokio::test]
async fn concurrent_misses_render_once() {
    let redis = RedisServer::start().await;
    let fetcher = cat_fetcher().await;
    // Long enough that every request arrives while the first is in flight.
    fetcher.set_delay(Duration::from_millis(300));
    let one = renderer(&redis, &fetcher);
    let two = renderer(&redis, &fetcher);
    let ask = |renderer: &Renderer, path: &'static str| {
        let renderer = renderer.clone();
        async move {
            renderer
                .render_derivative(request(path, CacheTtlBehavior::OverrideOrigin, 600), None)
                .await
        }
    };

    let answers = futures::future::join_all((0..100).map(|_| ask(&one, "cat.jpg"))).await;
    assert_eq!(fetcher.fetches(), 1);
    let first = answers[0].as_ref().unwrap();
    for answer in &answers {
        assert_eq!(answer.as_ref().unwrap().data, first.data);
    }

    let answers = futures::future::join_all(
        (0..100).map(|i| ask(if i % 2 == 0 { &one } else { &two }, "a/b/cat.jpg")),
    )
    .await;
    assert_eq!(fetcher.fetches(), 2, "one more fetch across both renderers");
    let first = answers[0].as_ref().unwrap();
    for answer in &answers {
        assert_eq!(answer.as_ref().unwrap().etag, first.etag);
    }
}

/// A lease whose holder died (never stored, never released) lapses, and
/// the waiter renders itself.
#[tokio::test]
async fn a_dead_holders_lease_lapses() {
    let redis = RedisServer::start().await;
    let fetcher = cat_fetcher().await;
    let renderer = renderer(&redis, &fetcher);
    let cache =
        DerivativeCache::connect_lazily(&redis.url().into(), Duration::from_millis(500)).unwrap();
    let lease = lease_key(&entry_key("cat.jpg", &[0, 0]));
    assert_eq!(
        cache
            .try_lease(&lease, "dead-replica", Duration::from_millis(400))
            .await,
        LeaseOutcome::Acquired
    );
    let started = std::time::Instant::now();
    let answer = renderer
        .render_derivative(
            request("cat.jpg", CacheTtlBehavior::OverrideOrigin, 600),
            None,
        )
        .await
        .unwrap();
    assert_eq!(answer.cache_status(), CacheStatus::Miss);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the lease"
    );
    assert_eq!(fetcher.fetches(), 1);
}

/// A request without parameters is a passthrough, as imgix's cs page says:
/// "you can serve an image without any parameters to serve it as a
/// passthrough" (https://docs.imgix.com/apis/url/format/cs, "Rendering
/// non-web-safe colors"). A JPEG with EXIF and a CMYK JPEG come back byte
/// for byte with their content type and stored size, are cached (a hit, a
/// 304 for their ETag, a miss after a purge) and counted as passthroughs,
/// not renders; one parameter makes it a render; a TIFF is still refused
/// as unsupported.
#[tokio::test]
async fn a_request_without_parameters_serves_the_original() {
    let exif = test_images::jpeg_with_orientation(40, 30, 6);
    let cmyk = test_images::cmyk_jpeg(40, 30, [255.0, 0.0, 0.0, 0.0]);
    let redis = RedisServer::start().await;
    let fetcher = FakeFetcher::start([
        ("exif.jpg", FakeObject::Bytes(exif.clone())),
        ("cmyk.jpg", FakeObject::Bytes(cmyk.clone())),
        ("scan.tiff", FakeObject::Bytes(test_images::tiff(40, 30))),
    ])
    .await;
    let renderer = renderer(&redis, &fetcher);
    let ask = |path: &str, plan: Option<RenderPlan>, if_none_match: &str| RenderRequest {
        plan,
        if_none_match: if_none_match.into(),
        ..request(path, CacheTtlBehavior::OverrideOrigin, 3_600)
    };
    // Misses answered so far, and renders made.
    let (mut misses, mut renders) = (0, 0);
    for (path, original) in [("exif.jpg", &exif), ("cmyk.jpg", &cmyk)] {
        for plan in [None, Some(RenderPlan::default())] {
            let served = renderer
                .render_derivative(ask(path, plan, ""), None)
                .await
                .unwrap();
            if served.cache_status() == CacheStatus::Miss {
                misses += 1;
            }
            assert_eq!(&served.data, original, "{path}");
            assert_eq!(served.content_type, "image/jpeg");
            assert_eq!((served.width, served.height), (40, 30), "{path}");
        }
        let hit = renderer
            .render_derivative(ask(path, None, ""), None)
            .await
            .unwrap();
        assert_eq!(hit.cache_status(), CacheStatus::Hit, "{path}");
        assert_eq!(&hit.data, original);
        let revalidated = renderer
            .render_derivative(ask(path, None, &hit.etag), None)
            .await
            .unwrap();
        assert!(revalidated.not_modified, "{path}");
        renderer
            .purge_derivatives(&PurgeRequest {
                source_id: "src_1".into(),
                target: Some(purge_request::Target::Path(path.into())),
            })
            .await
            .unwrap();
        let after_purge = renderer
            .render_derivative(ask(path, None, ""), None)
            .await
            .unwrap();
        assert_eq!(after_purge.cache_status(), CacheStatus::Miss, "{path}");
        assert_eq!(&after_purge.data, original);
        // Every miss so far was answered by a passthrough, none by a render.
        misses += 1;
        assert_eq!(
            series(r#"imgmesh_passthroughs_total{format="jpeg"}"#),
            misses as f64,
            "{path}"
        );
        assert_eq!(
            series(r#"imgmesh_renders_total{format="jpeg"}"#),
            renders as f64
        );

        let sized = RenderPlan {
            width: 20,
            ..RenderPlan::default()
        };
        let rendered = renderer
            .render_derivative(ask(path, Some(sized), ""), None)
            .await
            .unwrap();
        assert_ne!(&rendered.data, original, "{path}");
        assert_eq!(rendered.width, 20, "{path}");
        renders += 1;
        assert_eq!(
            series(r#"imgmesh_renders_total{format="jpeg"}"#),
            renders as f64
        );
    }
    let refused = renderer
        .render_derivative(ask("scan.tiff", None, ""), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), imgmesh_errors::ErrorCode::UnsupportedInput);
}
