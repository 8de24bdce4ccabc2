//! The public gRPC render API (`imgmesh.image.v1.ImageService`) through a
//! real mesh: a gateway with `--grpc-listen` on the mesh's registry,
//! renderer and Redis. Pixels of Render's output, byte-for-byte parity and
//! a shared cache entry with the HTTP gateway, a ~30 MB derivative streamed
//! in chunks, Describe's URL served over HTTP, and each refusal with its
//! `ErrorInfo` reason.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::process::ChildProcess;
use imgmesh_integration_tests::{BASE_DOMAIN, HttpResponse, Mesh, MeshOptions, S3_SECRET_KEY};
use imgmesh_proto::image::v1::image_service_client::ImageServiceClient;
use imgmesh_proto::image::v1::{
    CacheStatus, DescribeRequest, DescribeResponse, ImageTarget, RenderMetadata, RenderRequest,
    image_target, render_response,
};
use tonic::transport::Channel;

/// The largest chunk the API promises (1 MiB).
const MAX_CHUNK: usize = 1024 * 1024;

/// A mesh with Source `demo` holding a quadrants PNG, plus a gateway
/// serving the gRPC API (and HTTP, with `X-Imgmesh-Cache`) on the mesh's
/// Redis; returns the gateway, its HTTP address and a client.
async fn api_mesh() -> (Mesh, ChildProcess, SocketAddr, ImageServiceClient<Channel>) {
    let (mesh, gateway, http, _grpc, client) = api_mesh_at().await;
    (mesh, gateway, http, client)
}

/// [`api_mesh`], with the gRPC listener's address too.
async fn api_mesh_at() -> (
    Mesh,
    ChildProcess,
    SocketAddr,
    SocketAddr,
    ImageServiceClient<Channel>,
) {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
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
    let client = ImageServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("client connects");
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
    client: &mut ImageServiceClient<Channel>,
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
    client: &mut ImageServiceClient<Channel>,
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

/// Unknown Sources, bad parameters, missing objects, signed and disabled Sources are refused with their catalogue reason and gRPC code.
#[tokio::test]
async fn refusals_carry_their_reason() {
    let (mesh, _gateway, _http, mut client) = api_mesh().await;
    mesh.create_source("vault", S3_SECRET_KEY, &["--secure-urls=on"])
        .await
        .expect("signed source is created");
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
        (
            target("vault", "quadrants.png", "w=10"),
            tonic::Code::Unauthenticated,
            "SIGNATURE_INVALID",
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
        if expected != "OBJECT_NOT_FOUND" || case.path != "missing.png" {
            let refused = describe(&mut client, case).await.expect_err(&what);
            assert_eq!(reason(&refused).0, expected, "{what}");
        }
    }

    // Disabled, the Source refuses (once the gateway's 200 ms source cache lets go).
    let id = mesh.cli_json(&["sources", "get", "demo"]).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
