//! How S3 refused a request the registry made (a deploy check or an
//! upload), sorted into what the operator can fix.
//!
//! Only fixed categories, S3 error codes and region names that are plain
//! tokens ever leave this module; the SDK's own description of the failure
//! is logged for operators and never shown to callers.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// How S3 answered a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The credentials lack the request's permission.
    Denied,
    /// The access key is unknown or the secret does not match it.
    CredentialsRejected,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The bucket lives in another region (named when S3 said which).
    OtherRegion(Option<String>),
    /// The endpoint does not implement the operation.
    NotImplemented,
    /// The endpoint could not be reached.
    Unreachable,
    /// The endpoint did not answer in time.
    Timeout,
    /// Anything else: the S3 error code or HTTP status, if any.
    Unexpected(String),
}

/// Sorts a failed `operation` of Source `source_id` and logs the SDK's own
/// description for operators.
pub(crate) fn refusal<E>(
    operation: &'static str,
    error: &SdkError<E, HttpResponse>,
    source_id: &str,
) -> Refusal
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    tracing::info!(
        source.id = source_id,
        operation,
        error = %DisplayErrorContext(error),
        "s3 refused a registry request"
    );
    match error {
        SdkError::ServiceError(service) => classify(service.raw(), service.err().code()),
        SdkError::ResponseError(response) => classify(response.raw(), None),
        SdkError::TimeoutError(_) => Refusal::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Refusal::Timeout,
        SdkError::DispatchFailure(_) => Refusal::Unreachable,
        _ => Refusal::Unexpected("no answer".to_owned()),
    }
}

/// Sorts an S3 error answer by its code or, without one (HEAD, bodiless
/// answers), its HTTP status.
pub(crate) fn classify(raw: &HttpResponse, code: Option<&str>) -> Refusal {
    let status = raw.status().as_u16();
    let bucket_region = || {
        raw.headers()
            .get("x-amz-bucket-region")
            .filter(|region| is_safe_token(region))
            .map(str::to_owned)
    };
    match code {
        Some("AccessDenied" | "AllAccessDisabled") => Refusal::Denied,
        // NotSignedUp: the key belongs to no S3 account (s3s answers an
        // unknown key id with it).
        Some(
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "NotSignedUp",
        ) => Refusal::CredentialsRejected,
        Some("NoSuchBucket") => Refusal::NoSuchBucket,
        Some(
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException",
        ) => Refusal::OtherRegion(bucket_region()),
        Some("NotImplemented") => Refusal::NotImplemented,
        Some(code) if is_safe_token(code) => Refusal::Unexpected(code.to_owned()),
        _ => match status {
            301 => Refusal::OtherRegion(bucket_region()),
            403 => Refusal::Denied,
            404 => Refusal::NoSuchBucket,
            501 => Refusal::NotImplemented,
            status => Refusal::Unexpected(format!("http {status}")),
        },
    }
}

/// Whether text from S3 is a short plain token (an error code or region)
/// that may be shown as is.
fn is_safe_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S3 answers are sorted by code first, then by HTTP status; only plain
    /// tokens from S3 are ever repeated.
    #[test]
    fn answers_are_classified() {
        let raw = |status: u16, region: Option<&str>| {
            let mut builder = http::Response::builder().status(status);
            if let Some(region) = region {
                builder = builder.header("x-amz-bucket-region", region);
            }
            HttpResponse::try_from(
                builder
                    .body(aws_sdk_s3::primitives::SdkBody::empty())
                    .unwrap(),
            )
            .unwrap()
        };
        for (status, code, expected) in [
            (403, Some("AccessDenied"), Refusal::Denied),
            (
                403,
                Some("SignatureDoesNotMatch"),
                Refusal::CredentialsRejected,
            ),
            (
                403,
                Some("InvalidAccessKeyId"),
                Refusal::CredentialsRejected,
            ),
            (404, Some("NoSuchBucket"), Refusal::NoSuchBucket),
            (501, Some("NotImplemented"), Refusal::NotImplemented),
            (
                500,
                Some("InternalError"),
                Refusal::Unexpected("InternalError".into()),
            ),
            (
                500,
                Some("<script>"),
                Refusal::Unexpected("http 500".into()),
            ),
            (403, None, Refusal::Denied),
            (404, None, Refusal::NoSuchBucket),
            (501, None, Refusal::NotImplemented),
            (503, None, Refusal::Unexpected("http 503".into())),
        ] {
            assert_eq!(
                classify(&raw(status, None), code),
                expected,
                "{status} {code:?}"
            );
        }
        assert_eq!(
            classify(&raw(301, Some("eu-central-1")), None),
            Refusal::OtherRegion(Some("eu-central-1".into()))
        );
        assert_eq!(
            classify(
                &raw(400, Some("eu-central-1")),
                Some("AuthorizationHeaderMalformed")
            ),
            Refusal::OtherRegion(Some("eu-central-1".into()))
        );
        assert_eq!(
            classify(&raw(301, Some("bad region!")), Some("PermanentRedirect")),
            Refusal::OtherRegion(None)
        );
    }
}
