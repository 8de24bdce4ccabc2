//! Moves an object's body from the origin to the caller.
//!
//! The origin's body is read in full ([`collect_body`]), counted against the
//! byte cap as it arrives and bounded by an idle timeout, so a finished read
//! can be kept in the original cache and shared by concurrent callers. The
//! declared `Content-Length` is checked before reading
//! ([`check_declared_length`]); the bytes are counted again while they flow
//! because an origin can lie. Callers then receive the bytes from memory in
//! chunks of at most [`CHUNK_SIZE`] ([`send_original`]) through a bounded
//! channel; chunks are slices of the one buffer, never copies.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use imgmesh_proto::fetcher::v1::{FetchObjectResponse, ObjectMetadata};
use tokio::sync::mpsc;

use crate::fetch_error::FetchError;
use crate::metrics::METRICS;
use crate::original_cache::CachedOriginal;

/// Largest chunk message sent to the caller.
pub(crate) const CHUNK_SIZE: usize = 256 * 1024;
/// Messages buffered per fetch before sending waits for the caller.
pub(crate) const CHANNEL_CAPACITY: usize = 4;

/// The sending half of one `FetchObject` response stream.
pub(crate) type ResponseSender = mpsc::Sender<Result<FetchObjectResponse, tonic::Status>>;

/// The byte cap for one request: the fetcher's own, or the caller's when it
/// asks for less (0 means the caller has no limit of its own).
pub(crate) fn effective_cap(requested: u64, configured: u64) -> u64 {
    if requested == 0 {
        configured
    } else {
        requested.min(configured)
    }
}

/// Refuses an object whose declared length is over `cap` before any of it
/// is read. A missing length is checked while reading instead.
pub(crate) fn check_declared_length(
    content_length: Option<i64>,
    cap: u64,
) -> Result<(), FetchError> {
    match content_length.and_then(|len| u64::try_from(len).ok()) {
        Some(len) if len > cap => Err(FetchError::TooLarge { cap }),
        _ => Ok(()),
    }
}

/// Limits applied while a body is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// Most bytes read before the fetch fails with `TooLarge`.
    pub(crate) cap: u64,
    /// Longest wait for the origin's next bytes
    /// (`--origin-attempt-timeout-ms`).
    pub(crate) idle_timeout: Duration,
}

/// Reads `body` to its end within `limits`; `size_hint` (the declared
/// length, when known) sizes the buffer once. Bytes past the cap are never
/// buffered. Every byte received is counted in `imgmesh_s3_bytes_read_total`.
pub(crate) async fn collect_body<S>(
    mut body: S,
    limits: BodyLimits,
    size_hint: Option<u64>,
) -> Result<Bytes, FetchError>
where
    S: Stream<Item = Result<Bytes, FetchError>> + Unpin,
{
    let capacity = size_hint.unwrap_or(0).min(limits.cap);
    let mut buffer = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    loop {
        let next = tokio::time::timeout(limits.idle_timeout, body.next())
            .await
            .map_err(|_| FetchError::OriginTimeout)?;
        let Some(bytes) = next else {
            return Ok(buffer.freeze());
        };
        let bytes = bytes?;
        METRICS.s3_bytes_read(bytes.len());
        if (buffer.len() + bytes.len()) as u64 > limits.cap {
            return Err(FetchError::TooLarge { cap: limits.cap });
        }
        buffer.extend_from_slice(&bytes);
    }
}

/// Sends `original` to `tx`: its metadata, then its bytes in chunks of at
/// most `chunk_size`. Stops quietly when the caller goes away.
pub(crate) async fn send_original(
    original: &CachedOriginal,
    chunk_size: usize,
    tx: ResponseSender,
) {
    let metadata = ObjectMetadata {
        size: original.body.len() as u64,
        content_type: original.content_type.clone(),
        etag: original.etag.clone(),
        last_modified: original.last_modified,
        cache_control: original.caching.cache_control.clone(),
        expires: original.caching.expires,
        not_modified: false,
    };
    let mut messages = std::iter::once(Part::Metadata(metadata))
        .chain(chunks(&original.body, chunk_size).map(Part::Chunk));
    for part in messages.by_ref() {
        let message = FetchObjectResponse { part: Some(part) };
        if tx.send(Ok(message)).await.is_err() {
            tracing::debug!("caller went away mid-body");
            return;
        }
    }
}

/// `body` cut into slices of at most `chunk_size` bytes (none when empty).
fn chunks(body: &Bytes, chunk_size: usize) -> impl Iterator<Item = Bytes> + '_ {
    (0..body.len())
        .step_by(chunk_size.max(1))
        .map(move |start| body.slice(start..(start + chunk_size).min(body.len())))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use futures::stream;

    use super::*;
    use crate::s3_client::OriginCaching;

    fn limits(cap: u64) -> BodyLimits {
        BodyLimits {
            cap,
            idle_timeout: Duration::from_secs(5),
        }
    }

    fn body(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, FetchError>> + Unpin {
        let parts: Vec<_> = parts
            .iter()
            .map(|part| Ok(Bytes::copy_from_slice(part)))
            .collect();
        stream::iter(parts)
    }

    /// The caller's cap applies only when it is smaller than the fetcher's.
    #[test]
    fn effective_cap_is_the_smaller_one() {
        assert_eq!(effective_cap(0, 1000), 1000);
        assert_eq!(effective_cap(10, 1000), 10);
        assert_eq!(effective_cap(5000, 1000), 1000);
        assert_eq!(effective_cap(1000, 1000), 1000);
    }

    /// A declared length over the cap is refused; at or under it, or missing, passes.
    #[test]
    fn declared_length_is_checked_against_the_cap() {
        assert!(matches!(
            check_declared_length(Some(101), 100),
            Err(FetchError::TooLarge { cap: 100 })
        ));
        assert!(check_declared_length(Some(100), 100).is_ok());
        assert!(check_declared_length(None, 100).is_ok());
        assert!(check_declared_length(Some(-1), 100).is_ok());
    }

    /// Origin frames are joined intact, and a body exactly at the cap passes.
    #[tokio::test]
    async fn body_at_the_cap_is_collected_intact() {
        let bytes = collect_body(body(&[b"12345", b"67890"]), limits(10), None)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"1234567890");
    }

    /// A body that outgrows the cap fails (a lying Content-Length included).
    #[tokio::test]
    async fn body_over_the_cap_fails() {
        let err = collect_body(body(&[b"12345", b"67890", b"X"]), limits(10), Some(5))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { cap: 10 }), "{err:?}");
        let huge = vec![0u8; 1000];
        let err = collect_body(body(&[&huge]), limits(999), None)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { cap: 999 }));
    }

    /// An origin error mid-body ends the read with that error.
    #[tokio::test]
    async fn origin_errors_end_the_read() {
        let parts = stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(FetchError::OriginUnavailable),
        ]);
        let err = collect_body(parts, limits(100), None).await.unwrap_err();
        assert!(matches!(err, FetchError::OriginUnavailable));
    }

    /// An origin that stalls mid-body fails with a timeout instead of hanging.
    #[tokio::test]
    async fn stalled_origin_times_out() {
        let stalled = body(&[b"abc"]).chain(stream::pending());
        let limits = BodyLimits {
            idle_timeout: Duration::from_millis(50),
            ..limits(100)
        };
        let err = collect_body(stalled, limits, None).await.unwrap_err();
        assert!(matches!(err, FetchError::OriginTimeout));
    }

    /// The caller gets the metadata first, then the bytes in full chunks
    /// plus one remainder, intact.
    #[tokio::test]
    async fn original_is_sent_as_metadata_then_chunks() {
        let original = CachedOriginal {
            body: Bytes::from_static(b"abcdefghij"),
            content_type: "image/png".to_owned(),
            etag: "\"e\"".to_owned(),
            last_modified: 42,
            caching: OriginCaching::default(),
            validated_at: Instant::now(),
            confirmed_at: Instant::now(),
        };
        let (tx, mut rx) = mpsc::channel(64);
        send_original(&original, 4, tx).await;
        let first = rx.recv().await.unwrap().unwrap();
        let Some(Part::Metadata(metadata)) = first.part else {
            panic!("metadata first, got {first:?}");
        };
        assert_eq!(metadata.size, 10);
        assert_eq!(metadata.etag, "\"e\"");
        assert_eq!(metadata.last_modified, 42);
        let mut sizes = Vec::new();
        let mut bytes = Vec::new();
        while let Some(message) = rx.recv().await {
            let Some(Part::Chunk(chunk)) = message.unwrap().part else {
                panic!("only chunks after the metadata");
            };
            sizes.push(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(bytes, b"abcdefghij");
    }

    /// An empty object is metadata alone; a gone caller stops the send.
    #[tokio::test]
    async fn empty_object_and_gone_caller() {
        let original = CachedOriginal {
            body: Bytes::new(),
            content_type: String::new(),
            etag: String::new(),
            last_modified: 0,
            caching: OriginCaching::default(),
            validated_at: Instant::now(),
            confirmed_at: Instant::now(),
        };
        let (tx, mut rx) = mpsc::channel(64);
        send_original(&original, 4, tx).await;
        assert!(matches!(
            rx.recv().await.unwrap().unwrap().part,
            Some(Part::Metadata(_))
        ));
        assert!(rx.recv().await.is_none());

        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        send_original(&original, 4, tx).await;
    }
}
