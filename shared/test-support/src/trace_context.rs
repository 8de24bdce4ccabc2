//! A process-wide subscriber with the OpenTelemetry layer and the W3C
//! propagator, as `imgmesh_telemetry::init` installs them but exporting
//! nowhere: spans carry trace context, so tests can check what a service
//! propagates (`traceparent` in, `traceresponse` out).

use std::sync::Once;

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Installs the subscriber, once for the whole process; later calls do
/// nothing.
pub fn install_trace_context() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("imgmesh-tests")));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other subscriber was installed first");
    });
}
