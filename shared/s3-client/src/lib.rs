//! S3 clients for imgmesh Sources.
//!
//! Every imgmesh component that talks to a Source's bucket (the fetcher
//! reading originals, the registry verifying a deploy or uploading) builds
//! its client here, from the same [`BucketLocation`] and [`AccessKey`]
//! (whose `Debug` redacts the secret), so they all behave alike:
//!
//! - configured only from the Source's settings and static credentials;
//!   nothing is loaded from the environment or `~/.aws`, so ambient AWS
//!   credentials can never be used for a Source by accident;
//! - bounded connect, attempt and operation timeouts and a bounded number of
//!   retries;
//! - S3-compatible stores (a Source with an endpoint) addressed path-style;
//! - AWS buckets in us-east-1 read through the regional hostname
//!   `s3.us-east-1.amazonaws.com` first (read-after-write consistency) and,
//!   when that cannot be reached or redirects, through the global
//!   `s3.amazonaws.com`, as imgix does ([`endpoint_choices`] decides).

#![warn(missing_docs)]

mod bucket_access;
mod bucket_client;
mod endpoint_choice;

pub use crate::bucket_access::{AccessKey, BucketAccess, BucketLocation, access_key_id_hint};
pub use crate::bucket_client::{BucketClient, ClientTuning, should_try_next_endpoint};
pub use crate::endpoint_choice::{
    AWS_GLOBAL_ENDPOINT, AWS_US_EAST_1_ENDPOINT, EndpointChoice, endpoint_choices,
};

/// Re-exported so callers name the same SDK version this crate builds with.
pub use aws_sdk_s3;
