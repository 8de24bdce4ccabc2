//! The registry's `GET /metrics` listener, started from its parsed config as
//! `main` starts it, counts the gRPC calls the real server answered.

use clap::Parser as _;
use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_source_registry::{Config, MasterKey, Registry, SERVICE_NAME, serve};

/// After one successful and one refused call, `/metrics` answers 200 with
/// both counted under their gRPC status codes, and their latency.
#[tokio::test]
async fn metrics_count_grpc_calls() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path().join("registry.db"),
        MasterKey::from_bytes([42; 32]),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(registry, listener, async {
        let _ = stopped.await;
    }));
    let config =
        Config::try_parse_from(["imgmesh-source-registry", "--metrics-listen=127.0.0.1:0"])
            .unwrap();
    let metrics = imgmesh_runtime::MetricsServer::start(SERVICE_NAME, &config.metrics)
        .await
        .unwrap();
    let metrics_addr = metrics.local_addr().expect("metrics are on");

    let mut sources = SourceRegistryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    sources
        .list_sources(proto::ListSourcesRequest {})
        .await
        .unwrap();
    let missing = sources
        .get_source(proto::GetSourceRequest {
            id_or_name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let response = imgmesh_metrics::scrape(metrics_addr).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let service = "imgmesh.registry.v1.SourceRegistryService";
    for series in [
        format!(
            "imgmesh_grpc_requests_total{{service=\"{service}\",method=\"ListSources\",code=\"0\"}} 1"
        ),
        format!(
            "imgmesh_grpc_requests_total{{service=\"{service}\",method=\"GetSource\",code=\"5\"}} 1"
        ),
        format!(
            "imgmesh_grpc_request_duration_seconds_count{{service=\"{service}\",method=\"GetSource\"}} 1"
        ),
    ] {
        assert!(
            response.contains(&series),
            "{series} missing from:\n{response}"
        );
    }

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    metrics.stop().await.unwrap();
}
