//! The `imgmesh-source-registry` binary: configuration, telemetry and
//! serving glue around [`imgmesh_source_registry`].

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use imgmesh_source_registry::{Config, Registry, SERVICE_NAME, serve};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let telemetry = match imgmesh_telemetry::init("imgmesh-source-registry", &config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(config).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line an operator can act on; the chain says which step failed.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the database (so the listening line means ready), binds, serves.
async fn run(config: Config) -> anyhow::Result<()> {
    let master_key = config.load_master_key()?;
    let registry = Registry::open(&config.database, &master_key)
        .await
        .with_context(|| format!("opening the database {}", config.database.display()))?;
    let listener = imgmesh_runtime::bind(SERVICE_NAME, "grpc", config.listen).await?;
    serve(registry, listener, imgmesh_runtime::shutdown_signal()).await
}
