//! Per-call metrics of a gRPC server, as a tower layer around its routes.
//!
//! `imgmesh_grpc_requests_total{service,method,code}` counts finished calls
//! by their gRPC status code (the number, e.g. `code="0"` for OK and
//! `code="5"` for NOT_FOUND) and `imgmesh_grpc_request_duration_seconds
//! {service,method}` times them, from the request's arrival to the end of
//! the response.
//!
//! Where the code is read: tonic sends an error that happens before any
//! message as a trailers-only response, with `grpc-status` in the response
//! headers; every other response (successful unary calls included) carries
//! it in the trailers after the body. So the layer looks at the headers
//! first and, when the code is not there, wraps the body and reads the
//! trailers as they pass. A call whose response body is dropped before it
//! ends (the client went away) counts as CANCELLED (`1`); a body that ends
//! without trailers, or fails, counts as UNKNOWN (`2`), which is what the
//! client sees.

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

use crate::{latency_histogram, registry};

/// Most distinct `service`/`method` pairs labelled; calls to further paths
/// (which only a client probing for methods sends) share `other`, so such a
/// client cannot grow the registry without bound.
const MAX_METHODS: usize = 256;

/// The `code` label of every gRPC status code, indexed by the code.
const CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];
/// CANCELLED: the client went away before the response ended.
const CANCELLED: &str = CODES[1];
/// UNKNOWN: the response ended without a status, or failed.
const UNKNOWN: &str = CODES[2];

/// Labels naming the called method.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    /// The fully qualified service, e.g. `imgmesh.fetcher.v1.FetcherService`.
    service: String,
    /// The method, e.g. `FetchObject`.
    method: String,
}

/// Labels of one finished call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    /// The gRPC status code, as a number.
    code: &'static str,
}

/// The gRPC server metrics of this process.
#[derive(Debug)]
struct GrpcServerMetrics {
    requests: Family<CallLabels, Counter>,
    durations: Family<MethodLabels, Histogram, fn() -> Histogram>,
    /// The `service`/`method` pairs labelled so far (see [`MAX_METHODS`]).
    methods: Mutex<HashSet<MethodLabels>>,
}

static METRICS: LazyLock<GrpcServerMetrics> = LazyLock::new(|| {
    let metrics = GrpcServerMetrics {
        requests: Family::default(),
        durations: Family::new_with_constructor(latency_histogram),
        methods: Mutex::new(HashSet::new()),
    };
    let mut registry = registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.register(
        "imgmesh_grpc_requests",
        "gRPC calls answered, by service, method and status code",
        metrics.requests.clone(),
    );
    registry.register_with_unit(
        "imgmesh_grpc_request_duration",
        "Time from a gRPC call's arrival to the end of its response",
        Unit::Seconds,
        metrics.durations.clone(),
    );
    metrics
});

// === impl GrpcServerMetrics ===

impl GrpcServerMetrics {
    /// The labels for a call to `path` (`/<service>/<method>`).
    fn method_labels(&self, path: &str) -> MethodLabels {
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
        let mut methods = self
            .methods
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
}

/// Counts and times every call of the service it wraps; see the module
/// documentation for where the status code is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        // Registered now, so a scrape before the first call already shows
        // the metrics (empty).
        LazyLock::force(&METRICS);
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
        let call = PendingCall {
            method: METRICS.method_labels(request.uri().path()),
            started: Instant::now(),
            recorded: false,
        };
        MeteredFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

/// A call not counted yet: counted exactly once, by [`PendingCall::finish`]
/// or, if it is dropped unfinished, as CANCELLED.
#[derive(Debug)]
struct PendingCall {
    method: MethodLabels,
    started: Instant,
    recorded: bool,
}

// === impl PendingCall ===

impl PendingCall {
    /// Counts the call with `code` and observes its duration.
    fn finish(mut self, code: &'static str) {
        self.record(code);
    }

    fn record(&mut self, code: &'static str) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let labels = CallLabels {
            service: self.method.service.clone(),
            method: self.method.method.clone(),
            code,
        };
        METRICS.requests.get_or_create(&labels).inc();
        METRICS
            .durations
            .get_or_create(&self.method)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.record(CANCELLED);
    }
}

/// The `code` label for the `grpc-status` in `headers`, if there is one.
fn status_code(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get("grpc-status")?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .and_then(|code| CODES.get(code).copied())
        .unwrap_or(UNKNOWN);
    Some(code)
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
        Poll::Ready(match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let call = match (call, status_code(&parts.headers)) {
                    (Some(call), Some(code)) => {
                        call.finish(code);
                        None
                    }
                    // No status and nothing to come: a broken response.
                    (Some(call), None) if body.is_end_stream() => {
                        call.finish(UNKNOWN);
                        None
                    }
                    (call, _) => call,
                };
                Ok(http::Response::from_parts(
                    parts,
                    MeteredBody { inner: body, call },
                ))
            }
            Err(error) => {
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

    fn count(service: &str, method: &str, code: &'static str) -> u64 {
        METRICS
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
        let service = GrpcMetricsLayer.layer(tower::service_fn(
            |request: http::Request<Empty<Bytes>>| async move {
                let response = if request.uri().path().ends_with("/Fails") {
                    http::Response::builder()
                        .header("grpc-status", "5")
                        .body(TestBody::new(futures::stream::iter(Vec::new())))
                } else {
                    http::Response::builder().body(body_with_trailers("0"))
                };
                Ok::<_, Infallible>(response.unwrap())
            },
        ));

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
            let labels = METRICS.method_labels(path);
            assert_eq!(
                (labels.service.as_str(), labels.method.as_str()),
                ("other", "other"),
                "{path}"
            );
        }
        let labels = METRICS.method_labels("/imgmesh.fetcher.v1.FetcherService/FetchObject");
        assert_eq!(labels.service, "imgmesh.fetcher.v1.FetcherService");
        assert_eq!(labels.method, "FetchObject");

        let mut headers = HeaderMap::new();
        assert_eq!(status_code(&headers), None);
        for (value, code) in [
            ("0", "0"),
            ("16", "16"),
            ("17", "2"),
            ("-1", "2"),
            ("ok", "2"),
        ] {
            headers.insert("grpc-status", value.parse().unwrap());
            assert_eq!(status_code(&headers), Some(code), "{value}");
        }
    }
}
