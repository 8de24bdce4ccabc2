//! Every service of a real mesh serves Prometheus metrics on `GET /metrics`
//! and counts the work one render caused.

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{Mesh, MeshOptions, S3_SECRET_KEY, get};

/// After one render through the gateway, each service's `/metrics` answers
/// 200 in the OpenMetrics format: the gateway counts a 200, the fetcher a
/// successful S3 read with its bytes, and the gRPC servers their calls.
#[tokio::test]
async fn every_service_serves_metrics_after_a_render() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(600, 400).unwrap())
        .unwrap();
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let response = mesh
        .get("demo", "/photos/cat.jpg?w=300&fm=webp")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    fixtures::expect_image(&response.body, Format::Webp, 300, 200).unwrap();

    let mut scraped = Vec::new();
    for service in ["source-registry", "fetcher", "renderer", "gateway"] {
        let metrics = get(mesh.metrics_addr(service), "localhost", "/metrics", &[])
            .await
            .unwrap_or_else(|e| panic!("{service} /metrics: {e:#}"));
        assert_eq!(metrics.status, 200, "{service}: {}", metrics.text());
        assert_eq!(
            metrics.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            "{service}"
        );
        let text = metrics.text();
        assert!(text.contains("\nimgmesh_"), "{service}: {text}");
        assert!(text.ends_with("# EOF\n"), "{service}: {text}");
        scraped.push((service, text));
    }
    let text = |name: &str| {
        scraped
            .iter()
            .find(|(service, _)| *service == name)
            .map(|(_, text)| text.as_str())
            .unwrap()
    };

    let ok_requests = value(
        text("gateway"),
        "imgmesh_http_requests_total{status=\"200\"}",
    );
    assert!(ok_requests >= 1.0, "{}", text("gateway"));
    let bytes_read = value(text("fetcher"), "imgmesh_s3_bytes_read_total");
    assert!(bytes_read > 0.0, "{}", text("fetcher"));
    let s3_ok = value(text("fetcher"), "imgmesh_s3_requests_total{result=\"ok\"}");
    assert!(s3_ok >= 1.0, "{}", text("fetcher"));
    for (service, series) in [
        (
            "fetcher",
            "imgmesh_grpc_requests_total{service=\"imgmesh.fetcher.v1.FetcherService\",method=\"FetchObject\",code=\"0\"}",
        ),
        (
            "renderer",
            "imgmesh_grpc_requests_total{service=\"imgmesh.renderer.v1.RendererService\",method=\"Render\",code=\"0\"}",
        ),
        (
            "source-registry",
            "imgmesh_grpc_requests_total{service=\"imgmesh.registry.v1.SourceRegistryService\",method=\"ResolveHost\",code=\"0\"}",
        ),
        (
            "source-registry",
            "imgmesh_grpc_requests_total{service=\"imgmesh.registry.v1.SourceCredentialsService\",method=\"GetReadAccess\",code=\"0\"}",
        ),
    ] {
        assert!(
            value(text(service), series) >= 1.0,
            "{series}:\n{}",
            text(service)
        );
    }
}

/// The value of the sample `series` (name and labels, exactly as exposed)
/// in `text`; 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().expect("a number"))
}
