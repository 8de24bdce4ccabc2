//! The fetcher's configuration: command-line flags, each also readable from
//! an `IMGMESH_*` environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use imgmesh_s3_client::ClientTuning;

use imgmesh_runtime::{HealthArgs, HealthCommand, MetricsArgs, RegistryArgs};
use imgmesh_telemetry::TelemetryArgs;

/// Where the fetcher serves `GET /metrics` unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9092";

/// The registry's credentials port (its `--credentials-listen`) unless
/// `--registry-url` says otherwise.
const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:50054";

/// Default for `--max-object-bytes`: 32 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// Default for `--original-cache-bytes`: 128 MiB.
pub const DEFAULT_ORIGINAL_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Everything `imgmesh-fetcher` is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-fetcher",
    version,
    about = "Reads originals from Sources' S3 buckets for imgmesh",
    mut_arg("metrics_listen", |arg| arg.default_value(DEFAULT_METRICS_LISTEN)),
    mut_arg("registry_url", |arg| arg
        .default_value(DEFAULT_REGISTRY_URL)
        .help(
            "gRPC URL of the source registry's credentials port (the registry's \
             `--credentials-listen`), which hands out Sources' bucket locations and read \
             credentials. The fetcher reports NOT_SERVING while no registry there reports \
             SERVING"
        ))
)]
pub struct FetcherConfig {
    /// Instead of serving: `health` asks the running fetcher.
    #[command(subcommand)]
    pub command: Option<HealthCommand>,

    /// Address the gRPC server (FetcherService + health) listens on.
    #[arg(
        long,
        global = true,
        env = "IMGMESH_FETCHER_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    pub listen: SocketAddr,

    /// Where the source registry's credentials port is: `--registry-url`,
    /// with the fetcher's own default and help (the `mut_arg` above).
    #[command(flatten)]
    pub registry: RegistryArgs,

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

    /// Longest wait, in milliseconds, for the origin's answer when a held
    /// original is revalidated; a slower (or failing) origin lets the held
    /// copy answer instead (see `--original-stale-if-error-seconds`).
    #[arg(
        long,
        env = "IMGMESH_ORIGIN_REVALIDATE_TIMEOUT_MS",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub origin_revalidate_timeout_ms: u64,

    /// How long past its freshness a held original may still be served
    /// while the origin is slow or failing (timeouts, 5xx, throttling;
    /// never a missing object or refused credentials), in seconds. 0 turns
    /// this off: every origin failure fails the fetch.
    #[arg(
        long,
        env = "IMGMESH_ORIGINAL_STALE_IF_ERROR_SECONDS",
        default_value_t = 3_600
    )]
    pub original_stale_if_error_seconds: u64,

    /// Longest a whole origin read may take, in milliseconds: every
    /// attempt and its retries, the response headers and the body. Past it
    /// the fetch fails as an origin timeout (504 with `Retry-After` at the
    /// gateway). Keep it below the gateway's `--render-timeout-ms` (30 s),
    /// so a client learns that the origin was slow rather than that the
    /// renderer did not answer, and a trickling origin cannot hold a fetch
    /// until the caller gives up.
    #[arg(
        long,
        env = "IMGMESH_ORIGIN_TIMEOUT_MS",
        default_value_t = 20_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub origin_timeout_ms: u64,

    /// Longest the origin may stay silent, in milliseconds: one attempt's
    /// wait for the response headers (a slower attempt is retried, within
    /// `--origin-timeout-ms`) and the wait for the body's next bytes.
    #[arg(
        long,
        env = "IMGMESH_ORIGIN_ATTEMPT_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub origin_attempt_timeout_ms: u64,

    /// Attempts per origin request, the first included. Only failures worth
    /// repeating are retried (throttling, 5xx, resets, timeouts; never a
    /// 403 or 404), with exponential backoff and jitter; every attempt is
    /// counted in `imgmesh_s3_attempts_total`.
    #[arg(
        long,
        env = "IMGMESH_ORIGIN_MAX_ATTEMPTS",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=10)
    )]
    pub origin_max_attempts: u32,

    /// Where Prometheus scrapes `GET /metrics` (`--metrics-listen`).
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// How often and how patiently the registry is checked for health.
    #[command(flatten)]
    pub health: HealthArgs,

    /// Logging and trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Mutual TLS: this fetcher's certificate and the mesh CA, or
    /// `--insecure-plaintext`.
    #[command(flatten)]
    pub tls: imgmesh_runtime::TlsArgs,
}

// === impl FetcherConfig ===

impl FetcherConfig {
    /// The longest whole origin read (`--origin-timeout-ms`).
    pub fn origin_timeout(&self) -> Duration {
        Duration::from_millis(self.origin_timeout_ms)
    }

    /// Timeouts and retries of every Source's S3 client: connect within
    /// the attempt timeout (at most 3 s), each attempt within
    /// `--origin-attempt-timeout-ms`, the whole operation within
    /// `--origin-timeout-ms`, `--origin-max-attempts` attempts.
    pub fn s3_tuning(&self) -> ClientTuning {
        let attempt = Duration::from_millis(self.origin_attempt_timeout_ms);
        ClientTuning {
            connect_timeout: attempt.min(ClientTuning::default().connect_timeout),
            attempt_timeout: attempt,
            operation_timeout: self.origin_timeout(),
            max_attempts: self.origin_max_attempts,
        }
    }
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
        assert_eq!(config.registry.registry_url, "http://127.0.0.1:50054");
        assert_eq!(config.max_object_bytes, 33_554_432);
        assert_eq!(
            config.metrics.addr(),
            Some("127.0.0.1:9092".parse().unwrap())
        );
        assert_eq!(config.health.interval(), Duration::from_secs(2));
        assert!(config.command.is_none());
    }

    /// `health` takes the listen address before or after it.
    #[test]
    fn health_subcommand_parses() {
        for args in [
            &["imgmesh-fetcher", "health", "--listen=127.0.0.1:7"][..],
            &["imgmesh-fetcher", "--listen=127.0.0.1:7", "health"][..],
        ] {
            let config = FetcherConfig::try_parse_from(args).unwrap();
            assert_eq!(config.command, Some(HealthCommand::Health));
            assert_eq!(config.listen, "127.0.0.1:7".parse().unwrap());
        }
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
        assert_eq!(config.registry.registry_url, "http://10.0.0.1:7000");
        assert_eq!(config.max_object_bytes, 1024);
        assert_eq!(config.metrics.addr(), None);
    }

    /// The origin timeouts default to the shared client's (10 s per attempt,
    /// 3 attempts) with a whole-read bound under the gateway's 30 s, and
    /// the flags set them.
    #[test]
    fn origin_timeouts_default_and_parse() {
        let config = FetcherConfig::try_parse_from(["imgmesh-fetcher"]).unwrap();
        assert_eq!(config.origin_timeout(), Duration::from_secs(20));
        assert_eq!(
            config.s3_tuning(),
            ClientTuning {
                connect_timeout: Duration::from_secs(3),
                attempt_timeout: Duration::from_secs(10),
                operation_timeout: Duration::from_secs(20),
                max_attempts: 3,
            }
        );
        let config = FetcherConfig::try_parse_from([
            "imgmesh-fetcher",
            "--origin-timeout-ms=2500",
            "--origin-attempt-timeout-ms=800",
            "--origin-max-attempts=2",
        ])
        .unwrap();
        assert_eq!(
            config.s3_tuning(),
            ClientTuning {
                connect_timeout: Duration::from_millis(800),
                attempt_timeout: Duration::from_millis(800),
                operation_timeout: Duration::from_millis(2500),
                max_attempts: 2,
            }
        );
        for bad in [
            "--origin-timeout-ms=0",
            "--origin-attempt-timeout-ms=0",
            "--origin-max-attempts=0",
        ] {
            assert!(FetcherConfig::try_parse_from(["imgmesh-fetcher", bad]).is_err());
        }
    }

    /// A zero byte cap would refuse every object, so it is rejected at startup.
    #[test]
    fn zero_byte_cap_is_rejected() {
        let parsed = FetcherConfig::try_parse_from(["imgmesh-fetcher", "--max-object-bytes=0"]);
        assert!(parsed.is_err());
    }
}
