//! The registry split over two listeners, as the binary runs it
//! (`serve_split`): the credential RPC answers on the credentials listener
//! only, everything else on the main one only, and both answer health.

use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::source_credentials_service_client::SourceCredentialsServiceClient;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_runtime::HealthArgs;
use imgmesh_source_registry::{MasterKey, Registry, serve_split};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// GetReadAccess answers on the credentials listener and is unimplemented
/// on the main one; the registry API answers on the main listener and is
/// unimplemented on the credentials one; both report SERVING, each for the
/// service it serves only.
#[tokio::test]
async fn credentials_answer_on_their_own_listener_only() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path().join("registry.db"),
        MasterKey::from_bytes([7; 32]),
    )
    .await
    .unwrap();
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let credentials = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_addr, credentials_addr) = (
        main.local_addr().unwrap(),
        credentials.local_addr().unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_split(
            registry,
            main,
            Some(credentials),
            &HealthArgs::default(),
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    let (main, credentials) = (connect(main_addr).await, connect(credentials_addr).await);

    let read_access = |channel: Channel| async move {
        SourceCredentialsServiceClient::new(channel)
            .get_read_access(proto::GetReadAccessRequest {
                source_id: "src_unknown".into(),
            })
            .await
            .unwrap_err()
            .code()
    };
    assert_eq!(read_access(credentials.clone()).await, Code::NotFound);
    assert_eq!(read_access(main.clone()).await, Code::Unimplemented);

    let list = |channel: Channel| async move {
        SourceRegistryServiceClient::new(channel)
            .list_sources(proto::ListSourcesRequest::default())
            .await
            .map(|_| ())
            .map_err(|status| status.code())
    };
    assert_eq!(list(main.clone()).await, Ok(()));
    assert_eq!(list(credentials.clone()).await, Err(Code::Unimplemented));

    // Each listener's health names only what it serves.
    let health = |channel: Channel, service: &'static str| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .map(|response| response.into_inner().status())
            .map_err(|status| status.code())
    };
    const REGISTRY: &str = "imgmesh.registry.v1.SourceRegistryService";
    const CREDENTIALS: &str = "imgmesh.registry.v1.SourceCredentialsService";
    for channel in [main.clone(), credentials.clone()] {
        assert_eq!(health(channel, "").await, Ok(ServingStatus::Serving));
    }
    assert_eq!(
        health(main.clone(), REGISTRY).await,
        Ok(ServingStatus::Serving)
    );
    assert_eq!(
        health(main, CREDENTIALS).await,
        Err(Code::NotFound),
        "the main listener does not serve the credentials"
    );
    assert_eq!(
        health(credentials.clone(), CREDENTIALS).await,
        Ok(ServingStatus::Serving)
    );
    assert_eq!(health(credentials, REGISTRY).await, Err(Code::NotFound));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
