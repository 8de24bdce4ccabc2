//! Serving a router (or any service of requests) on a TCP listener with
//! the connection limits axum's own `serve` does not offer: a client has
//! `header_read_timeout` to send a request head (a slow or stalled client
//! is disconnected instead of holding a connection forever), every request
//! carries the peer's address as axum's [`ConnectInfo`], and shutdown stops
//! accepting, lets in-flight requests finish and closes idle connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// How connections on one listener are served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionOptions {
    /// How long a client may take to send a request's head (request line
    /// and headers); an idle keep-alive connection is closed after it too.
    pub(crate) header_read_timeout: Duration,
    /// Whether to turn off Nagle's algorithm, so small responses (errors,
    /// HEAD) leave at once.
    pub(crate) nodelay: bool,
}

/// Serves `router` (an [`axum::Router`], or any service like one) on
/// `listener` until `shutdown` resolves, then stops accepting and returns
/// once every open connection has finished its in-flight requests (the
/// caller bounds that wait).
pub(crate) async fn serve<S, F>(
    listener: TcpListener,
    router: S,
    options: ConnectionOptions,
    shutdown: F,
) where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()> + Send,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Per-connection errors (the peer reset before accept) are
                // harmless; anything else (too many open files) needs a
                // pause, or the loop would spin.
                if !is_connection_error(&error) {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        if options.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let version = request.version();
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            let handled = router.clone().oneshot(request);
            // The client a refused miss counts as in the render limit's
            // demand (crate::upstream::HTTP1_CLIENT): its connection on
            // HTTP/1, which carries one request at a time.
            let http1 = version != http::Version::HTTP_2;
            async move {
                if http1 {
                    crate::upstream::HTTP1_CLIENT.scope(peer, handled).await
                } else {
                    handled.await
                }
            }
        });
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let first_byte_timeout = options.header_read_timeout;
        tokio::spawn(async move {
            // hyper's header timeout starts once it knows the protocol, and
            // telling HTTP/1 from HTTP/2 waits for the first bytes without
            // a limit: a client that connects and sends nothing gets the
            // same time to start as it gets to finish its head.
            // `peek` waits for a byte (or the end) without taking it;
            // `readable()` may report a fresh socket ready before any data.
            let mut first = [0u8; 1];
            if tokio::time::timeout(first_byte_timeout, stream.peek(&mut first))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "closing a connection that sent nothing");
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
