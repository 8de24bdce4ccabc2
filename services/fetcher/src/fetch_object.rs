//! The `FetchObject` RPC: check the path, find the Source's client, start
//! the S3 read, refuse what is too large, then stream metadata and chunks.

use std::sync::Arc;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use futures::Stream;
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use imgmesh_proto::fetcher::v1::fetcher_service_server::{FetcherService, FetcherServiceServer};
use imgmesh_proto::fetcher::v1::{FetchObjectRequest, FetchObjectResponse, ObjectMetadata};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument as _;

use crate::config::FetcherConfig;
use crate::fetch_error::FetchError;
use crate::object_key::{object_key, validate_path};
use crate::object_stream::{
    BodyLimits, CHANNEL_CAPACITY, Forwarded, ResponseSender, check_declared_length, effective_cap,
    forward_body,
};
use crate::read_access;
use crate::s3_client;
use crate::source_clients::SourceClients;

/// The stream one `FetchObject` call answers with.
pub(crate) type FetchObjectStream = ReceiverStream<Result<FetchObjectResponse, tonic::Status>>;

/// Reads originals from Sources' buckets; implements `FetcherService`.
#[derive(Debug, Clone)]
pub struct Fetcher {
    clients: Arc<SourceClients>,
    max_object_bytes: u64,
}

// === impl Fetcher ===

impl Fetcher {
    /// A fetcher that asks the registry at `config.registry_url` for read
    /// access (connecting lazily) and caps objects at
    /// `config.max_object_bytes`.
    pub fn new(config: &FetcherConfig) -> anyhow::Result<Fetcher> {
        let registry = read_access::registry_client(&config.registry_url)?;
        Ok(Fetcher {
            clients: Arc::new(SourceClients::new(registry)),
            max_object_bytes: config.max_object_bytes,
        })
    }

    /// The tonic service to add to a server's routes.
    pub fn into_server(self) -> FetcherServiceServer<Fetcher> {
        FetcherServiceServer::new(self)
    }

    #[tracing::instrument(
        name = "fetch_object",
        skip_all,
        fields(source_id = %request.source_id, path = ?request.path)
    )]
    async fn fetch(&self, request: FetchObjectRequest) -> Result<FetchObjectStream, FetchError> {
        if request.source_id.is_empty() {
            return Err(FetchError::InvalidRequest {
                field: "source_id",
                problem: "must not be empty",
            });
        }
        // Before the registry or S3 are asked: an escape attempt costs
        // nothing and learns nothing.
        validate_path(&request.path).map_err(|rejection| {
            tracing::debug!(%rejection, "refused object path");
            FetchError::InvalidPath(rejection)
        })?;
        let source = self
            .clients
            .get(&request.source_id, request.source_config_version)
            .await?;
        let key = object_key(&source.path_prefix, &request.path).map_err(|rejection| {
            tracing::debug!(%rejection, "refused object key");
            FetchError::InvalidPath(rejection)
        })?;
        let cap = effective_cap(request.max_bytes, self.max_object_bytes);
        let object =
            s3_client::get_object(&source.s3, &source.source_id, &source.bucket, &key).await?;
        check_declared_length(object.content_length, cap).inspect_err(|_| {
            tracing::debug!(
                content_length = object.content_length,
                cap,
                "object is over the byte cap"
            );
        })?;

        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let metadata = metadata_message(&object);
        // The channel is empty, so the first message never waits.
        tx.try_send(Ok(metadata))
            .map_err(|_| FetchError::Internal)?;
        let body = origin_body(object.body, source.source_id.clone());
        let span = tracing::info_span!("s3.read_body", bytes = tracing::field::Empty);
        tokio::spawn(stream_body(body, BodyLimits::with_cap(cap), tx).instrument(span));
        Ok(ReceiverStream::new(rx))
    }
}

#[tonic::async_trait]
impl FetcherService for Fetcher {
    type FetchObjectStream = FetchObjectStream;

    async fn fetch_object(
        &self,
        request: tonic::Request<FetchObjectRequest>,
    ) -> Result<tonic::Response<FetchObjectStream>, tonic::Status> {
        match self.fetch(request.into_inner()).await {
            Ok(stream) => Ok(tonic::Response::new(stream)),
            Err(err) => {
                tracing::debug!(error = %err, "fetch refused");
                Err(err.into())
            }
        }
    }
}

/// The first message of the stream, from the origin's response headers.
fn metadata_message(object: &GetObjectOutput) -> FetchObjectResponse {
    let metadata = ObjectMetadata {
        size: object
            .content_length
            .and_then(|len| u64::try_from(len).ok())
            .unwrap_or(0),
        content_type: object.content_type.clone().unwrap_or_default(),
        etag: object.e_tag.clone().unwrap_or_default(),
        last_modified: object.last_modified.map(|t| t.secs()).unwrap_or(0),
    };
    FetchObjectResponse {
        part: Some(Part::Metadata(metadata)),
    }
}

/// The SDK body as a stream of bytes, its errors logged with the Source id
/// and reduced to `OriginUnavailable`.
fn origin_body(
    body: ByteStream,
    source_id: String,
) -> impl Stream<Item = Result<bytes::Bytes, FetchError>> + Unpin {
    Box::pin(futures::stream::unfold(
        (body, source_id),
        |(mut body, source_id)| async move {
            let next = body.next().await?.map_err(|err| {
                tracing::warn!(
                    source_id,
                    error = %aws_sdk_s3::error::DisplayErrorContext(&err),
                    "origin failed mid-body"
                );
                FetchError::OriginUnavailable
            });
            Some((next, (body, source_id)))
        },
    ))
}

/// Forwards the body and ends the stream with an error status if the read
/// fails part-way.
async fn stream_body<S>(body: S, limits: BodyLimits, tx: ResponseSender)
where
    S: Stream<Item = Result<bytes::Bytes, FetchError>> + Unpin,
{
    match forward_body(body, limits, &tx).await {
        Ok(Forwarded::Complete { bytes }) => {
            tracing::Span::current().record("bytes", bytes);
        }
        Ok(Forwarded::CallerGone) => tracing::debug!("caller went away mid-body"),
        Err(err) => {
            tracing::debug!(error = %err, "object stream failed");
            let _ = tx.send(Err(err.into())).await;
        }
    }
}
