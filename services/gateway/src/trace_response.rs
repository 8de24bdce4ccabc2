//! The trace of every public request: each one runs inside an `http.server`
//! span that continues the caller's `traceparent` (or starts a trace), and
//! its response — a render, a 404, a shed 503 alike, and the admin API's
//! answers too — says which trace and span it was in a W3C Trace Context
//! Level 2 `traceresponse` header (`00-<trace id>-<span id>-<flags>`), so a
//! client or an operator can find the request's spans and log lines.

use std::future::Future;

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue};
use tracing::Instrument as _;

/// The response header naming the request's trace.
const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

/// The outermost step of every public request: runs `serve` on `request`
/// in the request's span and adds `traceresponse` to whatever answers it.
pub(crate) async fn trace_request<F>(request: Request, serve: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let span = imgmesh_telemetry::http_server_span(&request);
    let mut response = serve(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    name_trace(&span, &mut response);
    response
}

/// Adds `traceresponse` for `span`, the request's server span, to
/// `response` (the admin API's authentication names its own span so).
pub(crate) fn name_trace(span: &tracing::Span, response: &mut Response) {
    // A span the subscriber turned off has no trace to name.
    if span.is_disabled() {
        return;
    }
    if let Some(value) =
        imgmesh_telemetry::traceresponse(span).and_then(|v| HeaderValue::from_str(&v).ok())
    {
        response.headers_mut().insert(TRACERESPONSE, value);
    }
}
