//! The gateway binary against clients that stall and a registry that dies:
//! a half-sent request head is cut off after `--header-read-timeout-ms`, an
//! admin body stalling short of its `Content-Length` is a 408 after
//! `--body-read-timeout-ms`, and a Source that served before keeps serving
//! after the registry is killed; a frozen renderer is a prompt 503 with
//! `Retry-After` (never a 500), while Redis hits keep being answered.

use std::net::SocketAddr;
use std::time::Duration;

use imgmesh_integration_tests::S3_SECRET_KEY;
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{ADMIN_TOKEN, BASE_DOMAIN, ChildProcess, Mesh, MeshOptions};
use imgmesh_test_support::raw_client::send_and_read;

/// How long a test waits for the gateway to act on a short timeout: far
/// beyond the timeouts configured, so a loaded machine never fails a test.
const GENEROUS: Duration = Duration::from_secs(15);

/// A second gateway on the mesh's registry and renderer with short read
/// timeouts and `extra` flags; returns it with its public and admin addresses.
async fn impatient_gateway_with(
    mesh: &Mesh,
    extra: &[&str],
) -> (ChildProcess, SocketAddr, SocketAddr) {
    let mut flags = vec!["--header-read-timeout-ms=500", "--body-read-timeout-ms=500"];
    flags.extend_from_slice(extra);
    mesh.spawn_gateway(&mesh.renderer_url, &flags)
        .await
        .unwrap()
}

/// Half a request line is disconnected (public and admin listeners), and an admin POST sending 10 of its 100 bytes is a 408 naming the body.
#[tokio::test]
async fn stalled_clients_are_cut_off() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    let (gateway, http, admin) = impatient_gateway_with(&mesh, &[]).await;

    for addr in [http, admin] {
        let answer = send_and_read(addr, b"GET /photos/cat.jp", GENEROUS).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }

    let request = format!(
        "POST /v1/sources HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":\""
    );
    let answer = send_and_read(admin, request.as_bytes(), GENEROUS).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
    assert!(!gateway.log().contains(ADMIN_TOKEN), "the token was logged");
}

/// After the registry is killed, a Source that served before still answers 200 well past the host cache TTL, counted as a stale source lookup.
#[tokio::test]
async fn known_sources_serve_after_the_registry_dies() {
    let mut mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(640, 480).unwrap())
        .unwrap();
    mesh.create_source("shop", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let url = "/photos/cat.jpg?w=64";
    // Render once, then wait until the derivative is in Redis, where the
    // gateway reads it without the renderer (whose fetcher needs the
    // registry too).
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        let response = mesh.get("shop", url).await.unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        if response.header("x-imgmesh-cache") == Some("hit") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never a cache hit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    mesh.registry.kill();
    // The mesh's gateway caches hosts for 200 ms: wait well past it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served = mesh.get("shop", url).await.unwrap();
    assert_eq!(served.status, 200, "{}", served.text());
    fixtures::expect_image(&served.body, Format::Jpeg, 64, 48).unwrap();
    let stale = mesh
        .metric(
            "gateway",
            "imgmesh_cache_lookups_total",
            "tier=\"source\",result=\"stale\"",
        )
        .await
        .unwrap();
    assert!(stale >= 1.0, "no stale source lookup counted");

    let unknown = mesh.get("nobody", url).await.unwrap();
    assert_eq!(unknown.status, 503, "{}", unknown.text());
}

/// Sends `signal` (`STOP`, `CONT`) to `process`.
fn signal(process: &ChildProcess, signal: &str) {
    let pid = process.pid().expect("the process runs");
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// With the renderer frozen (SIGSTOP), a miss is a 503 with `Retry-After`
/// once `--render-timeout-ms` passes — tonic reports that deadline as
/// CANCELLED, which used to surface as a 500 — while a derivative already
/// in Redis is still served by the gateway; after SIGCONT misses render
/// again without a restart.
#[tokio::test]
async fn a_frozen_renderer_is_a_prompt_503_never_a_500() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(640, 480).unwrap())
        .unwrap();
    mesh.create_source("shop", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let (_gateway, http, _) = impatient_gateway_with(&mesh, &["--render-timeout-ms=1000"]).await;
    let host = format!("shop.{BASE_DOMAIN}");
    let get = |path: &'static str| {
        let host = host.clone();
        async move {
            imgmesh_integration_tests::get(http, &host, path, &[])
                .await
                .unwrap()
        }
    };
    let first = get("/photos/cat.jpg?w=50").await;
    assert_eq!(first.status, 200, "{}", first.text());
    // Into Redis, through the mesh's own gateway (which reads Redis).
    let deadline = tokio::time::Instant::now() + GENEROUS;
    while mesh
        .get("shop", "/photos/cat.jpg?w=64")
        .await
        .unwrap()
        .header("x-imgmesh-cache")
        != Some("hit")
    {
        assert!(tokio::time::Instant::now() < deadline, "never a cache hit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    signal(&mesh.renderer, "STOP");
    let started = tokio::time::Instant::now();
    let frozen = get("/photos/cat.jpg?w=51").await;
    let waited = started.elapsed();
    let hit = mesh.get("shop", "/photos/cat.jpg?w=64").await.unwrap();
    signal(&mesh.renderer, "CONT");
    assert_eq!(frozen.status, 503, "{}", frozen.text());
    assert_eq!(frozen.header("retry-after"), Some("1"));
    assert_eq!(frozen.text(), "renderer did not answer in time");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
    assert_eq!(hit.status, 200, "a Redis hit needs no renderer");
    fixtures::expect_image(&hit.body, Format::Jpeg, 64, 48).unwrap();

    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        let thawed = get("/photos/cat.jpg?w=52").await;
        if thawed.status == 200 {
            fixtures::expect_image(&thawed.body, Format::Jpeg, 52, 39).unwrap();
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", thawed.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
