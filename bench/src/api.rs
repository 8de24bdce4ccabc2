//! The public gRPC API's benchmark client (`scripts/bench.sh api`):
//!
//! - `set`: one `ImageService.RenderSet` of the given widths per original;
//! - `singles`: the same widths as separate `ImageService.Render` calls, one
//!   after another, per original;
//! - `overhead`: the same derivative asked for `--calls` times through the
//!   public `ImageService.Render` (gateway → renderer) and through the
//!   renderer's internal `RendererService.Render` directly, alternating.
//!
//! Every call's wall time is recorded; the process's CPU is the caller's
//! business (the script reads the mesh processes' CPU time around a run).
//! Prints `key value` lines: `calls`, `images`, `bytes`, `total_ms`,
//! `p50_ms`, `p99_ms` (for `overhead`: `public_p50_ms`, `public_p99_ms`,
//! `internal_p50_ms`, `internal_p99_ms`, `overhead_p50_ms`).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use imgmesh_proto::image::v1::image_service_client::ImageServiceClient;
use imgmesh_proto::image::v1::{
    DescribeRequest, ImageTarget, RenderRequest, RenderSetRequest, image_target, render_response,
    render_set_response,
};
use imgmesh_proto::registry::v1::GetSourceRequest;
use imgmesh_proto::registry::v1::source_registry_service_client::SourceRegistryServiceClient;
use imgmesh_proto::renderer::v1 as renderer;
use imgmesh_proto::renderer::v1::renderer_service_client::RendererServiceClient;
use imgmesh_runtime::{GrpcChannel, TlsArgs};
use tonic::metadata::{Ascii, MetadataValue};

/// Times the public render API against separate calls and the internal RPC.
#[derive(Debug, Parser)]
struct Args {
    /// The gateway's public gRPC API (`--grpc-listen`), as a URL.
    #[arg(long)]
    api: String,
    /// An API key with the `render` and `describe` operations.
    #[arg(long, env = "IMGMESH_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The Source's subdomain.
    #[arg(long, default_value = "demo")]
    subdomain: String,
    /// How this client reaches the mesh (its identity must be one the
    /// renderer and the registry accept for `overhead`: `gateway`).
    #[command(flatten)]
    tls: TlsArgs,
    #[command(subcommand)]
    mode: Mode,
}

/// What to time.
#[derive(Debug, Subcommand)]
enum Mode {
    /// One RenderSet of every width per original.
    Set(SetArgs),
    /// Every width as its own Render call, per original.
    Singles(SetArgs),
    /// Public Render against the renderer's internal Render, same derivative.
    Overhead(OverheadArgs),
}

/// The originals and widths of `set` and `singles`.
#[derive(Debug, clap::Args)]
struct SetArgs {
    /// Asset paths, each a cold original (never asked for before).
    #[arg(long, value_delimiter = ',', required = true)]
    paths: Vec<String>,
    /// Output widths.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "160,320,480,640,800,960,1120,1280"
    )]
    widths: Vec<u32>,
    /// Parameters every derivative shares.
    #[arg(long, default_value = "q=80&fm=jpg")]
    params: String,
}

/// The derivative `overhead` asks for.
#[derive(Debug, clap::Args)]
struct OverheadArgs {
    /// The renderer's internal gRPC address, as a URL.
    #[arg(long)]
    renderer: String,
    /// The registry's gRPC address, as a URL (for the Source's config version).
    #[arg(long)]
    registry: String,
    /// The asset path.
    #[arg(long)]
    path: String,
    /// The imgix query.
    #[arg(long, default_value = "w=640&q=80&fm=jpg")]
    params: String,
    /// Calls through each API.
    #[arg(long, default_value_t = 500)]
    calls: usize,
}

/// The public API's client, presenting the key.
type ApiClient =
    ImageServiceClient<tonic::service::interceptor::InterceptedService<GrpcChannel, BearerKey>>;

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Debug, Clone)]
struct BearerKey(MetadataValue<Ascii>);

impl tonic::service::Interceptor for BearerKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let transport = args.tls.transport()?;
    // The public API listener is plaintext (TLS is terminated in front of
    // it); the mesh's transport is for the internal calls of `overhead`.
    let channel =
        imgmesh_runtime::grpc_channel_over(&args.api, &imgmesh_runtime::Transport::Plaintext)?;
    let bearer = format!("Bearer {}", args.api_key)
        .parse()
        .context("the API key is not ASCII")?;
    let mut api = ImageServiceClient::with_interceptor(channel, BearerKey(bearer));
    let target = |path: &str, params: &str| ImageTarget {
        source: Some(image_target::Source::Subdomain(args.subdomain.clone())),
        path: path.to_owned(),
        params: params.to_owned(),
        accept: String::new(),
    };
    match args.mode {
        Mode::Set(set) => {
            let mut times = Vec::new();
            let (mut images, mut bytes) = (0, 0);
            for path in &set.paths {
                let variants = set.widths.iter().map(|w| format!("w={w}")).collect();
                let started = Instant::now();
                let mut stream = api
                    .render_set(RenderSetRequest {
                        target: Some(target(path, &set.params)),
                        variants,
                    })
                    .await
                    .with_context(|| format!("RenderSet {path}"))?
                    .into_inner();
                while let Some(message) = stream.message().await? {
                    match message.part {
                        Some(render_set_response::Part::Metadata(_)) => images += 1,
                        Some(render_set_response::Part::Chunk(chunk)) => bytes += chunk.len(),
                        None => {}
                    }
                }
                times.push(started.elapsed());
            }
            report(&times, images, bytes);
        }
        Mode::Singles(set) => {
            let mut times = Vec::new();
            let (mut images, mut bytes) = (0, 0);
            for path in &set.paths {
                for width in &set.widths {
                    let params = format!("{}&w={width}", set.params);
                    let started = Instant::now();
                    bytes += render(&mut api, target(path, &params)).await?;
                    times.push(started.elapsed());
                    images += 1;
                }
            }
            report(&times, images, bytes);
        }
        Mode::Overhead(overhead) => {
            let target = target(&overhead.path, &overhead.params);
            let internal =
                internal_request(&mut api, &overhead, &transport, target.clone()).await?;
            let channel = imgmesh_runtime::grpc_channel_over(&overhead.renderer, &transport)?;
            let mut renderer =
                RendererServiceClient::new(channel).max_decoding_message_size(128 << 20);
            // Warm: the derivative is cached and every connection is up.
            render(&mut api, target.clone()).await?;
            renderer.render(internal.clone()).await?;
            let (mut public, mut direct) = (Vec::new(), Vec::new());
            for _ in 0..overhead.calls {
                let started = Instant::now();
                render(&mut api, target.clone()).await?;
                public.push(started.elapsed());
                let started = Instant::now();
                renderer.render(internal.clone()).await?;
                direct.push(started.elapsed());
            }
            let (public_p50, public_p99) =
                (percentile(&mut public, 0.5), percentile(&mut public, 0.99));
            let (internal_p50, internal_p99) =
                (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
            println!("calls {}", overhead.calls);
            println!("public_p50_ms {public_p50:.3}");
            println!("public_p99_ms {public_p99:.3}");
            println!("internal_p50_ms {internal_p50:.3}");
            println!("internal_p99_ms {internal_p99:.3}");
            println!("overhead_p50_ms {:.3}", public_p50 - internal_p50);
        }
    }
    Ok(())
}

/// Renders `target` through the public API; the derivative's size.
async fn render(api: &mut ApiClient, target: ImageTarget) -> anyhow::Result<usize> {
    let path = target.path.clone();
    let mut stream = api
        .render(RenderRequest {
            target: Some(target),
        })
        .await
        .with_context(|| format!("Render {path}"))?
        .into_inner();
    let mut bytes = 0;
    while let Some(message) = stream.message().await? {
        if let Some(render_response::Part::Chunk(chunk)) = message.part {
            bytes += chunk.len();
        }
    }
    Ok(bytes)
}

/// The internal `Render` request the gateway sends for `target`: the
/// canonical plan and Source id from `Describe`, the config version from
/// the registry.
async fn internal_request(
    api: &mut ApiClient,
    overhead: &OverheadArgs,
    transport: &imgmesh_runtime::Transport,
    target: ImageTarget,
) -> anyhow::Result<renderer::RenderRequest> {
    let described = api
        .describe(DescribeRequest {
            target: Some(target),
        })
        .await
        .context("Describe")?
        .into_inner();
    let channel = imgmesh_runtime::grpc_channel_over(&overhead.registry, transport)?;
    let source = SourceRegistryServiceClient::new(channel)
        .get_source(GetSourceRequest {
            id_or_name: described.source_id.clone(),
        })
        .await
        .context("GetSource")?
        .into_inner()
        .source
        .context("the Source is gone")?;
    Ok(renderer::RenderRequest {
        source_id: described.source_id,
        source_config_version: source.config_version,
        path: overhead.path.clone(),
        plan: described.plan,
        cache_ttl_seconds: source.cache_policy().ttl_seconds,
        cache_ttl_behavior: source.cache_policy().behavior,
        if_none_match: String::new(),
        if_modified_since: 0,
    })
}

/// Prints a `set` or `singles` run's summary.
fn report(times: &[Duration], images: usize, bytes: usize) {
    let mut sorted = times.to_vec();
    let total: Duration = times.iter().sum();
    println!("calls {}", times.len());
    println!("images {images}");
    println!("bytes {bytes}");
    println!("total_ms {:.1}", total.as_secs_f64() * 1000.0);
    println!("p50_ms {:.2}", percentile(&mut sorted, 0.5));
    println!("p99_ms {:.2}", percentile(&mut sorted, 0.99));
}

/// The `q` quantile of `times`, in milliseconds.
fn percentile(times: &mut [Duration], q: f64) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    times.sort_unstable();
    let index = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
    times[index].as_secs_f64() * 1000.0
}
