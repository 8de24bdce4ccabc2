//! The registry's tests through its public API, one binary: the real gRPC
//! server started in-process on loopback listeners and called with the
//! generated clients.
//!
//! - [`grpc_server`]: every RPC over the wire, health and errors;
//! - [`credentials_port`]: the credential RPC on its own listener only;
//! - [`metrics`]: what `GET /metrics` counts.

mod credentials_port;
mod grpc_server;
mod metrics;
