//! The gateway's routers against small in-test gRPC peers.
//!
//! The peers are real tonic servers on `127.0.0.1:0` (with `grpc.health.v1`)
//! that answer with canned Sources, bytes and error statuses and count their
//! calls, so these tests can prove what the gateway asked for — and what it
//! did *not* ask for. Tests across the real services live in
//! `integration-tests/`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use axum::body::Body;
use clap::Parser as _;
use http::{Method, Request, StatusCode};
use imgmesh_errors::ErrorCode;
use imgmesh_gateway::{GatewayConfig, GatewayState};
use imgmesh_proto::registry::v1::source_registry_service_server::{
    SourceRegistryService, SourceRegistryServiceServer,
};
use imgmesh_proto::registry::v1::*;
use imgmesh_proto::renderer::v1::renderer_service_server::{
    RendererService, RendererServiceServer,
};
use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan, RenderRequest, RenderResponse};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// The bytes the fake renderer answers with.
const IMAGE: &[u8] = b"\x52\x49\x46\x46 not really a webp";
/// A W3C traceparent a client might send.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

// === fake source registry ===

/// Answers ResolveHost from a fixed table: `demo.localhost` is a Source,
/// `off.localhost` is disabled, everything else is unknown.
#[derive(Debug, Default)]
struct FakeRegistry {
    resolve_calls: AtomicUsize,
}

fn demo_source() -> Source {
    Source {
        id: "src_demo".to_owned(),
        name: "demo".to_owned(),
        subdomain: "demo".to_owned(),
        default_params: "fm=webp&q=60&w=800".to_owned(),
        cache_ttl_seconds: 86_400,
        config_version: 7,
        ..Source::default()
    }
}

#[tonic::async_trait]
impl SourceRegistryService for FakeRegistry {
    async fn create_source(
        &self,
        _: tonic::Request<CreateSourceRequest>,
    ) -> Result<tonic::Response<CreateSourceResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    async fn get_source(
        &self,
        _: tonic::Request<GetSourceRequest>,
    ) -> Result<tonic::Response<GetSourceResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    async fn list_sources(
        &self,
        _: tonic::Request<ListSourcesRequest>,
    ) -> Result<tonic::Response<ListSourcesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    async fn update_source(
        &self,
        _: tonic::Request<UpdateSourceRequest>,
    ) -> Result<tonic::Response<UpdateSourceResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    async fn delete_source(
        &self,
        _: tonic::Request<DeleteSourceRequest>,
    ) -> Result<tonic::Response<DeleteSourceResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    async fn resolve_host(
        &self,
        request: tonic::Request<ResolveHostRequest>,
    ) -> Result<tonic::Response<ResolveHostResponse>, tonic::Status> {
        self.resolve_calls.fetch_add(1, Ordering::SeqCst);
        match request.into_inner().host.as_str() {
            "demo.localhost" => Ok(tonic::Response::new(ResolveHostResponse {
                source: Some(demo_source()),
            })),
            "off.localhost" => Err(ErrorCode::SourceDisabled.status("source is disabled")),
            _ => Err(ErrorCode::SourceNotFound.status("source not found")),
        }
    }
}

// === fake renderer ===

/// What the fake renderer saw in one call.
#[derive(Debug, Clone)]
struct SeenRender {
    request: RenderRequest,
    traceparent: Option<String>,
    grpc_timeout: Option<String>,
}

/// Answers Render by path: `missing.jpg` → OBJECT_NOT_FOUND, `bad.jpg` →
/// INVALID_ARGUMENT, `cached.jpg` → a cache hit, anything else → a miss.
#[derive(Debug, Default)]
struct FakeRenderer {
    calls: AtomicUsize,
    seen: Mutex<Vec<SeenRender>>,
}

#[tonic::async_trait]
impl RendererService for FakeRenderer {
    async fn render(
        &self,
        request: tonic::Request<RenderRequest>,
    ) -> Result<tonic::Response<RenderResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let metadata = |key: &str| {
            request
                .metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = SeenRender {
            traceparent: metadata("traceparent"),
            grpc_timeout: metadata("grpc-timeout"),
            request: request.into_inner(),
        };
        let path = seen.request.path.clone();
        self.seen.lock().unwrap().push(seen);
        match path.as_str() {
            "missing.jpg" => Err(ErrorCode::ObjectNotFound.status("object not found")),
            "bad.jpg" => Err(ErrorCode::InvalidArgument.status("w: too wide for this input")),
            _ => Ok(tonic::Response::new(RenderResponse {
                data: bytes::Bytes::from_static(IMAGE),
                content_type: "image/webp".to_owned(),
                cache_hit: path == "cached.jpg",
                width: 800,
                height: 600,
            })),
        }
    }
}

// === harness ===

/// Serves `routes` plus gRPC health on a fresh loopback port until dropped.
struct Peer {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn_peer(routes: tonic::service::Routes) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_routes(routes.add_service(health))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = stopped.await;
            },
        );
    tokio::spawn(server);
    Peer { addr, _stop: stop }
}

/// An address nothing listens on: a peer that is down.
async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A gateway wired to a fake registry and (unless `renderer_down`) a fake renderer.
struct Harness {
    state: GatewayState,
    registry: Arc<FakeRegistry>,
    renderer: Arc<FakeRenderer>,
    _peers: Vec<Peer>,
}

impl Harness {
    async fn start() -> Harness {
        Harness::with_renderer(true).await
    }

    async fn with_renderer(renderer_up: bool) -> Harness {
        install_tracing();
        let registry = Arc::new(FakeRegistry::default());
        let renderer = Arc::new(FakeRenderer::default());
        let registry_peer = spawn_peer(tonic::service::Routes::new(
            SourceRegistryServiceServer::from_arc(registry.clone()),
        ))
        .await;
        let mut peers = vec![];
        let renderer_addr = if renderer_up {
            let peer = spawn_peer(tonic::service::Routes::new(
                RendererServiceServer::from_arc(renderer.clone()),
            ))
            .await;
            let addr = peer.addr;
            peers.push(peer);
            addr
        } else {
            dead_addr().await
        };
        let config = GatewayConfig::try_parse_from([
            "imgmesh-gateway".to_owned(),
            format!("--registry-url=http://{}", registry_peer.addr),
            format!("--renderer-url=http://{renderer_addr}"),
            "--base-domain=localhost".to_owned(),
            "--source-cache-ttl-ms=60000".to_owned(),
        ])
        .unwrap();
        peers.push(registry_peer);
        Harness {
            state: GatewayState::build(&config).unwrap(),
            registry,
            renderer,
            _peers: peers,
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = imgmesh_gateway::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        Answer::read(response).await
    }

    async fn get(&self, host: &str, path_and_query: &str) -> Answer {
        self.send(request(Method::GET, host, path_and_query)).await
    }

    async fn ops(&self, path: &str) -> Answer {
        let response = imgmesh_gateway::ops_router(self.state.clone())
            .oneshot(request(Method::GET, "localhost", path))
            .await
            .unwrap();
        Answer::read(response).await
    }

    fn resolve_calls(&self) -> usize {
        self.registry.resolve_calls.load(Ordering::SeqCst)
    }

    fn render_calls(&self) -> usize {
        self.renderer.calls.load(Ordering::SeqCst)
    }

    fn last_render(&self) -> SeenRender {
        self.renderer
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no render call")
    }
}

fn request(method: Method, host: &str, path_and_query: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

/// A response, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    async fn read(response: axum::response::Response) -> Answer {
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: axum::body::to_bytes(body, 1 << 20).await.unwrap(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Installs a subscriber with the OpenTelemetry layer (as `imgmesh_telemetry::init`
/// does) so spans carry trace context, once for the whole test binary.
fn install_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("gateway-tests")));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

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
            height: 0,
            fit: Fit::Crop.into(),
            format: OutputFormat::Webp.into(),
            quality: 60,
            dpr_centi: 200,
        })
    );
    let timeout = seen.grpc_timeout.expect("render call without grpc-timeout");
    assert!(
        timeout.ends_with('m') || timeout.ends_with('u') || timeout.ends_with('S'),
        "{timeout}"
    );
}

/// Hosts that are not `<subdomain>.localhost`, or name no Source, get 404 "unknown host".
#[tokio::test]
async fn unknown_hosts_are_404() {
    let gateway = Harness::start().await;
    for host in [
        "localhost",
        "a.b.localhost",
        "127.0.0.1",
        "demo.example.com",
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

    let answer = gateway.get("nope.localhost", "/cat.jpg").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.text(), "unknown host");
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
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

/// A disabled Source answers 410 with the registry's message.
#[tokio::test]
async fn disabled_source_is_410() {
    let gateway = Harness::start().await;
    let answer = gateway.get("off.localhost", "/cat.jpg").await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(answer.text(), "source is disabled");
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
    let gateway = Harness::with_renderer(false).await;
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

/// An unsupported `fm` is a 400 naming the parameter, and the renderer is never called.
#[tokio::test]
async fn bad_parameter_is_400_without_rendering() {
    let gateway = Harness::start().await;
    let answer = gateway.get("demo.localhost", "/cat.jpg?fm=bmp").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.text(), r#"fm: unsupported value "bmp""#);
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
        "/a//b.jpg",
        "/a%5Cb.jpg",
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
        .send(request(Method::HEAD, "demo.localhost", "/cat.jpg?fm=bmp"))
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
    let gateway = Harness::with_renderer(false).await;
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
    let served = tokio::spawn(imgmesh_gateway::run(
        gateway.state.clone(),
        http,
        ops,
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
