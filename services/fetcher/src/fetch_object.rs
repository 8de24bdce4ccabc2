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
use crate::metrics::METRICS;
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
    stale: StaleIfError,
    bounds: OriginBounds,
}

/// How long the origin may take: a whole read (every attempt, the headers
/// and the body) within `timeout`, and no silence in the body longer than
/// `idle_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OriginBounds {
    /// Longest whole read (`--origin-timeout-ms`).
    pub(crate) timeout: Duration,
    /// Longest wait for the body's next bytes (`--origin-attempt-timeout-ms`).
    pub(crate) idle_timeout: Duration,
}

/// When a held copy of an original may stand in for the origin (RFC 5861's
/// `stale-if-error`, applied to the fetcher's own copies): revalidating a
/// stale copy waits at most `revalidate_timeout` for the origin's answer,
/// and when the origin is slow or failing (not when it says the object is
/// gone or forbidden) the copy is served instead, for at most `max_stale`
/// past its last confirmation. After such an answer the copy counts as
/// fresh for `retry_after`, so a stalled origin costs one wait per
/// `retry_after`, not one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StaleIfError {
    /// Longest wait for the origin's answer to a revalidation.
    pub(crate) revalidate_timeout: Duration,
    /// How long past its last confirmation a copy may still be served.
    pub(crate) max_stale: Duration,
    /// How long a copy served on error is fresh before the origin is asked again.
    pub(crate) retry_after: Duration,
}

/// How long a copy served because the origin failed is used before the
/// origin is asked again.
const STALE_RETRY_AFTER: Duration = Duration::from_secs(5);

// === impl Fetcher ===

impl Fetcher {
    /// A fetcher that asks the registry at `--registry-url` for read
    /// access (connecting lazily), caps objects at `config.max_object_bytes`
    /// and keeps up to `config.original_cache_bytes` of recent originals;
    /// it dials the registry over `transport`.
    pub fn new(
        config: &FetcherConfig,
        transport: &imgmesh_runtime::Transport,
    ) -> anyhow::Result<Fetcher> {
        let registry = read_access::registry_client(&config.registry.registry_url, transport)?;
        Ok(Fetcher {
            clients: Arc::new(SourceClients::new(registry, config.s3_tuning())),
            originals: Arc::new(OriginalCache::new(
                config.original_cache_bytes,
                Duration::from_secs(config.original_fresh_seconds),
            )),
            max_object_bytes: config.max_object_bytes,
            stale: StaleIfError {
                revalidate_timeout: Duration::from_millis(config.origin_revalidate_timeout_ms),
                max_stale: Duration::from_secs(config.original_stale_if_error_seconds),
                retry_after: STALE_RETRY_AFTER,
            },
            bounds: OriginBounds {
                timeout: config.origin_timeout(),
                idle_timeout: Duration::from_millis(config.origin_attempt_timeout_ms),
            },
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
        let fresh_for = self.originals.fresh_for();
        let bounds = self.bounds;
        self.originals
            .get_or_load(cache_key, |stale| async move {
                let Some(held) = stale else {
                    return read_original(
                        source,
                        &cache_key.key,
                        self.max_object_bytes,
                        bounds,
                        None,
                    )
                    .await;
                };
                // Boxed: the nested futures are otherwise too deep a type
                // for the compiler's layout queries.
                let revalidation = Box::pin(read_original(
                    source,
                    &cache_key.key,
                    self.max_object_bytes,
                    bounds,
                    Some(held.clone()),
                ));
                let revalidated = tokio::time::timeout(self.stale.revalidate_timeout, revalidation)
                    .await
                    .unwrap_or(Err(FetchError::OriginTimeout));
                match revalidated {
                    Err(error) if self.stale.covers(&error, &held, fresh_for) => {
                        tracing::warn!(
                            source_id = %source.source_id,
                            %error,
                            age_seconds = held.confirmed_at.elapsed().as_secs(),
                            "origin failed revalidating an original; serving the held copy"
                        );
                        METRICS.stale_served();
                        Ok(self.stale.served_on_error(&held, fresh_for))
                    }
                    other => other,
                }
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
            let bounds = self.bounds;
            let read = within_origin_timeout(
                bounds.timeout,
                &source.source_id,
                s3_client::get_object(
                    &source.s3,
                    &source.source_id,
                    &source.bucket,
                    &cache_key.key,
                    Some(if_none_match),
                ),
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
                    within_origin_timeout(
                        bounds.timeout,
                        &source.source_id,
                        read_body(source, *object, self.max_object_bytes, bounds),
                    )
                    .await?
                }
            }
        };
        if original.etag == if_none_match {
            return Ok(not_modified_stream(if_none_match, &original.caching));
        }
        stream_original(original, cap)
    }
}

// === impl StaleIfError ===

impl StaleIfError {
    /// Whether `error`, met revalidating `held`, lets `held` answer: the
    /// origin was slow or failing (a missing object, a revoked credential
    /// or a gone Source are answers, not failures), and `held` is not older
    /// than `max_stale` past its freshness.
    fn covers(&self, error: &FetchError, held: &CachedOriginal, fresh_for: Duration) -> bool {
        let transient = matches!(
            error,
            FetchError::OriginTimeout | FetchError::OriginUnavailable | FetchError::OriginThrottled
        );
        transient && held.confirmed_at.elapsed() <= fresh_for.saturating_add(self.max_stale)
    }

    /// `held`, fresh again for `retry_after` (and no longer), keeping the
    /// time the origin last confirmed it.
    fn served_on_error(&self, held: &CachedOriginal, fresh_for: Duration) -> Arc<CachedOriginal> {
        let now = Instant::now();
        // Fresh while `now - validated_at <= fresh_for`, i.e. until
        // `now + retry_after`.
        let validated_at = (now + self.retry_after)
            .checked_sub(fresh_for)
            .unwrap_or(now);
        Arc::new(CachedOriginal {
            body: held.body.clone(),
            content_type: held.content_type.clone(),
            etag: held.etag.clone(),
            last_modified: held.last_modified,
            caching: held.caching.clone(),
            validated_at,
            confirmed_at: held.confirmed_at,
        })
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

/// Runs one origin read, failing it with `OriginTimeout` (counted in
/// `imgmesh_s3_errors_total{stage="total"}`) when it takes longer than
/// `limit`, however it is spent: attempts, backoff, or a body trickling in.
async fn within_origin_timeout<T>(
    limit: Duration,
    source_id: &str,
    read: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    match tokio::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                source_id,
                timeout_ms = limit.as_millis(),
                "origin read took longer than --origin-timeout-ms"
            );
            let error = FetchError::OriginTimeout;
            METRICS.s3_error("total", &error);
            Err(error)
        }
    }
}

/// Reads `key` in full from the Source's bucket, within `cap` and
/// `bounds`. With a stale cached copy, asks the origin with its ETag first
/// and keeps the copy when the origin says it has not changed.
async fn read_original(
    source: &SourceClient,
    key: &str,
    cap: u64,
    bounds: OriginBounds,
    stale: Option<Arc<CachedOriginal>>,
) -> Result<Arc<CachedOriginal>, FetchError> {
    within_origin_timeout(
        bounds.timeout,
        &source.source_id,
        read_original_unbounded(source, key, cap, bounds, stale),
    )
    .await
}

async fn read_original_unbounded(
    source: &SourceClient,
    key: &str,
    cap: u64,
    bounds: OriginBounds,
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
            confirmed_at: Instant::now(),
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
        (ObjectRead::Object(object), _) => read_body(source, *object, cap, bounds).await,
    }
}

/// Reads the body of a `GetObject` answer in full, within `cap` and the
/// idle timeout of `bounds`; a failure is counted in
/// `imgmesh_s3_errors_total{stage="body"}`.
async fn read_body(
    source: &SourceClient,
    object: GetObjectOutput,
    cap: u64,
    bounds: OriginBounds,
) -> Result<Arc<CachedOriginal>, FetchError> {
    read_body_counted(source, object, cap, bounds)
        .await
        .inspect_err(|error| METRICS.s3_error("body", error))
}

async fn read_body_counted(
    source: &SourceClient,
    object: GetObjectOutput,
    cap: u64,
    bounds: OriginBounds,
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
        BodyLimits {
            cap,
            idle_timeout: bounds.idle_timeout,
        },
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
        confirmed_at: Instant::now(),
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
/// and reduced to `OriginTimeout` when the origin went silent
/// ([`is_stall`]), else `OriginUnavailable`.
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
                if is_stall(&err) {
                    FetchError::OriginTimeout
                } else {
                    FetchError::OriginUnavailable
                }
            });
            Some((next, (body, source_id)))
        },
    ))
}

/// Whether a body error means the origin went silent rather than failed:
/// the SDK's stalled-stream protection (throughput under its minimum for
/// its grace period, 5 s) or a read that timed out, anywhere in the chain.
fn is_stall(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        // aws-smithy-runtime's `minimum_throughput::Error` is not exported
        // through aws-sdk-s3; its message is stable ("minimum throughput
        // was specified at …").
        if err.to_string().contains("minimum throughput") {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::primitives::ByteStreamError;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("minimum throughput was specified at 1 B/s, but throughput of 0 B/s was observed")]
    struct Throughput;

    /// A silent origin (a timed-out read, the SDK's throughput guard) is a
    /// stall; a reset or a refused connection is not.
    #[test]
    fn stalls_are_told_from_failures() {
        let timed_out = ByteStreamError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "read timed out",
        ));
        assert!(is_stall(&timed_out));
        let guarded = ByteStreamError::from(std::io::Error::other(Throughput));
        assert!(is_stall(&guarded));
        let reset = ByteStreamError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ));
        assert!(!is_stall(&reset));
    }
}
