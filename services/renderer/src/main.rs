//! `imgmesh-renderer`: serves `RendererService` over gRPC (or, with
//! `health`, asks the running renderer whether it serves).

use clap::Parser as _;
use imgmesh_renderer::{Renderer, RendererConfig};

fn main() -> anyhow::Result<()> {
    let config = RendererConfig::parse();
    if let Some(imgmesh_runtime::HealthCommand::Health) = config.command {
        let check = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(imgmesh_runtime::service_health_command(
                config.listen,
                &config.metrics,
                &config.tls,
            ));
        imgmesh_runtime::exit_with(check);
    }
    // First, before any thread: the process is replaced by itself with
    // huge pages asked of malloc (config.rs, --malloc-huge-pages).
    if config.malloc_huge_pages
        && let Err(error) = imgmesh_renderer::libvips::exec_with_huge_page_malloc()
    {
        eprintln!("imgmesh-renderer: running without huge pages: {error}");
    }
    // Before the runtime starts its threads: libvips' large, short-lived
    // buffers otherwise spread over many malloc arenas.
    imgmesh_runtime::limit_malloc_arenas(2);
    // Also before: libvips starts with only the modules imgmesh uses (it
    // sets VIPSHOME for the start).
    let modules = imgmesh_renderer::libvips::init_with_needed_modules()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(config, modules))
}

/// Binds the gRPC and metrics listeners, builds the renderer and serves it
/// until Ctrl-C or SIGTERM, then stops the metrics listener; telemetry
/// around it all. `modules` are the libvips modules loaded at its start.
async fn serve(config: RendererConfig, modules: Vec<String>) -> anyhow::Result<()> {
    imgmesh_runtime::run_binary("imgmesh-renderer", &config.telemetry, async {
        tracing::info!(
            ?modules,
            "libvips started with only the modules imgmesh uses"
        );
        let transport = config.tls.transport()?;
        let listener = imgmesh_runtime::bind("renderer", "grpc", config.listen).await?;
        let metrics = imgmesh_runtime::MetricsServer::start("renderer", &config.metrics).await?;
        let renderer = Renderer::build(&config, &transport)?;
        let served = renderer
            .serve(listener, imgmesh_runtime::shutdown_signal())
            .await;
        served.and(metrics.stop().await)
    })
    .await
}
