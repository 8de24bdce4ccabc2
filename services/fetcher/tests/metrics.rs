//! The fetcher's `GET /metrics` listener, started from its parsed config as
//! `main` starts it, against a real S3 server (`s3s-fs`): S3 calls, bytes
//! read, original cache lookups and gRPC calls are counted.

use clap::Parser as _;
use imgmesh_fetcher::FetcherConfig;

use crate::harness::{Harness, SECRET_KEY, patterned_bytes};

/// After a read from S3 (a cache miss), the same read from memory (a hit)
/// and a missing key, `/metrics` answers 200 with each counted.
#[tokio::test]
async fn metrics_count_s3_reads_and_cache_lookups() {
    let harness = Harness::start(32 * 1024 * 1024).await;
    let object = patterned_bytes(300 * 1024);
    harness.put_object("photos/a.bin", &object);
    harness.add_source("src-metrics", "", SECRET_KEY);
    let config =
        FetcherConfig::try_parse_from(["imgmesh-fetcher", "--metrics-listen=127.0.0.1:0"]).unwrap();
    let metrics = imgmesh_runtime::MetricsServer::start("fetcher", &config.metrics)
        .await
        .unwrap();

    for _ in 0..2 {
        let fetched = harness.fetch("src-metrics", "photos/a.bin").await.unwrap();
        assert!(
            fetched.bytes == object,
            "bytes differ from the stored object"
        );
    }
    let missing = harness.fetch("src-metrics", "photos/none.bin").await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    let response = imgmesh_metrics::scrape(metrics.local_addr().expect("metrics are on"))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let service = "imgmesh.fetcher.v1.FetcherService";
    for series in [
        "imgmesh_s3_requests_total{result=\"ok\"} 1".to_owned(),
        "imgmesh_s3_requests_total{result=\"not_found\"} 1".to_owned(),
        format!("imgmesh_s3_bytes_read_total {}", object.len()),
        "imgmesh_cache_lookups_total{tier=\"original\",result=\"hit\"} 1".to_owned(),
        "imgmesh_cache_lookups_total{tier=\"original\",result=\"miss\"} 2".to_owned(),
        format!(
            "imgmesh_grpc_requests_total{{service=\"{service}\",method=\"FetchObject\",code=\"0\"}} 2"
        ),
        format!(
            "imgmesh_grpc_requests_total{{service=\"{service}\",method=\"FetchObject\",code=\"5\"}} 1"
        ),
    ] {
        assert!(
            response.lines().any(|line| line == series),
            "{series} missing from:\n{response}"
        );
    }
    metrics.stop().await.unwrap();
}
