//! The `FetchObject` RPC: check the path, find the Source's client, get the
//! original (from the original cache, or one coalesced S3 read), refuse
//! what is too large, then stream metadata and chunks.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    BodyLimits, CHANNEL_CAPACITY, CHUNK_SIZE, check_declared_length, collect_body, effective_cap,
    send_original,
};
use crate::original_cache::{CachedOriginal, Lookup, OriginalCache, OriginalKey};
use crate::read_access;
use crate::s3_client::{self, ObjectRead, OriginCaching};
use crate::source_clients::{SourceClient, SourceClients};

/// The stream one `FetchObject` call answers with.
pub(crate) type FetchObjectStream = ReceiverStream<Result<FetchObjectResponse, tonic::Status>>;

/// Reads originals from Sources' buckets; implements `FetcherService`.
#[derive(Debug, Clone)]
pub struct Fetcher {
    clients: Arc<SourceClients>,
    originals: Arc<OriginalCache<FetchError>>,
    max_object_bytes: u64,
}

// === impl Fetcher ===

impl Fetcher {
    /// A fetcher that asks the registry at `config.registry_url` for read
    /// access (connecting lazily), caps objects at `config.max_object_bytes`
    /// and keeps up to `config.original_cache_bytes` of recent originals.
    pub fn new(config: &FetcherConfig) -> anyhow::Result<Fetcher> {
        let registry = read_access::registry_client(&config.registry_url)?;
        Ok(Fetcher {
            clients: Arc::new(SourceClients::new(registry)),
            originals: Arc::new(OriginalCache::new(
                config.original_cache_bytes,
                Duration::from_secs(config.original_fresh_seconds),
            )),
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
        fields(
            source_id = %request.source_id,
            path = ?request.path,
            imgmesh.original_cache = tracing::field::Empty,
        )
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
        let cache_key = OriginalKey {
            source_id: source.source_id.clone(),
            config_version: source.config_version,
            key,
            generation: request.cache_generation,
        };
        let cap = effective_cap(request.max_bytes, self.max_object_bytes);
        if !request.if_none_match.is_empty() {
            return self
                .revalidate(&source, &cache_key, &request.if_none_match, cap)
                .await;
        }
        // Reads are bounded by the fetcher's own cap so one read can serve
        // every waiting caller; each caller's own (smaller) cap is checked
        // on the result.
        let (original, lookup) = self.cached_original(&source, &cache_key).await?;
        tracing::Span::current().record("imgmesh.original_cache", lookup.as_str());
        stream_original(original, cap)
    }

    /// The original from the cache when fresh, else read (or revalidated
    /// with a stale copy's ETag) by one coalesced origin request.
    async fn cached_original(
        &self,
        source: &SourceClient,
        cache_key: &OriginalKey,
    ) -> Result<(Arc<CachedOriginal>, Lookup), FetchError> {
        self.originals
            .get_or_load(cache_key, |stale| {
                read_original(source, &cache_key.key, self.max_object_bytes, stale)
            })
            .await
    }

    /// Answers a conditional request (the caller holds a copy with ETag
    /// `if_none_match`): a fresh cached copy decides without the origin;
    /// otherwise a stale cached copy is revalidated as usual, and with no
    /// copy at all the origin is asked conditionally with the caller's ETag,
    /// so an unchanged object costs no body transfer.
    async fn revalidate(
        &self,
        source: &SourceClient,
        cache_key: &OriginalKey,
        if_none_match: &str,
        cap: u64,
    ) -> Result<FetchObjectStream, FetchError> {
        let original = if self.originals.holds(cache_key) {
            // Fresh: used as is; stale: revalidated with its own ETag.
            self.cached_original(source, cache_key).await?.0
        } else {
            let read = s3_client::get_object(
                &source.s3,
                &source.source_id,
                &source.bucket,
                &cache_key.key,
                Some(if_none_match),
            )
            .await?;
            match read {
                ObjectRead::NotModified(caching) => {
                    return Ok(not_modified_stream(if_none_match, &caching));
                }
                // Some S3-compatible stores ignore If-None-Match: an
                // unchanged ETag is just as good an answer.
                ObjectRead::Object(object)
                    if object.e_tag().is_some_and(|etag| etag == if_none_match) =>
                {
                    let caching = OriginCaching::of_object(&object);
                    return Ok(not_modified_stream(if_none_match, &caching));
                }
                ObjectRead::Object(object) => {
                    read_body(source, *object, self.max_object_bytes).await?
                }
            }
        };
        if original.etag == if_none_match {
            return Ok(not_modified_stream(if_none_match, &original.caching));
        }
        stream_original(original, cap)
    }
}

/// Streams `original` to the caller, refusing it when over `cap`.
fn stream_original(
    original: Arc<CachedOriginal>,
    cap: u64,
) -> Result<FetchObjectStream, FetchError> {
    if original.body.len() as u64 > cap {
        tracing::debug!(
            size = original.body.len(),
            cap,
            "object is over the byte cap"
        );
        return Err(FetchError::TooLarge { cap });
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(async move { send_original(&original, CHUNK_SIZE, tx).await }.in_current_span());
    Ok(ReceiverStream::new(rx))
}

/// The one-message answer saying the caller's copy (`etag`) is current.
fn not_modified_stream(etag: &str, caching: &OriginCaching) -> FetchObjectStream {
    let (tx, rx) = mpsc::channel(1);
    let message = FetchObjectResponse {
        part: Some(Part::Metadata(ObjectMetadata {
            size: 0,
            content_type: String::new(),
            etag: etag.to_owned(),
            last_modified: 0,
            cache_control: caching.cache_control.clone(),
            expires: caching.expires,
            not_modified: true,
        })),
    };
    // A fresh channel of capacity 1 always takes one message.
    let _ = tx.try_send(Ok(message));
    ReceiverStream::new(rx)
}

/// Reads `key` in full from the Source's bucket, within `cap`. With a stale
/// cached copy, asks the origin with its ETag first and keeps the copy when
/// the origin says it has not changed.
async fn read_original(
    source: &SourceClient,
    key: &str,
    cap: u64,
    stale: Option<Arc<CachedOriginal>>,
) -> Result<Arc<CachedOriginal>, FetchError> {
    let if_none_match = stale
        .as_deref()
        .map(|stale| stale.etag.as_str())
        .filter(|etag| !etag.is_empty());
    let read = s3_client::get_object(
        &source.s3,
        &source.source_id,
        &source.bucket,
        key,
        if_none_match,
    )
    .await?;
    let revalidated = |stale: &CachedOriginal, caching: OriginCaching| {
        Arc::new(CachedOriginal {
            body: stale.body.clone(),
            content_type: stale.content_type.clone(),
            etag: stale.etag.clone(),
            last_modified: stale.last_modified,
            caching,
            validated_at: Instant::now(),
        })
    };
    match (read, stale) {
        (ObjectRead::NotModified(caching), Some(stale)) => Ok(revalidated(&stale, caching)),
        // A 304 to an unconditional request is an origin bug.
        (ObjectRead::NotModified(_), None) => Err(FetchError::OriginUnavailable),
        // A store that ignores If-None-Match: the same ETag means the same
        // bytes, so the body is not read again.
        (ObjectRead::Object(object), Some(stale))
            if !stale.etag.is_empty() && object.e_tag() == Some(stale.etag.as_str()) =>
        {
            Ok(revalidated(&stale, OriginCaching::of_object(&object)))
        }
        (ObjectRead::Object(object), _) => read_body(source, *object, cap).await,
    }
}

/// Reads the body of a `GetObject` answer in full, within `cap`.
async fn read_body(
    source: &SourceClient,
    object: GetObjectOutput,
    cap: u64,
) -> Result<Arc<CachedOriginal>, FetchError> {
    check_declared_length(object.content_length, cap).inspect_err(|_| {
        tracing::debug!(
            content_length = object.content_length,
            cap,
            "object is over the byte cap"
        );
    })?;
    let caching = OriginCaching::of_object(&object);
    let size_hint = object
        .content_length
        .and_then(|len| u64::try_from(len).ok());
    let span = tracing::info_span!("s3.read_body", bytes = tracing::field::Empty);
    let body = collect_body(
        origin_body(object.body, source.source_id.clone()),
        BodyLimits::with_cap(cap),
        size_hint,
    )
    .instrument(span.clone())
    .await?;
    span.record("bytes", body.len());
    Ok(Arc::new(CachedOriginal {
        body,
        caching,
        content_type: object.content_type.unwrap_or_default(),
        etag: object.e_tag.unwrap_or_default(),
        last_modified: object.last_modified.map(|t| t.secs()).unwrap_or(0),
        validated_at: Instant::now(),
    }))
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
