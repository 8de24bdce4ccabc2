//! The public gRPC render API (`imgmesh.image.v1.ImageService`) through a
//! real mesh: a gateway with `--grpc-listen` on the mesh's registry,
//! renderer and Redis. Pixels of Render's output, byte-for-byte parity and
//! a shared cache entry with the HTTP gateway, a ~30 MB derivative streamed
//! in chunks, Describe's URL served over HTTP, each refusal with its
//! `ErrorInfo` reason, and the API-key matrix (keys made in the registry).
//! RenderSet's derivatives from one S3 read and one decode, sharing cache
//! entries with Render and HTTP; RenderBytes on a streamed original, its
//! refusals, and nothing cached. Server reflection on every listener. A
//! Python client generated from the protos renders through the API, and so
//! does the Rust client crate (`imgmesh-client`) with its srcset helper.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::process::ChildProcess;
use imgmesh_integration_tests::{BASE_DOMAIN, HttpResponse, Mesh, MeshOptions, S3_SECRET_KEY};
use imgmesh_proto::image::v1::image_service_client::ImageServiceClient;
use imgmesh_proto::image::v1::{
    CacheStatus, DescribeRequest, DescribeResponse, ImageTarget, RenderBytesParams,
    RenderBytesRequest, RenderMetadata, RenderRequest, RenderSetRequest, image_target,
    render_bytes_request, render_bytes_response, render_response, render_set_response,
};
use imgmesh_proto::registry::v1 as registry;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds `authorization: Bearer <key>` to every call (nothing when `None`).
#[derive(Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client of the API presenting one key (or none).
type Client = ImageServiceClient<InterceptedService<Channel, Bearer>>;

/// A client of the API at `grpc` presenting `key`.
async fn client_with_key(grpc: SocketAddr, key: Option<&str>) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .expect("client connects");
    let bearer = key.map(|key| format!("Bearer {key}").parse().expect("ascii key"));
    ImageServiceClient::with_interceptor(channel, Bearer(bearer))
}

/// Creates an API key in the mesh's registry for `operations` on
/// `sources` (every Source when empty); returns its id and secret.
async fn create_key(mesh: &Mesh, operations: &[&str], sources: &[&str]) -> (String, String) {
    let mut keys =
        SourceRegistryServiceClient::new(mesh.grpc_channel(&mesh.registry_url, "cli").unwrap());
    let created = keys
        .create_api_key(registry::CreateApiKeyRequest {
            name: "render_api test".to_owned(),
            operations: operations.iter().map(|op| (*op).to_owned()).collect(),
            all_sources: sources.is_empty(),
            source_ids: sources.iter().map(|id| (*id).to_owned()).collect(),
        })
        .await
        .expect("key is created")
        .into_inner();
    (created.api_key.expect("a key").id, created.secret)
}

/// Revokes key `id` in the mesh's registry.
async fn revoke_key(mesh: &Mesh, id: &str) {
    let mut keys =
        SourceRegistryServiceClient::new(mesh.grpc_channel(&mesh.registry_url, "cli").unwrap());
    keys.revoke_api_key(registry::RevokeApiKeyRequest { id: id.to_owned() })
        .await
        .expect("key is revoked");
}

/// The id of Source `name`.
async fn source_id(mesh: &Mesh, name: &str) -> String {
    mesh.cli_json(&["sources", "get", name]).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The largest chunk the API promises (1 MiB).
const MAX_CHUNK: usize = 1024 * 1024;

/// A mesh with Source `demo` holding a quadrants PNG, plus a gateway
/// serving the gRPC API (and HTTP, with `X-Imgmesh-Cache`) on the mesh's
/// Redis; returns the gateway, its HTTP address and a client presenting a
/// key for every operation on every Source.
async fn api_mesh() -> (Mesh, ChildProcess, SocketAddr, Client) {
    let (mesh, gateway, http, _grpc, client) = api_mesh_at().await;
    (mesh, gateway, http, client)
}

/// [`api_mesh`], with the gRPC listener's address too.
async fn api_mesh_at() -> (Mesh, ChildProcess, SocketAddr, SocketAddr, Client) {
    api_mesh_with(MeshOptions::default()).await
}

/// [`api_mesh_at`] on a mesh started with `options`.
async fn api_mesh_with(
    options: MeshOptions,
) -> (Mesh, ChildProcess, SocketAddr, SocketAddr, Client) {
    let mesh = Mesh::start(options).await.expect("mesh starts");
    mesh.put_object("quadrants.png", &fixtures::quadrants_png(200, 100).unwrap())
        .unwrap();
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let redis = format!("--redis-url={}", mesh.redis_url);
    let (mut gateway, http, _admin) = mesh
        .spawn_gateway(
            &mesh.renderer_url,
            &[
                "--grpc-listen=127.0.0.1:0",
                &redis,
                "--redis-timeout-ms=250",
                "--source-cache-ttl-ms=200",
            ],
        )
        .await
        .expect("gateway starts");
    let grpc = gateway.listening("grpc").await.expect("grpc listener");
    let (_, key) = create_key(&mesh, &["render", "describe"], &[]).await;
    let client = client_with_key(grpc, Some(&key)).await;
    (mesh, gateway, http, grpc, client)
}

/// A target on Source `subdomain`.
fn target(subdomain: &str, path: &str, params: &str) -> ImageTarget {
    ImageTarget {
        source: Some(image_target::Source::Subdomain(subdomain.to_owned())),
        path: path.to_owned(),
        params: params.to_owned(),
        accept: String::new(),
    }
}

/// Renders `target`: the metadata and the chunks' bytes, asserting the
/// stream's shape (metadata first, then chunks of at most 1 MiB).
async fn render(
    client: &mut Client,
    target: ImageTarget,
) -> Result<(RenderMetadata, Vec<u8>, usize), tonic::Status> {
    let mut stream = client
        .render(RenderRequest {
            target: Some(target),
        })
        .await?
        .into_inner();
    let first = stream.message().await?.expect("a first message");
    let Some(render_response::Part::Metadata(metadata)) = first.part else {
        panic!("the first message is not metadata: {first:?}");
    };
    let (mut bytes, mut chunks) = (Vec::new(), 0);
    while let Some(message) = stream.message().await? {
        let Some(render_response::Part::Chunk(chunk)) = message.part else {
            panic!("a later message is not a chunk");
        };
        assert!(
            !chunk.is_empty() && chunk.len() <= MAX_CHUNK,
            "chunk of {}",
            chunk.len()
        );
        bytes.extend_from_slice(&chunk);
        chunks += 1;
    }
    Ok((metadata, bytes, chunks))
}

async fn describe(
    client: &mut Client,
    target: ImageTarget,
) -> Result<DescribeResponse, tonic::Status> {
    Ok(client
        .describe(DescribeRequest {
            target: Some(target),
        })
        .await?
        .into_inner())
}

/// `GET path_and_query` on the API gateway's HTTP listener for `subdomain`.
async fn http_get(http: SocketAddr, subdomain: &str, path_and_query: &str) -> HttpResponse {
    imgmesh_integration_tests::get(
        http,
        &format!("{subdomain}.{BASE_DOMAIN}"),
        path_and_query,
        &[],
    )
    .await
    .expect("GET answers")
}

/// `google.rpc.Status`, as gRPC carries it in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.ErrorInfo` (its metadata map left out).
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
}

/// The `ErrorInfo` reason and domain of `status`.
fn reason(status: &tonic::Status) -> (String, String) {
    use prost::Message as _;
    let details = RpcStatus::decode(status.details()).expect("status details decode");
    let info = details
        .details
        .iter()
        .find(|any| any.type_url == "type.googleapis.com/google.rpc.ErrorInfo")
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    let info = ErrorInfo::decode(info.value.as_slice()).expect("ErrorInfo decodes");
    (info.reason, info.domain)
}

#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert!(
        actual
            .iter()
            .zip(expected)
            .all(|(a, e)| (a - e).abs() <= 8.0),
        "{what}: {actual:?} vs {expected:?}"
    );
}

/// Render's pixels are right, and Render and GET give byte-identical derivatives with one ETag from one cache entry, whichever asks first.
#[tokio::test]
async fn render_matches_http_and_shares_its_cache_entry() {
    let (_mesh, _gateway, http, mut client) = api_mesh().await;

    // gRPC first: rendered (a miss), then GET is a hit on the same entry.
    let (metadata, grpc_bytes, _) =
        render(&mut client, target("demo", "quadrants.png", "w=100&fm=png"))
            .await
            .expect("render succeeds");
    fixtures::expect_image(&grpc_bytes, Format::Png, 100, 50).unwrap();
    assert_close(
        &fixtures::pixel(&grpc_bytes, 10, 10).unwrap(),
        &[255.0, 0.0, 0.0],
        "top left red",
    );
    assert_close(
        &fixtures::pixel(&grpc_bytes, 90, 40).unwrap(),
        &[255.0, 255.0, 255.0],
        "bottom right white",
    );
    assert_eq!(metadata.content_type, "image/png");
    assert_eq!(metadata.size, grpc_bytes.len() as u64);
    assert_eq!((metadata.width, metadata.height), (100, 50));
    assert_eq!(metadata.cache_status(), CacheStatus::Miss);
    assert!(metadata.max_age_seconds > 0, "{metadata:?}");
    let got = http_get(http, "demo", "/quadrants.png?w=100&fm=png").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.headers["x-imgmesh-cache"], "hit");
    assert_eq!(got.headers["etag"], metadata.etag);
    assert!(
        got.body.as_ref() == grpc_bytes.as_slice(),
        "the bytes differ"
    );

    // HTTP first: rendered, then Render is a hit on the same entry.
    let got = http_get(http, "demo", "/quadrants.png?w=60&fm=webp").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.headers["x-imgmesh-cache"], "miss");
    let (metadata, grpc_bytes, _) =
        render(&mut client, target("demo", "quadrants.png", "w=60&fm=webp"))
            .await
            .expect("render succeeds");
    fixtures::expect_image(&grpc_bytes, Format::Webp, 60, 30).unwrap();
    assert_eq!(metadata.cache_status(), CacheStatus::Hit);
    assert_eq!(got.headers["etag"], metadata.etag);
    assert!(
        got.body.as_ref() == grpc_bytes.as_slice(),
        "the bytes differ"
    );
}

/// A ~30 MB PNG streams as a metadata message and 1 MiB chunks and arrives whole and decodable.
#[tokio::test]
async fn large_output_streams_in_chunks() {
    let (mesh, _gateway, _http, mut client) = api_mesh().await;
    let (width, height) = (3200, 3200);
    mesh.put_object("noise.jpg", &fixtures::noise_jpeg(width, height).unwrap())
        .unwrap();
    let (metadata, bytes, chunks) =
        render(&mut client, target("demo", "noise.jpg", "fm=png&w=3200"))
            .await
            .expect("render succeeds");
    assert!(bytes.len() > 25 * 1024 * 1024, "only {} bytes", bytes.len());
    assert_eq!(metadata.size, bytes.len() as u64);
    assert_eq!(chunks, bytes.len().div_ceil(MAX_CHUNK));
    fixtures::expect_image(&bytes, Format::Png, width, height).unwrap();
}

/// Describe names the Source, the canonical plan and cache key, and a public URL that the HTTP gateway serves with Render's bytes.
#[tokio::test]
async fn describe_gives_a_url_http_serves() {
    let (_mesh, _gateway, http, mut client) = api_mesh().await;
    let described = describe(&mut client, target("demo", "quadrants.png", "w=80&fm=jpg"))
        .await
        .expect("describe succeeds");
    assert!(described.source_id.starts_with("src_"), "{described:?}");
    let plan = described.plan.as_ref().expect("a plan");
    assert_eq!(plan.width, 80);
    assert!(
        described.cache_key.starts_with("imgmesh:{"),
        "{described:?}"
    );
    let host_and_path = described
        .public_url
        .strip_prefix("https://")
        .expect("an https URL");
    let (host, path_and_query) = host_and_path.split_at(host_and_path.find('/').unwrap());
    assert_eq!(host, format!("demo.{BASE_DOMAIN}"));
    assert_eq!(path_and_query, "/quadrants.png?w=80&fm=jpg");
    let got = http_get(http, "demo", path_and_query).await;
    assert_eq!(got.status, 200, "{}", got.text());
    fixtures::expect_image(&got.body, Format::Jpeg, 80, 40).unwrap();
    let (_, grpc_bytes, _) = render(&mut client, target("demo", "quadrants.png", "w=80&fm=jpg"))
        .await
        .unwrap();
    assert!(
        got.body.as_ref() == grpc_bytes.as_slice(),
        "the bytes differ"
    );

    // Named by id or by name, the same Source answers the same.
    let by_id = ImageTarget {
        source: Some(image_target::Source::SourceId(described.source_id.clone())),
        ..target("", "quadrants.png", "w=80&fm=jpg")
    };
    let by_name = ImageTarget {
        source: Some(image_target::Source::SourceName("demo".to_owned())),
        ..target("", "quadrants.png", "w=80&fm=jpg")
    };
    for named in [by_id, by_name] {
        assert_eq!(
            describe(&mut client, named.clone()).await.unwrap(),
            described
        );
        let (_, bytes, _) = render(&mut client, named).await.unwrap();
        assert!(bytes == grpc_bytes, "the bytes differ");
    }
}

/// Describe's output size and content type, read from the original's header, are those Render returns for the same request, with a positive memory estimate, and describing renders nothing (no decode, nothing cached).
#[tokio::test]
async fn describe_measures_what_render_returns() {
    let (mesh, _gateway, _http, mut client) = api_mesh().await;
    let queries = [
        "w=80&fm=jpg",
        "w=300",
        "h=30&fm=webp",
        "fit=crop&w=50&h=50&fm=png",
        "fit=fill&w=120&h=120&bg=fff&fm=png",
        "w=60&h=60&fit=max&pad=4&fm=png",
        "rect=0,0,100,100&w=40&fm=png",
    ];
    for query in queries {
        let decodes = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await;
        let described = describe(&mut client, target("demo", "quadrants.png", query))
            .await
            .unwrap_or_else(|status| panic!("{query}: {status:?}"));
        let decoded = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await - decodes;
        assert_eq!(decoded, 0.0, "{query}: describe decodes nothing");
        assert!(
            described.estimated_decoded_bytes > 0,
            "{query}: {described:?}"
        );
        let (metadata, bytes, _) = render(&mut client, target("demo", "quadrants.png", query))
            .await
            .unwrap_or_else(|status| panic!("{query}: {status:?}"));
        assert_eq!(
            metadata.cache_status(),
            CacheStatus::Miss,
            "{query}: describe cached nothing"
        );
        assert_eq!(
            (
                described.width,
                described.height,
                described.content_type.as_str()
            ),
            (
                metadata.width,
                metadata.height,
                metadata.content_type.as_str()
            ),
            "{query}"
        );
        let format = match metadata.content_type.as_str() {
            "image/jpeg" => Format::Jpeg,
            "image/webp" => Format::Webp,
            _ => Format::Png,
        };
        fixtures::expect_image(
            &bytes,
            format,
            described.width as i32,
            described.height as i32,
        )
        .unwrap_or_else(|error| panic!("{query}: {error}"));
    }
}

/// Unknown Sources, bad parameters, missing objects and disabled Sources are refused with their catalogue reason and gRPC code, even to a key for every Source.
#[tokio::test]
async fn refusals_carry_their_reason() {
    let (mesh, _gateway, _http, mut client) = api_mesh().await;
    let unknown_id = ImageTarget {
        source: Some(image_target::Source::SourceId(
            "src_000000000000".to_owned(),
        )),
        ..target("", "quadrants.png", "")
    };
    let demo_by_name_as_id = ImageTarget {
        source: Some(image_target::Source::SourceId("demo".to_owned())),
        ..target("", "quadrants.png", "")
    };
    let no_source = ImageTarget {
        source: None,
        ..target("", "quadrants.png", "")
    };
    let cases = [
        (
            target("nosuch", "quadrants.png", "w=10"),
            tonic::Code::NotFound,
            "SOURCE_NOT_FOUND",
        ),
        (unknown_id, tonic::Code::NotFound, "SOURCE_NOT_FOUND"),
        (
            demo_by_name_as_id,
            tonic::Code::NotFound,
            "SOURCE_NOT_FOUND",
        ),
        (
            target("demo", "quadrants.png", "txt64=@@@"),
            tonic::Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            target("demo", "../etc/passwd", ""),
            tonic::Code::NotFound,
            "OBJECT_NOT_FOUND",
        ),
        (
            target("demo", "missing.png", "w=10"),
            tonic::Code::NotFound,
            "OBJECT_NOT_FOUND",
        ),
        (no_source, tonic::Code::InvalidArgument, "INVALID_ARGUMENT"),
    ];
    for (case, code, expected) in cases {
        let what = format!("{case:?}");
        let refused = render(&mut client, case.clone()).await.expect_err(&what);
        assert_eq!(refused.code(), code, "{what}: {refused:?}");
        assert_eq!(
            reason(&refused),
            (expected.to_owned(), "imgmesh.dev".to_owned()),
            "{what}"
        );
        // Describe reads the original's header, so it meets the same refusals.
        let refused = describe(&mut client, case).await.expect_err(&what);
        assert_eq!(reason(&refused).0, expected, "{what}");
    }

    // Disabled, the Source refuses (once the gateway's 200 ms source cache lets go).
    let id = source_id(&mesh, "demo").await;
    let disabled = mesh
        .admin(
            "PATCH",
            &format!("/v1/sources/{id}"),
            Some(&serde_json::json!({"enabled": false})),
        )
        .await
        .unwrap();
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match render(&mut client, target("demo", "quadrants.png", "w=10")).await {
            Err(status) => break status,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => panic!("a disabled source still renders"),
        }
    };
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert_eq!(reason(&refused).0, "SOURCE_DISABLED");
}

/// The API-key matrix: no key, a malformed, unknown or revoked key are
/// UNAUTHENTICATED (API_KEY_INVALID); a key for another Source or without
/// the operation is PERMISSION_DENIED (API_KEY_FORBIDDEN); a key scoped to
/// the Source renders, on a Source that requires signed URLs too, where
/// Describe hands out a signed URL the HTTP gateway serves.
#[tokio::test]
async fn api_keys_decide_who_is_served() {
    let (mesh, _gateway, http, grpc, _client) = api_mesh_at().await;
    mesh.create_source("vault", S3_SECRET_KEY, &["--secure-urls=on"])
        .await
        .expect("signed source is created");
    let (demo, vault) = (
        source_id(&mesh, "demo").await,
        source_id(&mesh, "vault").await,
    );
    let (_, demo_key) = create_key(&mesh, &["render", "describe"], &[&demo]).await;
    let (_, vault_key) = create_key(&mesh, &["render", "describe"], &[&vault]).await;
    let (_, describe_only) = create_key(&mesh, &["describe"], &[&demo]).await;
    let (revoked_id, revoked) = create_key(&mesh, &["render"], &[]).await;
    revoke_key(&mesh, &revoked_id).await;
    let unknown = format!("imk_{}", "0".repeat(64));

    let demo_target = target("demo", "quadrants.png", "w=20&fm=png");
    let cases: [(Option<&str>, tonic::Code, &str); 6] = [
        (None, tonic::Code::Unauthenticated, "API_KEY_INVALID"),
        (
            Some("not-a-key"),
            tonic::Code::Unauthenticated,
            "API_KEY_INVALID",
        ),
        (
            Some(&unknown),
            tonic::Code::Unauthenticated,
            "API_KEY_INVALID",
        ),
        (
            Some(&revoked),
            tonic::Code::Unauthenticated,
            "API_KEY_INVALID",
        ),
        (
            Some(&vault_key),
            tonic::Code::PermissionDenied,
            "API_KEY_FORBIDDEN",
        ),
        (
            Some(&describe_only),
            tonic::Code::PermissionDenied,
            "API_KEY_FORBIDDEN",
        ),
    ];
    for (index, (key, code, expected)) in cases.into_iter().enumerate() {
        let mut client = client_with_key(grpc, key).await;
        let refused = render(&mut client, demo_target.clone())
            .await
            .expect_err(&format!("case {index} renders"));
        assert_eq!(refused.code(), code, "case {index}: {refused:?}");
        assert_eq!(
            reason(&refused),
            (expected.to_owned(), "imgmesh.dev".to_owned()),
            "case {index}"
        );
        for secret in [&demo_key, &vault_key, &describe_only, &revoked, &unknown] {
            assert!(
                !refused.message().contains(secret.as_str()),
                "case {index}: the message shows a key"
            );
        }
    }

    // The describe-only key describes; the demo key renders.
    let mut describer = client_with_key(grpc, Some(&describe_only)).await;
    describe(&mut describer, demo_target.clone())
        .await
        .expect("a describe key describes");
    let mut good = client_with_key(grpc, Some(&demo_key)).await;
    let (metadata, bytes, _) = render(&mut good, demo_target)
        .await
        .expect("the key renders");
    assert_eq!((metadata.width, metadata.height), (20, 10));
    fixtures::expect_image(&bytes, Format::Png, 20, 10).unwrap();

    // A signed Source renders with a key for it, and Describe's URL is signed.
    let mut signed = client_with_key(grpc, Some(&vault_key)).await;
    let vault_target = target("vault", "quadrants.png", "w=30&fm=png");
    let (metadata, _, _) = render(&mut signed, vault_target.clone())
        .await
        .expect("a key for the signed source renders");
    assert_eq!((metadata.width, metadata.height), (30, 15));
    let (token, _) = imgmesh_integration_tests::admin::rotate(&mesh, &vault, 0).await;
    // Describe signs once the gateway's 200 ms source cache sees the token.
    let deadline = Instant::now() + Duration::from_secs(20);
    let described = loop {
        match describe(&mut signed, vault_target.clone()).await {
            Ok(described) => break described,
            Err(status) if Instant::now() < deadline => {
                assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("describe never signs: {status:?}"),
        }
    };
    assert!(
        !described.public_url.contains(&token),
        "the url shows the token"
    );
    let prefix = format!("https://vault.{BASE_DOMAIN}");
    let path_and_query = described
        .public_url
        .strip_prefix(&prefix)
        .expect("a url on the vault host");
    assert!(path_and_query.contains("&s="), "{path_and_query}");
    let served = http_get(http, "vault", path_and_query).await;
    assert_eq!(served.status, 200, "the signed url is refused over http");
    let unsigned = http_get(http, "vault", "/quadrants.png?w=30&fm=png").await;
    assert_eq!(unsigned.status, 403, "an unsigned url is served");
}

/// Keys made through the admin API: POST shows the key once and it
/// renders, GET lists it without the key, DELETE revokes it and the API
/// refuses it within the gateway's 5 s key cache; an unknown id is 404
/// API_KEY_NOT_FOUND and a bad operation 400 naming the field.
#[tokio::test]
async fn admin_api_manages_keys() {
    use imgmesh_integration_tests::admin::json_of;

    let (mesh, _gateway, _http, grpc, _client) = api_mesh_at().await;
    let demo = source_id(&mesh, "demo").await;
    let created = mesh
        .admin(
            "POST",
            "/v1/api-keys",
            Some(&serde_json::json!({"name": "thumbnailer", "operations": ["render"], "source_ids": [demo]})),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let created = json_of(&created);
    let key = created["key"].as_str().expect("the key, once").to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("imk_") && key.len() == 68,
        "not an imgmesh key"
    );
    assert_eq!(created["all_sources"], false);
    assert_eq!(created["source_ids"], serde_json::json!([demo]));

    let listed = mesh.admin("GET", "/v1/api-keys", None).await.unwrap();
    assert_eq!(listed.status, 200);
    assert!(!listed.text().contains(&key[4..]), "the list shows the key");
    let listed = json_of(&listed);
    let entry = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == id.as_str())
        .expect("the new key is listed");
    assert_eq!(entry["name"], "thumbnailer");
    assert_eq!(entry["revoked_at"], serde_json::Value::Null);

    let mut client = client_with_key(grpc, Some(&key)).await;
    render(&mut client, target("demo", "quadrants.png", "w=10&fm=png"))
        .await
        .expect("the admin-made key renders");
    let denied = describe(&mut client, target("demo", "quadrants.png", "w=10"))
        .await
        .expect_err("a render-only key describes");
    assert_eq!(reason(&denied).0, "API_KEY_FORBIDDEN");

    let revoked = mesh
        .admin("DELETE", &format!("/v1/api-keys/{id}"), None)
        .await
        .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(json_of(&revoked)["revoked_at"].as_i64().unwrap() > 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let refused = loop {
        match render(&mut client, target("demo", "quadrants.png", "w=10&fm=png")).await {
            Err(status) => break status,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => panic!("a revoked key still renders after the cache's 5 s"),
        }
    };
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(reason(&refused).0, "API_KEY_INVALID");

    let missing = mesh
        .admin("DELETE", "/v1/api-keys/key_000000000000", None)
        .await
        .unwrap();
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(json_of(&missing)["error"]["code"], "API_KEY_NOT_FOUND");
    let bad = mesh
        .admin(
            "POST",
            "/v1/api-keys",
            Some(&serde_json::json!({"name": "x", "operations": ["purge"]})),
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(json_of(&bad)["error"]["field"], "operations");
}

/// Keys made with `imgmesh keys`: create prints the key once and it renders
/// only on its Source, list shows it without the key, revoke stops it
/// within the gateway's 5 s key cache.
#[tokio::test]
async fn cli_manages_keys() {
    let (mesh, _gateway, _http, grpc, _client) = api_mesh_at().await;
    let demo = source_id(&mesh, "demo").await;
    let created = mesh
        .cli_json(&[
            "keys",
            "create",
            "--name=mailer",
            "--operations=render,describe",
            &format!("--source={demo}"),
        ])
        .await
        .unwrap();
    let key = created["key"].as_str().expect("the key, once").to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["operations"],
        serde_json::json!(["describe", "render"])
    );
    assert_eq!(created["source_ids"], serde_json::json!([demo]));

    let listed = mesh.cli_json(&["keys", "list"]).await.unwrap();
    assert!(
        !listed.to_string().contains(&key[4..]),
        "the list shows the key"
    );
    assert!(
        listed["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["id"] == id.as_str() && entry["name"] == "mailer"),
        "{listed}"
    );

    let mut client = client_with_key(grpc, Some(&key)).await;
    let (metadata, _, _) = render(&mut client, target("demo", "quadrants.png", "w=40&fm=png"))
        .await
        .expect("the cli-made key renders");
    assert_eq!((metadata.width, metadata.height), (40, 20));

    let revoked = mesh.cli_json(&["keys", "revoke", &id]).await.unwrap();
    assert!(revoked["revoked_at"].as_i64().unwrap() > 0, "{revoked}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let refused = loop {
        match render(&mut client, target("demo", "quadrants.png", "w=40&fm=png")).await {
            Err(status) => break status,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => panic!("a revoked key still renders after the cache's 5 s"),
        }
    };
    assert_eq!(reason(&refused).0, "API_KEY_INVALID");
}

/// The API's listener answers `grpc.health.v1` for the whole server and for `imgmesh.image.v1.ImageService`, and nothing else.
#[tokio::test]
async fn api_listener_serves_health() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let (_mesh, _gateway, _http, grpc, _client) = api_mesh_at().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "imgmesh.image.v1.ImageService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("{service:?}: {status:?}"))
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "imgmesh.renderer.v1.RendererService".to_owned(),
        })
        .await
        .expect_err("the renderer's service is not served here");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

/// The derivatives of a RenderSet call, by variant: each one's metadata
/// and bytes, asserting the stream's shape (per variant, in order, its
/// metadata then chunks of at most 1 MiB).
async fn render_set(
    client: &mut Client,
    target: ImageTarget,
    variants: &[&str],
) -> Result<Vec<(RenderMetadata, Vec<u8>)>, tonic::Status> {
    let mut stream = client
        .render_set(RenderSetRequest {
            target: Some(target),
            variants: variants.iter().map(|v| (*v).to_owned()).collect(),
        })
        .await?
        .into_inner();
    let mut derivatives: Vec<(RenderMetadata, Vec<u8>)> = Vec::new();
    while let Some(message) = stream.message().await? {
        match message.part.expect("a part") {
            render_set_response::Part::Metadata(metadata) => {
                assert_eq!(message.index as usize, derivatives.len(), "in order");
                derivatives.push((metadata, Vec::new()));
            }
            render_set_response::Part::Chunk(chunk) => {
                assert_eq!(
                    message.index as usize + 1,
                    derivatives.len(),
                    "after its metadata"
                );
                assert!(!chunk.is_empty() && chunk.len() <= MAX_CHUNK);
                derivatives.last_mut().unwrap().1.extend_from_slice(&chunk);
            }
        }
    }
    Ok(derivatives)
}

/// Streams `original` in 64 KiB chunks after `params` and collects the
/// derivative's metadata and bytes.
async fn render_bytes(
    client: &mut Client,
    params: &str,
    original: Vec<u8>,
) -> Result<(RenderMetadata, Vec<u8>), tonic::Status> {
    let first = RenderBytesRequest {
        part: Some(render_bytes_request::Part::Params(RenderBytesParams {
            params: params.to_owned(),
            accept: String::new(),
        })),
    };
    let chunks: Vec<RenderBytesRequest> = original
        .chunks(64 * 1024)
        .map(|chunk| RenderBytesRequest {
            part: Some(render_bytes_request::Part::Chunk(chunk.to_vec().into())),
        })
        .collect();
    let messages = tokio_stream::iter(std::iter::once(first).chain(chunks));
    let mut stream = client.render_bytes(messages).await?.into_inner();
    let first = stream.message().await?.expect("a first message");
    let Some(render_bytes_response::Part::Metadata(metadata)) = first.part else {
        panic!("the first message is not metadata: {first:?}");
    };
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        let Some(render_bytes_response::Part::Chunk(chunk)) = message.part else {
            panic!("a later message is not a chunk");
        };
        bytes.extend_from_slice(&chunk);
    }
    Ok((metadata, bytes))
}

/// A counter of `service` on the mesh.
async fn counter(mesh: &Mesh, service: &str, name: &str) -> f64 {
    mesh.metric(service, name, "")
        .await
        .expect("metric is exported")
}

/// RenderSet of eight widths reads the original from S3 once and decodes it once, and returns eight right images (sizes, formats, colours); a second set is all hits, and each derivative is the entry Render and HTTP serve.
#[tokio::test]
async fn render_set_fetches_and_decodes_once() {
    let (mesh, _gateway, http, mut client) = api_mesh().await;
    mesh.put_object("wide.png", &fixtures::quadrants_png(800, 400).unwrap())
        .unwrap();
    let variants = [
        "w=100",
        "w=200",
        "w=300",
        "w=400",
        "w=500",
        "w=600",
        "w=700",
        "w=800&fm=webp",
    ];
    let gets = counter(&mesh, "fetcher", "imgmesh_s3_requests_total").await;
    let decodes = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await;

    let set = render_set(&mut client, target("demo", "wide.png", "fm=png"), &variants)
        .await
        .expect("render set succeeds");

    let s3_reads = counter(&mesh, "fetcher", "imgmesh_s3_requests_total").await - gets;
    let decoded = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await - decodes;
    assert_eq!((s3_reads, decoded), (1.0, 1.0), "one S3 read, one decode");
    assert_eq!(set.len(), 8);
    for (i, (metadata, bytes)) in set.iter().enumerate() {
        let width = 100 * (i as i32 + 1);
        let (format, content_type) = if i == 7 {
            (Format::Webp, "image/webp")
        } else {
            (Format::Png, "image/png")
        };
        fixtures::expect_image(bytes, format, width, width / 2).unwrap();
        assert_eq!(metadata.content_type, content_type);
        assert_eq!(
            (metadata.width as i32, metadata.height as i32),
            (width, width / 2)
        );
        assert_eq!(metadata.size, bytes.len() as u64);
        assert_eq!(metadata.cache_status(), CacheStatus::Miss);
        let (x, y) = (width / 10, width / 20);
        assert_close(
            &fixtures::pixel(bytes, x, y).unwrap(),
            &[255.0, 0.0, 0.0],
            &format!("w={width} top left red"),
        );
        assert_close(
            &fixtures::pixel(bytes, width - x, width / 2 - y).unwrap(),
            &[255.0, 255.0, 255.0],
            &format!("w={width} bottom right white"),
        );
    }

    // The same set again: every derivative from the cache, nothing decoded.
    let again = render_set(&mut client, target("demo", "wide.png", "fm=png"), &variants)
        .await
        .expect("render set succeeds");
    assert!(
        again
            .iter()
            .all(|(metadata, _)| metadata.cache_status() == CacheStatus::Hit)
    );
    let decoded = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await - decodes;
    assert_eq!(decoded, 1.0, "hits decode nothing");
    // Render and HTTP answer the set's entries: same bytes, same ETag.
    let (metadata, bytes, _) = render(&mut client, target("demo", "wide.png", "w=300&fm=png"))
        .await
        .expect("render succeeds");
    assert_eq!(metadata.cache_status(), CacheStatus::Hit);
    assert_eq!(metadata.etag, set[2].0.etag);
    assert!(bytes == set[2].1, "Render serves the set's bytes");
    let got = http_get(http, "demo", "/wide.png?fm=webp&w=800").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.headers["x-imgmesh-cache"], "hit");
    assert_eq!(got.headers["etag"], set[7].0.etag);
}

/// RenderSet refuses no variants, too many, a bad parameter value and a missing object, each with its reason, and a key without `render`.
#[tokio::test]
async fn render_set_refusals_carry_their_reason() {
    let (mesh, _gateway, _http, grpc, mut client) = api_mesh_at().await;
    let many = vec!["w=10"; 17];
    for variants in [&[][..], &many[..], &["w=10", "txt64=@@@"][..]] {
        let refused = render_set(&mut client, target("demo", "quadrants.png", ""), variants)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert_eq!(reason(&refused).0, "INVALID_ARGUMENT");
    }
    let refused = render_set(&mut client, target("demo", "missing.png", ""), &["w=10"])
        .await
        .expect_err("refused");
    assert_eq!(reason(&refused).0, "OBJECT_NOT_FOUND");
    let (_, describe_only) = create_key(&mesh, &["describe"], &[]).await;
    let mut describer = client_with_key(grpc, Some(&describe_only)).await;
    let refused = render_set(
        &mut describer,
        target("demo", "quadrants.png", ""),
        &["w=10"],
    )
    .await
    .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(reason(&refused).0, "API_KEY_FORBIDDEN");
}

/// RenderBytes renders a streamed original with pixel-right output and caches nothing; an over-limit stream, non-image bytes, a bad parameter, a missing params message and a key scoped to one Source are refused with their reasons.
#[tokio::test]
async fn render_bytes_renders_a_streamed_original() {
    let options = MeshOptions {
        renderer_args: vec!["--max-object-bytes=300000".to_owned()],
        ..MeshOptions::default()
    };
    let (mesh, _gateway, _http, grpc, mut client) = api_mesh_with(options).await;
    let keys_before = mesh.redis_dbsize().await.unwrap();
    let original = fixtures::quadrants_png(200, 100).unwrap();
    let (metadata, bytes) = render_bytes(&mut client, "w=50&fm=webp", original.clone())
        .await
        .expect("render bytes succeeds");
    fixtures::expect_image(&bytes, Format::Webp, 50, 25).unwrap();
    assert_close(
        &fixtures::pixel(&bytes, 5, 5).unwrap(),
        &[255.0, 0.0, 0.0],
        "top left red",
    );
    assert_eq!(metadata.content_type, "image/webp");
    assert_eq!((metadata.width, metadata.height), (50, 25));
    assert_eq!(metadata.size, bytes.len() as u64);
    assert_eq!(metadata.max_age_seconds, 0, "not cacheable");
    assert_eq!(
        mesh.redis_dbsize().await.unwrap(),
        keys_before,
        "nothing cached"
    );

    let too_large = fixtures::noise_jpeg(600, 600).unwrap();
    assert!(too_large.len() > 300_000, "{} bytes", too_large.len());
    let refused = render_bytes(&mut client, "w=50", too_large)
        .await
        .expect_err("over the limit");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(reason(&refused).0, "INPUT_TOO_LARGE");

    let text = b"this is not an image, just some words\n".repeat(100);
    let refused = render_bytes(&mut client, "w=50", text)
        .await
        .expect_err("not an image");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert_eq!(reason(&refused).0, "UNSUPPORTED_INPUT");

    let refused = render_bytes(&mut client, "txt64=@@@", original.clone())
        .await
        .expect_err("bad parameter");
    assert_eq!(reason(&refused).0, "INVALID_ARGUMENT");

    let chunk_first = RenderBytesRequest {
        part: Some(render_bytes_request::Part::Chunk(original.clone().into())),
    };
    let refused = client
        .render_bytes(tokio_stream::iter([chunk_first]))
        .await
        .expect_err("no params");
    assert_eq!(reason(&refused).0, "INVALID_ARGUMENT");

    let id = source_id(&mesh, "demo").await;
    let (_, scoped) = create_key(&mesh, &["render"], &[&id]).await;
    let mut scoped = client_with_key(grpc, Some(&scoped)).await;
    let refused = render_bytes(&mut scoped, "w=50", original)
        .await
        .expect_err("scoped key");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(reason(&refused).0, "API_KEY_FORBIDDEN");
    assert_eq!(
        mesh.redis_dbsize().await.unwrap(),
        keys_before,
        "nothing cached"
    );
}

/// Server reflection's (v1) answer to `request` at `url`.
async fn reflect(
    url: &str,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> tonic_reflection::pb::v1::server_reflection_response::MessageResponse {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;

    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .expect("reflection client connects");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap_or_else(|status| panic!("reflection at {url} answers: {status:?}"))
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    answer.message_response.expect("an answer")
}

/// The services listed by server reflection at `url`, sorted.
async fn reflected_services(url: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let answer = reflect(url, MessageRequest::ListServices(String::new())).await;
    let MessageResponse::ListServicesResponse(list) = answer else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

/// The files server reflection at `url` serves for `symbol`, decoded.
async fn reflected_files(url: &str, symbol: &str) -> Vec<prost_types_file::FileDescriptor> {
    use prost::Message as _;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let answer = reflect(url, MessageRequest::FileContainingSymbol(symbol.to_owned())).await;
    let MessageResponse::FileDescriptorResponse(files) = answer else {
        panic!("no file for {symbol}: {answer:?}");
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types_file::FileDescriptor::decode(bytes.as_slice()).unwrap())
        .collect()
}

/// The two fields of `google.protobuf.FileDescriptorProto` the test reads.
mod prost_types_file {
    /// A file's name and its services.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct FileDescriptor {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, repeated, tag = "6")]
        pub(super) service: Vec<Service>,
    }

    /// A service's name and its methods.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Service {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, repeated, tag = "2")]
        pub(super) method: Vec<Method>,
    }

    /// A method's name.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Method {
        #[prost(string, tag = "1")]
        pub(super) name: String,
    }
}

/// Server reflection on the gateway's public listener lists the ImageService, health and reflection, and hands out the ImageService's file with its four RPCs, so grpcurl needs no proto files. (Every listener serves reflection through `imgmesh_runtime::serve_grpc_over`; its unit test covers the internal services' lists.)
#[tokio::test]
async fn reflection_lists_the_public_api() {
    let (_mesh, _gateway, _http, grpc, _client) = api_mesh_at().await;
    let url = format!("http://{grpc}");
    assert_eq!(
        reflected_services(&url).await,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "imgmesh.image.v1.ImageService",
        ]
    );
    let files = reflected_files(&url, "imgmesh.image.v1.ImageService").await;
    let image = files
        .iter()
        .find(|file| file.name == "imgmesh/image/v1/image.proto")
        .expect("image.proto is served");
    let mut methods: Vec<&str> = image.service[0]
        .method
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    methods.sort_unstable();
    assert_eq!(methods, ["Describe", "Render", "RenderBytes", "RenderSet"]);
}

/// The Python client (integration-tests/clients/image_api_python.py), generated in the test from the repo's protos with grpcio-tools, renders an image with Render and a two-width srcset with RenderSet through the gateway's public API with an API key; the Rust side checks the pixels of what it wrote.
#[tokio::test]
async fn python_client_generated_from_the_protos_renders() {
    let (mesh, _gateway, _http, grpc, _client) = api_mesh_at().await;
    let (_, key) = create_key(&mesh, &["render"], &[]).await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the repository")
        .to_path_buf();
    let site = root.join("tools/python/grpc");
    assert!(
        site.join("grpc_tools").is_dir(),
        "grpcio-tools is not installed: `make test` installs it into tools/python/grpc"
    );
    let out = tempfile::tempdir().unwrap();
    let python = imgmesh_test_support::find_tool("python3").unwrap();
    let output = tokio::process::Command::new(python)
        .arg(root.join("integration-tests/clients/image_api_python.py"))
        .arg(root.join("proto"))
        .arg(out.path())
        .arg(grpc.to_string())
        .arg(&key)
        .args([
            "demo",
            "quadrants.png",
            "fm=png&w=100",
            "w=40",
            "w=80&fm=webp",
        ])
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let expected = [
        ("render", Format::Png, "image/png", 100),
        ("set-0", Format::Png, "image/png", 40),
        ("set-1", Format::Webp, "image/webp", 80),
    ];
    assert_eq!(lines.len(), expected.len(), "{stdout}");
    for (line, (name, format, content_type, width)) in lines.iter().zip(expected) {
        assert_eq!(line["name"], name, "{line}");
        assert_eq!(line["content_type"], content_type, "{line}");
        assert_eq!(line["cache_status"], "CACHE_STATUS_MISS", "{line}");
        assert_eq!(
            (line["width"].as_i64(), line["height"].as_i64()),
            (Some(width.into()), Some((width / 2).into()))
        );
        let bytes = std::fs::read(out.path().join(format!("{name}.bin"))).unwrap();
        assert_eq!(line["size"].as_u64(), Some(bytes.len() as u64), "{line}");
        fixtures::expect_image(&bytes, format, width, width / 2).unwrap();
        assert_close(
            &fixtures::pixel(&bytes, width / 10, width / 20).unwrap(),
            &[255.0, 0.0, 0.0],
            &format!("{name} top left red"),
        );
    }
}

/// The Rust client crate renders with typed parameters, builds a three-width srcset with one RenderSet (one decode on the renderer) whose images are right, writes its srcset attribute, and describes a target.
#[tokio::test]
async fn rust_client_renders_and_builds_a_srcset() {
    use imgmesh_client::{Fit, Format as Fm, ImageClient, Params, Source};

    let (mesh, _gateway, _http, grpc, _client) = api_mesh_at().await;
    let (_, key) = create_key(&mesh, &["render", "describe"], &[]).await;
    let mut client = ImageClient::connect(&format!("http://{grpc}"), &key)
        .await
        .expect("client connects");
    let target = imgmesh_client::Target::new(Source::Name("demo".into()), "quadrants.png")
        .with_params(Params::new().format(Fm::Png));

    let one = client
        .render(
            &target
                .clone()
                .with_params(Params::new().width(60).fit(Fit::Clip)),
        )
        .await
        .expect("render succeeds");
    fixtures::expect_image(&one.data, Format::Png, 60, 30).unwrap();
    assert_eq!(one.metadata.size, one.data.len() as u64);

    let decodes = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await;
    let srcset = client
        .srcset(&target, &[40, 80, 120])
        .await
        .expect("srcset renders");
    let decoded = counter(&mesh, "renderer", "imgmesh_originals_decoded_total").await - decodes;
    assert_eq!(decoded, 1.0, "one decode for the srcset");
    for (width, rendered) in &srcset.candidates {
        let width = *width as i32;
        fixtures::expect_image(&rendered.data, Format::Png, width, width / 2).unwrap();
        assert_close(
            &fixtures::pixel(&rendered.data, width / 10, width / 20).unwrap(),
            &[255.0, 0.0, 0.0],
            &format!("w={width} top left red"),
        );
    }
    assert_eq!(
        srcset.attribute(|width, _| format!("/q-{width}.png")),
        "/q-40.png 40w, /q-80.png 80w, /q-120.png 120w"
    );

    let described = client
        .describe(&target.clone().with_params(Params::new().width(80)))
        .await
        .expect("describe succeeds");
    assert!(
        described.public_url.ends_with("/quadrants.png?fm=png&w=80"),
        "{}",
        described.public_url
    );
}
