//! The gateway's command line and environment.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use imgmesh_telemetry::TelemetryArgs;
use secrecy::{ExposeSecret as _, SecretString};

/// Shortest admin token accepted: anything shorter is guessable.
pub(crate) const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Everything the gateway is configured with; parse it with
/// `GatewayConfig::parse()` (or `try_parse_from` in tests).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-gateway",
    version,
    about = "The public HTTP face of imgmesh: imgix URLs in, derivatives out."
)]
pub struct GatewayConfig {
    /// Instead of serving: `health` asks the running gateway's `GET /ready`.
    #[command(subcommand)]
    pub command: Option<imgmesh_runtime::HealthCommand>,

    /// Address of the public HTTP listener (role "http").
    #[arg(long, env = "IMGMESH_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the operations listener serving `GET /live`, `GET /ready`
    /// (200 while the registry and the renderer report SERVING) and `GET
    /// /metrics` (role "ops").
    #[arg(
        long,
        global = true,
        env = "IMGMESH_GATEWAY_OPS_LISTEN",
        default_value = "127.0.0.1:9080"
    )]
    pub ops_listen: SocketAddr,

    /// Address of the admin HTTP API listener (role "admin"). It starts
    /// only when an admin token is configured.
    #[arg(
        long,
        env = "IMGMESH_GATEWAY_ADMIN_LISTEN",
        default_value = "127.0.0.1:9081"
    )]
    pub admin_listen: SocketAddr,

    /// Address of the public gRPC render API listener (role "grpc",
    /// `imgmesh.image.v1.ImageService`, see docs/grpc-api.md); off when
    /// unset. 127.0.0.1:9082 is the conventional port.
    #[arg(long, env = "IMGMESH_GATEWAY_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,

    /// File holding the admin API's bearer token (surrounding whitespace
    /// ignored; at least 16 characters).
    #[arg(long, env = "IMGMESH_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The admin API's bearer token itself (at least 16 characters). Prefer
    /// the environment variable or a token file: command lines are visible
    /// to other users of the machine.
    #[arg(
        long,
        env = "IMGMESH_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file",
        value_parser = secret_text
    )]
    pub admin_token: Option<SecretString>,

    /// Where the source registry is (`--registry-url`).
    #[command(flatten)]
    pub registry: imgmesh_runtime::RegistryArgs,

    /// gRPC URL of the renderer.
    #[arg(
        long,
        env = "IMGMESH_RENDERER_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub renderer_url: String,

    /// Domain under which Sources are served as `<subdomain>.<base-domain>`.
    #[arg(long, env = "IMGMESH_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,

    /// How long a host → Source lookup (found or not) is cached, in
    /// milliseconds; 0 disables the cache.
    #[arg(long, env = "IMGMESH_SOURCE_CACHE_TTL_MS", default_value_t = 2000)]
    pub source_cache_ttl_ms: u64,

    /// How long a known host's last registry answer may still be served,
    /// in seconds past its cache TTL, when the registry is down or does not
    /// answer in time; 0 serves nothing stale.
    #[arg(long, env = "IMGMESH_SOURCE_STALE_SECONDS", default_value_t = 300)]
    pub source_stale_seconds: u64,

    /// How long a client may take to send a request's head (request line
    /// and headers) on the public and admin listeners, in milliseconds;
    /// slower connections are closed. Idle keep-alive connections are
    /// closed after it too.
    #[arg(
        long,
        env = "IMGMESH_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_read_timeout_ms: u64,

    /// How long the admin API waits for the next part of a request body, in
    /// milliseconds, before answering 408 (an upload may take longer in
    /// all, as long as it keeps sending).
    #[arg(
        long,
        env = "IMGMESH_BODY_READ_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub body_read_timeout_ms: u64,

    /// Most public requests worked on at once; beyond it requests are
    /// refused at once with 503 and `Retry-After: 1`.
    #[arg(
        long,
        env = "IMGMESH_MAX_IN_FLIGHT",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_in_flight: u32,

    /// Deadline of a render, in milliseconds, sent to the renderer as its
    /// gRPC deadline (and on to the fetcher); a renderer that does not
    /// answer in time is a 503 with `Retry-After`.
    #[arg(
        long,
        env = "IMGMESH_RENDER_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub render_timeout_ms: u64,

    /// Whether image responses say `X-Imgmesh-Cache: hit|miss|stale`
    /// (`--cache-status-header=false` turns it off).
    #[arg(
        long,
        env = "IMGMESH_CACHE_STATUS_HEADER",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub cache_status_header: bool,

    /// Redis URL of the derivative cache the renderers fill, or a
    /// comma-separated list of Redis Cluster seed nodes (may carry a
    /// password, so it is never logged). With it, fresh cache hits are
    /// answered here without a call to the renderer; without it, every
    /// request goes to the renderer.
    #[arg(long, env = "IMGMESH_REDIS_URL", value_parser = secret_text)]
    pub redis_url: Option<SecretString>,

    /// Timeout of each Redis operation in milliseconds; a slower Redis
    /// hands the request to the renderer.
    #[arg(long, env = "IMGMESH_REDIS_TIMEOUT_MS", default_value_t = 50)]
    pub redis_timeout_ms: u64,

    /// Bytes of hot derivatives kept in memory (with `--redis-url`). A
    /// copy is served without asking Redis while the gateway follows the
    /// purge feed (Redis Pub/Sub: every purge is pushed to every gateway)
    /// and for at most `--hot-trust-ms`; otherwise only after Redis
    /// confirms, in the usual round trip, that no purge touched it
    /// (docs/caching.md). 0 turns it off.
    #[arg(long, env = "IMGMESH_HOT_CACHE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub hot_cache_bytes: usize,

    /// Longest a hot copy is served on the purge feed's word alone, in
    /// milliseconds, before Redis confirms it again: the bound on a purge
    /// made without a message (an older renderer during an upgrade). 0
    /// confirms every use with Redis (no purge feed).
    #[arg(long, env = "IMGMESH_HOT_TRUST_MS", default_value_t = 5_000)]
    pub hot_trust_ms: u64,

    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// How often and how patiently the registry and the renderer are
    /// checked for `/ready`.
    #[command(flatten)]
    pub health: imgmesh_runtime::HealthArgs,

    /// Mutual TLS for the gateway's channels to the registry and the
    /// renderer: its certificate and the mesh CA, or `--insecure-plaintext`.
    /// (Its HTTP listeners and `--grpc-listen` are not served over it.)
    #[command(flatten)]
    pub tls: imgmesh_runtime::TlsArgs,
}

// === impl GatewayConfig ===

impl GatewayConfig {
    /// The host → Source cache TTL.
    pub fn source_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.source_cache_ttl_ms)
    }

    /// How long a host's last answer may be served past its TTL while the
    /// registry is down.
    pub fn source_stale_window(&self) -> Duration {
        Duration::from_secs(self.source_stale_seconds)
    }

    /// The deadline of a render.
    pub fn render_timeout(&self) -> Duration {
        Duration::from_millis(self.render_timeout_ms)
    }

    /// The header read timeout of the public and admin listeners.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// How long the admin API waits for more of a request body.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The admin API's bearer token from the token file or the token text;
    /// `None` when neither is set (the admin API then stays off). Errors
    /// never show the token.
    pub fn load_admin_token(&self) -> anyhow::Result<Option<SecretString>> {
        let token = if let Some(path) = &self.admin_token_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the admin token file {}", path.display()))?;
            SecretString::from(text.trim())
        } else if let Some(text) = &self.admin_token {
            SecretString::from(text.expose_secret().trim())
        } else {
            return Ok(None);
        };
        anyhow::ensure!(
            token.expose_secret().chars().count() >= MIN_ADMIN_TOKEN_LEN,
            "the admin token must be at least {MIN_ADMIN_TOKEN_LEN} characters, \
             e.g. from `openssl rand -hex 32`"
        );
        Ok(Some(token))
    }
}

/// Keeps a secret command-line value out of `Debug` output.
fn secret_text(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// With no flags the gateway uses the documented defaults.
    #[test]
    fn defaults_match_the_contract() {
        let config = GatewayConfig::try_parse_from(["imgmesh-gateway"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.ops_listen, "127.0.0.1:9080".parse().unwrap());
        assert_eq!(config.registry.registry_url, "http://127.0.0.1:50051");
        assert_eq!(config.renderer_url, "http://127.0.0.1:50053");
        assert_eq!(config.base_domain, "localhost");
        assert_eq!(config.source_cache_ttl(), Duration::from_secs(2));
        assert_eq!(config.admin_listen, "127.0.0.1:9081".parse().unwrap());
        assert!(config.load_admin_token().unwrap().is_none());
        assert_eq!(config.source_stale_window(), Duration::from_secs(300));
        assert_eq!(config.header_read_timeout(), Duration::from_secs(10));
        assert_eq!(config.body_read_timeout(), Duration::from_secs(30));
        assert_eq!(config.max_in_flight, 1024);
        assert_eq!(config.render_timeout(), Duration::from_secs(30));
    }

    /// Every flag is read from the command line.
    #[test]
    fn flags_are_parsed() {
        let config = GatewayConfig::try_parse_from([
            "imgmesh-gateway",
            "--listen=0.0.0.0:80",
            "--ops-listen=127.0.0.1:0",
            "--registry-url=http://registry:50051",
            "--renderer-url=http://renderer:50053",
            "--base-domain=img.example.com",
            "--source-cache-ttl-ms=200",
            "--admin-listen=127.0.0.1:0",
            "--source-stale-seconds=0",
            "--header-read-timeout-ms=250",
            "--body-read-timeout-ms=750",
        ])
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:80".parse().unwrap());
        assert_eq!(config.ops_listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.registry.registry_url, "http://registry:50051");
        assert_eq!(config.renderer_url, "http://renderer:50053");
        assert_eq!(config.base_domain, "img.example.com");
        assert_eq!(config.source_cache_ttl(), Duration::from_millis(200));
        assert_eq!(config.admin_listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.source_stale_window(), Duration::ZERO);
        assert_eq!(config.header_read_timeout(), Duration::from_millis(250));
        assert_eq!(config.body_read_timeout(), Duration::from_millis(750));
    }

    /// `health` takes the ops address before or after it.
    #[test]
    fn health_subcommand_parses() {
        for args in [
            &["imgmesh-gateway", "health", "--ops-listen=127.0.0.1:7"][..],
            &["imgmesh-gateway", "--ops-listen=127.0.0.1:7", "health"][..],
        ] {
            let config = GatewayConfig::try_parse_from(args).unwrap();
            assert_eq!(config.command, Some(imgmesh_runtime::HealthCommand::Health));
            assert_eq!(config.ops_listen, "127.0.0.1:7".parse().unwrap());
        }
        let config = GatewayConfig::try_parse_from(["imgmesh-gateway"]).unwrap();
        assert!(config.command.is_none());
    }

    /// Read timeouts and an in-flight limit of zero are refused: they would refuse everything.
    #[test]
    fn zero_read_timeouts_are_refused() {
        for flag in [
            "--header-read-timeout-ms=0",
            "--body-read-timeout-ms=0",
            "--max-in-flight=0",
        ] {
            assert!(GatewayConfig::try_parse_from(["imgmesh-gateway", flag]).is_err());
        }
    }

    /// The admin token comes from a file (trimmed) or as text; both at once is a usage error.
    #[test]
    fn admin_token_from_file_or_text() {
        let dir =
            std::env::temp_dir().join(format!("imgmesh-gateway-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("admin.token");
        std::fs::write(&file, "  file-token-0123456789abcdef\n").unwrap();
        let from_file = GatewayConfig::try_parse_from([
            "imgmesh-gateway".to_owned(),
            format!("--admin-token-file={}", file.display()),
        ])
        .unwrap();
        let token = from_file.load_admin_token().unwrap().unwrap();
        assert_eq!(token.expose_secret(), "file-token-0123456789abcdef");

        let from_text = GatewayConfig::try_parse_from([
            "imgmesh-gateway",
            "--admin-token=text-token-0123456789abcdef",
        ])
        .unwrap();
        let token = from_text.load_admin_token().unwrap().unwrap();
        assert_eq!(token.expose_secret(), "text-token-0123456789abcdef");
        assert!(!format!("{from_text:?}").contains("text-token"));

        let both = GatewayConfig::try_parse_from([
            "imgmesh-gateway".to_owned(),
            format!("--admin-token-file={}", file.display()),
            "--admin-token=text-token-0123456789abcdef".to_owned(),
        ])
        .unwrap_err();
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A short or missing token file is refused at startup without showing the token.
    #[test]
    fn bad_admin_tokens_are_refused() {
        let short =
            GatewayConfig::try_parse_from(["imgmesh-gateway", "--admin-token=  short-tok  "])
                .unwrap();
        let message = format!("{:#}", short.load_admin_token().unwrap_err());
        assert!(message.contains("at least 16"), "{message}");
        assert!(!message.contains("short-tok"), "{message}");

        let missing = GatewayConfig::try_parse_from([
            "imgmesh-gateway",
            "--admin-token-file=/nonexistent/imgmesh/admin.token",
        ])
        .unwrap();
        let message = format!("{:#}", missing.load_admin_token().unwrap_err());
        assert!(message.contains("admin token file"), "{message}");
    }

    /// A listen address that is not `ip:port` is refused at startup.
    #[test]
    fn bad_listen_address_is_refused() {
        assert!(GatewayConfig::try_parse_from(["imgmesh-gateway", "--listen=localhost"]).is_err());
    }
}
