//! Delivery across the real mesh: cache lifetimes per Source policy (in
//! `Cache-Control` and in Redis), validators and 304s without rendering,
//! one entry per negotiated format, errors never stored, purges through the
//! admin API and the CLI, Source edits taking effect at once, one render for
//! a hundred concurrent cold requests (in one renderer and across two), and
//! origin revalidation of expired derivatives.

use std::time::Duration;

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{HttpResponse, Mesh, MeshOptions, S3_SECRET_KEY};
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_proto::renderer::v1::{OutputFormat, RenderPlan, RenderRequest};
use serde_json::json;

/// The renderer's revalidation window (its default), added to the Redis TTL.
const WINDOW: i64 = 86_400;

/// Starts a mesh (fetcher `extra` flags) with a 1200×800 JPEG at `photos/cat.jpg`.
async fn mesh_with_cat(fetcher_args: &[&str]) -> Mesh {
    let mesh = Mesh::start(MeshOptions {
        fetcher_args: fetcher_args.iter().map(|s| (*s).to_owned()).collect(),
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(1200, 800).unwrap())
        .unwrap();
    mesh
}

/// Creates and deploys Source `name` with `extra` CLI flags; returns its id.
async fn source(mesh: &Mesh, name: &str, extra: &[&str]) -> String {
    let created = mesh
        .create_source(name, S3_SECRET_KEY, extra)
        .await
        .expect("source is created");
    created["id"].as_str().unwrap().to_owned()
}

async fn get(mesh: &Mesh, subdomain: &str, path: &str) -> HttpResponse {
    let response = mesh.get(subdomain, path).await.unwrap();
    assert!(
        response.status < 500,
        "{path}: {} {}",
        response.status,
        response.text()
    );
    response
}

/// The derivative entry keys of Source `id` in Redis.
async fn entry_keys(mesh: &Mesh, id: &str) -> Vec<String> {
    // Entries are tagged by Source and asset: `imgmesh:{<id>.<asset>}:d:…`.
    let pattern = format!("imgmesh:{{{id}.*}}:d:*");
    let listed = mesh
        .redis_cli(&["--scan", "--pattern", &pattern])
        .await
        .unwrap();
    let mut keys: Vec<String> = listed
        .lines()
        .filter(|key| !key.ends_with(":lease") && !key.is_empty())
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

async fn ttl(mesh: &Mesh, key: &str) -> i64 {
    mesh.redis_cli(&["TTL", key])
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn renders(mesh: &Mesh) -> f64 {
    mesh.metric("renderer", "imgmesh_renders_total", "")
        .await
        .unwrap()
}

async fn s3_gets(mesh: &Mesh) -> f64 {
    mesh.metric("fetcher", "imgmesh_s3_requests_total", "")
        .await
        .unwrap()
}

/// Each cache_ttl_behavior gives the response's max-age and the entry's
/// Redis TTL (the lifetime plus the revalidation window) from the Source's
/// value and the original's own Cache-Control in S3.
#[tokio::test]
async fn lifetimes_follow_each_policy() {
    let mesh = mesh_with_cat(&[]).await;
    mesh.put_object_with_cache_control(
        "short.jpg",
        &fixtures::jpeg(300, 200).unwrap(),
        "public, max-age=120",
    )
    .await
    .unwrap();
    mesh.put_object_with_cache_control(
        "long.jpg",
        &fixtures::jpeg(300, 200).unwrap(),
        "max-age=90000",
    )
    .await
    .unwrap();
    let cases = [
        ("respect", "respect_origin", "/short.jpg", 120),
        ("respect", "respect_origin", "/photos/cat.jpg", 3_600),
        ("override", "override_origin", "/short.jpg", 3_600),
        ("minimum", "enforce_minimum", "/short.jpg", 3_600),
        ("minimum", "enforce_minimum", "/long.jpg", 90_000),
    ];
    for (name, behavior, path, lifetime) in cases {
        let id = match mesh.cli_json(&["sources", "get", name]).await {
            Ok(found) => found["id"].as_str().unwrap().to_owned(),
            Err(_) => {
                source(
                    &mesh,
                    name,
                    &[
                        "--cache-ttl=3600",
                        &format!("--cache-ttl-behavior={behavior}"),
                    ],
                )
                .await
            }
        };
        let before = entry_keys(&mesh, &id).await;
        let response = get(&mesh, name, &format!("{path}?w=100")).await;
        assert_eq!(response.status, 200, "{name} {path}");
        assert_eq!(
            response.header("cache-control"),
            Some(format!("public, max-age={lifetime}").as_str()),
            "{name} {path}"
        );
        let after = entry_keys(&mesh, &id).await;
        let new: Vec<_> = after.iter().filter(|key| !before.contains(key)).collect();
        assert_eq!(new.len(), 1, "{name} {path}: {after:?}");
        let redis_ttl = ttl(&mesh, new[0]).await;
        let expected = lifetime + WINDOW;
        assert!(
            redis_ttl <= expected && redis_ttl > expected - 10,
            "{name} {path}: redis TTL {redis_ttl}, wanted {expected}"
        );
    }
}

/// A 200 carries a strong ETag and the original's Last-Modified; sending
/// either back answers 304 with no body and no render (counted by the
/// renderer's metrics; the gateway answers them from Redis), and a HEAD
/// does the same.
#[tokio::test]
async fn validators_answer_304_without_rendering() {
    let mesh = mesh_with_cat(&[]).await;
    source(&mesh, "demo", &[]).await;
    let first = get(&mesh, "demo", "/photos/cat.jpg?w=200").await;
    let etag = first.header("etag").unwrap().to_owned();
    let last_modified = first.header("last-modified").unwrap().to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let rendered = renders(&mesh).await;
    assert_eq!(rendered, 1.0);

    for headers in [
        vec![("if-none-match", etag.as_str())],
        vec![("if-modified-since", last_modified.as_str())],
    ] {
        let response = mesh
            .get_with("demo", "/photos/cat.jpg?w=200", &headers)
            .await
            .unwrap();
        assert_eq!(response.status, 304, "{headers:?}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("etag"), Some(etag.as_str()));
    }
    let head = imgmesh_integration_tests::http_client::request(
        "HEAD",
        mesh.gateway_addr,
        "demo.localhost",
        "/photos/cat.jpg?w=200",
        &[("if-none-match", &etag)],
    )
    .await
    .unwrap();
    assert_eq!(head.status, 304);
    assert_eq!(renders(&mesh).await, rendered, "no render for any 304");
    assert!(
        mesh.metric("gateway", "imgmesh_http_requests_total", "status=\"304\"")
            .await
            .unwrap()
            >= 3.0
    );

    let changed = mesh
        .get_with(
            "demo",
            "/photos/cat.jpg?w=200",
            &[("if-none-match", "\"other\"")],
        )
        .await
        .unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body, first.body);
}

/// auto=format answers `Vary: Accept` and keeps one entry per negotiated
/// format: different Accept headers that negotiate the same format share it.
#[tokio::test]
async fn one_entry_per_negotiated_format() {
    let mesh = mesh_with_cat(&[]).await;
    let id = source(&mesh, "demo", &[]).await;
    let path = "/photos/cat.jpg?w=100&auto=format";
    let accepts = [
        ("image/avif,image/webp,*/*", "miss", Format::Avif),
        ("image/webp,*/*", "miss", Format::Webp),
        ("*/*", "miss", Format::Jpeg),
        (
            "image/avif;q=1, image/webp;q=0.9, image/apng, */*;q=0.8",
            "hit",
            Format::Avif,
        ),
        (
            "text/html,image/webp,image/apng,*/*;q=0.8",
            "hit",
            Format::Webp,
        ),
        ("image/png,*/*", "hit", Format::Jpeg),
    ];
    for (accept, cache, format) in accepts {
        let response = mesh
            .get_with("demo", path, &[("accept", accept)])
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(response.header("vary"), Some("Accept"), "{accept}");
        assert_eq!(response.header("x-imgmesh-cache"), Some(cache), "{accept}");
        assert_eq!(fixtures::sniff(&response.body), Some(format), "{accept}");
    }
    assert_eq!(entry_keys(&mesh, &id).await.len(), 3);
}

/// Client errors get the Source's error TTL and are never stored as
/// derivatives; a later success is rendered, not served from an error.
#[tokio::test]
async fn errors_are_never_stored() {
    let mesh = mesh_with_cat(&[]).await;
    let id = source(&mesh, "demo", &["--cache-ttl-error=60"]).await;
    mesh.put_object("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
        .unwrap();
    for (path, status) in [("/missing.jpg?w=10", 404), ("/broken.jpg?w=10", 422)] {
        for _ in 0..2 {
            let response = get(&mesh, "demo", path).await;
            assert_eq!(response.status, status, "{path}");
            assert_eq!(response.header("cache-control"), Some("public, max-age=60"));
            assert_eq!(response.header("etag"), None);
        }
    }
    assert!(entry_keys(&mesh, &id).await.is_empty());

    mesh.put_object("missing.jpg", &fixtures::jpeg(40, 40).unwrap())
        .unwrap();
    let now_there = get(&mesh, "demo", "/missing.jpg?w=10").await;
    assert_eq!(now_there.status, 200);
    assert_eq!(now_there.header("x-imgmesh-cache"), Some("miss"));
}

/// The Source's image_missing stands in for a missing original, with the
/// request's params when the Source asks, with status 404 and the error TTL.
#[tokio::test]
async fn image_missing_is_served_with_404() {
    let mesh = mesh_with_cat(&[]).await;
    mesh.put_object("defaults/missing.png", &fixtures::png(200, 100).unwrap())
        .unwrap();
    source(
        &mesh,
        "demo",
        &[
            "--image-missing=/defaults/missing.png",
            "--image-missing-append-params",
            "--cache-ttl-error=30",
        ],
    )
    .await;
    let response = get(&mesh, "demo", "/nothing-here.jpg?w=50&fm=png").await;
    assert_eq!(response.status, 404);
    assert_eq!(response.header("cache-control"), Some("public, max-age=30"));
    fixtures::expect_image(&response.body, Format::Png, 50, 25).unwrap();
}

/// Purging one asset (admin API, by URL), a prefix (CLI) or the whole
/// Source (admin API) makes the next request render afresh, with the
/// original read again; assets outside the scope stay cached.
#[tokio::test]
async fn purges_render_afresh() {
    let mesh = mesh_with_cat(&[]).await;
    mesh.put_object("photos/dog.jpg", &fixtures::jpeg(600, 400).unwrap())
        .unwrap();
    mesh.put_object("other/cow.jpg", &fixtures::jpeg(600, 400).unwrap())
        .unwrap();
    source(&mesh, "demo", &[]).await;
    let paths = [
        "/photos/cat.jpg?w=64",
        "/photos/dog.jpg?w=64",
        "/other/cow.jpg?w=64",
    ];
    let statuses = || async {
        let mut seen = Vec::new();
        for path in paths {
            seen.push(
                get(&mesh, "demo", path)
                    .await
                    .header("x-imgmesh-cache")
                    .unwrap()
                    .to_owned(),
            );
        }
        seen
    };
    assert_eq!(statuses().await, ["miss", "miss", "miss"]);
    assert_eq!(statuses().await, ["hit", "hit", "hit"]);

    let purged = mesh
        .admin(
            "POST",
            "/v1/sources/demo/purge",
            Some(&json!({"path": "https://demo.localhost/photos/cat.jpg?w=999"})),
        )
        .await
        .unwrap();
    assert_eq!(purged.status, 200, "{}", purged.text());
    let gets = s3_gets(&mesh).await;
    assert_eq!(statuses().await, ["miss", "hit", "hit"]);
    assert_eq!(
        s3_gets(&mesh).await,
        gets + 1.0,
        "the original is read again"
    );

    let cli = mesh
        .cli_json(&[
            "purge",
            "demo",
            "--prefix=photos",
            &format!("--renderer-url={}", mesh.renderer_url),
        ])
        .await
        .unwrap();
    assert_eq!(cli["purged"], json!({"prefix": "photos"}));
    assert_eq!(statuses().await, ["miss", "miss", "hit"]);

    let all = mesh
        .admin(
            "POST",
            "/v1/sources/demo/purge",
            Some(&json!({"all": true})),
        )
        .await
        .unwrap();
    assert_eq!(all.status, 200);
    assert_eq!(statuses().await, ["miss", "miss", "miss"]);
    assert_eq!(statuses().await, ["hit", "hit", "hit"]);

    let refused = mesh
        .admin("POST", "/v1/sources/demo/purge", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(refused.status, 400);
    let refused = mesh.cli(&["purge", "demo"]).await.unwrap();
    assert!(!refused.status.success());
}

/// Editing a Source changes its output at once: its config version is in
/// every cache key.
#[tokio::test]
async fn source_edits_take_effect_at_once() {
    let mesh = mesh_with_cat(&[]).await;
    source(&mesh, "demo", &["--default-params=w=300"]).await;
    let before = get(&mesh, "demo", "/photos/cat.jpg").await;
    fixtures::expect_image(&before.body, Format::Jpeg, 300, 200).unwrap();
    assert_eq!(
        get(&mesh, "demo", "/photos/cat.jpg")
            .await
            .header("x-imgmesh-cache"),
        Some("hit")
    );

    mesh.cli_json(&["sources", "update", "demo", "--default-params=w=150"])
        .await
        .unwrap();
    mesh.deploy_source("demo").await.unwrap();
    // The gateway caches Sources for 200 ms in tests.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = get(&mesh, "demo", "/photos/cat.jpg").await;
    assert_eq!(after.header("x-imgmesh-cache"), Some("miss"));
    fixtures::expect_image(&after.body, Format::Jpeg, 150, 100).unwrap();
}

/// A hundred concurrent cold requests for one derivative make one S3 read
/// and one render, and all hundred are answered 200 with the same bytes.
#[tokio::test]
async fn hundred_cold_requests_render_once() {
    let mesh = mesh_with_cat(&[]).await;
    source(&mesh, "demo", &[]).await;
    let (gets, rendered) = (s3_gets(&mesh).await, renders(&mesh).await);
    let requests = (0..100).map(|_| mesh.get("demo", "/photos/cat.jpg?w=480&fm=webp"));
    let answers = futures::future::join_all(requests).await;
    let first = answers[0].as_ref().unwrap();
    for answer in &answers {
        let answer = answer.as_ref().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.body, first.body);
    }
    let (gets, rendered) = (s3_gets(&mesh).await - gets, renders(&mesh).await - rendered);
    assert_eq!(
        (gets, rendered),
        (1.0, 1.0),
        "S3 GETs, renders; logs:\n{}",
        mesh.all_logs()
    );

    // Another size of the same original renders from the fetcher's copy.
    let (before_gets, before_renders) = (s3_gets(&mesh).await, renders(&mesh).await);
    let other = get(&mesh, "demo", "/photos/cat.jpg?w=320&fm=webp").await;
    assert_eq!(other.header("x-imgmesh-cache"), Some("miss"));
    assert_eq!(s3_gets(&mesh).await, before_gets, "no second S3 GET");
    assert_eq!(renders(&mesh).await, before_renders + 1.0);
}

/// Across two renderer processes sharing Redis, a hundred concurrent cold
/// requests (half to each) still make one render: the second renderer
/// waits on the first's lease and answers with its entry.
#[tokio::test]
async fn two_renderers_share_one_render() {
    let mesh = mesh_with_cat(&[]).await;
    let id = source(&mesh, "demo", &[]).await;
    let (_second, second_url, second_metrics) = mesh.spawn_renderer().await.unwrap();
    let clients = [mesh.renderer_url.clone(), second_url].map(|url| {
        let channel = mesh.grpc_channel(&url, "gateway").unwrap();
        RendererServiceClient::new(channel).max_decoding_message_size(64 << 20)
    });
    let request = RenderRequest {
        source_id: id,
        source_config_version: 1,
        path: "photos/cat.jpg".to_owned(),
        plan: Some(RenderPlan {
            width: 640,
            format: OutputFormat::Webp.into(),
            ..RenderPlan::default()
        }),
        cache_ttl_seconds: 600,
        ..RenderRequest::default()
    };
    let gets = s3_gets(&mesh).await;
    let calls = (0..100).map(|i| {
        let mut client = clients[i % 2].clone();
        let request = request.clone();
        async move {
            client
                .render(request)
                .await
                .map(tonic::Response::into_inner)
        }
    });
    let answers = futures::future::join_all(calls).await;
    let first = answers[0].as_ref().unwrap();
    for answer in &answers {
        let answer = answer.as_ref().unwrap();
        assert_eq!((answer.width, answer.height), (640, 427));
        assert_eq!(answer.etag, first.etag);
    }
    let second_renders = Mesh::metric_at(second_metrics, "imgmesh_renders_total", "")
        .await
        .unwrap();
    assert_eq!(
        renders(&mesh).await + second_renders,
        1.0,
        "one render in all; logs:\n{}",
        mesh.all_logs()
    );
    assert_eq!(s3_gets(&mesh).await - gets, 1.0, "one S3 GET");
}

/// An expired derivative is revalidated with the original's ETag: an
/// unchanged original extends it without a render (`stale`), a changed one
/// in S3 is rendered again.
#[tokio::test]
async fn expired_derivatives_are_revalidated_with_s3() {
    // The fetcher asks S3 every time (no freshness window of its own).
    let mesh = mesh_with_cat(&["--original-fresh-seconds=0"]).await;
    source(
        &mesh,
        "demo",
        &["--cache-ttl=1", "--cache-ttl-behavior=override_origin"],
    )
    .await;
    let path = "/photos/cat.jpg?w=100";
    let first = get(&mesh, "demo", path).await;
    assert_eq!(first.header("x-imgmesh-cache"), Some("miss"));
    assert_eq!(first.header("cache-control"), Some("public, max-age=1"));
    let (gets, rendered) = (s3_gets(&mesh).await, renders(&mesh).await);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let revalidated = get(&mesh, "demo", path).await;
    assert_eq!(revalidated.header("x-imgmesh-cache"), Some("stale"));
    assert_eq!(revalidated.body, first.body);
    assert_eq!(revalidated.header("etag"), first.header("etag"));
    assert_eq!(renders(&mesh).await, rendered, "unchanged: no render");
    assert_eq!(
        s3_gets(&mesh).await,
        gets + 1.0,
        "one conditional S3 request"
    );

    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(600, 600).unwrap())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let changed = get(&mesh, "demo", path).await;
    assert_eq!(changed.header("x-imgmesh-cache"), Some("miss"));
    fixtures::expect_image(&changed.body, Format::Jpeg, 100, 100).unwrap();
    assert_ne!(changed.header("etag"), first.header("etag"));
    assert_eq!(renders(&mesh).await, rendered + 1.0);
}
