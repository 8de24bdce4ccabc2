//! How a Source is written to and read from a `sources` row: the column
//! list, and the record put together from (and bound as) its groups, each
//! of which reads and binds its own columns.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::columns::{Query, bool_column, unsigned_column};
use crate::error::RegistryError;
use crate::source::{CachePolicy, DeployState, FallbackImages, Routing, SourceRecord, location};

/// `SELECT <every column> FROM sources <tail>`, built at compile time.
macro_rules! select_sources {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, subdomain, bucket, region, endpoint, path_prefix, ",
            "access_key_id, default_params, ",
            "cache_ttl_seconds, cache_ttl_behavior, cache_ttl_error_seconds, ",
            "image_missing, image_missing_append_params, image_error, ",
            "image_error_append_params, secure_url_enabled, enabled, status, ",
            "status_message, last_deployed_at, upload_access_key_id, ",
            "config_version, created_at, updated_at FROM sources ",
            $tail
        )
    };
}

pub(super) use select_sources;

/// Reads a `sources` row (custom domains and token counts are read
/// separately): each group reads its own columns.
pub(super) fn record_from_row(row: &AnyRow) -> Result<SourceRecord, sqlx::Error> {
    Ok(SourceRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        routing: Routing::from_row(row)?,
        location: location::from_row(row)?,
        access_key_id: row.try_get("access_key_id")?,
        default_params: row.try_get("default_params")?,
        cache: CachePolicy::from_row(row)?,
        fallback: FallbackImages::from_row(row)?,
        secure_url_enabled: bool_column(row, "secure_url_enabled")?,
        enabled: bool_column(row, "enabled")?,
        deploy: DeployState::from_row(row)?,
        upload_access_key_id: row.try_get("upload_access_key_id")?,
        active_secure_tokens: 0,
        config_version: unsigned_column(row, "config_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Binds the settings columns `INSERT` and `UPDATE` share, in the order both
/// statements list them (subdomain through status_message), each group
/// binding its own.
pub(super) fn bind_settings<'q>(query: Query<'q>, record: &'q SourceRecord) -> Query<'q> {
    let query = record.routing.bind(query);
    let query = location::bind(query, &record.location)
        .bind(&record.access_key_id)
        .bind(&record.default_params);
    let query = record.cache.bind(query);
    let query = record
        .fallback
        .bind(query)
        .bind(i64::from(record.secure_url_enabled))
        .bind(i64::from(record.enabled));
    record.deploy.bind(query)
}

/// A config version as the BIGINT column stores it.
pub(super) fn version_to_db(version: u64) -> Result<i64, RegistryError> {
    i64::try_from(version).map_err(|_| RegistryError::ConfigVersionOutOfRange)
}
