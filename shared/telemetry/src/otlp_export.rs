//! Where spans go: the OTLP span exporter over gRPC (`grpc`, port 4317 by
//! convention) or HTTP (`http/protobuf`, port 4318), chosen by the standard
//! `OTEL_EXPORTER_OTLP_PROTOCOL`.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

/// How long one export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// A value of `OTEL_EXPORTER_OTLP_PROTOCOL` (`--otlp-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC; the endpoint is the collector's gRPC address.
    #[value(name = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies; spans are POSTed to
    /// `<endpoint>/v1/traces`.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The URL OTLP/HTTP posts spans to for the base `endpoint`: the
/// specification appends the signal's path, `v1/traces`, to the value of
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub(crate) fn http_traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// The batch processor that exports spans to `endpoint` over `protocol`.
/// It runs as a task on the caller's tokio runtime: both transports need a
/// reactor, which the SDK's own thread does not have.
pub(crate) fn otlp_processor(
    endpoint: &str,
    protocol: OtlpProtocol,
) -> anyhow::Result<BatchSpanProcessor<opentelemetry_sdk::runtime::Tokio>> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match protocol {
        OtlpProtocol::Grpc => builder
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
        OtlpProtocol::HttpProtobuf => builder
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(http_traces_url(endpoint))
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
    }
    .context("building the OTLP span exporter")?;
    Ok(BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTTP exporter posts to the base endpoint's `/v1/traces`, with or
    /// without a trailing slash, and keeps a path prefix.
    #[test]
    fn http_endpoint_gets_the_traces_path() {
        assert_eq!(
            http_traces_url("http://jaeger:4318"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://jaeger:4318/"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("https://otel.example/collector/"),
            "https://otel.example/collector/v1/traces"
        );
    }
}
