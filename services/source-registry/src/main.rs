//! The `imgmesh-source-registry` binary: configuration, telemetry and
//! serving glue around [`imgmesh_source_registry`].

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use imgmesh_source_registry::{
    Config, Database, MasterKeys, RegistryCommand, RegistryService, RotationProgress, SERVICE_NAME,
    rotate_master_key,
};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(RegistryCommand::Health) = config.command {
        imgmesh_runtime::exit_with(
            imgmesh_runtime::service_health_command(config.listen, &config.metrics, &config.tls)
                .await,
        );
    }
    let result =
        imgmesh_runtime::run_binary("imgmesh-source-registry", &config.telemetry, run(&config))
            .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line an operator can act on; the chain says which step failed.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the maintenance command, or builds the registry (opening the
/// database, so the listening line means ready), binds the gRPC,
/// credentials and metrics listeners, and serves until Ctrl-C or SIGTERM;
/// the metrics listener stops after the gRPC drain.
async fn run(config: &Config) -> anyhow::Result<()> {
    if let Some(RegistryCommand::RotateMasterKey) = config.command {
        let keys = config.load_master_keys()?;
        return rotate(config.database()?, keys).await;
    }
    let transport = config.tls.transport()?;
    let registry = RegistryService::build(config, &transport).await?;
    let listener = imgmesh_runtime::bind(SERVICE_NAME, "grpc", config.listen).await?;
    let credentials =
        imgmesh_runtime::bind(SERVICE_NAME, "credentials", config.credentials_listen).await?;
    let metrics = imgmesh_runtime::MetricsServer::start(SERVICE_NAME, &config.metrics).await?;
    let served = registry
        .serve(
            listener,
            Some(credentials),
            imgmesh_runtime::shutdown_signal(),
        )
        .await;
    served.and(metrics.stop().await)
}

/// `rotate-master-key`: re-wraps every data key, printing progress.
async fn rotate(database: Database, keys: MasterKeys) -> anyhow::Result<()> {
    let current = keys.current_id().to_owned();
    let print = |progress: RotationProgress| {
        println!(
            "re-wrapped {} of {} secret(s); {} left",
            progress.rewrapped, progress.total, progress.remaining
        );
    };
    let done = rotate_master_key(database.clone(), keys, None, print)
        .await
        .with_context(|| format!("rotating the master key of {database}"))?;
    println!(
        "done: {} secret(s) re-wrapped; every secret is now under master key {current}",
        done.rewrapped
    );
    Ok(())
}
