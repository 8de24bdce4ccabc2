//! ListObjects: one page of the objects under a Source's prefix, listed
//! with the Source's read credentials (ListObjectsV2, `s3:ListBucket`, the
//! permission a deploy checks), so what is listed is what the renderer can
//! read. Keys come back relative to the prefix: the paths they are served
//! at. The page token is S3's continuation token, passed through as is.

use imgmesh_errors::ErrorCode;
use imgmesh_proto::registry::v1 as proto;
use imgmesh_s3_client::BucketClient;

use crate::error::RegistryError;
use crate::registry::Registry;
use crate::s3_refusal::{Refusal, refusal};

/// Objects in a page when the request does not say.
const DEFAULT_PAGE_SIZE: u32 = 100;
/// Most objects in a page (ListObjectsV2's own cap).
const MAX_PAGE_SIZE: u32 = 1000;
/// Longest prefix accepted (S3's key limit).
const MAX_PREFIX_BYTES: usize = 1024;

/// One page of the objects under the Source's prefix (and the request's
/// own prefix below it), in key order.
pub(crate) async fn list_objects(
    registry: &Registry,
    request: &proto::ListObjectsRequest,
) -> Result<proto::ListObjectsResponse, RegistryError> {
    let relative = request_prefix(&request.prefix)?;
    let record = registry.find(&request.id_or_name).await?;
    let access = registry.read_access(&record.id).await?;
    let location = &access.bucket.location;
    let base = if location.path_prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", location.path_prefix)
    };
    let prefix = format!("{base}{relative}");
    let page_size = page_size(request.page_size);
    let client = BucketClient::new(&access.bucket);
    let listed = client
        .send(|s3| {
            let mut list = s3
                .list_objects_v2()
                .bucket(&location.bucket)
                .max_keys(page_size as i32);
            if !prefix.is_empty() {
                list = list.prefix(&prefix);
            }
            if !request.page_token.is_empty() {
                list = list.continuation_token(&request.page_token);
            }
            list.send()
        })
        .await;
    let output =
        listed.map_err(|error| list_failure(refusal("ListObjectsV2", &error, &record.id)))?;
    let objects = output
        .contents()
        .iter()
        .filter_map(|object| {
            let key = object.key()?.strip_prefix(&base)?;
            // The prefix's own "folder" marker is no asset.
            (!key.is_empty()).then(|| proto::StoredObject {
                key: key.to_owned(),
                size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                last_modified: object.last_modified().map_or(0, |time| time.secs()),
            })
        })
        .collect();
    let next_page_token = if output.is_truncated() == Some(true) {
        output
            .next_continuation_token()
            .unwrap_or_default()
            .to_owned()
    } else {
        String::new()
    };
    Ok(proto::ListObjectsResponse {
        objects,
        next_page_token,
    })
}

/// The request's prefix, relative to the Source's.
fn request_prefix(prefix: &str) -> Result<&str, RegistryError> {
    if prefix.starts_with('/') || prefix.starts_with('\\') {
        return Err(RegistryError::invalid(
            "prefix",
            "must not start with '/' or '\\' (keys are relative to the source's prefix)",
        ));
    }
    if prefix.len() > MAX_PREFIX_BYTES || prefix.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            "prefix",
            "must be at most 1024 bytes without control characters",
        ));
    }
    Ok(prefix)
}

/// The page size to ask S3 for: [`DEFAULT_PAGE_SIZE`] for 0, at most
/// [`MAX_PAGE_SIZE`].
fn page_size(asked: u32) -> u32 {
    match asked {
        0 => DEFAULT_PAGE_SIZE,
        asked => asked.min(MAX_PAGE_SIZE),
    }
}

/// What a failed ListObjectsV2 tells the caller.
fn list_failure(refusal: Refusal) -> RegistryError {
    let (code, message) = match refusal {
        Refusal::Denied => (
            ErrorCode::OriginAccessDenied,
            "the read credentials lack s3:ListBucket".to_owned(),
        ),
        Refusal::CredentialsRejected => (
            ErrorCode::OriginAccessDenied,
            "the read credentials were rejected".to_owned(),
        ),
        Refusal::NoSuchBucket => (ErrorCode::OriginUnavailable, "bucket not found".to_owned()),
        Refusal::OtherRegion(_) => (
            ErrorCode::OriginUnavailable,
            "the bucket is in another region than the source says".to_owned(),
        ),
        Refusal::Timeout => (
            ErrorCode::OriginTimeout,
            "the s3 endpoint did not answer in time".to_owned(),
        ),
        Refusal::Unreachable => (
            ErrorCode::OriginUnavailable,
            "could not connect to the s3 endpoint".to_owned(),
        ),
        Refusal::NotImplemented => (
            ErrorCode::OriginUnavailable,
            "the s3 endpoint does not implement ListObjectsV2".to_owned(),
        ),
        Refusal::Unexpected(answer) => (
            ErrorCode::OriginUnavailable,
            format!("unexpected answer to ListObjectsV2: {answer}"),
        ),
    };
    RegistryError::Origin { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefix is relative to the Source's: a leading slash, a control
    /// character or more than S3's key length is refused; the page size
    /// defaults to 100 and is capped at 1000.
    #[test]
    fn request_rules() {
        assert_eq!(request_prefix("").unwrap(), "");
        assert_eq!(request_prefix("photos/").unwrap(), "photos/");
        for bad in ["/photos", "\\photos", "a\nb"] {
            assert!(request_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(request_prefix(&"a".repeat(1025)).is_err());
        assert_eq!(page_size(0), 100);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(5000), 1000);
    }

    /// A refused listing names the permission the read credentials lack.
    #[test]
    fn failures_name_the_permission() {
        let RegistryError::Origin { code, message } = list_failure(Refusal::Denied) else {
            panic!("an origin error");
        };
        assert_eq!(code, ErrorCode::OriginAccessDenied);
        assert_eq!(message, "the read credentials lack s3:ListBucket");
    }
}
