//! HTTP caching at the gateway against in-test peers: validators and 304s,
//! lifetimes with `Age` and `expires`, the cache status header, the
//! Source's fallback images, and purges through the admin API.

use clap::Parser as _;
use http::{HeaderValue, Method, StatusCode, header};
use imgmesh_gateway::{GatewayConfig, GatewayState};
use imgmesh_proto::renderer::v1::purge_request;

use imgmesh_derivative_cache::{CacheNames, CachedDerivative, DerivativeCache, EntryMeta};
use imgmesh_test_support::RedisServer;

use crate::support::{FAKE_ETAG, Harness, IMAGE, demo_source, request, unix_now};

/// A 200 carries a strong ETag and the original's Last-Modified; a cache
/// hit says its age.
#[tokio::test]
async fn responses_carry_validators_and_age() {
    let gateway = Harness::start().await;
    let answer = gateway.get("demo.localhost", "/photos/cat.jpg?w=200").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("etag"), Some(FAKE_ETAG));
    assert_eq!(
        answer.header("last-modified"),
        Some("Tue, 14 Nov 2023 22:13:20 GMT")
    );
    assert_eq!(answer.header("age"), None);

    let hit = gateway.get("demo.localhost", "/cached.jpg").await;
    assert_eq!(hit.header("cache-control"), Some("public, max-age=86400"));
    assert_eq!(hit.header("age"), Some("10"));
}

/// If-None-Match and If-Modified-Since reach the renderer; its "not
/// modified" is a 304 with the validators and no body or content headers.
#[tokio::test]
async fn conditional_requests_get_304() {
    let gateway = Harness::start().await;
    for method in [Method::GET, Method::HEAD] {
        let mut conditional = request(method.clone(), "demo.localhost", "/cat.jpg?w=100");
        conditional
            .headers_mut()
            .insert(header::IF_NONE_MATCH, HeaderValue::from_static(FAKE_ETAG));
        let answer = gateway.send(conditional).await;
        assert_eq!(answer.status, StatusCode::NOT_MODIFIED, "{method}");
        assert!(answer.body.is_empty());
        assert_eq!(answer.header("etag"), Some(FAKE_ETAG));
        assert_eq!(
            answer.header("cache-control"),
            Some("public, max-age=86400")
        );
        assert_eq!(answer.header("content-type"), None);
        assert_eq!(answer.header("content-length"), None);
        assert_eq!(gateway.last_render().request.if_none_match, FAKE_ETAG);
    }

    let mut since = request(Method::GET, "demo.localhost", "/cat.jpg?w=100");
    since.headers_mut().insert(
        header::IF_MODIFIED_SINCE,
        HeaderValue::from_static("Wed, 15 Nov 2023 00:00:00 GMT"),
    );
    gateway.send(since).await;
    assert_eq!(
        gateway.last_render().request.if_modified_since,
        1_700_006_400
    );

    // An unparsable date is ignored, as RFC 9110 says.
    let mut garbage = request(Method::GET, "demo.localhost", "/cat.jpg?w=100");
    garbage.headers_mut().insert(
        header::IF_MODIFIED_SINCE,
        HeaderValue::from_static("yesterday"),
    );
    let answer = gateway.send(garbage).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(gateway.last_render().request.if_modified_since, 0);

    let mut other = request(Method::GET, "demo.localhost", "/cat.jpg?w=100");
    other
        .headers_mut()
        .insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
    let answer = gateway.send(other).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.as_ref(), IMAGE);
}

/// The Source's policy travels to the renderer; a URL `expires` caps the
/// freshness left, counting the entry's age.
#[tokio::test]
async fn lifetime_policy_travels_and_expires_caps_it() {
    let gateway = Harness::start().await;
    gateway.get("demo.localhost", "/cat.jpg").await;
    let seen = gateway.last_render().request;
    assert_eq!(seen.cache_ttl_seconds, 86_400);
    assert_eq!(
        seen.cache_ttl_behavior, 0,
        "the demo Source leaves it unset"
    );

    let expires = unix_now() + 100;
    let answer = gateway
        .get("demo.localhost", &format!("/cached.jpg?expires={expires}"))
        .await;
    let cache_control = answer.header("cache-control").unwrap().to_owned();
    let max_age: u32 = cache_control
        .strip_prefix("public, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    // Age 10 + at most 100 s left before expires.
    assert!((105..=110).contains(&max_age), "{cache_control}");
    assert_eq!(answer.header("age"), Some("10"));
}

/// `X-Imgmesh-Cache` can be turned off.
#[tokio::test]
async fn cache_status_header_can_be_turned_off() {
    let gateway = Harness::start().await;
    assert_eq!(
        gateway
            .get("demo.localhost", "/cached.jpg")
            .await
            .header("x-imgmesh-cache"),
        Some("hit")
    );
    let renderer_url = format!("http://{}", gateway.renderer_addr());
    let registry_url = format!("http://{}", gateway.registry_addr());
    let config = GatewayConfig::try_parse_from([
        "imgmesh-gateway",
        &format!("--registry-url={registry_url}"),
        &format!("--renderer-url={renderer_url}"),
        "--base-domain=localhost",
        "--cache-status-header=false",
    ])
    .unwrap();
    let quiet = GatewayState::build(&config).unwrap();
    let answer = gateway
        .send_to(
            &quiet,
            request(Method::GET, "demo.localhost", "/cached.jpg"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-imgmesh-cache"), None);
}

/// A missing original is replaced by the Source's image_missing (with the
/// request's params, as the Source asks) and a broken one by image_error
/// (without), each with the error's status and the Source's error TTL;
/// errors no fallback covers stay errors.
#[tokio::test]
async fn fallbacks_replace_missing_and_broken_originals() {
    let gateway = Harness::start().await;
    let missing = gateway.get("fallback.localhost", "/missing.jpg?w=50").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body.as_ref(), IMAGE);
    assert_eq!(missing.header("content-type"), Some("image/webp"));
    assert_eq!(missing.header("cache-control"), Some("public, max-age=120"));
    assert_eq!(missing.header("etag"), None);
    let seen = gateway.last_render().request;
    assert_eq!(seen.path, "defaults/missing.png");
    assert_eq!(seen.plan.unwrap().width, 50, "params appended");

    let broken = gateway.get("fallback.localhost", "/corrupt.jpg?w=50").await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(broken.body.as_ref(), IMAGE);
    assert_eq!(broken.header("cache-control"), Some("public, max-age=120"));
    let seen = gateway.last_render().request;
    assert_eq!(seen.path, "defaults/error.png");
    assert_eq!(
        seen.plan.unwrap().width,
        800,
        "only the Source's default params"
    );

    let bad = gateway.get("fallback.localhost", "/bad.jpg").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // A Source without fallbacks answers the error itself.
    let plain = gateway.get("demo.localhost", "/missing.jpg").await;
    assert_eq!(plain.status, StatusCode::NOT_FOUND);
    assert_eq!(plain.text(), "object not found");
}

/// The admin API purges an asset (by path or URL), a prefix or the whole
/// Source through the renderer, and refuses bodies that name no one target.
#[tokio::test]
async fn admin_purges_through_the_renderer() {
    let gateway = Harness::start().await;
    let purge =
        |body: &'static str| gateway.admin(Method::POST, "/v1/sources/demo/purge", Some(body));
    let answer = purge(r#"{"path":"https://demo.localhost/photos/caf%C3%A9.jpg?w=10"}"#).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        serde_json::json!({
            "source_id": "src_demo",
            "purged": {"path": "photos/café.jpg"},
            "generation": 1,
        })
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let answer = purge(r#"{"prefix":"photos"}"#).await;
    assert_eq!(
        answer.json()["purged"],
        serde_json::json!({"prefix": "photos"})
    );
    let answer = purge(r#"{"all":true}"#).await;
    assert_eq!(answer.json()["generation"], 3);
    let purges = gateway.renderer.purges.lock().unwrap().clone();
    assert_eq!(
        purges.iter().map(|p| p.target.clone()).collect::<Vec<_>>(),
        [
            Some(purge_request::Target::Path("photos/café.jpg".to_owned())),
            Some(purge_request::Target::Prefix("photos".to_owned())),
            None,
        ]
    );
    assert!(purges.iter().all(|p| p.source_id == "src_demo"));

    let refused = purge("{}").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"]["field"], "body");
    let unknown = gateway
        .admin(
            Method::POST,
            "/v1/sources/nope/purge",
            Some(r#"{"all":true}"#),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(gateway.renderer.purges.lock().unwrap().len(), 3);
}

/// A gateway on the harness's peers that reads Redis at `redis_url`.
fn gateway_with_redis(gateway: &Harness, redis_url: &str) -> GatewayState {
    let config = GatewayConfig::try_parse_from([
        "imgmesh-gateway".to_owned(),
        format!("--registry-url=http://{}", gateway.registry_addr()),
        format!("--renderer-url=http://{}", gateway.renderer_addr()),
        "--base-domain=localhost".to_owned(),
        format!("--redis-url={redis_url}"),
        "--redis-timeout-ms=200".to_owned(),
    ])
    .unwrap();
    GatewayState::build(&config).unwrap()
}

/// Stores `data` in Redis as the demo Source's derivative of `path` with
/// `query`, stored `age` seconds ago and fresh for 600 s.
async fn store(redis: &RedisServer, path: &str, query: &str, data: &[u8], age: i64) {
    let source = demo_source();
    let plan = imgmesh_gateway::render_plan::parse_render_plan(&source.default_params, query, None)
        .unwrap()
        .plan;
    let key = CacheNames::new(&source.id, source.config_version, path, &plan).entry_key(&[0, 0]);
    let cache =
        DerivativeCache::connect_lazily(&redis.url().into(), std::time::Duration::from_secs(1))
            .unwrap();
    let entry = CachedDerivative {
        meta: EntryMeta {
            content_type: "image/webp".to_owned(),
            width: 100,
            height: 75,
            etag: "\"from-redis\"".to_owned(),
            origin_etag: "\"o\"".to_owned(),
            last_modified: 1_700_000_000,
            stored_at: unix_now() - age,
            max_age: 600,
        },
        data: bytes::Bytes::copy_from_slice(data),
    };
    cache.set(&key, &entry, 3_600).await;
}

/// With `--redis-url`, a fresh derivative is answered from Redis without
/// calling the renderer (304 too); an expired one, a miss, or a Redis that
/// is down go to the renderer as before.
#[tokio::test]
async fn fresh_hits_are_answered_from_redis() {
    let gateway = Harness::start().await;
    let mut redis = RedisServer::start().await;
    let state = gateway_with_redis(&gateway, &redis.url());
    store(&redis, "cat.jpg", "w=100", b"bytes from redis", 20).await;
    store(&redis, "old.jpg", "w=100", b"expired bytes", 700).await;

    let hit = gateway
        .send_to(
            &state,
            request(Method::GET, "demo.localhost", "/cat.jpg?w=100"),
        )
        .await;
    assert_eq!(hit.status, StatusCode::OK, "{}", hit.text());
    assert_eq!(hit.body.as_ref(), b"bytes from redis");
    assert_eq!(hit.header("x-imgmesh-cache"), Some("hit"));
    assert_eq!(hit.header("etag"), Some("\"from-redis\""));
    assert_eq!(hit.header("content-type"), Some("image/webp"));
    assert_eq!(hit.header("cache-control"), Some("public, max-age=600"));
    let age: u32 = hit.header("age").unwrap().parse().unwrap();
    assert!((20..25).contains(&age), "{age}");

    let mut conditional = request(Method::GET, "demo.localhost", "/cat.jpg?w=100");
    conditional.headers_mut().insert(
        header::IF_NONE_MATCH,
        HeaderValue::from_static("\"from-redis\""),
    );
    let not_modified = gateway.send_to(&state, conditional).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.body.is_empty());
    assert_eq!(gateway.render_calls(), 0, "both answered from Redis");

    for path in ["/old.jpg?w=100", "/cat.jpg?w=101"] {
        let rendered = gateway
            .send_to(&state, request(Method::GET, "demo.localhost", path))
            .await;
        assert_eq!(rendered.body.as_ref(), IMAGE, "{path}");
    }
    assert_eq!(
        gateway.render_calls(),
        2,
        "expired and missing go to the renderer"
    );

    redis.kill();
    // The purge feed's connection closes with Redis: its task drops the
    // hot copies (which may no longer be vouched for) once it runs.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let without_redis = gateway
        .send_to(
            &state,
            request(Method::GET, "demo.localhost", "/cat.jpg?w=100"),
        )
        .await;
    assert_eq!(without_redis.status, StatusCode::OK);
    assert_eq!(without_redis.body.as_ref(), IMAGE);
    assert_eq!(gateway.render_calls(), 3);
}
