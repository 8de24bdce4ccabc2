//! An in-process FetcherService for unit tests of the fetch and render paths.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use imgmesh_errors::ErrorCode;
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use imgmesh_proto::fetcher::v1::fetcher_service_server::{FetcherService, FetcherServiceServer};
use imgmesh_proto::fetcher::v1::{FetchObjectRequest, FetchObjectResponse, ObjectMetadata};
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
    objects: HashMap<String, FakeObject>,
    fetches: AtomicUsize,
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
            objects: objects
                .into_iter()
                .map(|(path, object)| (path.to_owned(), object))
                .collect(),
            fetches: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = FetcherServiceServer::new(Service(Arc::clone(&state)));
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
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
    pub(crate) fn channel(&self) -> tonic::transport::Channel {
        imgmesh_runtime::grpc_channel(&format!("http://{}", self.addr)).unwrap()
    }

    /// How many FetchObject calls it has answered.
    pub(crate) fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for FakeFetcher {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// === impl Service ===

#[tonic::async_trait]
impl FetcherService for Service {
    type FetchObjectStream = FetchStream;

    async fn fetch_object(
        &self,
        request: tonic::Request<FetchObjectRequest>,
    ) -> Result<tonic::Response<FetchStream>, tonic::Status> {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        let (announced, bytes) = match self.0.objects.get(&request.path) {
            None => return Err(ErrorCode::ObjectNotFound.status("object not found")),
            Some(FakeObject::Error(code, message)) => return Err(code.status(*message)),
            Some(FakeObject::Bytes(bytes)) => (bytes.len() as u64, bytes.clone()),
            Some(FakeObject::Understated { announced, bytes }) => (*announced, bytes.clone()),
        };
        let metadata = FetchObjectResponse {
            part: Some(Part::Metadata(ObjectMetadata {
                size: announced,
                content_type: "application/octet-stream".into(),
                etag: "\"fake\"".into(),
                last_modified: 0,
            })),
        };
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
