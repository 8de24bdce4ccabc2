//! The `imgmesh-fetcher` binary: parses its flags, starts telemetry, binds
//! the gRPC and metrics ports and serves `FetcherService` until Ctrl-C or
//! SIGTERM; the metrics listener stops after the gRPC drain.
//! `imgmesh-fetcher health` instead asks the running fetcher's health.

use clap::Parser as _;
use imgmesh_fetcher::{FetcherConfig, FetcherService};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = FetcherConfig::parse();
    if let Some(imgmesh_runtime::HealthCommand::Health) = config.command {
        imgmesh_runtime::exit_with(
            imgmesh_runtime::service_health_command(config.listen, &config.metrics, &config.tls)
                .await,
        );
    }
    imgmesh_runtime::run_binary("imgmesh-fetcher", &config.telemetry, async {
        let transport = config.tls.transport()?;
        let listener = imgmesh_runtime::bind("fetcher", "grpc", config.listen).await?;
        let metrics = imgmesh_runtime::MetricsServer::start("fetcher", &config.metrics).await?;
        let fetcher = FetcherService::build(&config, &transport)?;
        let served = fetcher
            .serve(listener, imgmesh_runtime::shutdown_signal())
            .await;
        served.and(metrics.stop().await)
    })
    .await
}
