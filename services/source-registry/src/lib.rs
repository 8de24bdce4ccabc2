//! The imgmesh source registry: owns Sources (S3 buckets with their
//! settings), keeps their secrets under envelope encryption at rest,
//! verifies them in deploys, and maps HTTP hosts to Sources for the gateway.
//!
//! It serves two gRPC services and `grpc.health.v1` on one port:
//! `SourceRegistryService` (create, get, list, update, delete, resolve host,
//! deploy, rotate the secure URL token, upload an object) and the internal
//! `SourceCredentialsService`, which hands decrypted read credentials to the
//! fetcher. Data lives in SQLite (default) or PostgreSQL ([`Database`]).
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

mod config;
mod credentials_crypto;
mod database;
mod deploy_checks;
mod error;
mod grpc_api;
mod master_key_rotation;
mod object_upload;
mod registry;
mod s3_refusal;
mod source;
mod source_fields;
mod source_store;
#[cfg(test)]
mod test_db;
#[cfg(test)]
mod test_s3;

use std::future::Future;

use imgmesh_proto::registry::v1::source_credentials_service_server::SourceCredentialsServiceServer;
use imgmesh_proto::registry::v1::source_registry_service_server::SourceRegistryServiceServer;
use tokio::net::TcpListener;

pub use crate::config::{Config, DEFAULT_MAX_UPLOAD_BYTES, RegistryCommand};
pub use crate::credentials_crypto::{CryptoError, MASTER_KEY_LEN, MasterKey, MasterKeys};
pub use crate::database::Database;
pub use crate::error::RegistryError;
pub use crate::master_key_rotation::{RotationProgress, rotate_master_key};
pub use crate::registry::{Registry, ResolvedHost};
pub use crate::source::ReadAccess;
pub use crate::source_fields::{
    DEFAULT_CACHE_TTL_ERROR_SECONDS, DEFAULT_CACHE_TTL_SECONDS, MAX_CACHE_TTL_SECONDS,
};

use crate::grpc_api::{SourceCredentialsApi, SourceRegistryApi};

/// Name under which the registry announces its listener and reports traces.
pub const SERVICE_NAME: &str = "source-registry";

/// Serves both registry gRPC services and health for `registry` on
/// `listener` until `shutdown` resolves, then drains and closes the
/// database.
pub async fn serve<F>(registry: Registry, listener: TcpListener, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let registry_service =
        SourceRegistryServiceServer::new(SourceRegistryApi::new(registry.clone()));
    let credentials_service =
        SourceCredentialsServiceServer::new(SourceCredentialsApi::new(registry.clone()));
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SourceRegistryServiceServer<SourceRegistryApi>>()
        .await;
    health
        .set_serving::<SourceCredentialsServiceServer<SourceCredentialsApi>>()
        .await;
    let routes = tonic::service::Routes::new(registry_service).add_service(credentials_service);
    let served =
        imgmesh_runtime::serve_grpc(listener, routes, health, health_service, shutdown).await;
    registry.close().await;
    served
}
