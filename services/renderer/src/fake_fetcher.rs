//! An in-process FetcherService for unit tests of the fetch and render paths.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imgmesh_errors::ErrorCode;
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use imgmesh_proto::fetcher::v1::fetcher_service_server::{FetcherService, FetcherServiceServer};
use imgmesh_proto::fetcher::v1::{FetchObjectRequest, FetchObjectResponse, ObjectMetadata};
use std::os::fd::AsFd as _;

use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;

/// What the fake answers for one path.
#[derive(Debug, Clone)]
pub(crate) enum FakeObject {
    /// The object's bytes, announced with their true size.
    Bytes(Vec<u8>),
    /// Bytes announced with a smaller size than they have.
    Understated { announced: u64, bytes: Vec<u8> },
    /// An imgmesh error status.
    Error(ErrorCode, &'static str),
    /// The object's metadata and first chunk, after which the fake's
    /// connections are closed under the stream, as when the fetcher is
    /// killed mid-answer.
    CutMidStream(Vec<u8>),
}

/// A running fake fetcher; stops when dropped.
#[derive(Debug)]
pub(crate) struct FakeFetcher {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    objects: Mutex<HashMap<String, FakeObject>>,
    /// The Cache-Control every object is served with.
    cache_control: Mutex<String>,
    /// How long each fetch takes.
    delay: Mutex<Duration>,
    fetches: AtomicUsize,
    /// Conditional fetches answered not modified.
    not_modified: AtomicUsize,
    /// A handle on every accepted connection's socket, to close them under
    /// the server.
    connections: Mutex<Vec<std::net::TcpStream>>,
}

struct Service(Arc<State>);

type FetchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<FetchObjectResponse, tonic::Status>> + Send>>;

// === impl FakeFetcher ===

impl FakeFetcher {
    /// Serves `objects` (path → answer) on a loopback port.
    pub(crate) async fn start(
        objects: impl IntoIterator<Item = (&'static str, FakeObject)>,
    ) -> FakeFetcher {
        let state = Arc::new(State {
            objects: Mutex::new(
                objects
                    .into_iter()
                    .map(|(path, object)| (path.to_owned(), object))
                    .collect(),
            ),
            cache_control: Mutex::new(String::new()),
            delay: Mutex::new(Duration::ZERO),
            fetches: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = FetcherServiceServer::new(Service(Arc::clone(&state)));
        let tracked = Arc::clone(&state);
        let incoming = TcpListenerStream::new(listener).map(move |accepted| {
            if let Ok(stream) = &accepted {
                let socket = stream.as_fd().try_clone_to_owned().unwrap();
                tracked
                    .connections
                    .lock()
                    .unwrap()
                    .push(std::net::TcpStream::from(socket));
            }
            accepted
        });
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        FakeFetcher {
            addr,
            state,
            server,
        }
    }

    /// A channel to this fake.
    pub(crate) fn channel(&self) -> imgmesh_runtime::GrpcChannel {
        imgmesh_runtime::grpc_channel(&format!("http://{}", self.addr)).unwrap()
    }

    /// How many FetchObject calls it has answered.
    pub(crate) fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// How many conditional calls it answered "not modified".
    pub(crate) fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    /// Replaces (or adds) the object at `path`.
    pub(crate) fn put(&self, path: &str, object: FakeObject) {
        self.state
            .objects
            .lock()
            .unwrap()
            .insert(path.to_owned(), object);
    }

    /// Serves every object with this Cache-Control from now on.
    pub(crate) fn set_cache_control(&self, cache_control: &str) {
        *self.state.cache_control.lock().unwrap() = cache_control.to_owned();
    }

    /// Makes every fetch take `delay` from now on.
    pub(crate) fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }
}

/// The fake's ETag for `bytes`: it changes when they do.
pub(crate) fn fake_etag(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(bytes)[..8]))
}

impl Drop for FakeFetcher {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// === impl Service ===

impl Service {
    /// Sends `bytes`' metadata and first chunk, then closes every connection
    /// (FIN both ways, the kernel's answer for a killed process's sockets)
    /// without ending the stream.
    fn cut_mid_stream(&self, bytes: Vec<u8>) -> tonic::Response<FetchStream> {
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let state = Arc::clone(&self.0);
        tokio::spawn(async move {
            let metadata = Part::Metadata(ObjectMetadata {
                size: bytes.len() as u64,
                etag: fake_etag(&bytes),
                ..Default::default()
            });
            #[allow(
                clippy::useless_conversion,
                reason = "chunks are Vec<u8> or Bytes depending on the proto build's config"
            )]
            let chunk = Part::Chunk(bytes[..bytes.len() / 2].to_vec().into());
            for part in [metadata, chunk] {
                let message = FetchObjectResponse { part: Some(part) };
                if sender.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            // Let both messages reach the client before the cut.
            tokio::time::sleep(Duration::from_millis(100)).await;
            for socket in state.connections.lock().unwrap().drain(..) {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
            // Hold the stream open: it ends by the cut, not by its end.
            sender.closed().await;
        });
        tonic::Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }
}

#[tonic::async_trait]
impl FetcherService for Service {
    type FetchObjectStream = FetchStream;

    async fn fetch_object(
        &self,
        request: tonic::Request<FetchObjectRequest>,
    ) -> Result<tonic::Response<FetchStream>, tonic::Status> {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        let delay = *self.0.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let request = request.into_inner();
        let object = self.0.objects.lock().unwrap().get(&request.path).cloned();
        let (announced, bytes) = match object {
            None => return Err(ErrorCode::ObjectNotFound.status("object not found")),
            Some(FakeObject::Error(code, message)) => return Err(code.status(message)),
            Some(FakeObject::Bytes(bytes)) => (bytes.len() as u64, bytes),
            Some(FakeObject::Understated { announced, bytes }) => (announced, bytes),
            Some(FakeObject::CutMidStream(bytes)) => return Ok(self.cut_mid_stream(bytes)),
        };
        let etag = fake_etag(&bytes);
        let cache_control = self.0.cache_control.lock().unwrap().clone();
        let not_modified = request.if_none_match == etag;
        let metadata = FetchObjectResponse {
            part: Some(Part::Metadata(ObjectMetadata {
                size: if not_modified { 0 } else { announced },
                content_type: "application/octet-stream".into(),
                etag,
                last_modified: 1_700_000_000,
                cache_control,
                expires: 0,
                not_modified,
            })),
        };
        if not_modified {
            self.0.not_modified.fetch_add(1, Ordering::SeqCst);
            let messages = vec![Ok(metadata)];
            return Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))));
        }
        #[allow(
            clippy::useless_conversion,
            reason = "chunks are Vec<u8> or Bytes depending on the proto build's config"
        )]
        let chunks = bytes.chunks(16 * 1024).map(|chunk| {
            Ok(FetchObjectResponse {
                part: Some(Part::Chunk(chunk.to_vec().into())),
            })
        });
        let messages: Vec<_> = std::iter::once(Ok(metadata)).chain(chunks).collect();
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))))
    }
}
