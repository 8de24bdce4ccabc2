//! imgmesh's renderer: the `RendererService` gRPC API (`Render`,
//! `RenderSet`, `RenderBytes`, `Purge`).
//!
//! Two halves, the service above the pipeline:
//!
//! - [`service`]: a render request names an original (Source id, config
//!   version, path) and a canonical
//!   [`RenderPlan`](imgmesh_proto::renderer::v1::RenderPlan). The
//!   [`Renderer`] resolves the plan once, looks the derivative up in Redis
//!   (`imgmesh_derivative_cache`); on a miss it fetches the original from
//!   the fetcher ([`service::origin_fetch`]), renders it on a bounded
//!   blocking pool ([`service::render_pool`]) and stores the result with
//!   the Source's TTL. `RenderSet` does the same for several plans of one
//!   original with one fetch and one decode, `RenderBytes` renders an
//!   original streamed by the caller, uncached.
//! - [`pipeline`]: the pure, synchronous render (bytes + resolved plan +
//!   limits → encoded derivative) on libvips. [`render_image`] is its
//!   entry for callers outside the service, e.g. benchmarks and fuzzers;
//!   [`render_set()`] renders several plans from one decode.
//!
//! [`config`] reads the command line into both; [`error`] and [`metrics`]
//! are shared by both.

pub mod config;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod service;

#[cfg(test)]
mod fake_fetcher;
#[cfg(test)]
mod test_images;

pub use config::RendererConfig;
pub use error::RenderError;
pub use pipeline::{
    Derivative, EncodedFormat, RenderInput, RenderLimits, libvips, render_image, render_set,
};
pub use service::Renderer;
