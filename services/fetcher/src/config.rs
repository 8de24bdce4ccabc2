//! The fetcher's configuration: command-line flags, each also readable from
//! an `IMGMESH_*` environment variable.

use std::net::SocketAddr;

use imgmesh_runtime::MetricsArgs;
use imgmesh_telemetry::TelemetryArgs;

/// Default for `--max-object-bytes`: 32 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// Default for `--original-cache-bytes`: 128 MiB.
pub const DEFAULT_ORIGINAL_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Everything `imgmesh-fetcher` is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-fetcher",
    version,
    about = "Reads originals from Sources' S3 buckets for imgmesh"
)]
pub struct FetcherConfig {
    /// Address the gRPC server (FetcherService + health) listens on.
    #[arg(
        long,
        env = "IMGMESH_FETCHER_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    pub listen: SocketAddr,

    /// gRPC URL of the source registry, which hands out Sources' bucket
    /// locations and read credentials.
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub registry_url: String,

    /// Largest object the fetcher reads, in bytes; a caller may ask for a
    /// smaller limit, never a larger one.
    #[arg(
        long,
        env = "IMGMESH_MAX_OBJECT_BYTES",
        default_value_t = DEFAULT_MAX_OBJECT_BYTES,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_object_bytes: u64,

    /// Memory for recently read originals, in bytes (0 turns the cache off;
    /// concurrent reads of one object are coalesced either way).
    #[arg(
        long,
        env = "IMGMESH_ORIGINAL_CACHE_BYTES",
        default_value_t = DEFAULT_ORIGINAL_CACHE_BYTES
    )]
    pub original_cache_bytes: u64,

    /// How long a cached original is served without asking the origin; after
    /// that it is revalidated with its ETag (`If-None-Match`).
    #[arg(long, env = "IMGMESH_ORIGINAL_FRESH_SECONDS", default_value_t = 10)]
    pub original_fresh_seconds: u64,

    /// Where Prometheus scrapes `GET /metrics` (`--metrics-listen`).
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// Logging and trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// Without flags the fetcher uses the ports and limit COMMON.md fixes.
    #[test]
    fn defaults_match_the_contract() {
        let config = FetcherConfig::try_parse_from(["imgmesh-fetcher"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:50052".parse().unwrap());
        assert_eq!(config.registry_url, "http://127.0.0.1:50051");
        assert_eq!(config.max_object_bytes, 33_554_432);
        assert_eq!(config.metrics.addr(), Some("127.0.0.1:0".parse().unwrap()));
    }

    /// Every flag is read from the command line.
    #[test]
    fn flags_override_defaults() {
        let config = FetcherConfig::try_parse_from([
            "imgmesh-fetcher",
            "--listen=127.0.0.1:0",
            "--registry-url=http://10.0.0.1:7000",
            "--max-object-bytes=1024",
            "--metrics-listen=off",
        ])
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.registry_url, "http://10.0.0.1:7000");
        assert_eq!(config.max_object_bytes, 1024);
        assert_eq!(config.metrics.addr(), None);
    }

    /// A zero byte cap would refuse every object, so it is rejected at startup.
    #[test]
    fn zero_byte_cap_is_rejected() {
        let parsed = FetcherConfig::try_parse_from(["imgmesh-fetcher", "--max-object-bytes=0"]);
        assert!(parsed.is_err());
    }
}
