//! `imgmesh-gateway`: parse the config, start telemetry, bind the listeners
//! (the admin one only with an admin token), serve until Ctrl-C or SIGTERM,
//! flush telemetry. `imgmesh-gateway health` instead asks the running
//! gateway's `GET /ready`.

use clap::Parser as _;
use imgmesh_gateway::{GatewayConfig, GatewayState, SERVICE};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = GatewayConfig::parse();
    if let Some(imgmesh_runtime::HealthCommand::Health) = config.command {
        imgmesh_runtime::exit_with(
            imgmesh_runtime::http_health_command(config.ops_listen, "/ready").await,
        );
    }
    let telemetry = imgmesh_telemetry::init("imgmesh-gateway", &config.telemetry)?;
    let served = serve(&config).await;
    if let Err(error) = &served {
        tracing::error!(error = format!("{error:#}"), "gateway stopped");
    }
    telemetry.shutdown().await;
    served
}

async fn serve(config: &GatewayConfig) -> anyhow::Result<()> {
    let transport = config.tls.transport()?;
    let state = GatewayState::build_over(config, &transport)?;
    let http = imgmesh_runtime::bind(SERVICE, "http", config.listen).await?;
    let ops = imgmesh_runtime::bind(SERVICE, "ops", config.ops_listen).await?;
    let admin = if state.admin().is_some() {
        Some(imgmesh_runtime::bind(SERVICE, "admin", config.admin_listen).await?)
    } else {
        tracing::info!(
            "admin API off: no admin token (set --admin-token-file or IMGMESH_ADMIN_TOKEN)"
        );
        None
    };
    let image_api = match config.grpc_listen {
        Some(addr) => {
            let grpc = imgmesh_runtime::bind(SERVICE, "grpc", addr).await?;
            let shutdown = imgmesh_runtime::shutdown_signal();
            Some(tokio::spawn(imgmesh_gateway::serve_image_api(
                state.clone(),
                grpc,
                shutdown,
            )))
        }
        None => None,
    };
    let served =
        imgmesh_gateway::run(state, http, ops, admin, imgmesh_runtime::shutdown_signal()).await;
    match image_api {
        Some(api) => served.and(api.await?),
        None => served,
    }
}
