//! The ops router's `GET /metrics` against a gateway with in-test peers (see
//! `support`): public requests and source cache lookups are counted.

use http::StatusCode;

use crate::support::Harness;

/// After two renders of one host (a source cache miss, then a hit) and a
/// request for an unknown host, `/metrics` answers 200 in the OpenMetrics
/// format with the requests counted by status, timed, and the lookups
/// counted by result; the two renders are counted for their Source by id
/// (the unknown host for none).
#[tokio::test]
async fn metrics_count_requests_and_source_lookups() {
    let gateway = Harness::start().await;
    for _ in 0..2 {
        let answer = gateway.get("demo.localhost", "/photos/cat.jpg?w=200").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let unknown = gateway.get("nope.localhost", "/photos/cat.jpg").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let metrics = gateway.ops("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.header("content-type"),
        Some(imgmesh_metrics::CONTENT_TYPE)
    );
    let text = metrics.text();
    for series in [
        "imgmesh_http_requests_total{status=\"200\"} 2",
        "imgmesh_http_requests_total{status=\"404\"} 1",
        "imgmesh_http_request_duration_seconds_count 3",
        "imgmesh_cache_lookups_total{tier=\"source\",result=\"hit\"} 1",
        "imgmesh_cache_lookups_total{tier=\"source\",result=\"miss\"} 2",
        "imgmesh_source_requests_total{source=\"src_demo\",class=\"2xx\"} 2",
    ] {
        assert!(
            text.lines().any(|line| line == series),
            "{series} missing from:\n{text}"
        );
    }
    assert_eq!(
        text.lines()
            .filter(|line| line.starts_with("imgmesh_source_requests_total{"))
            .count(),
        1,
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}
