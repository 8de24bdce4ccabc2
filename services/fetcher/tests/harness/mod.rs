//! What the fetcher's tests run against: a real `s3s-fs` S3 server (which
//! checks SigV4 signatures), a small in-test registry that hands out read
//! access, a scripted HTTP origin for faults s3s-fs cannot produce, and the
//! fetcher itself on a loopback port. Everything stops when dropped.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser as _;
use imgmesh_errors::ErrorCode;
use imgmesh_fetcher::FetcherConfig;
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use imgmesh_proto::fetcher::v1::fetcher_service_client::FetcherServiceClient;
use imgmesh_proto::fetcher::v1::{FetchObjectRequest, ObjectMetadata};
use imgmesh_proto::registry::v1::source_credentials_service_server::{
    SourceCredentialsService, SourceCredentialsServiceServer,
};
use imgmesh_proto::registry::v1::{GetReadAccessRequest, GetReadAccessResponse};
use imgmesh_test_support::log_capture::capture_logs;
use imgmesh_test_support::{GrpcPeer, S3Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::StreamExt as _;

/// The access key the S3 server accepts.
pub(crate) const ACCESS_KEY: &str = "FETCHERTESTACCESSKEY";
/// The secret the S3 server accepts; tests look for it in logs and statuses.
pub(crate) const SECRET_KEY: &str = "fetcher-canary-secret-5d2e91b7";
/// The bucket the S3 server starts with.
pub(crate) const BUCKET: &str = "images";

// === registry ===

/// An in-test `SourceCredentialsService`: hands out whatever read access
/// the test put in, and records which Sources were asked for.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    sources: Arc<Mutex<HashMap<String, GetReadAccessResponse>>>,
    disabled: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    /// Sets (or replaces) the read access for `access.source_id`.
    pub(crate) fn put(&self, access: GetReadAccessResponse) {
        self.sources
            .lock()
            .unwrap()
            .insert(access.source_id.clone(), access);
    }

    /// Makes the registry answer SOURCE_DISABLED for `source_id`.
    pub(crate) fn disable(&self, source_id: &str) {
        self.disabled.lock().unwrap().push(source_id.to_owned());
    }

    /// How many times `source_id`'s read access was asked for.
    pub(crate) fn calls_for(&self, source_id: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|id| *id == source_id)
            .count()
    }
}

#[tonic::async_trait]
impl SourceCredentialsService for Registry {
    async fn get_read_access(
        &self,
        request: tonic::Request<GetReadAccessRequest>,
    ) -> Result<tonic::Response<GetReadAccessResponse>, tonic::Status> {
        let source_id = request.into_inner().source_id;
        self.calls.lock().unwrap().push(source_id.clone());
        if self.disabled.lock().unwrap().contains(&source_id) {
            return Err(ErrorCode::SourceDisabled.status("source is disabled"));
        }
        let access = self.sources.lock().unwrap().get(&source_id).cloned();
        access
            .map(tonic::Response::new)
            .ok_or_else(|| ErrorCode::SourceNotFound.status("source not found"))
    }
}

/// Read access for `source_id` on [`BUCKET`] at `endpoint`.
pub(crate) fn read_access(
    source_id: &str,
    endpoint: &str,
    prefix: &str,
    secret: &str,
) -> GetReadAccessResponse {
    GetReadAccessResponse {
        source_id: source_id.to_owned(),
        config_version: 1,
        bucket: BUCKET.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: endpoint.to_owned(),
        path_prefix: prefix.to_owned(),
        access_key_id: ACCESS_KEY.to_owned(),
        secret_access_key: secret.to_owned(),
        serving: true,
    }
}

// === scripted origin ===

/// A loopback HTTP server that answers every request with the same raw
/// HTTP/1.1 response and counts the requests; for origin behaviour s3s-fs
/// cannot produce, and to prove a request never reached the origin.
pub(crate) struct ScriptedOrigin {
    /// The endpoint URL.
    pub(crate) endpoint: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedOrigin {
    /// Starts answering with `response` (status line, headers and body).
    pub(crate) async fn start(response: Vec<u8>) -> ScriptedOrigin {
        Self::start_with(Duration::ZERO, move |_| response.clone()).await
    }

    /// Starts answering each request with `respond(request head)`, after
    /// waiting `delay` (a slow origin).
    pub(crate) async fn start_with<F>(delay: Duration, respond: F) -> ScriptedOrigin
    where
        F: Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    {
        Self::start_paced(move |head| (delay, respond(head))).await
    }

    /// Starts answering each request with `respond(request head)`: how long
    /// to wait before answering (a stalled origin), then the answer.
    pub(crate) async fn start_paced<F>(respond: F) -> ScriptedOrigin
    where
        F: Fn(&str) -> (Duration, Vec<u8>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let respond = Arc::new(respond);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                let respond = respond.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let (delay, response) = respond(&String::from_utf8_lossy(&head));
                    tokio::time::sleep(delay).await;
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        ScriptedOrigin {
            endpoint,
            requests,
            task,
        }
    }

    /// Requests received so far.
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `200 OK` with a chunked body of `len` bytes and no Content-Length.
pub(crate) fn chunked_response(len: usize) -> Vec<u8> {
    let mut response =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let piece = vec![b'z'; 16 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len());
        write!(response, "{n:x}\r\n").unwrap();
        response.extend_from_slice(&piece[..n]);
        response.extend_from_slice(b"\r\n");
        left -= n;
    }
    response.extend_from_slice(b"0\r\n\r\n");
    response
}

/// A `200 OK` carrying `body` with a Content-Length and `etag`.
pub(crate) fn object_response(body: &[u8], etag: &str) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

/// A bodiless `304 Not Modified`.
pub(crate) fn not_modified_response(etag: &str) -> Vec<u8> {
    format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// A bodiless `404 Not Found`, as S3 answers a HEAD for a missing key.
pub(crate) fn not_found_response() -> Vec<u8> {
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
}

// === the fetcher under test ===

/// S3, the registry and the fetcher, all on loopback.
pub(crate) struct Harness {
    /// The S3 server.
    pub(crate) s3: S3Server,
    /// The registry the fetcher asks.
    pub(crate) registry: Registry,
    /// A client for the fetcher.
    pub(crate) client: FetcherServiceClient<tonic::transport::Channel>,
    _registry_peer: GrpcPeer,
    _stop_fetcher: oneshot::Sender<()>,
}

impl Harness {
    /// Starts everything with the fetcher capped at `max_object_bytes`.
    pub(crate) async fn start(max_object_bytes: u64) -> Harness {
        Self::start_with(max_object_bytes, &[]).await
    }

    /// Like [`Harness::start`] with extra fetcher flags.
    pub(crate) async fn start_with(max_object_bytes: u64, flags: &[&str]) -> Harness {
        capture_logs();
        let s3 = S3Server::start_with_keys(ACCESS_KEY, SECRET_KEY, &[BUCKET]).await;

        let registry = Registry::default();
        let registry_peer = GrpcPeer::serve(tonic::service::Routes::new(
            SourceCredentialsServiceServer::new(registry.clone()),
        ))
        .await;

        let mut args = vec![
            "imgmesh-fetcher".to_owned(),
            "--listen=127.0.0.1:0".to_owned(),
            format!("--registry-url={}", registry_peer.url()),
            format!("--max-object-bytes={max_object_bytes}"),
        ];
        args.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let config = FetcherConfig::try_parse_from(args).unwrap();
        let fetcher_listener = TcpListener::bind(config.listen).await.unwrap();
        let fetcher_addr: SocketAddr = fetcher_listener.local_addr().unwrap();
        let (stop_fetcher, fetcher_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            imgmesh_fetcher::run(config, fetcher_listener, async {
                let _ = fetcher_stopped.await;
            })
            .await
            .unwrap();
        });
        // Both listeners are bound, so connecting cannot race their startup.
        let client = FetcherServiceClient::connect(format!("http://{fetcher_addr}"))
            .await
            .unwrap();

        Harness {
            s3,
            registry,
            client,
            _registry_peer: registry_peer,
            _stop_fetcher: stop_fetcher,
        }
    }

    /// Stores `bytes` as `key` in [`BUCKET`] (s3s-fs serves plain files).
    pub(crate) fn put_object(&self, key: &str, bytes: &[u8]) {
        self.s3.put_object(BUCKET, key, bytes);
    }

    /// Registers a Source on the S3 server with `prefix` and `secret`.
    pub(crate) fn add_source(&self, source_id: &str, prefix: &str, secret: &str) {
        self.registry
            .put(read_access(source_id, &self.s3.endpoint, prefix, secret));
    }

    /// Fetches `path` and collects the whole stream.
    pub(crate) async fn fetch(
        &self,
        source_id: &str,
        path: &str,
    ) -> Result<Fetched, tonic::Status> {
        self.fetch_with(FetchObjectRequest {
            source_id: source_id.to_owned(),
            path: path.to_owned(),
            max_bytes: 0,
            source_config_version: 1,
            ..Default::default()
        })
        .await
    }

    /// Sends `request` and collects the whole stream.
    pub(crate) async fn fetch_with(
        &self,
        request: FetchObjectRequest,
    ) -> Result<Fetched, tonic::Status> {
        let streamed = self.stream(request).await;
        if let Some(status) = streamed.error {
            return Err(status);
        }
        Ok(Fetched {
            metadata: streamed
                .metadata
                .expect("a stream without error starts with metadata"),
            bytes: streamed.bytes,
            chunk_sizes: streamed.chunk_sizes,
        })
    }

    /// Sends `request` and keeps everything that arrived, including what
    /// came before an error part-way through the stream.
    pub(crate) async fn stream(&self, request: FetchObjectRequest) -> Streamed {
        let mut streamed = Streamed {
            metadata: None,
            bytes: Vec::new(),
            chunk_sizes: Vec::new(),
            error: None,
        };
        let mut stream = match self.client.clone().fetch_object(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                streamed.error = Some(status);
                return streamed;
            }
        };
        while let Some(message) = stream.next().await {
            let part = match message {
                Ok(message) => message.part,
                Err(status) => {
                    streamed.error = Some(status);
                    break;
                }
            };
            match (part, &streamed.metadata) {
                (Some(Part::Metadata(metadata)), None) if streamed.chunk_sizes.is_empty() => {
                    streamed.metadata = Some(metadata);
                }
                (Some(Part::Chunk(chunk)), Some(_)) => {
                    streamed.chunk_sizes.push(chunk.len());
                    streamed.bytes.extend_from_slice(&chunk);
                }
                (other, _) => panic!("message out of order: {other:?}"),
            }
        }
        streamed
    }
}

/// A whole fetched object.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The metadata message.
    pub(crate) metadata: ObjectMetadata,
    /// Every chunk, concatenated.
    pub(crate) bytes: Vec<u8>,
    /// Each chunk's size, in order.
    pub(crate) chunk_sizes: Vec<usize>,
}

/// Everything one `FetchObject` call produced, successful or not.
#[derive(Debug)]
pub(crate) struct Streamed {
    /// The metadata message, if one arrived.
    pub(crate) metadata: Option<ObjectMetadata>,
    /// The chunks that arrived, concatenated.
    pub(crate) bytes: Vec<u8>,
    /// Each chunk's size, in order.
    pub(crate) chunk_sizes: Vec<usize>,
    /// The status the call or the stream ended with, if not OK.
    pub(crate) error: Option<tonic::Status>,
}

/// `len` bytes that differ at every offset, so misordered chunks show.
pub(crate) fn patterned_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// Asserts `status` carries `code` and does not mention the test secret.
pub(crate) fn assert_status(status: &tonic::Status, code: ErrorCode) {
    assert_eq!(status.code(), code.grpc_code(), "{status:?}");
    assert_eq!(ErrorCode::of_status(status), code, "{status:?}");
    assert!(!status.message().contains(SECRET_KEY));
    assert!(
        !status
            .details()
            .windows(SECRET_KEY.len())
            .any(|w| w == SECRET_KEY.as_bytes())
    );
}
