//! The protobuf contract between imgmesh services: messages, clients and
//! servers generated from `proto/` at build time.

#![warn(missing_docs)]
// Generated code: its items are as public, and as debuggable, as prost and
// tonic make them.
#![allow(unreachable_pub, missing_debug_implementations)]

/// The well-known types the protos use (`google.protobuf.FieldMask`),
/// re-exported so callers name the version the messages are built with.
pub use prost_types;

/// Sources and their credentials (`imgmesh.registry.v1`).
pub mod registry {
    /// Version 1 of the registry API.
    #[allow(missing_docs)] // generated: documented as far as the protos' comments go
    pub mod v1 {
        tonic::include_proto!("imgmesh.registry.v1");
    }
}

mod source_groups;

/// The JSON views of the registry's messages (admin API and `imgmesh --json`).
pub mod json;

/// Reading originals (`imgmesh.fetcher.v1`).
pub mod fetcher {
    /// Version 1 of the fetcher API.
    #[allow(missing_docs)] // generated: documented as far as the protos' comments go
    pub mod v1 {
        tonic::include_proto!("imgmesh.fetcher.v1");
    }
}

/// Rendering derivatives (`imgmesh.renderer.v1`).
pub mod renderer {
    /// Version 1 of the renderer API.
    #[allow(missing_docs)] // generated: documented as far as the protos' comments go
    pub mod v1 {
        tonic::include_proto!("imgmesh.renderer.v1");
    }
}

/// The public render API for service callers (`imgmesh.image.v1`).
pub mod image {
    /// Version 1 of the public image API.
    #[allow(missing_docs)] // generated: documented as far as the protos' comments go
    pub mod v1 {
        tonic::include_proto!("imgmesh.image.v1");
    }
}

/// Every imgmesh proto file, compiled: the `FileDescriptorSet` that gRPC
/// server reflection serves, so grpcurl needs no proto files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/imgmesh_descriptor.bin"));
