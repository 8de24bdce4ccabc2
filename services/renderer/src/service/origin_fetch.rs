//! Reading originals through the fetcher's `FetchObject` stream.
//!
//! The stream is collected into memory with the byte cap enforced twice:
//! against the size the fetcher announces first, and against the bytes that
//! actually arrive. The fetcher's statuses pass through unchanged (its
//! messages are public-safe); statuses from the transport itself (the
//! fetcher is down, a deadline passed) get a generic message instead of the
//! transport's text.

use std::time::Duration;

use imgmesh_errors::{ERROR_DOMAIN, ErrorCode};
use imgmesh_proto::fetcher::v1::FetchObjectRequest;
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use imgmesh_proto::fetcher::v1::fetcher_service_client::FetcherServiceClient;
use imgmesh_runtime::GrpcChannel;
use imgmesh_telemetry::TraceContextInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic_types::StatusExt as _;
use tracing::Instrument as _;

use crate::error::RenderError;
use crate::service::http_cache::OriginCaching;

/// Names one original.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRef<'a> {
    /// Source id.
    pub source_id: &'a str,
    /// The Source's config version the caller knows.
    pub source_config_version: u64,
    /// Asset path relative to the Source's prefix.
    pub path: &'a str,
    /// The path's purge generation (see `FetchObjectRequest`); empty for
    /// overlays.
    pub generation: &'a str,
}

/// An original, whole, with what the origin said about it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// Its ETag, with quotes; empty when the origin gave none.
    pub etag: String,
    /// Its Last-Modified, Unix seconds; 0 when unknown.
    pub last_modified: i64,
    /// Its caching headers.
    pub caching: OriginCaching,
}

/// What a conditional fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidated {
    /// The object still has the ETag the caller holds; here are its
    /// current caching headers.
    Unchanged(OriginCaching),
    /// The object changed.
    Changed(Original),
}

impl std::fmt::Debug for Original {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Original")
            .field("bytes", &self.bytes.len())
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .field("caching", &self.caching)
            .finish()
    }
}

/// A client of the fetcher that returns whole originals.
#[derive(Debug, Clone)]
pub struct OriginFetcher {
    client: FetcherServiceClient<InterceptedService<GrpcChannel, TraceContextInterceptor>>,
    max_object_bytes: u64,
}

// === impl OriginFetcher ===

impl OriginFetcher {
    /// A fetcher client on `channel` accepting originals up to
    /// `max_object_bytes`.
    pub fn new(channel: GrpcChannel, max_object_bytes: u64) -> OriginFetcher {
        OriginFetcher {
            client: FetcherServiceClient::with_interceptor(channel, TraceContextInterceptor),
            max_object_bytes,
        }
    }

    /// Fetches `object` whole. `timeout` is the caller's remaining budget,
    /// passed on to the fetcher as the call's deadline.
    pub async fn fetch(
        &self,
        object: ObjectRef<'_>,
        timeout: Option<Duration>,
    ) -> Result<Original, RenderError> {
        match self.fetch_if_changed(object, "", timeout).await? {
            Revalidated::Changed(original) => Ok(original),
            // Only a conditional request can be answered "not modified".
            Revalidated::Unchanged(_) => Err(RenderError::Internal {
                context: "reading an unconditional fetch",
            }),
        }
    }

    /// Fetches `object` unless its ETag is still `etag` (the copy the
    /// caller rendered from); an empty `etag` always fetches.
    pub async fn fetch_if_changed(
        &self,
        object: ObjectRef<'_>,
        etag: &str,
        timeout: Option<Duration>,
    ) -> Result<Revalidated, RenderError> {
        let span = tracing::info_span!(
            "fetch",
            bytes = tracing::field::Empty,
            conditional = !etag.is_empty(),
            not_modified = tracing::field::Empty,
        );
        async {
            let fetched = self.fetch_inner(object, etag, timeout).await?;
            match &fetched {
                Revalidated::Changed(original) => {
                    tracing::Span::current().record("bytes", original.bytes.len());
                }
                Revalidated::Unchanged(_) => {
                    tracing::Span::current().record("not_modified", true);
                }
            }
            Ok(fetched)
        }
        .instrument(span)
        .await
    }

    async fn fetch_inner(
        &self,
        object: ObjectRef<'_>,
        etag: &str,
        timeout: Option<Duration>,
    ) -> Result<Revalidated, RenderError> {
        let limit = self.max_object_bytes;
        let too_large = || RenderError::ObjectTooLarge { limit };
        let mut request = tonic::Request::new(FetchObjectRequest {
            source_id: object.source_id.to_owned(),
            path: object.path.to_owned(),
            max_bytes: limit,
            source_config_version: object.source_config_version,
            if_none_match: etag.to_owned(),
            cache_generation: object.generation.to_owned(),
        });
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        let mut stream = self
            .client
            .clone()
            .fetch_object(request)
            .await
            .map_err(fetch_error)?
            .into_inner();
        let mut original = Original::default();
        while let Some(message) = stream.message().await.map_err(fetch_error)? {
            match message.part {
                Some(Part::Metadata(metadata)) => {
                    let caching = OriginCaching {
                        cache_control: metadata.cache_control,
                        expires: metadata.expires,
                    };
                    if metadata.not_modified {
                        return Ok(Revalidated::Unchanged(caching));
                    }
                    if metadata.size > limit {
                        return Err(too_large());
                    }
                    // The announced size is within the cap, so it fits a usize.
                    original
                        .bytes
                        .reserve_exact(usize::try_from(metadata.size).unwrap_or(0));
                    original.etag = metadata.etag;
                    original.last_modified = metadata.last_modified;
                    original.caching = caching;
                }
                Some(Part::Chunk(chunk)) => {
                    if (original.bytes.len() + chunk.len()) as u64 > limit {
                        return Err(too_large());
                    }
                    original.bytes.extend_from_slice(&chunk);
                }
                None => {}
            }
        }
        Ok(Revalidated::Changed(original))
    }
}

/// Maps a status from the fetcher call to a render error.
fn fetch_error(status: tonic::Status) -> RenderError {
    let code = ErrorCode::of_status(&status);
    let from_imgmesh = status
        .get_details_error_info()
        .is_some_and(|info| info.domain == ERROR_DOMAIN);
    let message = if from_imgmesh {
        status.message().to_owned()
    } else {
        // The transport's own text (addresses, OS errors) is for operators.
        tracing::warn!(code = ?status.code(), message = status.message(), "fetcher call failed");
        match code {
            ErrorCode::OriginTimeout => "fetching the original timed out",
            ErrorCode::Unavailable => "the fetcher is unavailable",
            _ => "fetching the original failed",
        }
        .to_owned()
    };
    RenderError::Fetch { code, message }
}

/// Reads the caller's `grpc-timeout` header (the remaining budget of its
/// deadline), per the gRPC over HTTP/2 spec: up to 8 digits and a unit.
pub(crate) fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    imgmesh_runtime::grpc_retry::parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid grpc-timeout values parse in every unit; malformed ones are ignored.
    #[test]
    fn parses_grpc_timeout() {
        let cases = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("99999999u", Some(Duration::from_micros(99_999_999))),
            ("5n", Some(Duration::from_nanos(5))),
            ("m", None),
            ("123456789m", None),
            ("-1S", None),
            ("10x", None),
            ("1.5S", None),
        ];
        for (value, expected) in cases {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), expected, "{value}");
        }
        assert_eq!(grpc_timeout(&tonic::metadata::MetadataMap::new()), None);
    }
}
