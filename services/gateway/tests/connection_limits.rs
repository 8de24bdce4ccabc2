//! The gateway against clients and peers that misbehave, over real TCP:
//! clients that stall while sending a request head or an admin body, and a
//! source registry that goes away.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use imgmesh_test_support::raw_client::send_and_read;
use tokio::net::TcpListener;

use crate::support::*;

/// How long a test waits for the gateway to act on a short timeout: far
/// beyond the timeouts configured, so a slow machine never fails a test.
const GENEROUS: Duration = Duration::from_secs(10);

/// A gateway served by `run` on loopback listeners until dropped.
struct Served {
    http: SocketAddr,
    admin: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(harness: &Harness) -> Served {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_addr, admin_addr) = (http.local_addr().unwrap(), admin.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(imgmesh_gateway::run(
        harness.state.clone(),
        http,
        ops,
        Some(admin),
        async {
            let _ = stopped.await;
        },
    ));
    Served {
        http: http_addr,
        admin: admin_addr,
        _stop: stop,
    }
}

/// A client that sends half a request line is disconnected after the header read timeout, on the public and the admin listener.
#[tokio::test]
async fn partial_request_heads_are_disconnected() {
    let harness = Harness::with_args(&["--header-read-timeout-ms=300"]).await;
    let served = serve(&harness).await;
    for addr in [served.http, served.admin] {
        let started = Instant::now();
        let answer = send_and_read(addr, b"GET /cat.jpg HT", GENEROUS).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
    assert_eq!(harness.resolve_calls(), 0);
    assert_eq!(harness.admin_calls(), 0);
}

/// A client that connects and sends nothing at all (hyper waits for the
/// first bytes to tell HTTP/1 from HTTP/2, with no limit of its own) is
/// disconnected after the same header read timeout.
#[tokio::test]
async fn silent_connections_are_disconnected() {
    let harness = Harness::with_args(&["--header-read-timeout-ms=300"]).await;
    let served = serve(&harness).await;
    for addr in [served.http, served.admin] {
        let started = Instant::now();
        let answer = send_and_read(addr, b"", GENEROUS).await;
        assert!(answer.is_empty(), "{answer}");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}

/// An admin body stalling short of its Content-Length is 408 with a JSON error, for a JSON endpoint and for an upload (which stores nothing).
#[tokio::test]
async fn stalled_admin_bodies_are_408() {
    let harness = Harness::with_args(&["--body-read-timeout-ms=300"]).await;
    let served = serve(&harness).await;
    for (method, path) in [
        ("POST", "/v1/sources"),
        ("PUT", "/v1/sources/demo/objects/a.jpg"),
    ] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n0123456789"
        );
        let answer = send_and_read(served.admin, request.as_bytes(), GENEROUS).await;
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{method} {path}: {answer}"
        );
        assert!(answer.contains("\"REQUEST_TIMEOUT\""), "{answer}");
        assert!(answer.contains("\"field\":\"body\""), "{answer}");
    }
    assert!(harness.registry.created.lock().unwrap().is_empty());
    assert!(harness.registry.uploads.lock().unwrap().is_empty());
}

/// With the registry gone, a host it answered before keeps serving past the cache TTL (counted as stale); a host never seen is 503.
#[tokio::test]
async fn known_sources_serve_while_the_registry_is_down() {
    let mut harness = Harness::with_args(&["--source-cache-ttl-ms=100"]).await;
    let first = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    harness.stop_registry();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stale_before = stale_lookups(&harness).await;
    let served = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    assert!(stale_lookups(&harness).await > stale_before);

    let unknown = harness.get("never-seen.localhost", "/cat.jpg").await;
    assert_eq!(unknown.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(harness.render_calls(), 2);
}

/// A registry that hangs (accepts, never answers) costs a known Source at
/// most a short wait, not the lookup's whole 5 s deadline: its last answer
/// is served, and the next requests within the TTL do not wait at all.
#[tokio::test]
async fn a_hung_registry_delays_known_sources_briefly() {
    let harness = Harness::with_args(&["--source-cache-ttl-ms=1000"]).await;
    let first = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    harness
        .registry
        .hang_resolves
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let started = Instant::now();
    let served = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    let started = Instant::now();
    let again = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "the stale answer is reused within the TTL"
    );
}

/// With `--source-stale-seconds=0` nothing is served past the TTL: the registry going away is a 503 again.
#[tokio::test]
async fn no_stale_window_means_503_while_the_registry_is_down() {
    let mut harness =
        Harness::with_args(&["--source-cache-ttl-ms=100", "--source-stale-seconds=0"]).await;
    let first = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    harness.stop_registry();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = harness.get("demo.localhost", "/cat.jpg?w=10").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), Some("1"));
}

/// The `stale` source lookups counted so far.
async fn stale_lookups(harness: &Harness) -> f64 {
    let metrics = harness.ops("/metrics").await;
    metrics
        .text()
        .lines()
        .find(|line| {
            line.starts_with("imgmesh_cache_lookups_total{")
                && line.contains("tier=\"source\"")
                && line.contains("result=\"stale\"")
        })
        .and_then(|line| line.rsplit_once(' '))
        .map_or(0.0, |(_, value)| value.parse().unwrap())
}

/// Sends `GET /v1/sources` to the admin listener with `authorization`.
async fn admin_get(admin: SocketAddr, authorization: &str) -> String {
    send_and_read(
        admin,
        format!(
            "GET /v1/sources HTTP/1.1\r\nHost: localhost\r\nAuthorization: {authorization}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
        GENEROUS,
    )
    .await
}

/// Ten wrong admin tokens from one address are 401s; then that address gets 429 with Retry-After, even with the right token.
#[tokio::test]
async fn wrong_admin_tokens_are_rate_limited() {
    let harness = Harness::start().await;
    let served = serve(&harness).await;
    let right = format!("Bearer {ADMIN_TOKEN}");
    assert!(
        admin_get(served.admin, &right)
            .await
            .starts_with("HTTP/1.1 200")
    );
    for n in 0..10 {
        let answer = admin_get(served.admin, &format!("Bearer guess-{n:04}-0123456789")).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "guess {n}: {answer}");
    }
    for authorization in ["Bearer guess-9999-0123456789", right.as_str()] {
        let answer = admin_get(served.admin, authorization).await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(answer.contains("\"code\":\"RATE_LIMITED\""), "{answer}");
        let retry_after: u64 = answer
            .lines()
            .find_map(|line| line.strip_prefix("retry-after: "))
            .expect("no Retry-After")
            .trim()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    assert_eq!(
        harness.admin_calls(),
        1,
        "blocked requests reached the registry"
    );
    let metrics = harness.ops("/metrics").await;
    assert!(
        metrics.text().lines().any(|line| line
            .starts_with("imgmesh_admin_auth_refusals_total{reason=\"rate_limited\"} ")
            && !line.ends_with(" 0")),
        "{}",
        metrics.text()
    );
}

/// With `--max-in-flight=1` and one request held by the renderer, the next is 503 with `Retry-After: 1` at once; once the held one ends, requests are served again.
#[tokio::test]
async fn requests_beyond_max_in_flight_are_shed() {
    let harness = Harness::with_args(&["--max-in-flight=1"]).await;
    let served = serve(&harness).await;
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n")
    };
    let addr = served.http;
    let held_request = get("/stall.jpg");
    let held =
        tokio::spawn(async move { send_and_read(addr, held_request.as_bytes(), GENEROUS).await });
    let deadline = Instant::now() + GENEROUS;
    while harness.render_calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the held request never reached the renderer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    let shed = send_and_read(served.http, get("/cat.jpg").as_bytes(), GENEROUS).await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(shed.contains("retry-after: 1\r\n"), "{shed}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the shed request waited"
    );
    assert_eq!(harness.render_calls(), 1, "the shed request was rendered");
    let metrics = harness.ops("/metrics").await.text().to_owned();
    assert!(
        metrics.contains("imgmesh_http_requests_in_flight 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("imgmesh_http_requests_shed_total 0\n"),
        "{metrics}"
    );

    harness.renderer.stall.notify_one();
    let held = held.await.unwrap();
    assert!(held.starts_with("HTTP/1.1 200"), "{held}");
    let again = send_and_read(served.http, get("/cat.jpg").as_bytes(), GENEROUS).await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
}
