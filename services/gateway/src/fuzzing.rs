//! What the fuzz targets in `fuzz/` call: the gateway's parsers of
//! untrusted input, exactly as the request handlers run them. Not an API
//! (hidden from the docs, no stability promised); nothing here is used by
//! the gateway itself.

use http::StatusCode;
pub use imgmesh_imgix_params::signature::signature;
use imgmesh_proto::registry::v1::{CreateSourceRequest, UpdateSourceRequest};

pub use crate::admin::purge::Target as PurgeTarget;
pub use crate::asset_path::{asset_path, percent_decoded};
pub use crate::signing::{SignatureError, SigningKey, verify};

use crate::admin::AdminError;

/// How the admin API refuses a body: the status, the field named and the
/// message, as the error response carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRefusal {
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// The `field` of the error, when it names one.
    pub field: Option<String>,
    /// The `message` of the error.
    pub message: String,
}

impl From<AdminError> for BodyRefusal {
    fn from(error: AdminError) -> BodyRefusal {
        BodyRefusal {
            status: error.status(),
            field: error.field().map(str::to_owned),
            message: error.message().to_owned(),
        }
    }
}

/// A `POST /v1/sources` body, as `create_source` reads it.
pub fn create_source_body(body: &[u8]) -> Result<CreateSourceRequest, BodyRefusal> {
    crate::admin::json::create_request(body).map_err(Into::into)
}

/// A `PATCH /v1/sources/{id_or_name}` body, as `update_source` reads it.
pub fn update_source_body(
    id_or_name: String,
    body: &[u8],
) -> Result<UpdateSourceRequest, BodyRefusal> {
    crate::admin::json::update_request(id_or_name, body).map_err(Into::into)
}

/// A `POST /v1/sources/{id}/rotate-token` body, as `rotate_token` reads it.
pub fn rotate_token_body(body: &[u8]) -> Result<u32, BodyRefusal> {
    crate::admin::json::grace_period_seconds(body).map_err(Into::into)
}

/// A `POST /v1/sources/{id_or_name}/purge` body, as `purge` reads it.
pub fn purge_body(body: &[u8]) -> Result<PurgeTarget, BodyRefusal> {
    crate::admin::purge::target(body).map_err(Into::into)
}
