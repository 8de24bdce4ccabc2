//! The imgmesh fetcher: reads originals from Sources' S3 buckets.
//!
//! A caller (the renderer) asks [`Fetcher`] for `(source id, path)` over the
//! `FetcherService.FetchObject` RPC. The fetcher refuses paths that try to
//! leave the Source's prefix, gets the Source's bucket and read credentials
//! from the source registry (`SourceCredentialsService.GetReadAccess`), keeps
//! one S3 client per Source until the Source's config version moves on, and
//! streams the object back: an `ObjectMetadata` message first, then chunks,
//! never more than the byte cap. Recently read originals stay in a bounded
//! in-memory cache, revalidated with their ETag once stale, and concurrent
//! reads of one object share a single S3 read. S3 calls, bytes read and
//! cache lookups are counted for Prometheus (see `metrics.rs`), next to the
//! gRPC calls every imgmesh server counts.
//!
//! `main.rs` is glue: parse [`FetcherConfig`], start telemetry, bind the
//! gRPC and metrics listeners, then build and serve [`FetcherService`].
// The FetchObject future (cache, coalescing, stale-if-error, the SDK's
// own futures) nests deeper than the default limit of 128 layout queries.
#![recursion_limit = "256"]

mod config;
mod fetch_error;
mod fetch_object;
mod metrics;
mod object_key;
mod object_stream;
mod original_cache;
mod read_access;
mod s3_client;
mod source_clients;

use std::future::Future;

use imgmesh_runtime::{Dependency, GrpcChannel, HealthArgs, Impact, Transport};
use tokio::net::TcpListener;

pub use crate::config::{
    DEFAULT_MAX_OBJECT_BYTES, DEFAULT_METRICS_LISTEN, DEFAULT_ORIGINAL_CACHE_BYTES, FetcherConfig,
};
pub use crate::fetch_object::Fetcher;

/// The fetcher as `imgmesh-fetcher` runs it: [`FetcherService::build`] it
/// from its config, then [`FetcherService::serve`] it on its listener.
#[derive(Debug)]
pub struct FetcherService {
    fetcher: Fetcher,
    /// The registry's credentials port, which health follows: no Source
    /// can be read without its credentials.
    registry: GrpcChannel,
    /// How often and how patiently the registry is checked.
    health: HealthArgs,
    /// How the fetcher dials the registry and is called.
    transport: Transport,
}

// === impl FetcherService ===

impl FetcherService {
    /// The fetcher `config` describes, dialling the registry over
    /// `transport` (with mutual TLS, presenting the fetcher's certificate).
    /// Channels connect lazily, so this succeeds while the registry is
    /// still starting.
    pub fn build(config: &FetcherConfig, transport: &Transport) -> anyhow::Result<FetcherService> {
        Ok(FetcherService {
            fetcher: Fetcher::new(config, transport)?,
            registry: config.registry.channel_over(transport)?,
            health: config.health.clone(),
            transport: transport.clone(),
        })
    }

    /// Serves `FetcherService` and `grpc.health.v1` on `listener` until
    /// `shutdown` resolves, then drains in-flight fetches. Health reports
    /// NOT_SERVING while no registry at `--registry-url` reports SERVING.
    /// With mutual TLS only the identities the policy allows (the
    /// renderer) may call it.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let registry = Dependency::grpc_peer("registry", Impact::Required, self.registry);
        imgmesh_runtime::serve_service(
            listener,
            &self.transport,
            self.fetcher.into_server(),
            vec![registry],
            &self.health,
            shutdown,
        )
        .await
    }
}

/// A fetcher built from `config` over plaintext and served on `listener`
/// until `shutdown` resolves (see [`FetcherService`]).
pub async fn run<F>(config: FetcherConfig, listener: TcpListener, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    FetcherService::build(&config, &Transport::Plaintext)?
        .serve(listener, shutdown)
        .await
}
