//! The `imgmesh-fetcher` binary: parses its flags, starts telemetry, binds
//! the gRPC and metrics ports and serves `FetcherService` until Ctrl-C or
//! SIGTERM; the metrics listener stops after the gRPC drain.
//! `imgmesh-fetcher health` instead asks the running fetcher's health.

use clap::Parser as _;
use imgmesh_fetcher::FetcherConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = FetcherConfig::parse();
    if let Some(imgmesh_runtime::HealthCommand::Health) = config.command {
        imgmesh_runtime::exit_with(imgmesh_runtime::grpc_health_command(config.listen).await);
    }
    let telemetry = imgmesh_telemetry::init("imgmesh-fetcher", &config.telemetry)?;
    let served = async {
        let transport = config.tls.transport()?;
        let listener = imgmesh_runtime::bind("fetcher", "grpc", config.listen).await?;
        let metrics = imgmesh_runtime::MetricsServer::start("fetcher", &config.metrics).await?;
        let served = imgmesh_fetcher::run_over(
            config,
            &transport,
            listener,
            imgmesh_runtime::shutdown_signal(),
        )
        .await;
        served.and(metrics.stop().await)
    }
    .await;
    if let Err(err) = &served {
        tracing::error!(error = format!("{err:#}"), "fetcher stopped");
    }
    telemetry.shutdown().await;
    served
}
