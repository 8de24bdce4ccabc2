//! Moves an object's body from the origin to the caller: re-cut into chunks
//! of at most [`CHUNK_SIZE`], counted against the byte cap, through a
//! bounded channel so a slow caller slows the read from the origin instead
//! of filling memory.
//!
//! The declared `Content-Length` is checked before the first byte is sent
//! ([`check_declared_length`]); the bytes are counted again while they flow
//! ([`forward_body`]) because an origin can lie. No byte past the cap is
//! ever forwarded.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use imgmesh_proto::fetcher::v1::FetchObjectResponse;
use imgmesh_proto::fetcher::v1::fetch_object_response::Part;
use tokio::sync::mpsc;

use crate::fetch_error::FetchError;

/// Largest chunk message sent to the caller.
pub(crate) const CHUNK_SIZE: usize = 256 * 1024;
/// How long the origin may go without sending a byte mid-body.
pub(crate) const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages buffered per fetch before the origin read waits for the caller.
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
/// is streamed. A missing length is checked while streaming instead.
pub(crate) fn check_declared_length(
    content_length: Option<i64>,
    cap: u64,
) -> Result<(), FetchError> {
    match content_length.and_then(|len| u64::try_from(len).ok()) {
        Some(len) if len > cap => Err(FetchError::TooLarge { cap }),
        _ => Ok(()),
    }
}

/// Limits applied while a body is forwarded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// Most bytes forwarded before the fetch fails with `TooLarge`.
    pub(crate) cap: u64,
    /// Largest chunk message.
    pub(crate) chunk_size: usize,
    /// Longest wait for the origin's next bytes.
    pub(crate) idle_timeout: Duration,
}

// === impl BodyLimits ===

impl BodyLimits {
    /// The production limits with byte cap `cap`.
    pub(crate) fn with_cap(cap: u64) -> BodyLimits {
        BodyLimits {
            cap,
            chunk_size: CHUNK_SIZE,
            idle_timeout: BODY_IDLE_TIMEOUT,
        }
    }
}

/// How forwarding a body ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    /// Every byte was handed to the caller's stream.
    Complete {
        /// Bytes forwarded.
        bytes: u64,
    },
    /// The caller went away; reading stopped early.
    CallerGone,
}

/// Counts bytes against the cap and cuts them into chunks.
#[derive(Debug)]
struct ChunkAssembler {
    cap: u64,
    chunk_size: usize,
    received: u64,
    buffer: Vec<u8>,
}

// === impl ChunkAssembler ===

impl ChunkAssembler {
    fn new(cap: u64, chunk_size: usize) -> ChunkAssembler {
        ChunkAssembler {
            cap,
            chunk_size,
            received: 0,
            buffer: Vec::new(),
        }
    }

    /// Takes in the next bytes from the origin, failing once the total
    /// passes the cap (those bytes are never buffered).
    fn push(&mut self, bytes: &[u8]) -> Result<(), FetchError> {
        self.received = self.received.saturating_add(bytes.len() as u64);
        if self.received > self.cap {
            return Err(FetchError::TooLarge { cap: self.cap });
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// The next full chunk, if enough bytes are buffered.
    fn full_chunk(&mut self) -> Option<Vec<u8>> {
        if self.buffer.len() < self.chunk_size {
            return None;
        }
        let rest = self.buffer.split_off(self.chunk_size);
        Some(std::mem::replace(&mut self.buffer, rest))
    }

    /// Whatever is left once the body has ended.
    fn remainder(&mut self) -> Option<Vec<u8>> {
        (!self.buffer.is_empty()).then(|| std::mem::take(&mut self.buffer))
    }
}

/// Sends one chunk message; `false` when the caller has gone away.
async fn send_chunk(tx: &ResponseSender, chunk: Vec<u8>) -> bool {
    let message = FetchObjectResponse {
        part: Some(Part::Chunk(chunk.into())),
    };
    tx.send(Ok(message)).await.is_ok()
}

/// Reads `body` to its end and sends it to `tx` in chunks, within `limits`.
/// Waits whenever the channel is full, so the origin is read only as fast
/// as the caller consumes.
pub(crate) async fn forward_body<S>(
    mut body: S,
    limits: BodyLimits,
    tx: &ResponseSender,
) -> Result<Forwarded, FetchError>
where
    S: Stream<Item = Result<Bytes, FetchError>> + Unpin,
{
    let mut chunks = ChunkAssembler::new(limits.cap, limits.chunk_size);
    loop {
        let next = tokio::time::timeout(limits.idle_timeout, body.next())
            .await
            .map_err(|_| FetchError::OriginTimeout)?;
        let Some(bytes) = next else {
            if let Some(rest) = chunks.remainder()
                && !send_chunk(tx, rest).await
            {
                return Ok(Forwarded::CallerGone);
            }
            return Ok(Forwarded::Complete {
                bytes: chunks.received,
            });
        };
        chunks.push(&bytes?)?;
        while let Some(chunk) = chunks.full_chunk() {
            if !send_chunk(tx, chunk).await {
                return Ok(Forwarded::CallerGone);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    fn limits(cap: u64, chunk_size: usize) -> BodyLimits {
        BodyLimits {
            cap,
            chunk_size,
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

    /// Drains everything sent so far: the chunks' sizes and their bytes.
    fn drain(
        rx: &mut mpsc::Receiver<Result<FetchObjectResponse, tonic::Status>>,
    ) -> (Vec<usize>, Vec<u8>) {
        let mut sizes = Vec::new();
        let mut bytes = Vec::new();
        while let Ok(message) = rx.try_recv() {
            match message.unwrap().part {
                Some(Part::Chunk(chunk)) => {
                    sizes.push(chunk.len());
                    bytes.extend_from_slice(&chunk);
                }
                other => panic!("unexpected message {other:?}"),
            }
        }
        (sizes, bytes)
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

    /// Small origin frames are re-cut into full chunks plus one remainder, bytes intact.
    #[tokio::test]
    async fn bytes_are_rechunked_intact() {
        let (tx, mut rx) = mpsc::channel(64);
        let forwarded = forward_body(body(&[b"abc", b"defg", b"hij"]), limits(100, 4), &tx)
            .await
            .unwrap();
        assert_eq!(forwarded, Forwarded::Complete { bytes: 10 });
        let (sizes, bytes) = drain(&mut rx);
        assert_eq!(sizes, vec![4, 4, 2]);
        assert_eq!(bytes, b"abcdefghij");
    }

    /// A body exactly at the cap passes.
    #[tokio::test]
    async fn body_at_the_cap_passes() {
        let (tx, mut rx) = mpsc::channel(64);
        let forwarded = forward_body(body(&[b"12345", b"67890"]), limits(10, 4), &tx)
            .await
            .unwrap();
        assert_eq!(forwarded, Forwarded::Complete { bytes: 10 });
        assert_eq!(drain(&mut rx).1, b"1234567890");
    }

    /// A body that outgrows the cap fails, and no byte past the cap reaches the caller.
    #[tokio::test]
    async fn body_over_the_cap_fails_without_forwarding_the_excess() {
        let (tx, mut rx) = mpsc::channel(64);
        let err = forward_body(body(&[b"12345", b"67890", b"X"]), limits(10, 4), &tx)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { cap: 10 }), "{err:?}");
        let (_, bytes) = drain(&mut rx);
        assert!(bytes.len() <= 10);
        assert!(!bytes.contains(&b'X'));
    }

    /// A single origin frame larger than the cap fails before anything is sent.
    #[tokio::test]
    async fn one_huge_frame_fails_before_sending() {
        let (tx, mut rx) = mpsc::channel(64);
        let huge = vec![0u8; 1000];
        let err = forward_body(body(&[&huge]), limits(999, 256), &tx)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { cap: 999 }));
        assert_eq!(drain(&mut rx).0, Vec::<usize>::new());
    }

    /// An origin error mid-body ends the forward with that error.
    #[tokio::test]
    async fn origin_errors_end_the_forward() {
        let (tx, _rx) = mpsc::channel(64);
        let parts = stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(FetchError::OriginUnavailable),
        ]);
        let err = forward_body(parts, limits(100, 4), &tx).await.unwrap_err();
        assert!(matches!(err, FetchError::OriginUnavailable));
    }

    /// An origin that stalls mid-body fails with a timeout instead of hanging.
    #[tokio::test]
    async fn stalled_origin_times_out() {
        let (tx, _rx) = mpsc::channel(64);
        let stalled = body(&[b"abc"]).chain(stream::pending());
        let limits = BodyLimits {
            idle_timeout: Duration::from_millis(50),
            ..limits(100, 4)
        };
        let err = forward_body(stalled, limits, &tx).await.unwrap_err();
        assert!(matches!(err, FetchError::OriginTimeout));
    }

    /// When the caller hangs up, reading stops instead of failing.
    #[tokio::test]
    async fn caller_gone_stops_reading() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let forwarded = forward_body(body(&[b"abcdefgh"]), limits(100, 4), &tx)
            .await
            .unwrap();
        assert_eq!(forwarded, Forwarded::CallerGone);
    }

    /// With a full channel the origin is not read further until the caller catches up.
    #[tokio::test]
    async fn full_channel_applies_backpressure() {
        let (tx, mut rx) = mpsc::channel(1);
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = read.clone();
        let parts =
            stream::iter((0..10).map(|_| Ok(Bytes::from_static(b"abcd")))).inspect(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        let forward = tokio::spawn(async move { forward_body(parts, limits(100, 4), &tx).await });
        // The first chunk fills the channel; the second is read and waits to be sent.
        let first = rx.recv().await.unwrap().unwrap();
        assert!(matches!(first.part, Some(Part::Chunk(_))));
        let mut received = 1;
        while rx.recv().await.is_some() {
            received += 1;
            // Never more than the channel's one buffered message plus the
            // one waiting in `send` ahead of what the caller has taken.
            let origin_reads = read.load(std::sync::atomic::Ordering::SeqCst);
            assert!(
                origin_reads <= received + 2,
                "{origin_reads} reads for {received} received"
            );
        }
        assert_eq!(received, 10);
        assert_eq!(
            forward.await.unwrap().unwrap(),
            Forwarded::Complete { bytes: 40 }
        );
    }
}
