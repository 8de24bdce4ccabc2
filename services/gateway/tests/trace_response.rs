//! Every public response names its trace in a W3C `traceresponse` header:
//! renders, errors and shed requests alike.

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::support::{ADMIN_TOKEN, Harness, request};

/// A W3C traceparent a client might send.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The `(trace id, span id, flags)` of a `traceresponse` value, checked to
/// be the version-00 form.
fn fields(traceresponse: &str) -> (String, String, String) {
    let parts: Vec<&str> = traceresponse.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceresponse}");
    assert_eq!(parts[0], "00", "{traceresponse}");
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(
        hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2),
        "{traceresponse}"
    );
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

/// A 200 and a 404 (missing object, unknown host) answered to a request
/// with a `traceparent` carry `traceresponse` with the caller's trace id, a
/// span id of the gateway's own and the sampled flag.
#[tokio::test]
async fn responses_name_the_callers_trace() {
    let gateway = Harness::start().await;
    for (host, path, status) in [
        ("demo.localhost", "/cat.jpg?w=10", StatusCode::OK),
        ("demo.localhost", "/missing.jpg", StatusCode::NOT_FOUND),
        ("nobody.localhost", "/cat.jpg", StatusCode::NOT_FOUND),
    ] {
        let mut sent = request(Method::GET, host, path);
        sent.headers_mut()
            .insert("traceparent", TRACEPARENT.parse().unwrap());
        let answer = gateway.send(sent).await;
        assert_eq!(answer.status, status, "{host}{path}: {}", answer.text());
        let traceresponse = answer
            .header("traceresponse")
            .unwrap_or_else(|| panic!("{host}{path}: no traceresponse"));
        let (trace_id, span_id, flags) = fields(traceresponse);
        assert_eq!(trace_id, TRACE_ID, "{host}{path}");
        assert_ne!(
            span_id, "00f067aa0ba902b7",
            "{host}{path}: the gateway's span"
        );
        assert_eq!(flags, "01", "{host}{path}");
    }
}

/// Without a `traceparent` each response names a fresh trace of its own,
/// the one whose context the render call carried on.
#[tokio::test]
async fn responses_name_a_new_trace_without_traceparent() {
    let gateway = Harness::start().await;
    let first = gateway.get("demo.localhost", "/cat.jpg").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let (trace_id, _, _) = fields(first.header("traceresponse").expect("traceresponse"));
    assert_ne!(trace_id, TRACE_ID);
    let sent = gateway
        .last_render()
        .traceparent
        .expect("no traceparent on the render call");
    assert_eq!(
        fields(&sent).0,
        trace_id,
        "the render joined the same trace"
    );

    let second = gateway.get("demo.localhost", "/missing.jpg").await;
    assert_eq!(second.status, StatusCode::NOT_FOUND);
    let (other, _, _) = fields(second.header("traceresponse").expect("traceresponse"));
    assert_ne!(other, trace_id, "each request is a trace of its own");
}

/// A request shed at `--max-in-flight` (one held by the renderer) still
/// names its trace.
#[tokio::test]
async fn shed_requests_name_their_trace() {
    let gateway = Harness::with_args(&["--max-in-flight=1"]).await;
    let held = gateway.get("demo.localhost", "/stall.jpg");
    tokio::pin!(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.render_calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the held request never reached the renderer"
        );
        tokio::select! {
            answer = &mut held => panic!("the held request was answered: {}", answer.status),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    let mut sent = request(Method::GET, "demo.localhost", "/cat.jpg");
    sent.headers_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    let answer = gateway.send(sent).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text()
    );
    let (trace_id, _, _) = fields(answer.header("traceresponse").expect("traceresponse"));
    assert_eq!(trace_id, TRACE_ID);
}

/// The admin API's answers name their trace too: a 401 without the token
/// and a 200 with it, both under the caller's trace.
#[tokio::test]
async fn admin_answers_name_the_callers_trace() {
    let gateway = Harness::start().await;
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(ADMIN_TOKEN), StatusCode::OK),
    ] {
        let mut sent = request(Method::GET, "localhost", "/v1/sources");
        sent.headers_mut()
            .insert("traceparent", TRACEPARENT.parse().unwrap());
        if let Some(token) = token {
            sent.headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let answer = gateway.admin_raw(sent).await;
        assert_eq!(answer.status, status, "{}", answer.text());
        let (trace_id, span_id, _) = fields(answer.header("traceresponse").expect("traceresponse"));
        assert_eq!(trace_id, TRACE_ID, "{status}");
        assert_ne!(span_id, "00f067aa0ba902b7", "{status}");
    }
}
