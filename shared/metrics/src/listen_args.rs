//! `--metrics-listen`: where a service without an HTTP listener of its own
//! serves `GET /metrics`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// The metrics listener setting every gRPC-only service shares
/// (`#[command(flatten)]` it).
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Address the Prometheus `GET /metrics` listener binds (port 0 picks a
    /// free port, announced on stdout); `off` or an empty value turns it off.
    #[arg(
        long = "metrics-listen",
        env = "IMGMESH_METRICS_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    pub metrics_listen: MetricsListen,
}

// === impl MetricsArgs ===

impl MetricsArgs {
    /// The address to bind, or `None` when metrics are off.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.metrics_listen.0
    }
}

/// A `--metrics-listen` value: an address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

// === impl MetricsListen ===

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(value: &str) -> Result<MetricsListen, String> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            return Ok(MetricsListen(None));
        }
        value
            .parse()
            .map(|addr| MetricsListen(Some(addr)))
            .map_err(|_| {
                format!("{value:?} is neither an address such as 127.0.0.1:9090 nor `off`")
            })
    }
}

impl fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        metrics: MetricsArgs,
    }

    fn parse(args: &[&str]) -> Result<Option<SocketAddr>, clap::Error> {
        let args = std::iter::once("service").chain(args.iter().copied());
        Flags::try_parse_from(args).map(|flags| flags.metrics.addr())
    }

    /// Without the flag metrics listen on a free loopback port.
    #[test]
    fn default_is_a_free_loopback_port() {
        assert_eq!(parse(&[]).unwrap(), Some("127.0.0.1:0".parse().unwrap()));
    }

    /// An address is taken as is; `off`, `OFF` and an empty value turn
    /// metrics off; anything else is refused at startup.
    #[test]
    fn addresses_and_off() {
        assert_eq!(
            parse(&["--metrics-listen=0.0.0.0:9090"]).unwrap(),
            Some("0.0.0.0:9090".parse().unwrap())
        );
        assert_eq!(parse(&["--metrics-listen=off"]).unwrap(), None);
        assert_eq!(parse(&["--metrics-listen=OFF"]).unwrap(), None);
        assert_eq!(parse(&["--metrics-listen="]).unwrap(), None);
        let refused = parse(&["--metrics-listen=localhost"]).unwrap_err();
        assert!(refused.to_string().contains("nor `off`"), "{refused}");
    }
}
