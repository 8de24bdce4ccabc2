//! A bound on how long the admin API waits for a request body.
//!
//! Every admin request body is wrapped so that each piece of it must arrive
//! within the body read timeout of the previous one (or of the handler
//! starting to read it). A client that declares `Content-Length: 100`,
//! sends ten bytes and stalls gets a 408 instead of holding the request —
//! and, for an upload, the registry call — open forever. The clock runs only
//! while a handler waits for the client, so a large upload on a steady
//! connection is never cut short.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body gives when the client stopped sending it.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {timeout:?}")]
struct BodyTimedOut {
    timeout: Duration,
}

/// Whether a body error is (or wraps) a body read timeout.
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// A body whose frames must each arrive within `timeout` of the previous
/// one; after that it ends with an error [`is_body_timeout`] recognises.
#[derive(Debug)]
pub(crate) struct IdleTimeoutBody {
    inner: Body,
    timeout: Duration,
    /// Armed on the first poll that finds nothing ready, reset by every frame.
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

// === impl IdleTimeoutBody ===

impl IdleTimeoutBody {
    /// Wraps `inner`, allowing at most `timeout` between two of its frames.
    pub(crate) fn new(inner: Body, timeout: Duration) -> IdleTimeoutBody {
        IdleTimeoutBody {
            inner,
            timeout,
            deadline: None,
            timed_out: false,
        }
    }
}

impl HttpBody for IdleTimeoutBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            // Something arrived: the next wait starts afresh.
            this.deadline = None;
            return Poll::Ready(frame);
        }
        let timeout = this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        ready!(deadline.as_mut().poll(cx));
        this.timed_out = true;
        Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut { timeout }))))
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// Gaps shorter than the timeout are waited out; a longer one ends the body with an error found through axum's wrapping.
    #[tokio::test]
    async fn stalled_bodies_end_with_a_timeout() {
        let timeout = Duration::from_millis(300);
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
        let body = Body::new(IdleTimeoutBody::new(
            Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver)),
            timeout,
        ));
        let feeder = tokio::spawn(async move {
            for chunk in ["ab", "cd", "ef"] {
                // Each gap is under the timeout; together they are over it.
                tokio::time::sleep(Duration::from_millis(150)).await;
                sender.send(Ok(Bytes::from(chunk))).await.unwrap();
            }
            // Then nothing more, with the stream still open.
            std::future::pending::<()>().await;
        });
        let started = Instant::now();
        let error = axum::body::to_bytes(body, 1024).await.unwrap_err();
        assert!(is_body_timeout(&error), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(450) + timeout);
        feeder.abort();

        let whole = Body::new(IdleTimeoutBody::new(Body::from("complete"), timeout));
        assert_eq!(axum::body::to_bytes(whole, 1024).await.unwrap(), "complete");
        assert!(!is_body_timeout(&std::io::Error::other("connection reset")));
    }
}
