//! An HTTP/1.1 reverse proxy between the fetcher and the S3 server that can
//! be switched, while the mesh runs, to misbehave the way S3 does: throttle
//! (503 `SlowDown`), fail (500 `InternalError`), refuse (403
//! `AccessDenied`), lose the object (404 `NoSuchKey`), reset the
//! connection, stall before the response headers or in the middle of the
//! body, or trickle the body a few bytes at a time.
//!
//! The proxy forwards every request unchanged (the `Host` header
//! included, so SigV4 signatures made for the proxy's address still verify
//! at the S3 server) and closes each connection after one response, so a
//! fault switched on applies to the very next request, never to a pooled
//! connection opened before. Every request is counted, so a test can tell
//! how often the fetcher asked (its retries included).
//!
//! ```no_run
//! # async fn demo(s3_endpoint: &str) -> anyhow::Result<()> {
//! use imgmesh_integration_tests::fault_proxy::{Fault, FaultProxy};
//! let proxy = FaultProxy::start(s3_endpoint).await?;
//! // Point a Source's endpoint at `proxy.endpoint()`, then:
//! proxy.set(Fault::SlowDown);
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest a stall holds a request when the fault is never switched off, so
/// a forgotten stall cannot hang a test run.
pub const MAX_STALL: Duration = Duration::from_secs(120);

/// How the proxy answers the requests it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward to S3 and relay its answer unchanged.
    Pass,
    /// 503 with S3's `SlowDown` error body (throttling).
    SlowDown,
    /// 500 with S3's `InternalError` error body.
    InternalError,
    /// 403 with S3's `AccessDenied` error body.
    AccessDenied,
    /// 404 with S3's `NoSuchKey` error body, whatever the key.
    NoSuchKey,
    /// Read the request, then reset the TCP connection (RST) without
    /// answering.
    Reset,
    /// Hold the request without sending any header until the fault is
    /// switched (or [`MAX_STALL`]); then forward it.
    StallBeforeHeaders,
    /// Send S3's headers and the first half of the body, then hold until
    /// the fault is switched (or [`MAX_STALL`]) and cut the body short.
    StallMidBody,
    /// Send S3's headers at once, then the body `chunk` bytes every
    /// `interval`.
    Trickle {
        /// Bytes per write.
        chunk: usize,
        /// Pause between writes.
        interval: Duration,
    },
}

/// Request counters of a [`FaultProxy`].
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    faulted: AtomicU64,
}

/// A running fault proxy; dropping it stops the proxy and every connection
/// it holds.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

// === impl FaultProxy ===

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (an
    /// `http://host:port` URL), in [`Fault::Pass`].
    pub async fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        let authority = upstream
            .strip_prefix("http://")
            .with_context(|| format!("upstream {upstream:?} is not an http:// URL"))?
            .trim_end_matches('/')
            .to_owned();
        let upstream: SocketAddr = tokio::net::lookup_host(&authority)
            .await?
            .next()
            .with_context(|| format!("{authority} resolves to nothing"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, _) = watch::channel(Fault::Pass);
        let counters = Arc::new(Counters::default());
        let shared = Shared {
            upstream,
            fault: fault.clone(),
            counters: counters.clone(),
        };
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(FaultProxy {
            addr,
            fault,
            counters,
            task,
        })
    }

    /// The proxy's endpoint URL, to use as a Source's S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches every following request (and releases held stalls) to `fault`.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The fault requests get now.
    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with a fault (anything but [`Fault::Pass`]) so far.
    pub fn faulted(&self) -> u64 {
        self.counters.faulted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every
        // connection task.
        self.task.abort();
    }
}

/// What every connection task needs.
#[derive(Debug, Clone)]
struct Shared {
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    counters: Arc<Counters>,
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

async fn accept_loop(listener: TcpListener, shared: Shared) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_connection(stream, shared.clone()));
            }
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Shared) {
    // A second descriptor of the same socket lets the request handler
    // reset the connection (SO_LINGER 0, then close) while hyper owns it.
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Ok(reset_handle) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let reset_handle = Arc::new(std::sync::Mutex::new(Some(reset_handle)));
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        let reset_handle = reset_handle.clone();
        async move { handle(request, &shared, &reset_handle).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        // One request per connection: a fault applies to the next request.
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    request: hyper::Request<Incoming>,
    shared: &Shared,
    reset_handle: &std::sync::Mutex<Option<std::net::TcpStream>>,
) -> Result<hyper::Response<ProxyBody>, std::io::Error> {
    shared.counters.requests.fetch_add(1, Ordering::SeqCst);
    let mut released = shared.fault.subscribe();
    let fault = *released.borrow_and_update();
    if fault != Fault::Pass {
        shared.counters.faulted.fetch_add(1, Ordering::SeqCst);
    }
    let head_only = request.method() == hyper::Method::HEAD;
    match fault {
        Fault::Pass => forward(request, shared.upstream).await,
        Fault::SlowDown => Ok(s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
            head_only,
        )),
        Fault::InternalError => Ok(s3_error(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
            head_only,
        )),
        Fault::AccessDenied => Ok(s3_error(403, "AccessDenied", "Access Denied", head_only)),
        Fault::NoSuchKey => Ok(s3_error(
            404,
            "NoSuchKey",
            "The specified key does not exist.",
            head_only,
        )),
        Fault::Reset => {
            // Read the whole request first: the fetcher has sent it when
            // the connection goes.
            let _ = request.into_body().collect().await;
            if let Some(handle) = reset_handle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take()
            {
                let _ = socket2::SockRef::from(&handle).set_linger(Some(Duration::ZERO));
            }
            // Returning an error makes hyper drop the connection without
            // an answer; with SO_LINGER 0 the close is a reset.
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault proxy: reset",
            ))
        }
        Fault::StallBeforeHeaders => {
            let _ = tokio::time::timeout(MAX_STALL, released.changed()).await;
            forward(request, shared.upstream).await
        }
        Fault::StallMidBody => {
            let (parts, body) = forward_collected(request, shared.upstream).await?;
            let half = body.slice(..body.len() / 2);
            let stream = futures::stream::unfold(
                (Some(half), released),
                |(first, mut released)| async move {
                    match first {
                        Some(half) => Some((Ok(Frame::data(half)), (None, released))),
                        None => {
                            let _ = tokio::time::timeout(MAX_STALL, released.changed()).await;
                            Some((
                                Err(std::io::Error::other("fault proxy: body cut short")),
                                (None, released),
                            ))
                        }
                    }
                },
            );
            Ok(hyper::Response::from_parts(
                parts,
                StreamBody::new(stream).boxed(),
            ))
        }
        Fault::Trickle { chunk, interval } => {
            let (parts, body) = forward_collected(request, shared.upstream).await?;
            let chunk = chunk.max(1);
            let stream =
                futures::stream::unfold((body, false), move |(rest, started)| async move {
                    if rest.is_empty() {
                        return None;
                    }
                    if started {
                        tokio::time::sleep(interval).await;
                    }
                    let mut rest = rest;
                    let piece = rest.split_to(chunk.min(rest.len()));
                    Some((Ok::<_, std::io::Error>(Frame::data(piece)), (rest, true)))
                });
            Ok(hyper::Response::from_parts(
                parts,
                StreamBody::new(stream).boxed(),
            ))
        }
    }
}

/// S3's XML error answer `code` with `status`.
fn s3_error(status: u16, code: &str, message: &str, head_only: bool) -> hyper::Response<ProxyBody> {
    let request_id = "FAULTPROXY0000001";
    let body = if head_only {
        Bytes::new()
    } else {
        Bytes::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>{request_id}</RequestId>\
             <HostId>fault-proxy</HostId></Error>"
        ))
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-amz-request-id", request_id)
        .body(
            Full::new(body)
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("a static response is valid")
}

/// Sends `request` to `upstream` on a new connection and relays the answer
/// as it streams.
async fn forward(
    request: hyper::Request<Incoming>,
    upstream: SocketAddr,
) -> Result<hyper::Response<ProxyBody>, std::io::Error> {
    let response = send_upstream(request, upstream).await?;
    Ok(response.map(|body| body.map_err(std::io::Error::other).boxed()))
}

/// Like [`forward`], with the upstream body read in full first.
async fn forward_collected(
    request: hyper::Request<Incoming>,
    upstream: SocketAddr,
) -> Result<(http::response::Parts, Bytes), std::io::Error> {
    let response = send_upstream(request, upstream).await?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((parts, body))
}

async fn send_upstream(
    request: hyper::Request<Incoming>,
    upstream: SocketAddr,
) -> Result<hyper::Response<Incoming>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let mut forwarded = hyper::Request::from_parts(parts, Full::new(body));
    // Origin-form on the wire; the Host header (which SigV4 signed) is kept.
    if let Some(path_and_query) = forwarded.uri().path_and_query().cloned() {
        *forwarded.uri_mut() = path_and_query
            .as_str()
            .parse()
            .map_err(std::io::Error::other)?;
    }
    sender
        .send_request(forwarded)
        .await
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny upstream that answers every request with `hello, world` and
    /// echoes the Host header it received.
    async fn upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |request: hyper::Request<Incoming>| async move {
                            let host = request
                                .headers()
                                .get("host")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("x-seen-host", host)
                                    .body(Full::new(Bytes::from_static(b"hello, world")))
                                    .unwrap(),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, task)
    }

    async fn get(addr: SocketAddr) -> anyhow::Result<crate::HttpResponse> {
        crate::get(addr, "signed.example:1234", "/bucket/key", &[]).await
    }

    /// Pass relays the answer and keeps the Host header; each canned fault
    /// answers its status and S3 error code; every request is counted.
    #[tokio::test]
    async fn passes_and_answers_canned_errors() {
        let (upstream, _task) = upstream().await;
        let proxy = FaultProxy::start(&format!("http://{upstream}"))
            .await
            .unwrap();
        let ok = get(proxy.addr()).await.unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(&ok.body[..], b"hello, world");
        assert_eq!(ok.header("x-seen-host"), Some("signed.example:1234"));
        for (fault, status, code) in [
            (Fault::SlowDown, 503, "<Code>SlowDown</Code>"),
            (Fault::InternalError, 500, "<Code>InternalError</Code>"),
            (Fault::AccessDenied, 403, "<Code>AccessDenied</Code>"),
            (Fault::NoSuchKey, 404, "<Code>NoSuchKey</Code>"),
        ] {
            proxy.set(fault);
            let response = get(proxy.addr()).await.unwrap();
            assert_eq!(response.status, status, "{fault:?}");
            assert!(
                response.text().contains(code),
                "{fault:?}: {}",
                response.text()
            );
        }
        assert_eq!(proxy.requests(), 5);
        assert_eq!(proxy.faulted(), 4);
    }

    /// A reset gets no answer; a stall holds the headers until released;
    /// a trickled body arrives whole but slowly.
    #[tokio::test]
    async fn resets_stalls_and_trickles() {
        let (upstream, _task) = upstream().await;
        let proxy = FaultProxy::start(&format!("http://{upstream}"))
            .await
            .unwrap();

        proxy.set(Fault::Reset);
        assert!(get(proxy.addr()).await.is_err());

        proxy.set(Fault::StallBeforeHeaders);
        let stalled = tokio::spawn(get(proxy.addr()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!stalled.is_finished());
        proxy.set(Fault::Pass);
        let released = tokio::time::timeout(Duration::from_secs(5), stalled)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&released.body[..], b"hello, world");

        proxy.set(Fault::StallMidBody);
        let stalled = tokio::spawn(get(proxy.addr()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!stalled.is_finished());
        proxy.set(Fault::Pass);
        let cut = tokio::time::timeout(Duration::from_secs(5), stalled)
            .await
            .unwrap()
            .unwrap();
        assert!(cut.is_err(), "a body cut short is an error: {cut:?}");

        proxy.set(Fault::Trickle {
            chunk: 4,
            interval: Duration::from_millis(100),
        });
        let started = std::time::Instant::now();
        let trickled = get(proxy.addr()).await.unwrap();
        assert_eq!(&trickled.body[..], b"hello, world");
        // 12 bytes in 3 writes: two pauses.
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
