//! `GET /metrics`: the handler, a router holding just it, a server for
//! services whose only other listener speaks gRPC, and [`scrape`] for
//! tests and tools that read it.

use std::future::Future;

use anyhow::Context as _;
use axum::Router;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::{CONTENT_TYPE, encode};

/// Answers a scrape with everything in the process's registry.
pub async fn handler() -> Response {
    let mut response = encode().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    // A scrape must see current values, never a proxy's copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A router answering `GET /metrics` (and 404 elsewhere); merge it into a
/// service's operations router, or [`serve`] it on a listener of its own.
pub fn router() -> Router {
    Router::new().route("/metrics", get(handler))
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets
/// in-flight scrapes finish.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_router(listener, router(), shutdown).await
}

/// Serves `routes` ([`router`] with whatever else the listener answers,
/// e.g. a service's health probes) on `listener` until `shutdown`
/// resolves, then lets in-flight requests finish.
pub async fn serve_router(
    listener: TcpListener,
    routes: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown)
        .await
        .context("metrics server failed")
}

/// `GET /metrics` from `addr` over a fresh connection: the raw HTTP/1.1
/// response, head and body.
pub async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::registry;

    /// A real listener answers `GET /metrics` with the OpenMetrics content
    /// type and the registered metrics, 404 elsewhere, and stops on shutdown.
    #[tokio::test]
    async fn serves_metrics_until_shutdown() {
        let counter = Counter::<u64>::default();
        registry().lock().unwrap().register(
            "imgmesh_test_scrapes_served",
            "Counted by the endpoint test",
            counter.clone(),
        );
        counter.inc();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async {
            let _ = stopped.await;
        }));

        let response = raw_get(addr, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains(&format!("content-type: {CONTENT_TYPE}\r\n")),
            "{response}"
        );
        assert!(
            response.contains("\nimgmesh_test_scrapes_served_total 1\n"),
            "{response}"
        );
        let missing = raw_get(addr, "/other").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }
}
