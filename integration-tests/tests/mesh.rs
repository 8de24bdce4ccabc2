//! End-to-end tests of the four-service mesh on real Redis, real S3
//! (`s3s-fs`, checking SigV4) and real service processes.

use std::time::Duration;

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{Mesh, MeshOptions, OtlpReceiver, S3_SECRET_KEY};

/// Starts a mesh with one Source `demo` and a 1200×800 JPEG at `photos/cat.jpg`.
async fn demo_mesh(options: MeshOptions) -> Mesh {
    let mesh = Mesh::start(options).await.expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(1200, 800).unwrap())
        .unwrap();
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    mesh
}

/// A request through gateway → renderer → fetcher → S3 returns the asked
/// width, height and format, for every output format.
#[tokio::test]
async fn renders_requested_size_and_format() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let cases = [
        ("w=600&fm=webp", Format::Webp, 600, 400),
        ("h=200&fm=png", Format::Png, 300, 200),
        ("w=300&h=300&fit=crop&fm=jpg", Format::Jpeg, 300, 300),
        ("w=300&h=300&fit=scale", Format::Jpeg, 300, 300),
        ("w=300&h=300", Format::Jpeg, 300, 200),
        ("w=5000&fit=max", Format::Jpeg, 1200, 800),
        ("w=200&dpr=2&fm=avif", Format::Avif, 400, 267),
    ];
    for (query, format, width, height) in cases {
        let response = mesh
            .get("demo", &format!("/photos/cat.jpg?{query}"))
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{query}: {}", response.text());
        fixtures::expect_image(&response.body, format, width, height)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let content_type = response.header("content-type").unwrap();
        assert!(
            content_type.starts_with("image/"),
            "{query}: {content_type}"
        );
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str())
        );
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=31536000"),
            "{query}"
        );
    }
}

/// A second identical request is a Redis hit, and a reordered or aliased
/// query hits the same entry.
#[tokio::test]
async fn equal_plans_share_one_cache_entry() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let first = mesh
        .get("demo", "/photos/cat.jpg?w=320&fm=webp&q=60")
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-imgmesh-cache"), Some("miss"));

    for query in [
        "w=320&fm=webp&q=60",
        "q=60&fm=webp&w=320",
        "width=320&fm=webp&q=60&utm_source=newsletter",
    ] {
        let again = mesh
            .get("demo", &format!("/photos/cat.jpg?{query}"))
            .await
            .unwrap();
        assert_eq!(again.status, 200);
        assert_eq!(again.header("x-imgmesh-cache"), Some("hit"), "{query}");
        assert_eq!(again.body, first.body, "{query}");
    }
    assert_eq!(mesh.redis_dbsize().await.unwrap(), 1);

    let other = mesh
        .get("demo", "/photos/cat.jpg?w=321&fm=webp&q=60")
        .await
        .unwrap();
    assert_eq!(other.header("x-imgmesh-cache"), Some("miss"));
    assert_eq!(mesh.redis_dbsize().await.unwrap(), 2);
}

/// A Source whose secret S3 rejects fails its deploy with a clear reason,
/// so it never serves (404, never a 200), and the secret appears nowhere.
#[tokio::test]
async fn wrong_secret_gives_clear_error() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let wrong_secret = "not-the-secret-0123456789abcdef";
    mesh.create_source_undeployed("broken", wrong_secret, &[])
        .await
        .unwrap();
    let error = mesh.deploy_source("broken").await.unwrap_err().to_string();
    assert!(
        error.contains("deploy of broken failed: the credentials were rejected"),
        "{error}"
    );
    assert!(!error.contains(wrong_secret));
    let response = mesh.get("broken", "/photos/cat.jpg?w=100").await.unwrap();
    assert_eq!(response.status, 404, "{}", response.text());
    assert!(!response.text().contains(wrong_secret));
    assert!(
        !mesh.all_logs().contains(wrong_secret),
        "secret leaked into logs"
    );
}

/// A missing object and an unknown host both answer 404.
#[tokio::test]
async fn missing_object_and_unknown_host_are_404() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let missing = mesh.get("demo", "/photos/nope.jpg?w=100").await.unwrap();
    assert_eq!(missing.status, 404, "{}", missing.text());

    let unknown = mesh.get("nobody", "/photos/cat.jpg?w=100").await.unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.text());

    let escape = mesh.get("demo", "/photos/../secret.jpg").await.unwrap();
    assert_eq!(escape.status, 404, "{}", escape.text());
}

/// Like imgix, unusable values are ignored (200) and an undecodable base64
/// value is a 400 with a short message naming the parameter.
#[tokio::test]
async fn bad_parameter_values() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let response = mesh
        .get("demo", "/photos/cat.jpg?fm=bmp&w=abc")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let response = mesh.get("demo", "/photos/cat.jpg?txt64=@@@").await.unwrap();
    assert_eq!(response.status, 400);
    assert!(response.text().contains("txt64"), "{}", response.text());
}

/// Bytes that are not an image give a 4xx, not a crash or a 500.
#[tokio::test]
async fn non_image_object_is_a_client_error() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    mesh.put_object("notes.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        .unwrap();
    let response = mesh.get("demo", "/notes.png?w=100").await.unwrap();
    assert_eq!(response.status, 415, "{}", response.text());
    // The renderer is still alive afterwards.
    let ok = mesh.get("demo", "/photos/cat.jpg?w=100").await.unwrap();
    assert_eq!(ok.status, 200);
}

/// With Redis stopped, requests still succeed, rendered uncached.
#[tokio::test]
async fn serves_without_redis() {
    let mut mesh = demo_mesh(MeshOptions::default()).await;
    let warm = mesh.get("demo", "/photos/cat.jpg?w=150").await.unwrap();
    assert_eq!(warm.status, 200);
    mesh.redis.kill();
    for (query, width, height) in [
        ("w=150", 150, 100),
        ("w=300", 300, 200),
        ("w=150", 150, 100),
    ] {
        let response = mesh
            .get("demo", &format!("/photos/cat.jpg?{query}"))
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{query}: {}", response.text());
        assert_eq!(response.header("x-imgmesh-cache"), Some("miss"));
        fixtures::expect_image(&response.body, Format::Jpeg, width, height).unwrap();
    }
}

/// With Redis frozen (`SIGSTOP`: connections hang rather than fail) every
/// request is still answered 200 — the gateway's and the renderer's Redis
/// timeouts bound the delay — and once Redis resumes, hits come back.
#[tokio::test]
async fn serves_while_redis_is_frozen() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let warm = mesh.get("demo", "/photos/cat.jpg?w=150").await.unwrap();
    assert_eq!(warm.status, 200);
    let pid = mesh.redis.pid().expect("redis runs").to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, pid.as_str()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    for query in ["w=150", "w=300", "w=150"] {
        let started = std::time::Instant::now();
        let response = mesh
            .get("demo", &format!("/photos/cat.jpg?{query}"))
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{query}: {}", response.text());
        assert_eq!(response.header("x-imgmesh-cache"), Some("miss"), "{query}");
        // Two 250 ms Redis timeouts (tests' setting) plus a render, with
        // room for a loaded machine; a hang would take the 30 s deadline.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{query}: {:?}",
            started.elapsed()
        );
    }
    signal("-CONT");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = mesh.get("demo", "/photos/cat.jpg?w=150").await.unwrap();
        assert_eq!(response.status, 200);
        if response.header("x-imgmesh-cache") == Some("hit") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hits never came back: {}",
            mesh.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One request yields spans from all four services under the trace id the
/// client sent in `traceparent`.
#[tokio::test]
async fn one_trace_spans_all_four_services() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let mesh = demo_mesh(MeshOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..MeshOptions::default()
    })
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let response = mesh
        .get_with(
            "demo",
            "/photos/cat.jpg?w=64",
            &[("traceparent", traceparent.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());

    let expected = [
        "imgmesh-gateway",
        "imgmesh-source-registry",
        "imgmesh-renderer",
        "imgmesh-fetcher",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let spans = receiver.spans();
        let services: std::collections::BTreeSet<&str> = spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .map(|s| s.service.as_str())
            .collect();
        if expected.iter().all(|s| services.contains(s)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "trace {trace_id} has spans only from {services:?}; all spans: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The admin CLI creates, lists, gets and deletes Sources, and never shows
/// the secret.
#[tokio::test]
async fn cli_manages_sources_without_showing_secrets() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let created = mesh
        .create_source("shop", S3_SECRET_KEY, &["--path-prefix=photos"])
        .await
        .unwrap();
    assert_eq!(created["subdomain"], "shop");
    assert_eq!(created["path_prefix"], "photos");

    let listed = mesh.cli_json(&["sources", "list"]).await.unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .expect("list prints an array")
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "shop"]);

    let fetched = mesh.cli_json(&["sources", "get", "shop"]).await.unwrap();
    assert_eq!(fetched["id"], created["id"]);
    let shown = fetched.to_string() + &listed.to_string();
    assert!(!shown.contains(S3_SECRET_KEY), "secret shown: {shown}");

    // The prefix is applied: /cat.jpg on `shop` is photos/cat.jpg.
    let response = mesh.get("shop", "/cat.jpg?w=100").await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());

    let deleted = mesh.cli(&["sources", "delete", "shop"]).await.unwrap();
    assert!(deleted.status.success());
    let gone = mesh.cli(&["sources", "get", "shop"]).await.unwrap();
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));

    // A deleted Source stops serving once the gateway's short cache expires.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = mesh.get("shop", "/cat.jpg?w=100").await.unwrap();
        if response.status == 404 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bad Source fields are refused with the field named.
#[tokio::test]
async fn cli_reports_invalid_fields() {
    let mesh = demo_mesh(MeshOptions::default()).await;
    let output = mesh
        .cli(&[
            "sources",
            "create",
            "--name=bad",
            "--subdomain=Not_A_Label",
            "--bucket=images",
            "--region=us-east-1",
            "--access-key-id=AK",
            "--secret-access-key=SK",
        ])
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("subdomain"), "{stderr}");

    let duplicate = mesh
        .create_source("demo", S3_SECRET_KEY, &[])
        .await
        .unwrap_err();
    assert!(duplicate.to_string().contains("already"), "{duplicate}");
}

/// Every gRPC server answers `grpc.health.v1` with SERVING.
#[tokio::test]
async fn every_grpc_server_serves_health() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    for url in [&mesh.registry_url, &mesh.fetcher_url, &mesh.renderer_url] {
        let channel = mesh.grpc_channel(url, "gateway").unwrap();
        let mut client = HealthClient::new(channel);
        let response = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            response.into_inner().status,
            ServingStatus::Serving as i32,
            "{url}"
        );
    }
    let live = imgmesh_integration_tests::get(mesh.gateway_ops_addr, "localhost", "/live", &[])
        .await
        .unwrap();
    assert_eq!(live.status, 200);
}
