//! The location group: where a Source's objects live (bucket, region,
//! endpoint of an S3-compatible store, path prefix), as the one
//! [`BucketLocation`] the S3 clients also take.
//!
//! A deploy verifies the location, so changing it makes the Source pending
//! again ([`LocationChange::differs_from`]).

use imgmesh_proto::registry::v1 as proto;
use imgmesh_s3_client::BucketLocation;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::columns::Query;
use crate::error::RegistryError;
use crate::source::update_mask::UpdateMask;

const MAX_REGION_LEN: usize = 64;
const MAX_PATH_PREFIX_LEN: usize = 1024;

/// The update-mask paths of the group.
pub(crate) const MASK_PATHS: &[&str] = &[
    "location",
    "location.bucket",
    "location.region",
    "location.endpoint",
    "location.path_prefix",
];

/// Checks a create request's location; the endpoint and prefix come back
/// normalised.
pub(crate) fn validate(location: &proto::Location) -> Result<BucketLocation, RegistryError> {
    Ok(BucketLocation {
        bucket: bucket(&location.bucket)?,
        region: region(&location.region)?,
        endpoint: endpoint_or_none(endpoint(&location.endpoint)?),
        path_prefix: path_prefix(&location.path_prefix)?,
    })
}

/// Binds the `bucket`, `region`, `endpoint` (empty for AWS S3) and
/// `path_prefix` columns.
pub(crate) fn bind<'q>(query: Query<'q>, location: &'q BucketLocation) -> Query<'q> {
    query
        .bind(&location.bucket)
        .bind(&location.region)
        .bind(location.endpoint.as_deref().unwrap_or_default())
        .bind(&location.path_prefix)
}

/// Reads the location columns.
pub(crate) fn from_row(row: &AnyRow) -> Result<BucketLocation, sqlx::Error> {
    Ok(BucketLocation {
        bucket: row.try_get("bucket")?,
        region: row.try_get("region")?,
        endpoint: endpoint_or_none(row.try_get("endpoint")?),
        path_prefix: row.try_get("path_prefix")?,
    })
}

/// The group's public form (a function: both types live in other crates).
pub(crate) fn to_public(location: &BucketLocation) -> proto::Location {
    proto::Location {
        bucket: location.bucket.clone(),
        region: location.region.clone(),
        endpoint: location.endpoint.clone().unwrap_or_default(),
        path_prefix: location.path_prefix.clone(),
    }
}

/// An endpoint as the APIs and the table spell it (empty for AWS S3) as
/// the S3 clients take it.
fn endpoint_or_none(endpoint: String) -> Option<String> {
    Some(endpoint).filter(|endpoint| !endpoint.is_empty())
}

/// A change of location in an update: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct LocationChange {
    /// New bucket.
    pub(crate) bucket: Option<String>,
    /// New region.
    pub(crate) region: Option<String>,
    /// New endpoint; `Some(None)` clears it (AWS S3).
    pub(crate) endpoint: Option<Option<String>>,
    /// New path prefix, normalised.
    pub(crate) path_prefix: Option<String>,
}

// === impl LocationChange ===

impl LocationChange {
    /// Checks the location fields `mask` names.
    pub(crate) fn validate(
        location: &proto::Location,
        mask: &UpdateMask,
    ) -> Result<LocationChange, RegistryError> {
        Ok(LocationChange {
            bucket: mask
                .covers("location.bucket")
                .then(|| bucket(&location.bucket))
                .transpose()?,
            region: mask
                .covers("location.region")
                .then(|| region(&location.region))
                .transpose()?,
            endpoint: mask
                .covers("location.endpoint")
                .then(|| endpoint(&location.endpoint).map(endpoint_or_none))
                .transpose()?,
            path_prefix: mask
                .covers("location.path_prefix")
                .then(|| path_prefix(&location.path_prefix))
                .transpose()?,
        })
    }

    /// Whether a present field differs from `current` (setting a field to
    /// its current value changes nothing).
    pub(crate) fn differs_from(&self, current: &BucketLocation) -> bool {
        fn differs<T: PartialEq>(change: &Option<T>, current: &T) -> bool {
            change.as_ref().is_some_and(|value| value != current)
        }
        differs(&self.bucket, &current.bucket)
            || differs(&self.region, &current.region)
            || differs(&self.endpoint, &current.endpoint)
            || differs(&self.path_prefix, &current.path_prefix)
    }

    /// Applies the present fields to `location`.
    pub(crate) fn apply(&self, location: &mut BucketLocation) {
        if let Some(bucket) = &self.bucket {
            location.bucket = bucket.clone();
        }
        if let Some(region) = &self.region {
            location.region = region.clone();
        }
        if let Some(endpoint) = &self.endpoint {
            location.endpoint = endpoint.clone();
        }
        if let Some(path_prefix) = &self.path_prefix {
            location.path_prefix = path_prefix.clone();
        }
    }
}

// === field rules ===

/// `bucket`: the S3 bucket naming rules.
fn bucket(value: &str) -> Result<String, RegistryError> {
    let invalid = |problem: &str| Err(RegistryError::invalid("bucket", problem));
    if value.len() < 3 || value.len() > 63 {
        return invalid("must be 3 to 63 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid("may contain only lowercase letters, digits, '.' and '-'");
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(value.bytes().next()) || !alnum(value.bytes().last()) {
        return invalid("must start and end with a letter or digit");
    }
    if value.contains("..") {
        return invalid("must not contain two adjacent periods");
    }
    if value.parse::<std::net::Ipv4Addr>().is_ok() {
        return invalid("must not be formatted as an ip address");
    }
    if ["xn--", "sthree-"].iter().any(|p| value.starts_with(p)) {
        return invalid("must not start with 'xn--' or 'sthree-'");
    }
    if ["-s3alias", "--ol-s3"].iter().any(|s| value.ends_with(s)) {
        return invalid("must not end with '-s3alias' or '--ol-s3'");
    }
    Ok(value.to_owned())
}

/// `region`: 1 to 64 of `a-z 0-9 -`, e.g. `us-east-1`.
fn region(value: &str) -> Result<String, RegistryError> {
    if value.is_empty()
        || value.len() > MAX_REGION_LEN
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(RegistryError::invalid(
            "region",
            "must be 1 to 64 lowercase letters, digits or '-', e.g. us-east-1",
        ));
    }
    Ok(value.to_owned())
}

/// `endpoint`: empty (AWS S3) or an `http`/`https` URL with a host and
/// nothing after it; returned as `scheme://host[:port]`.
fn endpoint(value: &str) -> Result<String, RegistryError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let invalid = |problem: &str| Err(RegistryError::invalid("endpoint", problem));
    let Ok(url) = url::Url::parse(value) else {
        return invalid("must be an http or https url");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return invalid("must be an http or https url");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return invalid("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("must not contain credentials");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return invalid("must not have a path, query or fragment");
    }
    Ok(url.origin().ascii_serialization())
}

/// `path_prefix`: normalised to segments joined by single slashes, without
/// leading or trailing slash; refuses `.`/`..` segments, backslashes,
/// percent signs and control characters.
fn path_prefix(value: &str) -> Result<String, RegistryError> {
    let invalid = |problem: &str| Err(RegistryError::invalid("path_prefix", problem));
    if value.len() > MAX_PATH_PREFIX_LEN {
        return invalid("must be at most 1024 bytes");
    }
    if value.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    if value.contains('\\') {
        return invalid("must not contain backslashes");
    }
    if value.contains('%') {
        return invalid("must not contain percent signs");
    }
    let segments: Vec<&str> = value.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return invalid("must not contain '.' or '..' segments");
    }
    Ok(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source_fields::tests::table;

    /// Buckets follow the S3 naming rules.
    #[test]
    fn bucket_rules() {
        let long = "b".repeat(63);
        let too_long = "b".repeat(64);
        table(
            "bucket",
            bucket,
            &[
                "images",
                "abc",
                "my.bucket-1",
                "1bucket",
                long.as_str(),
                "192.168.5",
            ],
            &[
                "ab",
                too_long.as_str(),
                "Images",
                "my_bucket",
                "-bucket",
                "bucket-",
                ".bucket",
                "bucket.",
                "my..bucket",
                "192.168.5.4",
                "xn--bucket",
                "sthree-bucket",
                "bucket-s3alias",
                "bucket--ol-s3",
                "buc ket",
            ],
        );
    }

    /// Regions are non-empty [a-z0-9-].
    #[test]
    fn region_rules() {
        table(
            "region",
            region,
            &["us-east-1", "eu-central-2", "garage", "auto"],
            &["", "US-EAST-1", "us_east_1", "us east", &"r".repeat(65)],
        );
    }

    /// Endpoints are http(s) URLs with a host and nothing after it.
    #[test]
    fn endpoint_rules() {
        table(
            "endpoint",
            endpoint,
            &[
                "",
                "http://127.0.0.1:9000",
                "https://s3.example.com",
                "http://[::1]:9000",
            ],
            &[
                "127.0.0.1:9000",
                "ftp://example.com",
                "http://",
                "https://example.com/bucket",
                "https://example.com/?x=1",
                "https://example.com/#top",
                "https://user:pass@example.com",
                "not a url",
                "file:///etc/passwd",
            ],
        );
    }

    /// Endpoints are normalised to scheme://host[:port].
    #[test]
    fn endpoint_is_normalised() {
        assert_eq!(
            endpoint("HTTP://S3.Example.COM/").unwrap(),
            "http://s3.example.com"
        );
        assert_eq!(
            endpoint("https://s3.example.com:443").unwrap(),
            "https://s3.example.com"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9000/").unwrap(),
            "http://127.0.0.1:9000"
        );
    }

    /// Path prefixes lose outer slashes, collapse `//` and refuse escapes.
    #[test]
    fn path_prefix_rules() {
        for (given, stored) in [
            ("", ""),
            ("/", ""),
            ("photos", "photos"),
            ("/photos/", "photos"),
            ("a//b///c", "a/b/c"),
            ("//a/b//", "a/b"),
            ("dir.v2/x..y/ü", "dir.v2/x..y/ü"),
        ] {
            assert_eq!(path_prefix(given).unwrap(), stored, "{given:?}");
        }
        let too_long = "a".repeat(1025);
        table(
            "path_prefix",
            path_prefix,
            &[],
            &[
                "..", "a/../b", "./a", "a/.", "a\\b", "a%2e", "a\nb", "a\0b", "a\u{85}b", &too_long,
            ],
        );
    }
}
