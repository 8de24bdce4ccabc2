//! What every service binary does around its work: telemetry first, the
//! work, its error logged, telemetry flushed last.

use std::future::Future;

use imgmesh_telemetry::TelemetryArgs;

/// Starts telemetry for `binary` as `telemetry` says, runs `work` (bind the
/// listeners, build the service, serve it until shutdown), logs its error,
/// if any, as `<binary> stopped`, and flushes telemetry; returns what `work`
/// returned. A service's `main` is its config, this, and its work.
pub async fn run_binary<F>(
    binary: &'static str,
    telemetry: &TelemetryArgs,
    work: F,
) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let telemetry = imgmesh_telemetry::init(binary, telemetry)?;
    let done = work.await;
    if let Err(error) = &done {
        tracing::error!(error = format!("{error:#}"), "{binary} stopped");
    }
    telemetry.shutdown().await;
    done
}
