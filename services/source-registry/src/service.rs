//! The registry as `imgmesh-source-registry` runs it: built from its config
//! (the master keys loaded and the database opened), then served on its
//! main and credentials listeners.

use std::future::Future;

use anyhow::Context as _;
use imgmesh_runtime::{HealthArgs, Transport};
use tokio::net::TcpListener;

use crate::{Config, Registry, serve_split_over};

/// The registry service: [`RegistryService::build`] it, then
/// [`RegistryService::serve`] it.
#[derive(Debug)]
pub struct RegistryService {
    registry: Registry,
    /// How callers reach it: plaintext, or mutual TLS.
    transport: Transport,
    /// How often and how patiently the database is checked for health.
    health: HealthArgs,
}

// === impl RegistryService ===

impl RegistryService {
    /// Loads the master keys `config` names and opens its database (so a
    /// listening line printed after this means ready), to be served over
    /// `transport`.
    pub async fn build(config: &Config, transport: &Transport) -> anyhow::Result<RegistryService> {
        let keys = config.load_master_keys()?;
        let database = config.database()?;
        let registry = Registry::open(database.clone(), keys)
            .await
            .with_context(|| format!("opening the database {database}"))?
            .with_max_upload_bytes(config.max_upload_bytes);
        Ok(RegistryService {
            registry,
            transport: transport.clone(),
            health: config.health.clone(),
        })
    }

    /// Serves `SourceRegistryService` on `listener` and
    /// `SourceCredentialsService` on `credentials` (or on `listener` too
    /// when `None`), each with `grpc.health.v1` following the database,
    /// until `shutdown` resolves; then drains and closes the database.
    pub async fn serve<F>(
        self,
        listener: TcpListener,
        credentials: Option<TcpListener>,
        shutdown: F,
    ) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        serve_split_over(
            self.registry,
            listener,
            credentials,
            &self.transport,
            &self.health,
            shutdown,
        )
        .await
    }
}
