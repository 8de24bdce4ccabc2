//! The gateway's command line and environment.

use std::net::SocketAddr;
use std::time::Duration;

use imgmesh_telemetry::TelemetryArgs;

/// Everything the gateway is configured with; parse it with
/// `GatewayConfig::parse()` (or `try_parse_from` in tests).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "imgmesh-gateway",
    version,
    about = "The public HTTP face of imgmesh: imgix URLs in, derivatives out."
)]
pub struct GatewayConfig {
    /// Address of the public HTTP listener (role "http").
    #[arg(long, env = "IMGMESH_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the operations listener serving `GET /live` and `GET /ready`
    /// (role "ops").
    #[arg(
        long,
        env = "IMGMESH_GATEWAY_OPS_LISTEN",
        default_value = "127.0.0.1:9080"
    )]
    pub ops_listen: SocketAddr,

    /// gRPC URL of the source registry.
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub registry_url: String,

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

    /// Logging and tracing.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

// === impl GatewayConfig ===

impl GatewayConfig {
    /// The host → Source cache TTL.
    pub fn source_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.source_cache_ttl_ms)
    }
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
        assert_eq!(config.registry_url, "http://127.0.0.1:50051");
        assert_eq!(config.renderer_url, "http://127.0.0.1:50053");
        assert_eq!(config.base_domain, "localhost");
        assert_eq!(config.source_cache_ttl(), Duration::from_secs(2));
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
        ])
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:80".parse().unwrap());
        assert_eq!(config.ops_listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.registry_url, "http://registry:50051");
        assert_eq!(config.renderer_url, "http://renderer:50053");
        assert_eq!(config.base_domain, "img.example.com");
        assert_eq!(config.source_cache_ttl(), Duration::from_millis(200));
    }

    /// A listen address that is not `ip:port` is refused at startup.
    #[test]
    fn bad_listen_address_is_refused() {
        assert!(GatewayConfig::try_parse_from(["imgmesh-gateway", "--listen=localhost"]).is_err());
    }
}
