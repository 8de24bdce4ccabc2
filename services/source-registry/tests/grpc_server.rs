//! Starts the real registry gRPC server in-process on `127.0.0.1:0` through
//! the library's public API and talks to it with the generated clients.

use std::net::SocketAddr;

use imgmesh_errors::ErrorCode;
use imgmesh_proto::prost_types::FieldMask;
use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::source_credentials_service_client::SourceCredentialsServiceClient;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_source_registry::{MasterKey, Registry, serve};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SECRET: &str = "grpc-test-secret-do-not-show";

/// A registry server running on a loopback port, stopped on drop of `stop`.
struct TestServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::from_bytes([42; 32]);
        let registry = Registry::open(dir.path().join("registry.db"), key)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(registry, listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn shutdown(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// A create request for a Source named and routed `name`.
fn create_request(name: &str) -> proto::CreateSourceRequest {
    proto::CreateSourceRequest {
        name: name.into(),
        routing: Some(proto::Routing {
            subdomain: name.into(),
            custom_domains: Vec::new(),
        }),
        location: Some(proto::Location {
            bucket: "images".into(),
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:9000".into(),
            path_prefix: "/photos/".into(),
        }),
        access_key: Some(proto::AccessKey {
            id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: SECRET.into(),
        }),
        default_params: "auto=format".into(),
        ..Default::default()
    }
}

/// An update of `id_or_name` setting what `source` holds at `paths`.
fn update_request(
    id_or_name: &str,
    source: proto::SourceUpdate,
    paths: &[&str],
) -> proto::UpdateSourceRequest {
    proto::UpdateSourceRequest {
        id_or_name: id_or_name.to_owned(),
        source: Some(source),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        }),
    }
}

/// A SourceUpdate with both fallback image paths set to `path`.
fn fallback_paths(path: &str) -> proto::SourceUpdate {
    proto::SourceUpdate {
        fallback_images: Some(proto::FallbackImages {
            missing: Some(proto::FallbackImage {
                path: path.to_owned(),
                append_params: false,
            }),
            error: Some(proto::FallbackImage {
                path: path.to_owned(),
                append_params: false,
            }),
        }),
        ..Default::default()
    }
}

/// Health reports SERVING for both registry services.
#[tokio::test]
async fn health_reports_both_services_serving() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "imgmesh.registry.v1.SourceRegistryService",
        "imgmesh.registry.v1.SourceCredentialsService",
    ] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service}");
    }
    server.shutdown().await;
}

/// Every RPC works over the wire, and no response but GetReadAccess
/// carries the secret.
#[tokio::test]
async fn source_lifecycle_over_grpc() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut sources = SourceRegistryServiceClient::new(channel.clone());
    let mut credentials = SourceCredentialsServiceClient::new(channel);

    let created = sources
        .create_source(create_request("demo"))
        .await
        .unwrap()
        .into_inner()
        .source
        .unwrap();
    assert_eq!(created.location().path_prefix, "photos");
    assert_eq!(created.access_key().id_hint, "…MPLE");
    assert_eq!(created.cache_policy().ttl_seconds, 31_536_000);
    assert_eq!(created.config_version, 1);

    let fetched = sources
        .get_source(proto::GetSourceRequest {
            id_or_name: "demo".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed = sources
        .list_sources(proto::ListSourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    let resolved = sources
        .resolve_host(proto::ResolveHostRequest {
            host: "demo.localhost".into(),
            custom_domain: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.source.as_ref(), Some(&created));
    assert_eq!(listed.sources, std::slice::from_ref(&created));
    assert_eq!(resolved.source.as_ref(), Some(&created));
    let shown = format!("{fetched:?}{listed:?}{resolved:?}");
    assert!(!shown.contains(SECRET));

    let updated = sources
        .update_source(update_request(
            &created.id,
            proto::SourceUpdate {
                location: Some(proto::Location {
                    bucket: "other-bucket".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &["location.bucket"],
        ))
        .await
        .unwrap()
        .into_inner()
        .source
        .unwrap();
    assert_eq!(updated.config_version, 2);
    assert_eq!(updated.location().bucket, "other-bucket");

    let access = credentials
        .get_read_access(proto::GetReadAccessRequest {
            source_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(access.secret_access_key, SECRET);
    assert_eq!(access.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(access.bucket, "other-bucket");
    assert_eq!(access.config_version, 2);
    assert_eq!(access.path_prefix, "photos");

    sources
        .delete_source(proto::DeleteSourceRequest {
            id_or_name: "demo".into(),
        })
        .await
        .unwrap();
    let gone = sources
        .get_source(proto::GetSourceRequest {
            id_or_name: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of_status(&gone), ErrorCode::SourceNotFound);
    server.shutdown().await;
}

/// Errors cross the wire with their imgmesh reason and a field-naming,
/// secret-free message.
#[tokio::test]
async fn errors_carry_reasons_over_grpc() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut sources = SourceRegistryServiceClient::new(channel.clone());
    let mut credentials = SourceCredentialsServiceClient::new(channel);

    let invalid = sources
        .create_source({
            let mut request = create_request("bad");
            request.routing.get_or_insert_default().subdomain = "Not_A_Label".into();
            request
        })
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of_status(&invalid), ErrorCode::InvalidArgument);
    assert!(
        invalid.message().starts_with("subdomain: "),
        "{}",
        invalid.message()
    );
    assert!(!invalid.message().contains(SECRET));

    sources.create_source(create_request("demo")).await.unwrap();
    let duplicate = sources
        .create_source({
            let mut request = create_request("demo");
            request.name = "demo-2".into();
            request
        })
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of_status(&duplicate), ErrorCode::AlreadyExists);
    assert!(duplicate.message().starts_with("subdomain: "));

    let unknown_host = sources
        .resolve_host(proto::ResolveHostRequest {
            host: "nobody.localhost".into(),
            custom_domain: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        ErrorCode::of_status(&unknown_host),
        ErrorCode::SourceNotFound
    );

    let unknown_update = sources
        .update_source(update_request(
            "nobody",
            proto::SourceUpdate::default(),
            &[],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        ErrorCode::of_status(&unknown_update),
        ErrorCode::SourceNotFound
    );

    let unknown_delete = sources
        .delete_source(proto::DeleteSourceRequest {
            id_or_name: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        ErrorCode::of_status(&unknown_delete),
        ErrorCode::SourceNotFound
    );

    let unknown_access = credentials
        .get_read_access(proto::GetReadAccessRequest {
            source_id: "src_000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        ErrorCode::of_status(&unknown_access),
        ErrorCode::SourceNotFound
    );
    server.shutdown().await;
}

/// Deploy, token rotation, custom-domain resolution and upload refusals
/// work over the wire; tokens reach ResolveHost only, never GetSource.
#[tokio::test]
async fn issue_three_rpcs_over_grpc() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut sources = SourceRegistryServiceClient::new(channel.clone());
    let mut credentials = SourceCredentialsServiceClient::new(channel);

    // An endpoint nobody listens on: the deploy fails, naming why.
    let port = imgmesh_test_support::unused_port();
    let created = sources
        .create_source({
            let mut request = create_request("demo");
            request.location.get_or_insert_default().endpoint = format!("http://127.0.0.1:{port}");
            request.routing.get_or_insert_default().custom_domains = vec!["img.example.com".into()];
            request.secure_url_enabled = true;
            request
        })
        .await
        .unwrap()
        .into_inner()
        .source
        .unwrap();
    assert_eq!(
        created.deploy_state().status(),
        proto::SourceStatus::Pending
    );
    let queued = sources
        .deploy_source(proto::DeploySourceRequest {
            id_or_name: "demo".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .source
        .unwrap();
    assert_eq!(
        queued.deploy_state().status(),
        proto::SourceStatus::Deploying
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let failed = loop {
        let source = sources
            .get_source(proto::GetSourceRequest {
                id_or_name: "demo".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .source
            .unwrap();
        if source.deploy_state().status() != proto::SourceStatus::Deploying {
            break source;
        }
        assert!(tokio::time::Instant::now() < deadline, "deploy never ended");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(failed.deploy_state().status(), proto::SourceStatus::Failed);
    assert_eq!(
        failed.deploy_state().message,
        "could not connect to the s3 endpoint"
    );
    let access = credentials
        .get_read_access(proto::GetReadAccessRequest {
            source_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!access.serving);

    let rotated = sources
        .rotate_secure_token(proto::RotateSecureTokenRequest {
            id_or_name: "demo".into(),
            grace_period_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.token.len(), 32);
    assert_eq!(rotated.source.unwrap().active_secure_tokens, 1);
    let resolved = sources
        .resolve_host(proto::ResolveHostRequest {
            host: "img.example.com".into(),
            custom_domain: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.source.as_ref().unwrap().id, created.id);
    assert_eq!(resolved.secure_url_tokens.len(), 1);
    assert_eq!(resolved.secure_url_tokens[0].token, rotated.token);
    let fetched = sources
        .get_source(proto::GetSourceRequest {
            id_or_name: "demo".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{fetched:?}").contains(&rotated.token));

    use proto::upload_object_request::Part;
    let upload = vec![
        proto::UploadObjectRequest {
            part: Some(Part::Header(proto::UploadObjectHeader {
                id_or_name: "demo".into(),
                key: "new/cat.jpg".into(),
                ..Default::default()
            })),
        },
        proto::UploadObjectRequest {
            part: Some(Part::Chunk(vec![0xff, 0xd8, 0xff].into())),
        },
    ];
    let refused = sources
        .upload_object(tokio_stream::iter(upload))
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of_status(&refused), ErrorCode::InvalidArgument);
    assert_eq!(refused.message(), "the source is not deployed");
    server.shutdown().await;
}

/// The fallback image settings (`image_missing`, `image_error`) take any
/// object key S3 stores, as a URL path (spaces, `%XX`, `+`, backslashes,
/// empty and `.` segments), and refuse over the wire, naming the field,
/// only what the object-key rule refuses once decoded (a leading `/` or
/// `\`, a `..` segment, control characters, nothing) and what is not a
/// path (a literal `?` or `#`, a stray `%`). Keys S3 accepts: "The name
/// for a key is a sequence of Unicode characters whose UTF-8 encoding is
/// at most 1,024 bytes long"
/// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html).
#[tokio::test]
async fn fallback_image_settings_follow_the_object_key_rule() {
    let server = TestServer::start().await;
    let mut sources = SourceRegistryServiceClient::new(server.channel().await);
    let created = sources
        .create_source({
            let mut request = create_request("fallbacks");
            request
                .fallback_images
                .get_or_insert_default()
                .missing
                .get_or_insert_default()
                .path = "errors/not found (1).png".into();
            request
                .fallback_images
                .get_or_insert_default()
                .error
                .get_or_insert_default()
                .path = "/errors/caf%C3%A9+broken.png".into();
            request
        })
        .await
        .unwrap()
        .into_inner()
        .source
        .unwrap();
    assert_eq!(
        created.fallback_images().missing().path,
        "/errors/not found (1).png"
    );
    assert_eq!(
        created.fallback_images().error().path,
        "/errors/caf%C3%A9+broken.png"
    );

    for accepted in [
        "/a//b.png",
        "/a/./b.png",
        "/a\\b.png",
        "/100%25.png",
        "/a%3Fb%23c.png",
        "/dir/",
    ] {
        let updated = sources
            .update_source(update_request(
                &created.id,
                fallback_paths(accepted),
                &["fallback_images.missing.path", "fallback_images.error.path"],
            ))
            .await
            .unwrap_or_else(|status| panic!("{accepted:?}: {status:?}"))
            .into_inner()
            .source
            .unwrap();
        assert_eq!(updated.fallback_images().missing().path, accepted);
        assert_eq!(updated.fallback_images().error().path, accepted);
    }

    for refused in [
        "/",
        "//evil.example.com/x.png",
        "/\\evil.png",
        "/%5Cevil.png",
        "/../secret.png",
        "/a/..\\..\\b.png",
        "/%2E%2E/b.png",
        "/a\nb.png",
        "/a%00b.png",
        "/a.png?w=10",
        "/a.png#x",
        "/100%.png",
    ] {
        for (field, request) in [
            (
                "image_missing",
                update_request(
                    &created.id,
                    fallback_paths(refused),
                    &["fallback_images.missing.path"],
                ),
            ),
            (
                "image_error",
                update_request(
                    &created.id,
                    fallback_paths(refused),
                    &["fallback_images.error.path"],
                ),
            ),
        ] {
            let status = sources.update_source(request).await.unwrap_err();
            assert_eq!(
                ErrorCode::of_status(&status),
                ErrorCode::InvalidArgument,
                "{refused:?}"
            );
            assert!(
                status.message().starts_with(&format!("{field}: ")),
                "{refused:?}: {}",
                status.message()
            );
        }
    }
    server.shutdown().await;
}

/// The API key RPCs over the wire: create shows the key once, list never
/// does, authenticate finds a live key and not a revoked, unknown or
/// altered one, revoking an unknown id is API_KEY_NOT_FOUND, and a bad
/// scope is refused naming its field.
#[tokio::test]
async fn api_key_rpcs_over_grpc() {
    let server = TestServer::start().await;
    let mut sources = SourceRegistryServiceClient::new(server.channel().await);

    let created = sources
        .create_api_key(proto::CreateApiKeyRequest {
            name: "uploader".into(),
            operations: vec!["render".into()],
            all_sources: false,
            source_ids: vec!["src_a".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let secret = created.secret.clone();
    assert!(
        secret.starts_with("imk_") && secret.len() == 68,
        "not an imgmesh key"
    );
    let key = created.api_key.unwrap();
    assert_eq!(key.name, "uploader");
    assert_eq!(key.operations, vec!["render".to_owned()]);
    assert!(!key.all_sources);
    assert_eq!(key.source_ids, vec!["src_a".to_owned()]);
    assert_eq!(key.revoked_at_unix, 0);

    let all = sources
        .create_api_key(proto::CreateApiKeyRequest {
            name: "mailer".into(),
            operations: vec!["render".into(), "describe".into()],
            all_sources: true,
            source_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(all.api_key.as_ref().unwrap().all_sources);

    let listed = sources
        .list_api_keys(proto::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.api_keys.len(), 2);
    assert!(!format!("{listed:?}").contains(&secret[4..]));

    let found = sources
        .authenticate_api_key(proto::AuthenticateApiKeyRequest {
            secret: secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        found.api_key.as_ref().map(|k| k.id.as_str()),
        Some(key.id.as_str())
    );
    let mut altered = secret.clone();
    let last = if secret.ends_with('0') { "1" } else { "0" };
    altered.replace_range(67.., last);
    for presented in [altered, String::new(), "imk_nope".to_owned()] {
        let unknown = sources
            .authenticate_api_key(proto::AuthenticateApiKeyRequest { secret: presented })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(unknown.api_key, None);
    }

    let revoked = sources
        .revoke_api_key(proto::RevokeApiKeyRequest { id: key.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoked_at_unix > 0);
    let after = sources
        .authenticate_api_key(proto::AuthenticateApiKeyRequest {
            secret: secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.api_key, None);

    let missing = sources
        .revoke_api_key(proto::RevokeApiKeyRequest {
            id: "key_000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of_status(&missing), ErrorCode::ApiKeyNotFound);
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let bad = sources
        .create_api_key(proto::CreateApiKeyRequest {
            name: "both".into(),
            operations: vec!["render".into()],
            all_sources: true,
            source_ids: vec!["src_a".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(ErrorCode::of_status(&bad), ErrorCode::InvalidArgument);
    assert!(
        bad.message().starts_with("source_ids: "),
        "{}",
        bad.message()
    );
    let bad = sources
        .create_api_key(proto::CreateApiKeyRequest {
            name: "purger".into(),
            operations: vec!["purge".into()],
            all_sources: true,
            source_ids: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        bad.message().starts_with("operations: "),
        "{}",
        bad.message()
    );

    server.shutdown().await;
}

/// The admin token and audit RPCs over the wire: create shows the token
/// once and records the change under the named actor (or `cli` without
/// one), authenticate finds a live token and not a revoked one, a scope
/// must be given, and the audit log lists recorded changes newest first,
/// filtered by Source.
#[tokio::test]
async fn admin_token_and_audit_rpcs_over_grpc() {
    let server = TestServer::start().await;
    let mut registry = SourceRegistryServiceClient::new(server.channel().await);

    let created = registry
        .create_admin_token(proto::CreateAdminTokenRequest {
            name: "shop team".into(),
            scope: proto::AdminScope::SourceAdmin.into(),
            source_ids: vec!["src_a".into()],
            expires_at_unix: 0,
            actor: "bootstrap".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let secret = created.secret.clone();
    assert!(secret.starts_with("imat_") && secret.len() == 69);
    let token = created.admin_token.unwrap();
    assert_eq!(token.scope(), proto::AdminScope::SourceAdmin);
    let listed = registry
        .list_admin_tokens(proto::ListAdminTokensRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.admin_tokens, vec![token.clone()]);
    let found = registry
        .authenticate_admin_token(proto::AuthenticateAdminTokenRequest {
            secret: secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.admin_token.as_ref(), Some(&token));

    let unscoped = registry
        .create_admin_token(proto::CreateAdminTokenRequest {
            name: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unscoped.code(), tonic::Code::InvalidArgument);
    registry
        .revoke_admin_token(proto::RevokeAdminTokenRequest {
            id: token.id.clone(),
            actor: String::new(),
        })
        .await
        .unwrap();
    let gone = registry
        .authenticate_admin_token(proto::AuthenticateAdminTokenRequest { secret })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.admin_token, None);

    registry
        .record_audit_event(proto::RecordAuditEventRequest {
            event: Some(proto::AuditEvent {
                credential: "shop team".into(),
                action: "source.update".into(),
                source_id: "src_a".into(),
                fields: vec!["default_params".into()],
                result: "ok".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let events = registry
        .list_audit_events(proto::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.credential.as_str(), e.action.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("shop team", "source.update", "ok"),
            ("cli", "admin_token.revoke", "ok"),
            ("cli", "admin_token.create", "INVALID_ARGUMENT"),
            ("bootstrap", "admin_token.create", "ok"),
        ]
    );
    assert_eq!(events[3].target_id, token.id);
    let only_a = registry
        .list_audit_events(proto::ListAuditEventsRequest {
            source_id: "src_a".into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(only_a.len(), 1);
    server.shutdown().await;
}
