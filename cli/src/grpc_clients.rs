//! The CLI's gRPC clients: the source registry at `--registry-url` and a
//! renderer at `--renderer-url`, over mutual TLS with the operator's
//! certificate (plaintext only with `--insecure-plaintext`).

use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_runtime::GrpcChannel;

use crate::args::Cli;
use crate::error::CliError;

/// A registry client for `--registry-url`.
pub(crate) fn registry_client(
    cli: &Cli,
) -> Result<SourceRegistryServiceClient<GrpcChannel>, CliError> {
    let transport = transport(cli)?;
    let channel = imgmesh_runtime::grpc_channel_over(&cli.registry.registry_url, &transport)
        .map_err(|error| CliError::RegistryUrl {
            url: cli.registry.registry_url.clone(),
            reason: format!("{error:#}"),
        })?;
    Ok(SourceRegistryServiceClient::new(channel))
}

/// A renderer client for `renderer_url`.
pub(crate) fn renderer_client(
    cli: &Cli,
    renderer_url: &str,
) -> Result<RendererServiceClient<GrpcChannel>, CliError> {
    let transport = transport(cli)?;
    let channel =
        imgmesh_runtime::grpc_channel_over(renderer_url, &transport).map_err(|error| {
            CliError::RendererUnreachable {
                url: renderer_url.to_owned(),
                message: format!("{error:#}"),
            }
        })?;
    Ok(RendererServiceClient::new(channel))
}

/// How the CLI dials: mutual TLS with the operator's certificate, or
/// plaintext only when `--insecure-plaintext` says so; with neither, an
/// error naming the flags, worded as the services word it.
fn transport(cli: &Cli) -> Result<imgmesh_runtime::Transport, CliError> {
    cli.tls
        .transport()
        .map_err(|error| CliError::Transport(format!("{error:#}")))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// Without the TLS flags and without `--insecure-plaintext` the CLI
    /// dials nothing and names the flags, as the services do; with
    /// `--insecure-plaintext` it dials plaintext.
    #[tokio::test]
    async fn refuses_to_dial_without_certificates_or_the_insecure_flag() {
        let cli = Cli::try_parse_from(["imgmesh", "sources", "list"]).unwrap();
        let error = registry_client(&cli).unwrap_err();
        assert!(matches!(error, CliError::Transport(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("--tls-cert") && message.contains("--insecure-plaintext"),
            "{message}"
        );
        assert!(renderer_client(&cli, "http://127.0.0.1:50053").is_err());

        let plaintext =
            Cli::try_parse_from(["imgmesh", "--insecure-plaintext", "sources", "list"]).unwrap();
        assert!(registry_client(&plaintext).is_ok());
    }
}
