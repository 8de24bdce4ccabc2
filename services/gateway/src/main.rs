//! `imgmesh-gateway`: parse the config, start telemetry, bind the listeners
//! (the admin one only with an admin token), serve until Ctrl-C or SIGTERM,
//! flush telemetry. `imgmesh-gateway health` instead asks the running
//! gateway's `GET /ready`.

use clap::Parser as _;
use imgmesh_gateway::{GatewayConfig, GatewayListeners, GatewayState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = GatewayConfig::parse();
    if let Some(imgmesh_runtime::HealthCommand::Health) = config.command {
        imgmesh_runtime::exit_with(
            imgmesh_runtime::http_health_command(config.ops_listen, "/ready").await,
        );
    }
    imgmesh_runtime::run_binary("imgmesh-gateway", &config.telemetry, async {
        let transport = config.tls.transport()?;
        let state = GatewayState::build_over(&config, &transport)?;
        let listeners = GatewayListeners::bind(&config, &state).await?;
        state
            .serve(listeners, imgmesh_runtime::shutdown_signal())
            .await
    })
    .await
}
