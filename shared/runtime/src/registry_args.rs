//! `--registry-url`: where a process finds the source registry.

use anyhow::Context as _;

use crate::{GrpcChannel, Transport, grpc_channel_over};

/// Where the source registry's gRPC API listens unless told otherwise.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:50051";

/// The source registry's address, for every process that calls it
/// (`#[command(flatten)]` it). A caller of another of the registry's ports
/// gives its own default and help with
/// `#[command(mut_arg("registry_url", …))]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// gRPC URL of the source registry.
    #[arg(
        long,
        env = "IMGMESH_REGISTRY_URL",
        default_value = DEFAULT_REGISTRY_URL
    )]
    pub registry_url: String,
}

// === impl RegistryArgs ===

impl RegistryArgs {
    /// A channel to the registry over `transport` (see
    /// [`grpc_channel_over`]); it connects lazily, so this succeeds while the
    /// registry is still starting.
    pub fn channel_over(&self, transport: &Transport) -> anyhow::Result<GrpcChannel> {
        grpc_channel_over(&self.registry_url, transport).context("--registry-url")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// A process with the group flattened in.
    #[derive(Debug, clap::Parser)]
    struct Caller {
        #[command(flatten)]
        registry: RegistryArgs,
    }

    /// Without the flag the registry's own API port is used; the flag wins.
    #[test]
    fn default_and_flag() {
        let caller = Caller::try_parse_from(["caller"]).unwrap();
        assert_eq!(caller.registry.registry_url, DEFAULT_REGISTRY_URL);
        let caller =
            Caller::try_parse_from(["caller", "--registry-url=http://registry:7000"]).unwrap();
        assert_eq!(caller.registry.registry_url, "http://registry:7000");
    }

    /// An unusable URL is refused naming the flag.
    #[tokio::test]
    async fn bad_urls_name_the_flag() {
        let args = RegistryArgs {
            registry_url: "not a url".to_owned(),
        };
        let error = args.channel_over(&Transport::Plaintext).unwrap_err();
        assert!(
            format!("{error:#}").starts_with("--registry-url"),
            "{error:#}"
        );
    }
}
