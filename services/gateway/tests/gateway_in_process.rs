//! The gateway's public and ops routers against small in-test gRPC peers
//! (see `support`). Tests across the real services live in
//! `integration-tests/`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use imgmesh_proto::renderer::v1::{ColorSpace, Encoding, Fit, OutputFormat, RenderPlan};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{
    ADMIN_TOKEN, Harness, IMAGE, NEW_TOKEN, OLD_TOKEN, RETIRED_TOKEN, SECURE_TOKEN, request,
    unix_now,
};

/// A W3C traceparent a client might send.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

// === tests ===

/// A rendered image comes back with its type, length, cache lifetime and cache status.
#[tokio::test]
async fn image_response_has_http_headers() {
    let gateway = Harness::start().await;
    let answer = gateway.get("demo.localhost", "/photos/cat.jpg?w=200").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.body.as_ref(), IMAGE);
    assert_eq!(answer.header("content-type"), Some("image/webp"));
    assert_eq!(
        answer.header("content-length"),
        Some(IMAGE.len().to_string().as_str())
    );
    assert_eq!(
        answer.header("cache-control"),
        Some("public, max-age=86400")
    );
    assert_eq!(answer.header("x-imgmesh-cache"), Some("miss"));

    let answer = gateway.get("demo.localhost:8080", "/cached.jpg").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-imgmesh-cache"), Some("hit"));
}

/// The renderer gets the Source's id, config version and TTL, the decoded path, the plan with the Source's defaults overridden by the URL, and a deadline.
#[tokio::test]
async fn render_request_carries_source_path_plan_and_deadline() {
    let gateway = Harness::start().await;
    let answer = gateway
        .get(
            "demo.localhost",
            "/photos/caf%C3%A9%20noir.jpg?w=200&fit=crop&dpr=2",
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = gateway.last_render();
    assert_eq!(seen.request.source_id, "src_demo");
    assert_eq!(seen.request.source_config_version, 7);
    assert_eq!(seen.request.cache_ttl_seconds, 86_400);
    assert_eq!(seen.request.path, "photos/café noir.jpg");
    assert_eq!(
        seen.request.plan,
        Some(RenderPlan {
            width: 200,
            fit: Fit::Crop.into(),
            format: OutputFormat::Webp.into(),
            quality: 60,
            dpr_centi: 200,
            // imgix: `cs=origin` "is the default value when cs is not
            // specified" (docs.imgix.com/apis/rendering/format/cs).
            encoding: Some(Encoding {
                color_space: ColorSpace::Origin.into(),
                ..Encoding::default()
            }),
            ..RenderPlan::default()
        })
    );
    let timeout = seen.grpc_timeout.expect("render call without grpc-timeout");
    assert!(
        timeout.ends_with('m') || timeout.ends_with('u') || timeout.ends_with('S'),
        "{timeout}"
    );
}

/// auto=format negotiates from Accept into the plan and the response says `Vary: Accept`; without it there is no Vary.
#[tokio::test]
async fn auto_format_uses_accept_and_varies() {
    let gateway = Harness::start().await;
    let mut avif = request(Method::GET, "demo.localhost", "/cat.jpg?auto=format&w=100");
    avif.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("image/avif,image/webp,*/*"),
    );
    let answer = gateway.send(avif).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("vary"), Some("Accept"));
    let plan = gateway.last_render().request.plan.unwrap();
    assert_eq!(plan.format(), OutputFormat::Avif);

    let answer = gateway
        .get("demo.localhost", "/cat.jpg?auto=format&w=100")
        .await;
    assert_eq!(answer.header("vary"), Some("Accept"));
    let plan = gateway.last_render().request.plan.unwrap();
    assert_eq!(
        plan.format(),
        OutputFormat::Webp,
        "the Source's default fm=webp"
    );

    let answer = gateway.get("demo.localhost", "/cat.jpg?w=100").await;
    assert_eq!(answer.header("vary"), None);
}

/// Hosts that route nowhere, or name no Source, get 404 "unknown host".
#[tokio::test]
async fn unknown_hosts_are_404() {
    let gateway = Harness::start().await;
    for host in [
        "localhost",
        "a.b.localhost",
        "127.0.0.1",
        "[::1]:8080",
        "demo.localhost.",
        "bad_host.example.com",
    ] {
        let answer = gateway.get(host, "/cat.jpg").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{host}");
        assert_eq!(answer.text(), "unknown host");
    }
    assert_eq!(
        gateway.resolve_calls(),
        0,
        "malformed hosts never reach the registry"
    );

    for host in ["nope.localhost", "demo.example.com"] {
        let answer = gateway.get(host, "/cat.jpg").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{host}");
        assert_eq!(answer.text(), "unknown host");
        assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
    }
    assert_eq!(gateway.resolve_calls(), 2);
    assert_eq!(gateway.render_calls(), 0);
}

/// A request without any Host is 404 "unknown host".
#[tokio::test]
async fn missing_host_is_404() {
    let gateway = Harness::start().await;
    let request = Request::builder()
        .uri("/cat.jpg")
        .body(Body::empty())
        .unwrap();
    let answer = gateway.send(request).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.text(), "unknown host");
}

/// Found and unknown hosts are both cached: repeated requests ask the registry once.
#[tokio::test]
async fn host_lookups_are_cached() {
    let gateway = Harness::start().await;
    for _ in 0..3 {
        assert_eq!(
            gateway.get("demo.localhost", "/cat.jpg").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(gateway.resolve_calls(), 1);
    for _ in 0..3 {
        assert_eq!(
            gateway.get("nope.localhost", "/cat.jpg").await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(gateway.resolve_calls(), 2);
}

/// A disabled Source answers 410 "source disabled" (registry refusal or `enabled: false`), with the Source's error TTL, and renders nothing.
#[tokio::test]
async fn disabled_source_is_410() {
    let gateway = Harness::start().await;
    let answer = gateway.get("off.localhost", "/cat.jpg").await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(answer.text(), "source disabled");

    let answer = gateway.get("disabled.localhost", "/cat.jpg?w=10").await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(answer.text(), "source disabled");
    assert_eq!(answer.header("cache-control"), Some("public, max-age=120"));
    assert_eq!(gateway.render_calls(), 0);
}

/// A Source that is not deployed answers exactly like an unknown host, also when it is disabled too.
#[tokio::test]
async fn undeployed_source_is_404_like_unknown_host() {
    let gateway = Harness::start().await;
    let mut unknown = gateway.get("nope.localhost", "/cat.jpg").await;
    // Each request is a trace of its own; everything else is the same.
    unknown.headers.remove("traceresponse");
    for host in ["pending.localhost", "pending-off.localhost"] {
        let mut answer = gateway.get(host, "/cat.jpg").await;
        assert!(answer.headers.remove("traceresponse").is_some(), "{host}");
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{host}");
        assert_eq!(answer.body, unknown.body, "{host}");
        assert_eq!(answer.headers, unknown.headers, "{host}");
    }
    assert_eq!(gateway.render_calls(), 0);
}

/// A host outside the base domain is resolved as an exact custom domain, and cached.
#[tokio::test]
async fn custom_domains_route_to_their_source() {
    let gateway = Harness::start().await;
    for _ in 0..2 {
        let answer = gateway.get("IMG.example.com:8443", "/cat.jpg").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    assert_eq!(gateway.last_render().request.source_id, "src_custom");
    let answer = gateway.get("other.example.com", "/cat.jpg").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.text(), "unknown host");
    assert_eq!(
        gateway.get("demo.localhost", "/cat.jpg").await.status,
        StatusCode::OK
    );

    let asked: Vec<(String, bool)> = gateway
        .registry
        .resolved
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.host.clone(), r.custom_domain))
        .collect();
    assert_eq!(
        asked,
        [
            ("img.example.com".to_owned(), true),
            ("other.example.com".to_owned(), true),
            ("demo.localhost".to_owned(), false),
        ]
    );
}

/// The renderer's OBJECT_NOT_FOUND becomes 404 and INVALID_ARGUMENT 400, with its message and the error TTL.
#[tokio::test]
async fn renderer_errors_map_to_http() {
    let gateway = Harness::start().await;
    let answer = gateway.get("demo.localhost", "/missing.jpg").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.text(), "object not found");
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));

    let answer = gateway.get("demo.localhost", "/bad.jpg").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.text(), "w: too wide for this input");
}

/// With the renderer down the gateway answers 503 at once, uncached, with Retry-After.
#[tokio::test]
async fn renderer_down_is_503() {
    let gateway = Harness::with_peers(true, false).await;
    let started = std::time::Instant::now();
    let answer = gateway.get("demo.localhost", "/cat.jpg").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.text(), "renderer: unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// An undecodable base64 parameter is a 400 naming it, and the renderer is never called.
#[tokio::test]
async fn bad_parameter_is_400_without_rendering() {
    let gateway = Harness::start().await;
    let answer = gateway.get("demo.localhost", "/cat.jpg?txt64=@@@").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.text(), "txt64: value is not valid base64url");
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(gateway.render_calls(), 0);
}

/// Unsafe paths are 404 "not found" before the registry or the renderer hear of them.
#[tokio::test]
async fn bad_paths_are_404_without_any_call() {
    let gateway = Harness::start().await;
    for path in [
        "/",
        "/%2e%2e/etc/passwd",
        "//b.jpg",
        "/a%5C..%5Cb.jpg",
        "/a%00.jpg",
    ] {
        let answer = gateway.get("demo.localhost", path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.text(), "not found");
    }
    assert_eq!(gateway.resolve_calls(), 0);
    assert_eq!(gateway.render_calls(), 0);
}

/// HEAD answers with the GET headers, including Content-Length, and no body.
#[tokio::test]
async fn head_has_headers_and_no_body() {
    let gateway = Harness::start().await;
    let answer = gateway
        .send(request(Method::HEAD, "demo.localhost", "/cat.jpg"))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("content-type"), Some("image/webp"));
    assert_eq!(
        answer.header("content-length"),
        Some(IMAGE.len().to_string().as_str())
    );
    assert_eq!(answer.header("x-imgmesh-cache"), Some("miss"));

    let answer = gateway
        .send(request(
            Method::HEAD,
            "demo.localhost",
            "/cat.jpg?txt64=@@@",
        ))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.is_empty());
}

/// Methods other than GET and HEAD get 405 with `Allow: GET, HEAD`.
#[tokio::test]
async fn other_methods_are_405() {
    let gateway = Harness::start().await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let answer = gateway
            .send(request(method.clone(), "demo.localhost", "/cat.jpg"))
            .await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(gateway.resolve_calls(), 0);
}

/// `/live` is 200; `/ready` is 200 while both peers serve.
#[tokio::test]
async fn ready_when_both_peers_serve() {
    let gateway = Harness::start().await;
    let live = gateway.ops("/live").await;
    assert_eq!((live.status, live.text()), (StatusCode::OK, "ok"));
    let ready = gateway.ops("/ready").await;
    assert_eq!((ready.status, ready.text()), (StatusCode::OK, "ok"));
}

/// `/ready` is 503 while the renderer is down, and says which peer is missing.
#[tokio::test]
async fn not_ready_with_renderer_down() {
    let gateway = Harness::with_peers(true, false).await;
    let ready = gateway.ops("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.text(),
        "not ready: registry serving, renderer not serving"
    );
    assert_eq!(gateway.ops("/live").await.status, StatusCode::OK);
}

/// Once shutdown has started `/ready` is 503, even with both peers up.
#[tokio::test]
async fn not_ready_once_shutting_down() {
    let gateway = Harness::start().await;
    assert_eq!(gateway.ops("/ready").await.status, StatusCode::OK);
    gateway.state.begin_shutdown();
    let ready = gateway.ops("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text(), "shutting down");
}

/// An incoming `traceparent` reaches the renderer with the same trace id and a new parent span.
#[tokio::test]
async fn traceparent_reaches_the_renderer() {
    let gateway = Harness::start().await;
    let mut request = request(Method::GET, "demo.localhost", "/cat.jpg");
    request
        .headers_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    assert_eq!(gateway.send(request).await.status, StatusCode::OK);
    let sent = gateway
        .last_render()
        .traceparent
        .expect("no traceparent on the render call");
    let fields: Vec<&str> = sent.split('-').collect();
    assert_eq!(fields.len(), 4, "{sent}");
    assert_eq!(fields[1], TRACE_ID);
    assert_ne!(
        fields[2], "00f067aa0ba902b7",
        "the gateway's own span is the parent"
    );
}

/// Without a `traceparent` the gateway starts a trace of its own and propagates it.
#[tokio::test]
async fn new_trace_without_traceparent() {
    let gateway = Harness::start().await;
    assert_eq!(
        gateway.get("demo.localhost", "/cat.jpg").await.status,
        StatusCode::OK
    );
    let sent = gateway
        .last_render()
        .traceparent
        .expect("no traceparent on the render call");
    assert!(
        sent.starts_with("00-") && !sent.contains(TRACE_ID),
        "{sent}"
    );
}

/// `run` serves both listeners over real TCP (HTTP/1.1 Host routing, HEAD framing) and returns after shutdown.
#[tokio::test]
async fn run_serves_and_shuts_down() {
    let gateway = Harness::start().await;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_addr, ops_addr) = (http.local_addr().unwrap(), ops.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let served = tokio::spawn(imgmesh_gateway::run(
        gateway.state.clone(),
        http,
        ops,
        Some(admin),
        async {
            let _ = stopped.await;
        },
    ));

    let live = raw_http(ops_addr, "GET /live HTTP/1.1\r\nHost: localhost\r\n").await;
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    assert!(live.ends_with("ok"), "{live}");

    let image = raw_http(
        http_addr,
        "GET /cat.jpg HTTP/1.1\r\nHost: Demo.localhost:80\r\n",
    )
    .await;
    assert!(image.starts_with("HTTP/1.1 200"), "{image}");
    assert!(image.contains("x-imgmesh-cache: miss"), "{image}");

    let head = raw_http(
        http_addr,
        "HEAD /cat.jpg HTTP/1.1\r\nHost: demo.localhost\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}\r\n", IMAGE.len())),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "HEAD sent a body: {head:?}");

    let admin = raw_http(
        admin_addr,
        &format!(
            "GET /v1/sources HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
        ),
    )
    .await;
    assert!(admin.starts_with("HTTP/1.1 200"), "{admin}");
    assert!(admin.contains("\"sources\""), "{admin}");
    let refused = raw_http(
        admin_addr,
        "GET /v1/sources HTTP/1.1\r\nHost: localhost\r\n",
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("run did not return after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(http_addr).await.is_err(),
        "http listener still open"
    );
    assert!(
        TcpStream::connect(admin_addr).await.is_err(),
        "admin listener still open"
    );
}

/// Sends one HTTP/1.1 request (head lines without the final blank line) and reads the whole answer.
async fn raw_http(addr: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("no answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

// === secure URLs and expiry ===

/// `lowercase_hex(md5(token + path_and_query))` appended as a client library does.
fn signed(token: &str, path_and_query: &str) -> String {
    use md5::Digest as _;
    let s = hex::encode(md5::Md5::digest(format!("{token}{path_and_query}")));
    let joiner = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{path_and_query}{joiner}s={s}")
}

/// imgix's published vectors are accepted on a secured Source, and the plan is built without `s`.
#[tokio::test]
async fn signed_urls_are_served() {
    let gateway = Harness::start().await;
    for url in [
        "/users/1.png?s=6797c24146142d5b40bde3141fd3600c",
        "/users/1.png?h=300&w=400&s=1a4e48641614d1109c6a7af51be23d18",
    ] {
        let answer = gateway.get("secure.localhost", url).await;
        assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.text());
    }
    let plan = gateway.last_render().request.plan.unwrap();
    assert_eq!((plan.width, plan.height), (400, 300));
    assert_eq!(
        signed(SECURE_TOKEN, "/users/1.png?h=300&w=400"),
        "/users/1.png?h=300&w=400&s=1a4e48641614d1109c6a7af51be23d18"
    );
}

/// Missing, wrong, truncated, reordered, tampered and injected signatures are 403 before any render.
#[tokio::test]
async fn bad_signatures_are_403_without_rendering() {
    let gateway = Harness::start().await;
    let good = "/users/1.png?h=300&w=400&s=1a4e48641614d1109c6a7af51be23d18";
    let bad = [
        "/users/1.png".to_owned(),
        "/users/1.png?h=300&w=400".to_owned(),
        "/users/1.png?h=300&w=400&s=00000000000000000000000000000000".to_owned(),
        good[..good.len() - 2].to_owned(),
        good.replace("s=1a4e", "s=1A4E"),
        "/users/1.png?w=400&h=300&s=1a4e48641614d1109c6a7af51be23d18".to_owned(),
        good.replace("w=400", "w=4000"),
        good.replace("/users/1.png", "/users/2.png"),
        good.replace("/users/1.png", "/users/%31.png"),
        format!("{good}&w=2000"),
        format!("{good}&s=1a4e48641614d1109c6a7af51be23d18"),
        "/users/1.png?s=1a4e48641614d1109c6a7af51be23d18&h=300&w=400".to_owned(),
        "/users/1.png?h=300&%73=1&w=400&s=1a4e48641614d1109c6a7af51be23d18".to_owned(),
        signed("not-the-token", "/users/1.png?h=300&w=400"),
    ];
    for url in &bad {
        let answer = gateway.get("secure.localhost", url).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{url}");
        assert_eq!(answer.text(), "invalid signature", "{url}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{url}");
    }
    assert_eq!(
        gateway.render_calls(),
        0,
        "a bad signature reached the renderer"
    );
    assert_eq!(gateway.resolve_calls(), 1, "host lookups stay cached");
    // HEAD is checked the same way.
    let head = gateway
        .send(request(Method::HEAD, "secure.localhost", "/users/1.png"))
        .await;
    assert_eq!(head.status, StatusCode::FORBIDDEN);
    assert_eq!(gateway.render_calls(), 0);
}

/// During a rotation both the new and the old token sign; a token past its grace period does not.
#[tokio::test]
async fn both_tokens_sign_during_a_rotation() {
    let gateway = Harness::start().await;
    for token in [NEW_TOKEN, OLD_TOKEN] {
        let answer = gateway
            .get("rotating.localhost", &signed(token, "/cat.jpg?w=100"))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{token}: {}", answer.text());
    }
    let answer = gateway
        .get(
            "rotating.localhost",
            &signed(RETIRED_TOKEN, "/cat.jpg?w=100"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(gateway.render_calls(), 2);
}

/// A signed URL whose `expires` has passed is 404 without rendering; an unexpired one caches no longer than its expiry.
#[tokio::test]
async fn expires_on_signed_urls() {
    let gateway = Harness::start().await;
    let past = signed(
        SECURE_TOKEN,
        &format!("/cat.jpg?w=10&expires={}", unix_now() - 10),
    );
    let answer = gateway.get("secure.localhost", &past).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.text(), "url has expired");
    assert_eq!(gateway.render_calls(), 0);

    // One clock reading: the replace below must find this exact value.
    let expires = unix_now() + 120;
    let future = signed(SECURE_TOKEN, &format!("/cat.jpg?w=10&expires={expires}"));
    let answer = gateway.get("secure.localhost", &future).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let max_age: u32 = answer
        .header("cache-control")
        .unwrap()
        .strip_prefix("public, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!((110..=120).contains(&max_age), "max-age {max_age}");

    // Pushing `expires` back breaks the signature.
    let pushed = future.replace(
        &format!("expires={expires}"),
        &format!("expires={}", expires + 99_879),
    );
    assert_ne!(pushed, future);
    assert_eq!(
        gateway.get("secure.localhost", &pushed).await.status,
        StatusCode::FORBIDDEN
    );
}

/// `expires` also applies to unsigned URLs; a value that is not a Unix time is ignored.
#[tokio::test]
async fn expires_on_unsigned_urls() {
    let gateway = Harness::start().await;
    let answer = gateway
        .get(
            "demo.localhost",
            &format!("/cat.jpg?expires={}", unix_now() - 1),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = gateway
        .get(
            "demo.localhost",
            &format!("/cat.jpg?expires={}", unix_now() + 30),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let cache_control = answer.header("cache-control").unwrap();
    assert!(
        [
            "public, max-age=30",
            "public, max-age=29",
            "public, max-age=28"
        ]
        .contains(&cache_control),
        "{cache_control}"
    );
    // A value that is not a Unix time is ignored, as imgix ignores invalid values.
    let answer = gateway
        .get("demo.localhost", "/cat.jpg?expires=tomorrow")
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("cache-control"),
        Some("public, max-age=86400")
    );
    assert_eq!(gateway.render_calls(), 2);
}

/// Client errors carry the Source's error TTL, never beyond the URL's `expires`.
#[tokio::test]
async fn errors_carry_the_source_error_ttl() {
    let gateway = Harness::start().await;
    let answer = gateway.get("shortttl.localhost", "/missing.jpg").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.header("cache-control"), Some("public, max-age=60"));

    let answer = gateway
        .get(
            "shortttl.localhost",
            &format!("/missing.jpg?expires={}", unix_now() + 5),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let cache_control = answer.header("cache-control").unwrap();
    assert!(
        [
            "public, max-age=5",
            "public, max-age=4",
            "public, max-age=3"
        ]
        .contains(&cache_control),
        "{cache_control}"
    );
}
