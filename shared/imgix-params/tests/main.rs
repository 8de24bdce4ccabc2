//! The imgix parameter parser's tests through its public API, one binary:
//!
//! - [`imgix_docs`]: imgix's documented defaults, aliases, ranges and
//!   encodings, each test quoting the page it follows;
//! - [`properties`]: what must hold for every query (no panic, canonical
//!   plans, order-independence), for generated queries.

mod imgix_docs;
mod properties;
