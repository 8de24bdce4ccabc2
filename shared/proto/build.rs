//! Compiles `proto/` with protox (a pure-Rust protobuf compiler, so no `protoc`
//! is needed) and generates tonic clients and servers, and writes the
//! compiled file descriptor set to `$OUT_DIR/imgmesh_descriptor.bin` for
//! gRPC server reflection.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "imgmesh/registry/v1/source.proto",
        "imgmesh/registry/v1/source_registry_service.proto",
        "imgmesh/registry/v1/source_credentials_service.proto",
        "imgmesh/fetcher/v1/fetcher_service.proto",
        "imgmesh/renderer/v1/render_plan.proto",
        "imgmesh/renderer/v1/renderer_service.proto",
        "imgmesh/image/v1/image.proto",
    ];
    let descriptors = protox::compile(files, [&root])?;
    println!("cargo:rerun-if-changed={}", root.display());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("imgmesh_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .bytes(".imgmesh.fetcher.v1.FetchObjectResponse.chunk")
        .bytes(".imgmesh.renderer.v1.RenderResponse.data")
        .bytes(".imgmesh.registry.v1.UploadObjectRequest.chunk")
        .bytes(".imgmesh.image.v1.RenderResponse.chunk")
        .bytes(".imgmesh.image.v1.RenderSetResponse.chunk")
        .bytes(".imgmesh.image.v1.RenderBytesRequest.chunk")
        .bytes(".imgmesh.image.v1.RenderBytesResponse.chunk")
        .bytes(".imgmesh.renderer.v1.RenderBytesRequest.chunk")
        // A plan is large beside a chunk; boxed, every message stays small.
        .boxed(".imgmesh.renderer.v1.RenderBytesRequest.part.plan")
        .compile_fds(descriptors)?;
    Ok(())
}
