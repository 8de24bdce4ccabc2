//! Logs and traces for every imgmesh service.
//!
//! [`init`] installs a `tracing` subscriber that writes logs to stderr, as
//! text or one JSON object a line (`--log-format`), and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports spans over OTLP/gRPC or
//! OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL`), sampled as the standard
//! `OTEL_TRACES_SAMPLER` settings say ([`sampler`]).
//! W3C trace context travels between services in gRPC metadata and HTTP
//! headers: [`TraceContextInterceptor`] injects it on every outgoing call,
//! [`grpc_server_span`] and [`http_server_span`] continue it on the way in,
//! and [`traceresponse`] tells an HTTP client which trace its request was.

#![warn(missing_docs)]

mod otlp_export;
mod sampler;

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use crate::otlp_export::OtlpProtocol;
pub use crate::sampler::{SamplerName, sampler};

/// Telemetry settings every service shares (`#[command(flatten)]` them).
/// The trace settings read the OpenTelemetry SDKs' standard environment
/// variables, so a deployment configures imgmesh as it does anything else.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log filter in `tracing` syntax, e.g. `info,imgmesh_renderer=debug`.
    #[arg(long = "log", env = "IMGMESH_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log line format on stderr: `text` for people, `json` (one object a
    /// line with `timestamp`, `level`, `target`, `message`, the event's
    /// fields and the spans it happened in, the request's with its
    /// `trace_id`) for log collectors.
    #[arg(
        long = "log-format",
        env = "IMGMESH_LOG_FORMAT",
        value_enum,
        hide_possible_values = true,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// OTLP collector endpoint, e.g. `http://127.0.0.1:4317` (gRPC) or
    /// `http://127.0.0.1:4318` (HTTP; spans go to its `/v1/traces`);
    /// traces are exported only when this is set.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport: `grpc` or `http/protobuf`.
    #[arg(
        long = "otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        hide_possible_values = true,
        default_value = "grpc"
    )]
    pub otlp_protocol: OtlpProtocol,

    /// Which traces are recorded and exported: `always_on`, `always_off`,
    /// `traceidratio`, `parentbased_always_on`, `parentbased_always_off` or
    /// `parentbased_traceidratio` (the `parentbased_` ones follow an
    /// incoming `traceparent`'s sampled flag).
    #[arg(
        long = "traces-sampler",
        env = "OTEL_TRACES_SAMPLER",
        value_enum,
        hide_possible_values = true,
        default_value = "parentbased_always_on"
    )]
    pub traces_sampler: SamplerName,

    /// The sampler's argument: for the `traceidratio` samplers, the fraction
    /// of traces started here that are recorded, from 0 to 1 (default 1).
    #[arg(long = "traces-sampler-arg", env = "OTEL_TRACES_SAMPLER_ARG")]
    pub traces_sampler_arg: Option<String>,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

// === impl TelemetryArgs ===

impl TelemetryArgs {
    /// The sampler `--traces-sampler` and `--traces-sampler-arg` select.
    pub fn sampler(&self) -> anyhow::Result<Sampler> {
        sampler(self.traces_sampler, self.traces_sampler_arg.as_deref())
    }
}

/// Keeps the trace exporter alive; call [`TelemetryGuard::shutdown`] before
/// the process exits so buffered spans are flushed.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

// === impl TelemetryGuard ===

impl TelemetryGuard {
    /// Flushes and stops the span exporter (bounded by a short timeout).
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The SDK's shutdown blocks on the exporter task, which runs on this
        // runtime: do it on a blocking thread so the runtime stays free.
        let flush = tokio::task::spawn_blocking(move || {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        });
        let _ = tokio::time::timeout(Duration::from_secs(5), flush).await;
    }
}

/// Installs logging and, when configured, OTLP trace export for `service`
/// (e.g. `imgmesh-gateway`). Must be called inside a tokio runtime.
pub fn init(service: &'static str, args: &TelemetryArgs) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&args.log_filter)
        .with_context(|| format!("invalid log filter {:?}", args.log_filter))?;
    let text = (args.log_format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(true)
    });
    let json = (args.log_format == LogFormat::Json).then(|| json_logs(std::io::stderr));

    // The OpenTelemetry layer is installed even when nothing is exported:
    // it is what gives spans their trace context, so an incoming
    // `traceparent` still reaches the next hop (whose service may export).
    let endpoint = args.otlp_endpoint.as_deref().filter(|e| !e.is_empty());
    let export = endpoint.map(|endpoint| (endpoint, args.otlp_protocol));
    let provider = build_provider(service, args.sampler()?, export)?;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_filter(exported_spans());
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init()
        .context("a tracing subscriber is already installed")?;
    Ok(TelemetryGuard { provider })
}

/// The JSON log layer writing to `writer`: one object a line, the event's
/// fields (its message included) at the top level and `spans`, the spans
/// it happened in from the outermost in, so the request's span with its
/// `trace_id` is on every line logged while serving it.
fn json_logs<S, W>(
    writer: W,
) -> tracing_subscriber::fmt::Layer<
    S,
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    W,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(true)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
}

/// Which spans are exported over OTLP: everything the log filter lets
/// through, except the transport crates' own spans below INFO. At DEBUG or
/// TRACE those include the OTLP exporter's own gRPC calls, so every export
/// would produce spans to export in the next batch, forever.
fn exported_spans() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(
            [
                "h2",
                "hyper",
                "hyper_util",
                "tonic",
                "tower",
                "opentelemetry",
            ]
            .map(|target| (target, LevelFilter::INFO)),
        )
}

/// The tracer provider for `service`, deciding with `sampler` which traces
/// are recorded; it exports over OTLP only when `export` (an endpoint and
/// its protocol) is given.
fn build_provider(
    service: &'static str,
    sampler: Sampler,
    export: Option<(&str, OtlpProtocol)>,
) -> anyhow::Result<SdkTracerProvider> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler);
    if let Some((endpoint, protocol)) = export {
        builder = builder.with_span_processor(otlp_export::otlp_processor(endpoint, protocol)?);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}

// === trace context over HTTP headers and gRPC metadata ===

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_str()) {
            self.0.insert(key, value);
        }
    }
}

/// Reads the W3C trace context (`traceparent`, `tracestate`) from headers.
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `span` a child of the trace context carried by `headers`, if any.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = extract_context(headers);
    let _ = span.set_parent(parent);
}

/// The span a gRPC server opens for each call, continuing the caller's
/// trace. Pass it to `tonic::transport::Server::builder().trace_fn(...)`.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, request.headers());
    record_trace_id(&span);
    span
}

/// The span the gateway opens for each HTTP request, continuing an incoming
/// `traceparent` or starting a new trace.
pub fn http_server_span<B>(request: &http::Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{} {}", request.method(), "image"),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, request.headers());
    record_trace_id(&span);
    span
}

/// A tonic client interceptor that injects the current span's trace context
/// into the outgoing call's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        TraceContextPropagator::new()
            .inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        Ok(request)
    }
}

/// The trace id of the current span as 32 hex digits, when it has one.
pub fn current_trace_id() -> Option<String> {
    trace_id_of(&tracing::Span::current())
}

/// The trace id of `span` as 32 hex digits, when it has one.
fn trace_id_of(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Records `span`'s trace id in its `trace_id` field, so every log line
/// written inside it names the trace (the id the response's
/// `traceresponse` and the trace store show). Call it after the span's
/// parent is set: it fixes the span's trace context.
fn record_trace_id(span: &tracing::Span) {
    if let Some(trace_id) = trace_id_of(span) {
        span.record("trace_id", trace_id);
    }
}

/// The W3C Trace Context Level 2 `traceresponse` header value for `span`:
/// `00-<trace id>-<span id>-<flags>`, naming the trace the request joined
/// (the caller's, when it sent a `traceparent`) and the span this server
/// opened for it, with its sampled flag. `None` when the span has no trace
/// context (no OpenTelemetry layer is installed).
pub fn traceresponse(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `traceparent` header is read back as the remote parent context.
    #[test]
    fn extracts_traceparent() {
        use opentelemetry::trace::TraceContextExt;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let context = extract_context(&headers);
        let span = context.span();
        let span_context = span.span_context();
        assert!(span_context.is_valid());
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    /// Transport crates' debug and trace spans are not exported (the exporter's own calls would feed back); ours are.
    #[test]
    fn transport_internals_are_not_exported() {
        use tracing::Level;
        let filter = exported_spans();
        for target in [
            "h2::codec",
            "hyper::proto",
            "tonic::transport",
            "tower::buffer",
        ] {
            assert!(!filter.would_enable(target, &Level::TRACE), "{target}");
            assert!(!filter.would_enable(target, &Level::DEBUG), "{target}");
            assert!(filter.would_enable(target, &Level::INFO), "{target}");
        }
        for target in ["imgmesh_gateway::image_handler", "aws_smithy_runtime"] {
            assert!(filter.would_enable(target, &Level::TRACE), "{target}");
        }
    }

    /// Without an OTLP endpoint the trace still propagates: a span that
    /// continued an incoming `traceparent` injects the same trace id into
    /// outgoing gRPC metadata.
    #[test]
    fn trace_propagates_without_an_exporter() {
        use tonic::service::Interceptor as _;
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = build_provider("imgmesh-test", Sampler::AlwaysOn, None).unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("imgmesh-test")));
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                    .parse()
                    .unwrap(),
            );
            let span = tracing::info_span!("incoming");
            continue_trace(&span, &headers);
            let _entered = span.enter();
            let request = TraceContextInterceptor
                .call(tonic::Request::new(()))
                .unwrap();
            let traceparent = request
                .metadata()
                .get("traceparent")
                .expect("traceparent injected")
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{traceparent}"
            );
            assert!(!traceparent.contains("00f067aa0ba902b7"), "a new span id");
        });
    }

    /// `traceresponse` names the caller's trace, the server's own span and
    /// the sampling decision: sampled under a sampled `traceparent`, not
    /// under an unsampled one (parentbased_always_on), a fresh trace when
    /// the caller sent none.
    #[test]
    fn traceresponse_names_the_trace_and_the_servers_span() {
        let provider = build_provider(
            "imgmesh-test",
            Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            None,
        )
        .unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("imgmesh-test")));
        tracing::subscriber::with_default(subscriber, || {
            let traceresponse_for = |traceparent: Option<&str>| {
                let mut headers = http::HeaderMap::new();
                if let Some(traceparent) = traceparent {
                    headers.insert("traceparent", traceparent.parse().unwrap());
                }
                let span = tracing::info_span!("incoming");
                continue_trace(&span, &headers);
                traceresponse(&span).expect("a trace context")
            };
            let sampled = traceresponse_for(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ));
            let parts: Vec<&str> = sampled.split('-').collect();
            assert_eq!(parts.len(), 4, "{sampled}");
            assert_eq!(parts[0], "00", "{sampled}");
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "{sampled}");
            assert_eq!(parts[2].len(), 16, "{sampled}");
            assert_ne!(
                parts[2], "00f067aa0ba902b7",
                "the server's own span: {sampled}"
            );
            assert_eq!(parts[3], "01", "{sampled}");

            let unsampled = traceresponse_for(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ));
            assert!(
                unsampled.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{unsampled}"
            );
            assert!(unsampled.ends_with("-00"), "{unsampled}");

            let fresh = traceresponse_for(None);
            assert_eq!(fresh.len(), 55, "{fresh}");
            assert!(
                !fresh.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
                "{fresh}"
            );
            assert!(fresh.ends_with("-01"), "{fresh}");
        });
    }

    /// Without the OpenTelemetry layer a span has no trace to name.
    #[test]
    fn traceresponse_needs_a_trace_context() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(traceresponse(&tracing::info_span!("untraced")), None);
        });
    }

    /// A JSON log line written while serving a request is one object with
    /// the level and message at the top level and the request's span, with
    /// the caller's trace id, first in `spans`.
    #[test]
    fn json_log_lines_name_the_trace() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let provider = build_provider("imgmesh-test", Sampler::AlwaysOn, None).unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(json_logs(move || writer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("imgmesh-test")));
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::builder()
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(())
                .unwrap();
            let span = http_server_span(&request);
            let _entered = span.enter();
            let inner = tracing::info_span!("render", width = 300);
            let _inner = inner.enter();
            tracing::warn!(attempt = 2, "origin slow");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(line["level"], "WARN", "{text}");
        assert_eq!(line["message"], "origin slow", "{text}");
        assert_eq!(line["attempt"], 2, "{text}");
        assert!(line["timestamp"].is_string(), "{text}");
        assert_eq!(line["spans"][0]["name"], "http.server", "{text}");
        assert_eq!(
            line["spans"][0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{text}"
        );
        assert_eq!(line["spans"][1]["name"], "render", "{text}");
    }

    /// Headers without trace context give an empty (invalid) parent.
    #[test]
    fn missing_traceparent_gives_no_parent() {
        use opentelemetry::trace::TraceContextExt;
        let context = extract_context(&http::HeaderMap::new());
        assert!(!context.span().span_context().is_valid());
    }
}
