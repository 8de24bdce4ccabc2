//! The `RendererService` gRPC API: derivative cache → (revalidate | fetch →
//! render) → derivative cache, with HTTP caching semantics.
//!
//! A request looks its derivative up in Redis (one round trip that also
//! reads the purge counters; see `derivative_cache`). A fresh entry is the
//! answer — or just its validators, when the caller's `If-None-Match` /
//! `If-Modified-Since` match. An expired entry is revalidated: the original
//! is fetched conditionally with the ETag it was rendered from, and an
//! unchanged original extends the entry in place without decoding
//! anything. A miss renders once: concurrent misses in this process share
//! one run (`single_flight`), and across replicas a short lease in Redis
//! lets one holder render while the others wait for its entry (rendering
//! themselves if it dies or their wait runs out). Whatever renders is
//! admitted to the [`render_pool`] before its original is fetched, and is
//! refused at once as overloaded when the pool has no room. A plan that
//! asks for nothing stores the original itself, unchanged (imgix's
//! passthrough; see `passthrough`).
//!
//! [`Renderer`] is the request path (`renderer`: lookup, then the answer or
//! a shared run); each part of a run has its module: `revalidation` of
//! expired entries, the render `leases` shared across replicas, the
//! admit → fetch → render → store of a miss (`rendering`), and `purge`;
//! `render_set` answers many plans of one original with one fetch and one
//! decode, `render_bytes` an original the caller streams, `measure` what
//! a render would output from the original's header; `grpc` is the tonic
//! face.
//! The original comes from the fetcher ([`origin_fetch`]) and its HTTP
//! caching headers set the entry's lifetime ([`http_cache`]).

pub mod admission_limit;
pub mod http_cache;
pub mod origin_fetch;
pub mod render_pool;
pub(crate) mod single_flight;

mod grpc;
mod job;
mod leases;
mod measure;
mod purge;
mod render_bytes;
mod render_set;
mod renderer;
mod rendering;
mod revalidation;

pub use render_set::MAX_SET_PLANS;
pub use renderer::Renderer;

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod tests;
