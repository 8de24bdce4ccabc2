//! `imgmesh-renderer`: serves `RendererService` over gRPC.

use clap::Parser as _;
use imgmesh_renderer::{Renderer, RendererConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = RendererConfig::parse();
    let telemetry = imgmesh_telemetry::init("imgmesh-renderer", &config.telemetry)?;
    let listener = imgmesh_runtime::bind("renderer", "grpc", config.listen).await?;
    let renderer = Renderer::build(&config)?;
    let served = renderer
        .serve(listener, imgmesh_runtime::shutdown_signal())
        .await;
    telemetry.shutdown().await;
    served
}
