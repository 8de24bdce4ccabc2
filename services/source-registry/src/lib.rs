//! The imgmesh source registry: owns Sources (S3 buckets with their
//! settings), keeps their secrets under envelope encryption at rest,
//! verifies them in deploys, and maps HTTP hosts to Sources for the gateway.
//!
//! It serves two gRPC services, each with `grpc.health.v1`:
//! `SourceRegistryService` (create, get, list, update, delete, resolve host,
//! deploy, rotate the secure URL token, upload an object) on its main port,
//! and the internal `SourceCredentialsService`, which hands decrypted read
//! credentials to the fetcher, on a port of its own (so a firewall can let
//! the fetchers alone reach it; [`serve_split`]). Its health follows the
//! database: NOT_SERVING while a query fails. Data lives in SQLite
//! (default) or PostgreSQL ([`Database`]).
//!
//! To run one in-process (as the tests do):
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use imgmesh_source_registry::{MasterKey, Registry, serve};
//!
//! let key = MasterKey::parse(&"00".repeat(32))?;
//! let registry = Registry::open(std::path::Path::new("registry.db"), key).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(serve(registry, listener, async {
//!     let _ = stopped.await;
//! }));
//! // ... call it at listener.local_addr() ...
//! let _ = stop.send(());
//! server.await??;
//! # Ok(())
//! # }
//! ```

mod api_key_store;
mod clock;
mod columns;
mod config;
mod credentials_crypto;
mod database;
mod deploy_checks;
mod error;
mod grpc_api;
mod master_key_rotation;
mod object_listing;
mod object_upload;
mod registry;
mod s3_refusal;
mod service;
mod source;
mod source_fields;
mod store;
#[cfg(test)]
mod test_db;

use std::future::Future;

use futures::FutureExt as _;
use imgmesh_proto::registry::v1::source_credentials_service_server::SourceCredentialsServiceServer;
use imgmesh_proto::registry::v1::source_registry_service_server::SourceRegistryServiceServer;
use imgmesh_runtime::ServiceHealth;
use tokio::net::TcpListener;

pub use crate::config::{
    Config, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_METRICS_LISTEN, RegistryCommand,
};
pub use crate::credentials_crypto::{CryptoError, MASTER_KEY_LEN, MasterKey, MasterKeys};
pub use crate::database::Database;
pub use crate::error::RegistryError;
pub use crate::master_key_rotation::{RotationProgress, rotate_master_key};
pub use crate::registry::{Registry, ResolvedHost};
pub use crate::service::RegistryService;
pub use crate::source::ReadAccess;
pub use crate::source::cache_policy::{
    DEFAULT_CACHE_TTL_ERROR_SECONDS, DEFAULT_CACHE_TTL_SECONDS, MAX_CACHE_TTL_SECONDS,
};

use crate::grpc_api::{SourceCredentialsApi, SourceRegistryApi};

/// Name under which the registry announces its listener and reports traces.
pub const SERVICE_NAME: &str = "source-registry";

/// Serves both registry gRPC services and health for `registry` on
/// `listener` until `shutdown` resolves, then drains and closes the
/// database (for embedding and tests; the binary uses [`RegistryService`]).
pub async fn serve<F>(registry: Registry, listener: TcpListener, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_split(
        registry,
        listener,
        None,
        &imgmesh_runtime::HealthArgs::default(),
        shutdown,
    )
    .await
}

/// Serves `SourceRegistryService` on `listener` and `SourceCredentialsService`
/// on `credentials_listener` (on `listener` too when there is none), health
/// on both, until `shutdown` resolves; then drains and closes the database.
/// Health reports NOT_SERVING while the database does not answer, checked
/// as `health_args` says.
pub async fn serve_split<F>(
    registry: Registry,
    listener: TcpListener,
    credentials_listener: Option<TcpListener>,
    health_args: &imgmesh_runtime::HealthArgs,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_split_over(
        registry,
        listener,
        credentials_listener,
        &imgmesh_runtime::Transport::Plaintext,
        health_args,
        shutdown,
    )
    .await
}

/// [`serve_split`] over `transport`: with mutual TLS every caller must
/// present a mesh certificate, and the identity policy decides what it may
/// call (only the fetcher gets credentials).
pub async fn serve_split_over<F>(
    registry: Registry,
    listener: TcpListener,
    credentials_listener: Option<TcpListener>,
    transport: &imgmesh_runtime::Transport,
    health_args: &imgmesh_runtime::HealthArgs,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let registry_service =
        SourceRegistryServiceServer::new(SourceRegistryApi::new(registry.clone()));
    let credentials_service =
        SourceCredentialsServiceServer::new(SourceCredentialsApi::new(registry.clone()));
    let health =
        ServiceHealth::new().with_service::<SourceRegistryServiceServer<SourceRegistryApi>>();
    let credentials_health =
        ServiceHealth::new().with_service::<SourceCredentialsServiceServer<SourceCredentialsApi>>();
    let served = match credentials_listener {
        None => {
            let health =
                health.with_service::<SourceCredentialsServiceServer<SourceCredentialsApi>>();
            health.start().await;
            health.watch(vec![database_dependency(registry.clone())], health_args);
            let routes =
                tonic::service::Routes::new(registry_service).add_service(credentials_service);
            imgmesh_runtime::serve_grpc_over(listener, transport, routes, health, shutdown).await
        }
        Some(credentials_listener) => {
            // Each listener reports only the service it serves; the
            // credentials listener's health follows the main one's checks.
            health.lead(credentials_health.clone());
            health.start().await;
            health.watch(vec![database_dependency(registry.clone())], health_args);
            let shutdown = shutdown.shared();
            let (api, credentials) = tokio::join!(
                imgmesh_runtime::serve_grpc_over(
                    listener,
                    transport,
                    tonic::service::Routes::new(registry_service),
                    health,
                    shutdown.clone(),
                ),
                imgmesh_runtime::serve_grpc_over(
                    credentials_listener,
                    transport,
                    tonic::service::Routes::new(credentials_service),
                    credentials_health,
                    shutdown,
                ),
            );
            api.and(credentials)
        }
    };
    registry.close().await;
    served
}

/// The registry's one dependency: its database must answer a query.
fn database_dependency(registry: Registry) -> imgmesh_runtime::Dependency {
    imgmesh_runtime::Dependency::new("database", imgmesh_runtime::Impact::Required, move || {
        let registry = registry.clone();
        async move {
            registry.ping().await.map_err(|error| match error {
                // The driver's words say what failed (refused, timed out,
                // not accepting connections); they carry no URL.
                RegistryError::Database(cause) => format!("database error: {cause}"),
                other => other.to_string(),
            })
        }
    })
}
