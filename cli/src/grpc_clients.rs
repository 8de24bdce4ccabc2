//! The CLI's gRPC clients: the source registry at `--registry-url` and a
//! renderer at `--renderer-url`, over mutual TLS when the TLS flags are
//! given.

use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_runtime::GrpcChannel;

use crate::args::Cli;
use crate::error::CliError;

/// A registry client for `--registry-url`.
pub(crate) fn registry_client(
    cli: &Cli,
) -> Result<SourceRegistryServiceClient<GrpcChannel>, CliError> {
    let channel = transport(cli)
        .and_then(|transport| imgmesh_runtime::grpc_channel_over(&cli.registry_url, &transport))
        .map_err(|error| CliError::RegistryUrl {
            url: cli.registry_url.clone(),
            reason: format!("{error:#}"),
        })?;
    Ok(SourceRegistryServiceClient::new(channel))
}

/// A renderer client for `renderer_url`.
pub(crate) fn renderer_client(
    cli: &Cli,
    renderer_url: &str,
) -> Result<RendererServiceClient<GrpcChannel>, CliError> {
    let channel = transport(cli)
        .and_then(|transport| imgmesh_runtime::grpc_channel_over(renderer_url, &transport))
        .map_err(|error| CliError::RendererUnreachable {
            url: renderer_url.to_owned(),
            message: format!("{error:#}"),
        })?;
    Ok(RendererServiceClient::new(channel))
}

/// How the CLI dials: mutual TLS with the operator's certificate when the
/// TLS flags are given, plaintext otherwise (a client, it opens no port;
/// an mTLS registry refuses the plaintext connection).
fn transport(cli: &Cli) -> anyhow::Result<imgmesh_runtime::Transport> {
    let tls = &cli.tls;
    if tls.tls_cert.is_none() && tls.tls_key.is_none() && tls.tls_ca.is_none() {
        return Ok(imgmesh_runtime::Transport::Plaintext);
    }
    tls.transport()
}
