//! gRPC server reflection on every imgmesh listener, so `grpcurl list`,
//! `describe` and calls work without the proto files.
//!
//! Both protocol versions are served (`grpc.reflection.v1` and the older
//! `grpc.reflection.v1alpha`, which many clients still ask first). Each
//! listener advertises only what it serves: the services its
//! [`ServiceHealth`] reports on, `grpc.health.v1.Health` and reflection
//! itself; their messages come from imgmesh's compiled protos
//! ([`imgmesh_proto::FILE_DESCRIPTOR_SET`]) and tonic-health's.

use crate::ServiceHealth;

/// `routes` with both reflection services added, advertising the services
/// `health` reports on.
pub(crate) fn add_reflection(
    routes: tonic::service::Routes,
    health: &ServiceHealth,
) -> anyhow::Result<tonic::service::Routes> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(imgmesh_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for service in health.services() {
            builder = builder.with_service_name(service);
        }
        builder
    };
    let v1 = builder()
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()?;
    let v1alpha = builder()
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()?;
    Ok(routes.add_service(v1).add_service(v1alpha))
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::renderer_service_server::RendererServiceServer;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    use crate::ServiceHealth;

    /// The renderer's service name, without a renderer behind it.
    struct RendererName;

    /// A listener serving as the renderer's does lists the renderer's
    /// service, health and reflection through reflection, and nothing else.
    #[tokio::test]
    async fn a_listener_lists_what_it_serves() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = ServiceHealth::new().with_service::<RendererServiceServer<RendererName>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve_grpc(
            listener,
            tonic::service::Routes::default(),
            health,
            async {
                let _ = stopped.await;
            },
        ));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a list: {answer:?}");
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "imgmesh.renderer.v1.RendererService",
            ]
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
