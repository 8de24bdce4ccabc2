//! The fetcher's tests, one binary (the harness is compiled once): the
//! fetcher started from its parsed config in-process, against a real S3
//! server (`s3s-fs`), an in-test registry and scripted origins.
//!
//! - [`fetch_object`]: `FetchObject` end to end: streaming, caps, prefixes,
//!   conditional reads, faults and what never leaks;
//! - [`metrics`]: `GET /metrics` counts S3 reads, cache lookups and calls.

mod harness;

mod fetch_object;
mod metrics;
