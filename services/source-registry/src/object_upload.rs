//! UploadObject: puts one object into a Source's bucket, under its prefix,
//! with the Source's upload credentials (never the read credentials).
//!
//! The stream is a header, then chunks. The object is collected in memory
//! up to the registry's size cap (so a retry, or the us-east-1 fallback to
//! the global endpoint, can send it again), then sent with one PutObject.

use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use imgmesh_errors::ErrorCode;
use imgmesh_imgix_params::{KeyRefusal, check_asset_key};
use imgmesh_proto::registry::v1 as proto;
use imgmesh_proto::registry::v1::upload_object_request::Part;
use imgmesh_s3_client::{BucketAccess, BucketClient, ClientTuning};

use crate::error::RegistryError;
use crate::registry::Registry;
use crate::s3_refusal::{Refusal, refusal};

/// How long one PutObject attempt may take (an upload carries up to the
/// size cap, so longer than a read's first byte).
const UPLOAD_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a whole PutObject, retries included, may take.
const UPLOAD_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Longest Content-Type accepted.
const MAX_CONTENT_TYPE_LEN: usize = 255;

/// Stores the object `parts` describe; returns what was written.
pub(crate) async fn upload_object<S>(
    registry: &Registry,
    mut parts: S,
) -> Result<proto::UploadObjectResponse, RegistryError>
where
    S: Stream<Item = Result<proto::UploadObjectRequest, tonic::Status>> + Unpin,
{
    let header = match parts.next().await {
        Some(Ok(proto::UploadObjectRequest {
            part: Some(Part::Header(header)),
        })) => header,
        Some(Err(_)) => return Err(broken_stream()),
        _ => {
            return Err(RegistryError::invalid(
                "header",
                "the first message must be the upload header",
            ));
        }
    };
    let key = object_key(&header.key)?;
    let content_type = content_type(&header.content_type)?;
    let cap = registry.max_upload_bytes();
    if header.size > cap {
        return Err(RegistryError::UploadTooLarge { cap });
    }

    let record = registry.find(&header.id_or_name).await?;
    let full_key = full_key(&record.location.path_prefix, key)?;
    if !record.deploy.deployed() {
        return Err(RegistryError::UploadRefused("the source is not deployed"));
    }
    let Some(credentials) = registry.upload_credentials(&record).await? else {
        return Err(RegistryError::UploadRefused(
            "the source has no upload credentials",
        ));
    };

    let mut body = BytesMut::new();
    while let Some(message) = parts.next().await {
        match message.map_err(|_| broken_stream())?.part {
            Some(Part::Chunk(chunk)) => {
                if (body.len() + chunk.len()) as u64 > cap {
                    return Err(RegistryError::UploadTooLarge { cap });
                }
                body.extend_from_slice(&chunk);
            }
            Some(Part::Header(_)) => {
                return Err(RegistryError::invalid("header", "must be sent only once"));
            }
            None => {
                return Err(RegistryError::invalid(
                    "part",
                    "must be a header or a chunk",
                ));
            }
        }
    }
    let body: Bytes = body.freeze();
    let size = body.len() as u64;
    if header.size != 0 && header.size != size {
        return Err(RegistryError::invalid(
            "size",
            "does not match the bytes received",
        ));
    }
    if body.is_empty() {
        return Err(RegistryError::invalid("chunk", "the object is empty"));
    }

    let content_type = content_type.unwrap_or_else(|| sniff_content_type(&body).to_owned());
    let client = BucketClient::with_tuning(
        &BucketAccess {
            location: record.location.clone(),
            key: credentials,
        },
        ClientTuning {
            attempt_timeout: UPLOAD_ATTEMPT_TIMEOUT,
            operation_timeout: UPLOAD_OPERATION_TIMEOUT,
            ..ClientTuning::default()
        },
    );
    let put = client
        .send(|s3| {
            s3.put_object()
                .bucket(&record.location.bucket)
                .key(&full_key)
                .content_type(&content_type)
                .content_length(size as i64)
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await;
    match put {
        Ok(output) => Ok(proto::UploadObjectResponse {
            key: full_key,
            etag: output.e_tag().unwrap_or_default().to_owned(),
            size,
        }),
        Err(error) => Err(upload_failure(refusal("PutObject", &error, &record.id))),
    }
}

/// S3's limit on the length of a key, in bytes: "a maximum length of 1,024
/// bytes", and "The prefix, the delimiter (/), and the name of the object
/// are included in the 1,024 byte limitation" (Amazon S3 user guide,
/// "Naming Amazon S3 objects").
const MAX_KEY_BYTES: usize = 1024;

/// The object key of an upload, relative to the Source's prefix. Any key
/// S3 stores is accepted as given — spaces, non-ASCII, `+`, `%`, `?`, `#`,
/// parentheses, backslashes, empty segments (`a//b`, a trailing `/`) and
/// `.` segments (the gateway decodes the URL path once, so `a%20b.jpg`
/// serves the key `a b.jpg`). Refused is only what could step out of the
/// prefix on a store that reads keys as file paths, by the one object-key
/// rule ([`check_asset_key`]): a leading `/` (or `\`), a `..` segment (between `/` or `\`, which
/// some of those stores also split on), and control characters; and an
/// empty key.
fn object_key(key: &str) -> Result<String, RegistryError> {
    let problem = match check_asset_key(key) {
        Ok(()) => return Ok(key.to_owned()),
        Err(KeyRefusal::Empty) => "must not be empty",
        Err(KeyRefusal::LeadingSlash) => {
            "must not start with '/' or '\\' (keys are relative to the source's prefix)"
        }
        Err(KeyRefusal::ControlCharacter) => "must not contain control characters",
        Err(KeyRefusal::ParentSegment) => "must not contain '..' segments",
    };
    Err(RegistryError::invalid("key", problem))
}

/// `key` under the Source's `prefix`, refused when S3 would refuse it for
/// its length.
fn full_key(prefix: &str, key: String) -> Result<String, RegistryError> {
    let full = if prefix.is_empty() {
        key
    } else {
        format!("{prefix}/{key}")
    };
    if full.len() > MAX_KEY_BYTES {
        return Err(RegistryError::invalid(
            "key",
            "must be at most 1024 bytes with the source's prefix",
        ));
    }
    Ok(full)
}

/// The Content-Type to store: `None` (sniff it) when empty; otherwise
/// `type/subtype` with optional parameters, printable ASCII.
fn content_type(value: &str) -> Result<Option<String>, RegistryError> {
    if value.is_empty() {
        return Ok(None);
    }
    let valid = value.len() <= MAX_CONTENT_TYPE_LEN
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && value
            .split(';')
            .next()
            .and_then(|essence| essence.trim().split_once('/'))
            .is_some_and(|(kind, subtype)| !kind.is_empty() && !subtype.is_empty());
    if valid {
        Ok(Some(value.to_owned()))
    } else {
        Err(RegistryError::invalid(
            "content_type",
            "must be a media type such as image/jpeg",
        ))
    }
}

/// The image type `body` starts like, or `application/octet-stream`.
fn sniff_content_type(body: &[u8]) -> &'static str {
    let brand = body.get(8..12);
    if body.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if body.starts_with(b"GIF87a") || body.starts_with(b"GIF89a") {
        "image/gif"
    } else if body.starts_with(b"RIFF") && brand == Some(b"WEBP") {
        "image/webp"
    } else if body.get(4..8) == Some(b"ftyp") && matches!(brand, Some(b"avif" | b"avis")) {
        "image/avif"
    } else if body.get(4..8) == Some(b"ftyp") && matches!(brand, Some(b"heic" | b"heix" | b"mif1"))
    {
        "image/heic"
    } else if body.starts_with(b"II*\0") || body.starts_with(b"MM\0*") {
        "image/tiff"
    } else {
        "application/octet-stream"
    }
}

/// What a failed PutObject tells the caller.
fn upload_failure(refusal: Refusal) -> RegistryError {
    let (code, message) = match refusal {
        Refusal::Denied => (
            ErrorCode::OriginAccessDenied,
            "the upload credentials lack s3:PutObject".to_owned(),
        ),
        Refusal::CredentialsRejected => (
            ErrorCode::OriginAccessDenied,
            "the upload credentials were rejected".to_owned(),
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
            "the s3 endpoint does not implement PutObject".to_owned(),
        ),
        Refusal::Unexpected(answer) => (
            ErrorCode::OriginUnavailable,
            format!("unexpected answer to PutObject: {answer}"),
        ),
    };
    RegistryError::Origin { code, message }
}

/// The client's stream failed mid-upload.
fn broken_stream() -> RegistryError {
    RegistryError::invalid("chunk", "the upload stream ended with an error")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key S3 stores is accepted as is — backslashes, empty and `.`
    /// segments included; only an empty key, a leading `/` or `\`, `..`
    /// segments (between `/` or `\`) and control characters are refused,
    /// each with its reason.
    #[test]
    fn object_key_rules() {
        for good in [
            "cat.jpg",
            "a/b/cat.jpg",
            "with space.jpg",
            "café noir.jpg",
            "日本/写真.png",
            "a+b.jpg",
            "100%.jpg",
            "a%2fb.jpg",
            "photo (1).jpg",
            "what?.jpg",
            "#1.jpg",
            "..a/b..c/.d",
            "~user/[x]{y}!$&'*,;=@.png",
            "a\\b.jpg",
            "a//b.jpg",
            "dir/",
            "a/./b.jpg",
            "./a.jpg",
            ".",
        ] {
            assert_eq!(object_key(good).unwrap(), good, "{good:?}");
        }
        for (bad, reason) in [
            ("", "must not be empty"),
            ("/cat.jpg", "must not start with '/'"),
            ("/", "must not start with '/'"),
            ("\\cat.jpg", "must not start with '/' or '\\'"),
            ("..", "'..' segments"),
            ("../x.jpg", "'..' segments"),
            ("a/../../x.jpg", "'..' segments"),
            ("a\\..\\x.jpg", "'..' segments"),
            ("a/..\\x.jpg", "'..' segments"),
            ("a\0b.jpg", "control characters"),
            ("a\nb.jpg", "control characters"),
            ("a\u{7f}b.jpg", "control characters"),
            ("a\u{85}b.jpg", "control characters"),
        ] {
            match object_key(bad) {
                Err(RegistryError::InvalidField {
                    field: "key",
                    problem,
                }) => {
                    assert!(problem.contains(reason), "{bad:?}: {problem}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    /// The key goes under the prefix with one `/`; the whole key may be
    /// S3's 1024 bytes and no more, prefix included.
    #[test]
    fn full_key_is_at_most_s3s_limit() {
        assert_eq!(full_key("", "a.jpg".to_owned()).unwrap(), "a.jpg");
        assert_eq!(
            full_key("photos", "a//b.jpg".to_owned()).unwrap(),
            "photos/a//b.jpg"
        );
        let fits = "k".repeat(1024 - "photos/".len());
        assert_eq!(full_key("photos", fits.clone()).unwrap().len(), 1024);
        assert!(full_key("", "k".repeat(1024)).is_ok());
        for (prefix, key) in [("photos", format!("{fits}k")), ("", "k".repeat(1025))] {
            match full_key(prefix, key) {
                Err(RegistryError::InvalidField {
                    field: "key",
                    problem,
                }) => assert!(problem.contains("at most 1024 bytes"), "{problem}"),
                other => panic!("{other:?}"),
            }
        }
    }

    /// Content types are media types; empty means sniff.
    #[test]
    fn content_type_rules() {
        assert_eq!(content_type("").unwrap(), None);
        assert_eq!(
            content_type("image/png").unwrap().as_deref(),
            Some("image/png")
        );
        assert!(content_type("text/plain; charset=utf-8").unwrap().is_some());
        for bad in [
            "png",
            "/png",
            "image/",
            "image/png\n",
            "ïmage/png",
            &format!("a/{}", "b".repeat(254)),
        ] {
            assert!(content_type(bad).is_err(), "{bad:?}");
        }
    }

    /// Common image formats are recognised by their first bytes.
    #[test]
    fn content_types_are_sniffed() {
        assert_eq!(sniff_content_type(&[0xff, 0xd8, 0xff, 0xe0]), "image/jpeg");
        assert_eq!(sniff_content_type(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff_content_type(b"GIF89a.."), "image/gif");
        assert_eq!(sniff_content_type(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff_content_type(b"\0\0\0\x1cftypavif"), "image/avif");
        assert_eq!(sniff_content_type(b"\0\0\0\x18ftypheic"), "image/heic");
        assert_eq!(sniff_content_type(b"II*\0...."), "image/tiff");
        assert_eq!(sniff_content_type(b"hello"), "application/octet-stream");
        assert_eq!(sniff_content_type(b""), "application/octet-stream");
    }

    /// S3 refusals become origin errors naming the upload credentials.
    #[test]
    fn refusals_become_origin_errors() {
        for (refusal, code, message) in [
            (
                Refusal::Denied,
                ErrorCode::OriginAccessDenied,
                "the upload credentials lack s3:PutObject",
            ),
            (
                Refusal::CredentialsRejected,
                ErrorCode::OriginAccessDenied,
                "the upload credentials were rejected",
            ),
            (
                Refusal::NoSuchBucket,
                ErrorCode::OriginUnavailable,
                "bucket not found",
            ),
            (
                Refusal::Timeout,
                ErrorCode::OriginTimeout,
                "the s3 endpoint did not answer in time",
            ),
        ] {
            match upload_failure(refusal) {
                RegistryError::Origin {
                    code: c,
                    message: m,
                } => {
                    assert_eq!((c, m.as_str()), (code, message));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
