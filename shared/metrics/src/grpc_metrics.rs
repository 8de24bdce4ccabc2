//! Per-call metrics of gRPC servers and clients.
//!
//! Servers get them from [`GrpcMetricsLayer`], a tower layer around their
//! routes (`imgmesh_runtime::serve_grpc` installs it); clients from
//! [`GrpcClientCall`], which `imgmesh_runtime::GrpcChannel` starts for every
//! call it sends. Two sets of names are exported:
//!
//! - the grpc-ecosystem names and labels (those of `go-grpc-prometheus` and
//!   `go-grpc-middleware`), so stock gRPC dashboards and alerts work:
//!   `grpc_server_started_total{grpc_type,grpc_service,grpc_method}`,
//!   `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`
//!   and the histogram `grpc_server_handling_seconds{grpc_type,grpc_service,
//!   grpc_method}`, and the same three with `grpc_client_` for calls this
//!   process makes. `grpc_type` is `unary`, `server_stream`,
//!   `client_stream` or `bidi_stream`; `grpc_code` is the canonical code
//!   name (`OK`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`, …). A client call is
//!   counted once however many replicas its retry tried;
//! - on servers only, imgmesh's own older names, kept for the alerts and
//!   tests written against them: `imgmesh_grpc_requests_total{service,
//!   method,code}` with the code as a number (`code="0"` for OK, `"5"` for
//!   NOT_FOUND) and `imgmesh_grpc_request_duration_seconds{service,method}`.
//!
//! A call is timed from the request's arrival (server) or sending (client)
//! to the end of its response. Where the code is read: an error that
//! happens before any message is sent as a trailers-only response, with
//! `grpc-status` in the response headers; every other response (successful
//! unary calls included) carries it in the trailers after the body. So the
//! code is looked for in the headers first and, when it is not there, the
//! body is wrapped and the trailers read as they pass. A call whose
//! response body is dropped before it ends (the client went away, or
//! stopped reading a stream) counts as CANCELLED; a body that ends without
//! trailers, or fails, counts as UNKNOWN, which is what the client sees.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use crate::{latency_histogram, register};

/// Most distinct `service`/`method` pairs labelled; calls to further paths
/// (which only a client probing for methods sends) share `other`, so such a
/// client cannot grow the registry without bound.
const MAX_METHODS: usize = 256;

/// The `code` label (of `imgmesh_grpc_requests_total`) of every gRPC status
/// code, indexed by the code.
const CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// The canonical name of every gRPC status code (the `grpc_code` label),
/// indexed by the code, as the gRPC status code documentation spells them.
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// A gRPC status code, as an index into [`CODES`] and [`CODE_NAMES`].
type Code = usize;
/// CANCELLED: the client went away before the response ended.
const CANCELLED: Code = 1;
/// UNKNOWN: the response ended without a status, or failed.
const UNKNOWN: Code = 2;

/// The methods of imgmesh's services (and the standard ones it serves)
/// that stream, with their `grpc_type`; every other method is `unary`.
/// A test checks this list against the `.proto` files.
pub const STREAMING_METHODS: &[(&str, &str)] = &[
    (
        "/imgmesh.fetcher.v1.FetcherService/FetchObject",
        "server_stream",
    ),
    (
        "/imgmesh.registry.v1.SourceRegistryService/UploadObject",
        "client_stream",
    ),
    (
        "/imgmesh.renderer.v1.RendererService/RenderSet",
        "server_stream",
    ),
    (
        "/imgmesh.renderer.v1.RendererService/RenderBytes",
        "client_stream",
    ),
    ("/imgmesh.image.v1.ImageService/Render", "server_stream"),
    ("/imgmesh.image.v1.ImageService/RenderSet", "server_stream"),
    ("/imgmesh.image.v1.ImageService/RenderBytes", "bidi_stream"),
    ("/grpc.health.v1.Health/Watch", "server_stream"),
];

/// The `grpc_type` of the method at `path` (`/<service>/<method>`).
pub fn grpc_type(path: &str) -> &'static str {
    STREAMING_METHODS
        .iter()
        .find(|(method, _)| *method == path)
        .map_or("unary", |(_, kind)| kind)
}

/// Labels naming the called method (`imgmesh_grpc_request_duration_seconds`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    /// The fully qualified service, e.g. `imgmesh.fetcher.v1.FetcherService`.
    service: String,
    /// The method, e.g. `FetchObject`.
    method: String,
}

/// Labels of one finished call (`imgmesh_grpc_requests_total`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    /// The gRPC status code, as a number.
    code: &'static str,
}

/// The grpc-ecosystem labels of a method (`grpc_*_started_total`,
/// `grpc_*_handling_seconds`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EcosystemLabels {
    /// `unary`, `server_stream`, `client_stream` or `bidi_stream`.
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

/// The grpc-ecosystem labels of a finished call (`grpc_*_handled_total`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EcosystemCallLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    /// The canonical code name, e.g. `OK`.
    grpc_code: &'static str,
}

/// One side's (server's or client's) grpc-ecosystem metrics.
#[derive(Debug)]
struct EcosystemMetrics {
    started: Family<EcosystemLabels, Counter>,
    handled: Family<EcosystemCallLabels, Counter>,
    handling: Family<EcosystemLabels, Histogram, fn() -> Histogram>,
}

// === impl EcosystemMetrics ===

impl EcosystemMetrics {
    /// Registers `grpc_<side>_started_total`, `…_handled_total` and
    /// `…_handling_seconds`; `what` describes the calls in the help texts.
    fn register(side: &str, what: &str) -> EcosystemMetrics {
        register(|metrics| EcosystemMetrics {
            started: metrics.metric(
                format!("grpc_{side}_started"),
                format!("gRPC calls {what} started"),
                Family::default(),
            ),
            handled: metrics.metric(
                format!("grpc_{side}_handled"),
                format!("gRPC calls {what} finished, by status code"),
                Family::default(),
            ),
            handling: metrics.metric_with_unit(
                format!("grpc_{side}_handling"),
                format!("Time from the start of a gRPC call {what} to the end of its response"),
                Unit::Seconds,
                Family::new_with_constructor(latency_histogram),
            ),
        })
    }
}

/// The gRPC server metrics of this process.
#[derive(Debug)]
struct GrpcServerMetrics {
    requests: Family<CallLabels, Counter>,
    durations: Family<MethodLabels, Histogram, fn() -> Histogram>,
    ecosystem: EcosystemMetrics,
}

static SERVER: LazyLock<GrpcServerMetrics> = LazyLock::new(|| {
    let ecosystem = EcosystemMetrics::register("server", "answered");
    register(|metrics| GrpcServerMetrics {
        requests: metrics.metric(
            "imgmesh_grpc_requests",
            "gRPC calls answered, by service, method and status code",
            Family::default(),
        ),
        durations: metrics.metric_with_unit(
            "imgmesh_grpc_request_duration",
            "Time from a gRPC call's arrival to the end of its response",
            Unit::Seconds,
            Family::new_with_constructor(latency_histogram),
        ),
        ecosystem,
    })
});

/// The gRPC client metrics of this process.
static CLIENT: LazyLock<EcosystemMetrics> =
    LazyLock::new(|| EcosystemMetrics::register("client", "made"));

/// The `service`/`method` pairs labelled so far (see [`MAX_METHODS`]).
static METHODS: LazyLock<Mutex<HashSet<MethodLabels>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// The labels for a call to `path` (`/<service>/<method>`).
fn method_labels(path: &str) -> MethodLabels {
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .filter(|(service, method)| {
            !service.is_empty() && !method.is_empty() && !method.contains('/')
        })
        .unwrap_or(("other", "other"));
    let labels = MethodLabels {
        service: service.to_owned(),
        method: method.to_owned(),
    };
    let mut methods = METHODS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if methods.contains(&labels) {
        return labels;
    }
    if methods.len() < MAX_METHODS {
        methods.insert(labels.clone());
        return labels;
    }
    MethodLabels {
        service: "other".to_owned(),
        method: "other".to_owned(),
    }
}

/// Counts and times every call of the service it wraps; see the module
/// documentation for the metrics and where the status code is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        // Registered now, so a scrape before the first call already shows
        // the metrics (empty).
        LazyLock::force(&SERVER);
        GrpcMetrics { inner }
    }
}

/// A gRPC service whose calls are counted and timed (made by
/// [`GrpcMetricsLayer`]).
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

// === impl GrpcMetrics ===

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Body,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> MeteredFuture<S::Future> {
        let call = PendingCall::start(Side::Server, request.uri().path());
        MeteredFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

/// Which end of a call this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// A call not counted yet: counted exactly once, by [`PendingCall::finish`]
/// or, if it is dropped unfinished, as CANCELLED.
#[derive(Debug)]
struct PendingCall {
    side: Side,
    method: MethodLabels,
    grpc_type: &'static str,
    started: Instant,
    recorded: bool,
}

// === impl PendingCall ===

impl PendingCall {
    /// A call to `path` starting now, counted as started.
    fn start(side: Side, path: &str) -> PendingCall {
        let call = PendingCall {
            side,
            method: method_labels(path),
            grpc_type: grpc_type(path),
            started: Instant::now(),
            recorded: false,
        };
        call.ecosystem().started.get_or_create(&call.labels()).inc();
        call
    }

    fn ecosystem(&self) -> &'static EcosystemMetrics {
        match self.side {
            Side::Server => &SERVER.ecosystem,
            Side::Client => &CLIENT,
        }
    }

    fn labels(&self) -> EcosystemLabels {
        EcosystemLabels {
            grpc_type: self.grpc_type,
            grpc_service: self.method.service.clone(),
            grpc_method: self.method.method.clone(),
        }
    }

    /// Counts the call with `code` and observes its duration.
    fn finish(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let code = code.min(CODES.len() - 1);
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.side == Side::Server {
            let labels = CallLabels {
                service: self.method.service.clone(),
                method: self.method.method.clone(),
                code: CODES[code],
            };
            SERVER.requests.get_or_create(&labels).inc();
            SERVER
                .durations
                .get_or_create(&self.method)
                .observe(elapsed);
        }
        let ecosystem = self.ecosystem();
        let labels = self.labels();
        ecosystem.handling.get_or_create(&labels).observe(elapsed);
        ecosystem
            .handled
            .get_or_create(&EcosystemCallLabels {
                grpc_type: labels.grpc_type,
                grpc_service: labels.grpc_service,
                grpc_method: labels.grpc_method,
                grpc_code: CODE_NAMES[code],
            })
            .inc();
    }

    /// Counts a call whose response head arrived: at once when it is
    /// trailers-only (or empty), otherwise when its body ends.
    fn respond<B: Body>(self, response: http::Response<B>) -> http::Response<MeteredBody<B>> {
        let (parts, body) = response.into_parts();
        let call = match status_code(&parts.headers) {
            Some(code) => {
                self.finish(code);
                None
            }
            // No status and nothing to come: a broken response.
            None if body.is_end_stream() => {
                self.finish(UNKNOWN);
                None
            }
            None => Some(self),
        };
        http::Response::from_parts(parts, MeteredBody { inner: body, call })
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.record(CANCELLED);
    }
}

/// The code of the `grpc-status` in `headers`, if there is one (UNKNOWN
/// when it is not a valid code).
fn status_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|code| *code < CODES.len())
        .unwrap_or(UNKNOWN);
    Some(code)
}

/// One gRPC call a client is making, counted in `grpc_client_started_total`
/// when made and in `grpc_client_handled_total` and
/// `grpc_client_handling_seconds` when it ends: pass its response to
/// [`GrpcClientCall::response`] (and send on the body that returns), or its
/// failure to [`GrpcClientCall::failed`]. Dropped without either, it counts
/// as CANCELLED (the caller gave up waiting).
#[derive(Debug)]
pub struct GrpcClientCall {
    call: PendingCall,
}

// === impl GrpcClientCall ===

impl GrpcClientCall {
    /// A call to `path` (`/<service>/<method>`) being sent now.
    pub fn start(path: &str) -> GrpcClientCall {
        GrpcClientCall {
            call: PendingCall::start(Side::Client, path),
        }
    }

    /// The call's response arrived: counted now if it carries its status in
    /// the headers, else when the returned body's trailers pass (CANCELLED
    /// if the body is dropped before its end).
    pub fn response<B: Body>(self, response: http::Response<B>) -> http::Response<MeteredBody<B>> {
        self.call.respond(response)
    }

    /// The call failed without a response, with the gRPC status `code` the
    /// caller will see (e.g. 14, UNAVAILABLE, for a refused connection).
    pub fn failed(self, code: i32) {
        let code = usize::try_from(code)
            .ok()
            .filter(|code| *code < CODES.len())
            .unwrap_or(UNKNOWN);
        self.call.finish(code);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`GrpcMetrics`]: counts trailers-only
    /// responses at once and hands the rest to a [`MeteredBody`].
    #[derive(Debug)]
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        call: Option<PendingCall>,
    }
}

impl<F, ResBody, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: Body,
{
    type Output = Result<http::Response<MeteredBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let call = this.call.take();
        Poll::Ready(match (result, call) {
            (Ok(response), Some(call)) => Ok(call.respond(response)),
            (Ok(response), None) => Ok(response.map(|body| MeteredBody {
                inner: body,
                call: None,
            })),
            (Err(error), call) => {
                if let Some(call) = call {
                    call.finish(UNKNOWN);
                }
                Err(error)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its call when the trailers pass (or the
    /// body ends or is dropped first).
    #[derive(Debug)]
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<PendingCall>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if this.call.is_some() {
            let code = match &frame {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => Some(status_code(trailers).unwrap_or(UNKNOWN)),
                    // The last data frame, and no trailers to follow.
                    None if this.inner.is_end_stream() => Some(UNKNOWN),
                    None => None,
                },
                Some(Err(_)) | None => Some(UNKNOWN),
            };
            if let Some(code) = code
                && let Some(call) = this.call.take()
            {
                call.finish(code);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Empty, StreamBody};
    use tower::{Layer as _, ServiceExt as _};

    use super::*;

    type TestBody =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    /// A body of one message followed by trailers carrying `code`.
    fn body_with_trailers(code: &str) -> TestBody {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", code.parse().unwrap());
        StreamBody::new(futures::stream::iter(vec![
            Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\x01x"))),
            Ok(Frame::trailers(trailers)),
        ]))
    }

    /// A fake server: a trailers-only error `code` for a method ending in
    /// `failing`, an OK answer (status in the trailers) for any other.
    async fn answer_ok_or_fail(
        request: http::Request<Empty<Bytes>>,
        failing: &str,
        code: &str,
    ) -> Result<http::Response<TestBody>, Infallible> {
        let response = if request.uri().path().ends_with(failing) {
            http::Response::builder()
                .header("grpc-status", code)
                .body(TestBody::new(futures::stream::iter(Vec::new())))
        } else {
            http::Response::builder().body(body_with_trailers("0"))
        };
        Ok(response.unwrap())
    }

    fn count(service: &str, method: &str, code: &'static str) -> u64 {
        SERVER
            .requests
            .get_or_create(&CallLabels {
                service: service.to_owned(),
                method: method.to_owned(),
                code,
            })
            .get()
    }

    /// How many calls to `service`/`method` were timed, read from the
    /// encoded text (histograms expose no count of their own).
    fn timed(service: &str, method: &str) -> u64 {
        let series = format!(
            "imgmesh_grpc_request_duration_seconds_count{{service=\"{service}\",method=\"{method}\"}} "
        );
        crate::encode()
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map_or(0, |value| value.parse().unwrap())
    }

    fn request(path: &str) -> http::Request<Empty<Bytes>> {
        http::Request::post(path).body(Empty::new()).unwrap()
    }

    /// An OK call (status in the trailers) and a trailers-only error (status
    /// in the headers) are each counted once, under their code, and timed.
    #[tokio::test]
    async fn counts_ok_and_error_calls() {
        let service = GrpcMetricsLayer.layer(tower::service_fn(|request| {
            answer_ok_or_fail(request, "/Fails", "5")
        }));

        let ok = service
            .clone()
            .oneshot(request("/test.v1.Layer/Works"))
            .await
            .unwrap();
        assert_eq!(
            count("test.v1.Layer", "Works", "0"),
            0,
            "not before the trailers"
        );
        let collected = ok.into_body().collect().await.unwrap();
        assert!(collected.trailers().is_some());
        assert_eq!(count("test.v1.Layer", "Works", "0"), 1);
        assert_eq!(timed("test.v1.Layer", "Works"), 1);

        let failed = service
            .oneshot(request("/test.v1.Layer/Fails"))
            .await
            .unwrap();
        assert_eq!(
            count("test.v1.Layer", "Fails", "5"),
            1,
            "trailers-only error"
        );
        failed.into_body().collect().await.unwrap();
        assert_eq!(count("test.v1.Layer", "Fails", "5"), 1, "counted once");
        assert_eq!(timed("test.v1.Layer", "Fails"), 1);

        let text = crate::encode();
        assert!(
            text.contains(
                "imgmesh_grpc_requests_total{service=\"test.v1.Layer\",method=\"Works\",code=\"0\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "imgmesh_grpc_request_duration_seconds_count{service=\"test.v1.Layer\",method=\"Fails\"} 1"
            ),
            "{text}"
        );
    }

    /// A streamed error in the trailers is counted under its code; a body
    /// dropped before its end is CANCELLED; one that ends without trailers
    /// is UNKNOWN.
    #[tokio::test]
    async fn streamed_errors_cancellations_and_missing_trailers() {
        let service = GrpcMetricsLayer.layer(tower::service_fn(
            |request: http::Request<Empty<Bytes>>| async move {
                let body = match request.uri().path() {
                    "/test.v1.Stream/Errs" => body_with_trailers("14"),
                    "/test.v1.Stream/NoTrailers" => TestBody::new(futures::stream::iter(vec![Ok(
                        Frame::data(Bytes::from_static(b"x")),
                    )])),
                    _ => body_with_trailers("0"),
                };
                Ok::<_, Infallible>(http::Response::new(body))
            },
        ));

        let errs = service
            .clone()
            .oneshot(request("/test.v1.Stream/Errs"))
            .await
            .unwrap();
        errs.into_body().collect().await.unwrap();
        assert_eq!(count("test.v1.Stream", "Errs", "14"), 1);

        let dropped = service
            .clone()
            .oneshot(request("/test.v1.Stream/Dropped"))
            .await
            .unwrap();
        drop(dropped);
        assert_eq!(count("test.v1.Stream", "Dropped", "1"), 1);
        assert_eq!(count("test.v1.Stream", "Dropped", "0"), 0);

        let bare = service
            .oneshot(request("/test.v1.Stream/NoTrailers"))
            .await
            .unwrap();
        bare.into_body().collect().await.unwrap();
        assert_eq!(count("test.v1.Stream", "NoTrailers", "2"), 1);
    }

    /// Paths that are not `/<service>/<method>` share the `other` labels,
    /// and odd status values count as UNKNOWN.
    #[test]
    fn labels_are_bounded() {
        for path in ["/", "/only-service", "//Method", "/a/b/c", ""] {
            let labels = method_labels(path);
            assert_eq!(
                (labels.service.as_str(), labels.method.as_str()),
                ("other", "other"),
                "{path}"
            );
        }
        let labels = method_labels("/imgmesh.fetcher.v1.FetcherService/FetchObject");
        assert_eq!(labels.service, "imgmesh.fetcher.v1.FetcherService");
        assert_eq!(labels.method, "FetchObject");

        let mut headers = HeaderMap::new();
        assert_eq!(status_code(&headers), None);
        for (value, code) in [("0", 0), ("16", 16), ("17", 2), ("-1", 2), ("ok", 2)] {
            headers.insert("grpc-status", value.parse().unwrap());
            assert_eq!(status_code(&headers), Some(code), "{value}");
        }
    }

    /// The value of the sample `series` (exactly as exposed); 0 if absent.
    fn sample(series: &str) -> f64 {
        crate::encode()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().unwrap())
    }

    /// Server calls are also counted under the grpc-ecosystem names, with
    /// `grpc_type` and the code's canonical name.
    #[tokio::test]
    async fn server_calls_under_grpc_ecosystem_names() {
        let service = GrpcMetricsLayer.layer(tower::service_fn(|request| {
            answer_ok_or_fail(request, "/Exhausted", "8")
        }));
        let ok = service
            .clone()
            .oneshot(request("/test.v1.Eco/Works"))
            .await
            .unwrap();
        assert_eq!(
            sample(
                "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"test.v1.Eco\",grpc_method=\"Works\"}"
            ),
            1.0
        );
        ok.into_body().collect().await.unwrap();
        let exhausted = service
            .oneshot(request("/test.v1.Eco/Exhausted"))
            .await
            .unwrap();
        drop(exhausted);
        assert_eq!(
            sample(
                "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"test.v1.Eco\",grpc_method=\"Works\",grpc_code=\"OK\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"test.v1.Eco\",grpc_method=\"Exhausted\",grpc_code=\"RESOURCE_EXHAUSTED\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                "grpc_server_handling_seconds_count{grpc_type=\"unary\",grpc_service=\"test.v1.Eco\",grpc_method=\"Exhausted\"}"
            ),
            1.0
        );
    }

    /// Client calls: a streamed answer counted when its trailers pass, a
    /// failure with the caller's code, a call given up as CANCELLED.
    #[tokio::test]
    async fn client_calls_are_counted_once() {
        let path = "/imgmesh.fetcher.v1.FetcherService/FetchObject";
        let call = GrpcClientCall::start(path);
        let response = call.response(http::Response::new(body_with_trailers("0")));
        let started = "grpc_client_started_total{grpc_type=\"server_stream\",grpc_service=\"imgmesh.fetcher.v1.FetcherService\",grpc_method=\"FetchObject\"}";
        let handled = |code: &str| {
            sample(&format!(
                "grpc_client_handled_total{{grpc_type=\"server_stream\",grpc_service=\"imgmesh.fetcher.v1.FetcherService\",grpc_method=\"FetchObject\",grpc_code=\"{code}\"}}"
            ))
        };
        assert_eq!(sample(started), 1.0);
        assert_eq!(handled("OK"), 0.0, "not before the trailers");
        response.into_body().collect().await.unwrap();
        assert_eq!(handled("OK"), 1.0);

        GrpcClientCall::start(path).failed(14);
        assert_eq!(handled("UNAVAILABLE"), 1.0);
        drop(GrpcClientCall::start(path));
        assert_eq!(handled("CANCELLED"), 1.0);
        assert_eq!(sample(started), 3.0);
        assert_eq!(
            sample(
                "grpc_client_handling_seconds_count{grpc_type=\"server_stream\",grpc_service=\"imgmesh.fetcher.v1.FetcherService\",grpc_method=\"FetchObject\"}"
            ),
            3.0
        );
        assert_eq!(handled("OK"), 1.0, "each call counted once");
    }

    /// Every streaming method in the `.proto` files is in
    /// [`STREAMING_METHODS`] with its kind, and nothing else of ours is.
    #[test]
    fn streaming_methods_match_the_protos() {
        let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
        let mut found = Vec::new();
        let mut dirs = vec![proto];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "proto") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let package = text
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("package "))
                    .map(|package| package.trim_end_matches(';').trim().to_owned())
                    .unwrap_or_default();
                let mut service = String::new();
                for line in text.lines().map(str::trim) {
                    if let Some(rest) = line.strip_prefix("service ") {
                        service = rest.split_whitespace().next().unwrap().to_owned();
                    }
                    let Some(rest) = line.strip_prefix("rpc ") else {
                        continue;
                    };
                    let (method, rest) = rest.split_once('(').unwrap();
                    let (request, response) = rest.split_once("returns").unwrap();
                    let kind = match (request.contains("stream "), response.contains("stream ")) {
                        (false, false) => continue,
                        (false, true) => "server_stream",
                        (true, false) => "client_stream",
                        (true, true) => "bidi_stream",
                    };
                    found.push((format!("/{package}.{service}/{}", method.trim()), kind));
                }
            }
        }
        for (path, kind) in &found {
            assert_eq!(grpc_type(path), *kind, "{path}");
        }
        for (path, _) in STREAMING_METHODS {
            assert!(
                path.starts_with("/grpc.") || found.iter().any(|(found, _)| found == path),
                "{path} is not a streaming method of the protos"
            );
        }
        assert!(found.len() >= 2, "{found:?}");
        assert_eq!(grpc_type("/grpc.health.v1.Health/Check"), "unary");
    }
}
