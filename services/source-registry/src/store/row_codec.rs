//! How a Source is written to and read from a `sources` row: the column
//! list, the binding of its settings, and the stored names of enums.

use sqlx::any::AnyRow;
use sqlx::{Any, Row as _};

use imgmesh_proto::registry::v1::{CacheTtlBehavior, SourceStatus};

use crate::error::RegistryError;
use crate::source::SourceRecord;

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
/// separately).
pub(super) fn record_from_row(row: &AnyRow) -> Result<SourceRecord, sqlx::Error> {
    Ok(SourceRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        subdomain: row.try_get("subdomain")?,
        custom_domains: Vec::new(),
        bucket: row.try_get("bucket")?,
        region: row.try_get("region")?,
        endpoint: row.try_get("endpoint")?,
        path_prefix: row.try_get("path_prefix")?,
        access_key_id: row.try_get("access_key_id")?,
        default_params: row.try_get("default_params")?,
        cache_ttl_seconds: unsigned_column(row, "cache_ttl_seconds")?,
        cache_ttl_behavior: behavior_from_db(&row.try_get::<String, _>("cache_ttl_behavior")?)?,
        cache_ttl_error_seconds: unsigned_column(row, "cache_ttl_error_seconds")?,
        image_missing: row.try_get("image_missing")?,
        image_missing_append_params: bool_column(row, "image_missing_append_params")?,
        image_error: row.try_get("image_error")?,
        image_error_append_params: bool_column(row, "image_error_append_params")?,
        secure_url_enabled: bool_column(row, "secure_url_enabled")?,
        enabled: bool_column(row, "enabled")?,
        status: status_from_db(&row.try_get::<String, _>("status")?)?,
        status_message: row.try_get("status_message")?,
        last_deployed_at: row.try_get("last_deployed_at")?,
        upload_access_key_id: row.try_get("upload_access_key_id")?,
        active_secure_tokens: 0,
        config_version: unsigned_column(row, "config_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Reads a BIGINT column into an unsigned type, refusing out-of-range values.
fn unsigned_column<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| decode_error(column, format!("{value} is out of range")))
}

/// Reads a 0/1 BIGINT column as a bool.
fn bool_column(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(decode_error(column, format!("{other} is not 0 or 1"))),
    }
}

fn decode_error(column: &str, problem: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: problem.into(),
    }
}

/// Binds the settings columns `INSERT` and `UPDATE` share, in the order both
/// statements list them: subdomain through status_message.
pub(super) fn bind_settings<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    record: &'q SourceRecord,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    query
        .bind(&record.subdomain)
        .bind(&record.bucket)
        .bind(&record.region)
        .bind(&record.endpoint)
        .bind(&record.path_prefix)
        .bind(&record.access_key_id)
        .bind(&record.default_params)
        .bind(i64::from(record.cache_ttl_seconds))
        .bind(behavior_to_db(record.cache_ttl_behavior))
        .bind(i64::from(record.cache_ttl_error_seconds))
        .bind(&record.image_missing)
        .bind(i64::from(record.image_missing_append_params))
        .bind(&record.image_error)
        .bind(i64::from(record.image_error_append_params))
        .bind(i64::from(record.secure_url_enabled))
        .bind(i64::from(record.enabled))
        .bind(status_to_db(record.status))
        .bind(&record.status_message)
}

/// The stored name of a cache TTL behaviour.
fn behavior_to_db(behavior: CacheTtlBehavior) -> &'static str {
    match behavior {
        CacheTtlBehavior::Unspecified | CacheTtlBehavior::RespectOrigin => "respect_origin",
        CacheTtlBehavior::OverrideOrigin => "override_origin",
        CacheTtlBehavior::EnforceMinimum => "enforce_minimum",
    }
}

fn behavior_from_db(text: &str) -> Result<CacheTtlBehavior, sqlx::Error> {
    match text {
        "respect_origin" => Ok(CacheTtlBehavior::RespectOrigin),
        "override_origin" => Ok(CacheTtlBehavior::OverrideOrigin),
        "enforce_minimum" => Ok(CacheTtlBehavior::EnforceMinimum),
        other => Err(decode_error(
            "cache_ttl_behavior",
            format!("unknown behaviour {other:?}"),
        )),
    }
}

/// The stored name of a status.
pub(crate) fn status_to_db(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Unspecified | SourceStatus::Pending => "pending",
        SourceStatus::Deploying => "deploying",
        SourceStatus::Deployed => "deployed",
        SourceStatus::Failed => "failed",
    }
}

fn status_from_db(text: &str) -> Result<SourceStatus, sqlx::Error> {
    match text {
        "pending" => Ok(SourceStatus::Pending),
        "deploying" => Ok(SourceStatus::Deploying),
        "deployed" => Ok(SourceStatus::Deployed),
        "failed" => Ok(SourceStatus::Failed),
        other => Err(decode_error("status", format!("unknown status {other:?}"))),
    }
}

/// A config version as the BIGINT column stores it.
pub(super) fn version_to_db(version: u64) -> Result<i64, RegistryError> {
    i64::try_from(version).map_err(|_| RegistryError::ConfigVersionOutOfRange)
}
