//! Tests that cross imgmesh services, one binary with a module per topic:
//! the harness library and its dependencies are linked once, not once per
//! file. Each test starts what it needs (Redis, `s3s-fs`, the four service
//! binaries, built first with `cargo build --bins`) on free ports and stops
//! it when it ends; run one topic with
//! `cargo nextest run -p imgmesh-integration-tests --test integration <topic>::`.
//!
//! - [`mesh`], [`rendering`], [`delivery`], [`edge`], [`object_keys`],
//!   [`properties`], [`imgix_clients`]: requests through the whole mesh;
//!   [`srcset`]: a srcset's widths reusing one decode;
//! - [`sources`], [`dashboard`], [`render_api`]: managing Sources and the
//!   public gRPC API; [`admin_scopes`]: the admin API's scoped tokens and
//!   audit log;
//! - [`health`], [`metrics`], [`grafana_dashboard`], [`telemetry`]: what
//!   operators see;
//! - [`balancing`], [`overload`], [`slow_clients`], [`tier_faults`],
//!   [`s3_faults`], [`bad_bytes`], [`redis_cluster`]: scale-out, load and
//!   faults; [`hot_copies`]: the gateways' hot copies and the purge feed;
//! - [`mtls`], [`master_key_rotation`], [`deploy_kit`]: mutual TLS, secrets
//!   at rest and the deploy kit.

mod promql_check;

mod admin_scopes;
mod bad_bytes;
mod balancing;
mod dashboard;
mod delivery;
mod deploy_kit;
mod edge;
mod grafana_dashboard;
mod health;
mod hot_copies;
mod imgix_clients;
mod master_key_rotation;
mod mesh;
mod metrics;
mod mtls;
mod object_keys;
mod overload;
mod properties;
mod redis_cluster;
mod render_api;
mod rendering;
mod s3_faults;
mod slow_clients;
mod sources;
mod srcset;
mod telemetry;
mod tier_faults;
