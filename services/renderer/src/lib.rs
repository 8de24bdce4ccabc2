//! imgmesh's renderer: the `RendererService.Render` gRPC API.
//!
//! A render request names an original (Source id, config version, path) and
//! a canonical [`RenderPlan`](imgmesh_proto::renderer::v1::RenderPlan). The
//! [`Renderer`] looks the derivative up in Redis ([`derivative_cache`]); on a
//! miss it fetches the original from the fetcher ([`origin_fetch`]), renders
//! it with libvips on a bounded blocking pool ([`render_pool`],
//! [`render`]) and stores the result with the Source's TTL.
//!
//! [`render_image`] is the pure render (bytes + plan + limits → encoded
//! derivative), usable without the service, e.g. by benchmarks.

mod adjust;
mod blurhash;
mod canvas;
mod channels;
pub mod config;
pub mod encode;
pub mod error;
pub mod geometry;
pub mod http_cache;
pub mod input_format;
pub mod libvips;
mod metadata_json;
pub mod metrics;
pub mod origin_fetch;
mod overlay;
mod passthrough;
pub mod render;
pub mod render_plan;
pub mod render_pool;
pub mod service;
mod single_flight;
mod source_image;
mod trim;

#[cfg(test)]
mod fake_fetcher;
#[cfg(test)]
mod test_images;

pub use config::RendererConfig;
pub use encode::EncodedFormat;
pub use error::RenderError;
pub use render::{Derivative, RenderInput, RenderLimits, render_image};
pub use service::Renderer;
