//! A TCP connection that closes the way a draining server must: write
//! side first, then read until the peer closes too.
//!
//! When a server closes a socket that still has unread bytes in its receive
//! buffer (an HTTP/2 client's WINDOW_UPDATE or PING frames, sent while the
//! last response was still streaming), Linux answers with a TCP reset, and
//! the reset makes the client's kernel throw away whatever it had received
//! but not yet read: the tail of the last response. Seen in the scale-in
//! test: a renderer drained on SIGTERM, finished a large render, and its
//! gateway got `ConnectionReset` part way through the body (a 500).
//!
//! [`LingeringClose`] wraps each accepted connection: its `poll_shutdown`
//! (which h2 calls when a drained connection closes) sends FIN, then reads
//! and discards until the peer closes its side or [`LINGER`] passes, so
//! nothing unread is left when the socket is dropped.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The longest a closing connection waits for its peer to close.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// An accepted TCP connection with a lingering close.
pub(crate) struct LingeringClose {
    stream: TcpStream,
    closing: Option<Closing>,
}

/// Where a close has got to.
struct Closing {
    /// FIN sent.
    write_shut: bool,
    /// When the wait for the peer ends.
    deadline: Pin<Box<tokio::time::Sleep>>,
}

// === impl LingeringClose ===

impl LingeringClose {
    pub(crate) fn new(stream: TcpStream) -> LingeringClose {
        LingeringClose {
            stream,
            closing: None,
        }
    }
}

impl Connected for LingeringClose {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LingeringClose {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringClose {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let closing = this.closing.get_or_insert_with(|| Closing {
            write_shut: false,
            deadline: Box::pin(tokio::time::sleep(LINGER)),
        });
        if !closing.write_shut {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            closing.write_shut = true;
        }
        let mut scratch = [0u8; 4096];
        loop {
            if closing.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                // The peer closed (or the connection failed): nothing is
                // left to reset.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A close with the peer still sending: the server's last bytes all
    /// arrive (no reset), and the close waits for the peer's FIN.
    #[tokio::test]
    async fn the_peer_reads_everything_before_the_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            // Bytes the server never reads: a plain close would reset.
            stream.write_all(&[7u8; 64 * 1024]).await.unwrap();
            let mut received = Vec::new();
            stream.read_to_end(&mut received).await.unwrap();
            stream.shutdown().await.unwrap();
            received.len()
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut server = LingeringClose::new(stream);
        let body = vec![1u8; 4 * 1024 * 1024];
        server.write_all(&body).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(client.await.unwrap(), body.len());
    }
}
