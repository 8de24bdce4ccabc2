//! The gateway's tests, one binary (the in-test peers in [`support`] are
//! compiled once): its routers and listeners against a fake registry and a
//! fake renderer served over real gRPC. Tests across the real services live
//! in `integration-tests/`.
//!
//! - [`admin_api`]: the admin HTTP API, its authentication and errors;
//! - [`connection_limits`]: slow clients and a registry that goes away;
//! - [`delivery`]: HTTP caching, fallbacks, purges and Redis hits;
//! - [`gateway_in_process`]: the public and ops routers end to end;
//! - [`metrics`]: what `GET /metrics` counts;
//! - [`trace_response`]: the `traceresponse` header on every answer.

mod support;

mod admin_api;
mod connection_limits;
mod delivery;
mod gateway_in_process;
mod metrics;
mod trace_response;
