//! An OTLP trace receiver run by the test itself, over gRPC
//! ([`OtlpReceiver::start`]) or HTTP with protobuf bodies
//! ([`OtlpReceiver::start_http`], `POST /v1/traces`), so tests can assert
//! which services reported spans for a trace.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// One received span, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    /// `service.name` of the exporting process.
    pub service: String,
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 lowercase hex digits.
    pub span_id: String,
    /// Span name.
    pub name: String,
    /// The span's attributes, values rendered as text.
    pub attributes: Vec<(String, String)>,
    /// The span's events (log records inside it): name and attributes as text.
    pub events: Vec<String>,
}

// === impl ReceivedSpan ===

impl ReceivedSpan {
    /// Everything the span carries as one text, for leak checks.
    pub fn text(&self) -> String {
        let mut text = format!("{} {}", self.service, self.name);
        for (key, value) in &self.attributes {
            text.push_str(&format!(" {key}={value}"));
        }
        for event in &self.events {
            text.push(' ');
            text.push_str(event);
        }
        text
    }
}

/// A running OTLP receiver; stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    /// Where it listens (use as `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Debug, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        record(&self.spans, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Flattens the spans of one export into `spans`.
fn record(spans: &Mutex<Vec<ReceivedSpan>>, request: ExportTraceServiceRequest) {
    let mut spans = spans.lock().expect("spans lock");
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .and_then(|v| match v {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let events = span
                    .events
                    .iter()
                    .map(|event| {
                        let attributes: Vec<String> = event
                            .attributes
                            .iter()
                            .map(|kv| format!("{}={}", kv.key, any_value_text(kv.value.as_ref())))
                            .collect();
                        format!("{} {}", event.name, attributes.join(" "))
                    })
                    .collect();
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex_string(&span.trace_id),
                    span_id: hex_string(&span.span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), any_value_text(kv.value.as_ref())))
                        .collect(),
                    events,
                    name: span.name,
                });
            }
        }
    }
}

// === impl OtlpReceiver ===

impl OtlpReceiver {
    /// Starts a receiver on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector {
            spans: spans.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        Ok(OtlpReceiver {
            addr,
            spans,
            _stop: stop,
        })
    }

    /// Starts an OTLP/HTTP receiver (`http/protobuf`) on an ephemeral
    /// loopback port: spans are taken from `POST /v1/traces` only, as the
    /// specification's exporters send them; any other path is a 404, so an
    /// exporter posting elsewhere delivers nothing.
    pub async fn start_http() -> anyhow::Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let received = spans.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let received = received.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let received = received.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(answer_http(&received, request).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(OtlpReceiver {
            addr,
            spans,
            _stop: stop,
        })
    }

    /// The endpoint URL services export to.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans lock").clone()
    }
}

/// Answers one OTLP/HTTP request: the spans of a protobuf
/// `ExportTraceServiceRequest` posted to `/v1/traces` are recorded.
async fn answer_http(
    spans: &Mutex<Vec<ReceivedSpan>>,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::BodyExt as _;
    use prost::Message as _;
    let reply = |status: http::StatusCode, body: Vec<u8>| {
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .expect("a valid response")
    };
    if request.method() != http::Method::POST || request.uri().path() != "/v1/traces" {
        return reply(http::StatusCode::NOT_FOUND, Vec::new());
    }
    let Ok(body) = request.into_body().collect().await else {
        return reply(http::StatusCode::BAD_REQUEST, Vec::new());
    };
    match ExportTraceServiceRequest::decode(body.to_bytes()) {
        Ok(export) => {
            record(spans, export);
            reply(
                http::StatusCode::OK,
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => reply(http::StatusCode::BAD_REQUEST, Vec::new()),
    }
}

/// An OTLP attribute value as text (arrays and maps as their Debug form).
fn any_value_text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(other) => format!("{other:?}"),
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
