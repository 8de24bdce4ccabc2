//! What can go wrong while fetching an object, how S3's answers are sorted
//! into those cases, and the one mapping onto imgmesh's [`ErrorCode`]s.
//!
//! Messages are fixed, lowercase strings safe for a public caller: the SDK's
//! own error text (which can carry request details) is logged with the
//! Source id, never put into a `tonic::Status`.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use imgmesh_errors::ErrorCode;

use crate::object_key::PathRejection;

/// Everything that stops a fetch. `Clone` so one failed read can answer
/// every caller that was waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FetchError {
    /// A request field is missing or malformed.
    #[error("{field}: {problem}")]
    InvalidRequest {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The path tries to leave the Source's prefix; answered exactly like a
    /// missing object so probing learns nothing.
    #[error("object not found")]
    InvalidPath(#[source] PathRejection),
    /// The object does not exist in the bucket.
    #[error("object not found")]
    ObjectNotFound,
    /// The registry knows no Source with that id.
    #[error("source not found")]
    SourceNotFound,
    /// The Source exists but is disabled.
    #[error("source is disabled")]
    SourceDisabled,
    /// The registry could not be asked for the Source's read access.
    #[error("source registry unavailable")]
    RegistryUnavailable,
    /// The Source's bucket does not exist at the origin.
    #[error("bucket not found")]
    BucketNotFound,
    /// The origin refused the Source's credentials or permissions.
    #[error("the origin rejected the source's credentials")]
    OriginAccessDenied,
    /// The origin did not answer (or stopped sending) in time.
    #[error("the origin did not answer in time")]
    OriginTimeout,
    /// The origin failed or could not be reached.
    #[error("the origin is unavailable")]
    OriginUnavailable,
    /// The origin throttled us (503 `SlowDown`, 429): worth a retry soon,
    /// so the caller sees 503 with `Retry-After`, not a failed origin.
    #[error("the origin is throttling requests")]
    OriginThrottled,
    /// The object is larger than the byte cap.
    #[error("object is larger than the {cap} byte limit")]
    TooLarge {
        /// The cap that applied, in bytes.
        cap: u64,
    },
    /// A bug or a Source the registry should never have handed out.
    #[error("internal error")]
    Internal,
}

impl From<FetchError> for tonic::Status {
    fn from(err: FetchError) -> tonic::Status {
        let code = match &err {
            FetchError::InvalidRequest { .. } => ErrorCode::InvalidArgument,
            FetchError::InvalidPath(_) | FetchError::ObjectNotFound => ErrorCode::ObjectNotFound,
            FetchError::SourceNotFound => ErrorCode::SourceNotFound,
            FetchError::SourceDisabled => ErrorCode::SourceDisabled,
            FetchError::RegistryUnavailable => ErrorCode::Unavailable,
            FetchError::BucketNotFound | FetchError::OriginUnavailable => {
                ErrorCode::OriginUnavailable
            }
            FetchError::OriginThrottled => ErrorCode::Unavailable,
            FetchError::OriginAccessDenied => ErrorCode::OriginAccessDenied,
            FetchError::OriginTimeout => ErrorCode::OriginTimeout,
            FetchError::TooLarge { .. } => ErrorCode::InputTooLarge,
            FetchError::Internal => ErrorCode::Internal,
        };
        match err {
            FetchError::InvalidRequest { field, problem } => {
                imgmesh_errors::invalid_field(field, problem)
            }
            FetchError::TooLarge { cap } => {
                code.status_with(err.to_string(), [("limit_bytes", cap.to_string())])
            }
            _ => code.status(err.to_string()),
        }
    }
}

// === impl FetchError ===

impl FetchError {
    /// The `kind` label of `imgmesh_s3_errors_total` for an origin failure.
    pub(crate) fn metric_kind(&self) -> &'static str {
        match self {
            FetchError::ObjectNotFound | FetchError::InvalidPath(_) => "not_found",
            FetchError::BucketNotFound => "bucket_not_found",
            FetchError::OriginAccessDenied => "access_denied",
            FetchError::OriginThrottled => "throttled",
            FetchError::OriginTimeout => "timeout",
            FetchError::OriginUnavailable => "unavailable",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::InvalidRequest { .. }
            | FetchError::SourceNotFound
            | FetchError::SourceDisabled
            | FetchError::RegistryUnavailable
            | FetchError::Internal => "other",
        }
    }
}

/// Sorts an error answer from the origin by its HTTP status and, when the
/// body carried one, its S3 error code. The code wins when it is known;
/// bodiless answers (HEAD, some S3-compatible stores) fall back on the status.
pub(crate) fn classify_origin_answer(status: u16, code: Option<&str>) -> FetchError {
    match code {
        Some("NoSuchKey" | "NotFound") => return FetchError::ObjectNotFound,
        Some("NoSuchBucket") => return FetchError::BucketNotFound,
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AllAccessDisabled"
            | "AccountProblem"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidSecurity"
            // A region that does not match the bucket's: the Source's
            // credential scope is wrong, not the origin broken.
            | "AuthorizationHeaderMalformed",
        ) => return FetchError::OriginAccessDenied,
        Some("RequestTimeout") => return FetchError::OriginTimeout,
        Some("SlowDown" | "SlowDownRead" | "ServiceUnavailable" | "TooManyRequests") => {
            return FetchError::OriginThrottled;
        }
        Some("InternalError") => return FetchError::OriginUnavailable,
        _ => {}
    }
    match status {
        404 => FetchError::ObjectNotFound,
        401 | 403 => FetchError::OriginAccessDenied,
        408 | 504 => FetchError::OriginTimeout,
        429 | 503 => FetchError::OriginThrottled,
        _ => FetchError::OriginUnavailable,
    }
}

/// Sorts an aws-sdk-s3 failure into a [`FetchError`] and logs the SDK's own
/// description (with the Source id) where an operator can see it.
pub(crate) fn classify_sdk_error<E>(source_id: &str, err: &SdkError<E, HttpResponse>) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let classified = match err {
        SdkError::ServiceError(service) => {
            classify_origin_answer(service.raw().status().as_u16(), service.err().code())
        }
        // An answer the SDK could not parse still has a status worth reading.
        SdkError::ResponseError(response) => {
            classify_origin_answer(response.raw().status().as_u16(), None)
        }
        SdkError::TimeoutError(_) => FetchError::OriginTimeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => FetchError::OriginTimeout,
        SdkError::DispatchFailure(_) => FetchError::OriginUnavailable,
        SdkError::ConstructionFailure(_) => FetchError::Internal,
        _ => FetchError::OriginUnavailable,
    };
    let detail = DisplayErrorContext(err);
    match classified {
        FetchError::ObjectNotFound => {
            tracing::debug!(source_id, error = %detail, "origin has no such object");
        }
        _ => tracing::warn!(source_id, error = %detail, "origin request failed"),
    }
    classified
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    fn reason(err: FetchError) -> (tonic::Code, ErrorCode, String) {
        let status = tonic::Status::from(err);
        (
            status.code(),
            ErrorCode::of_status(&status),
            status.message().to_owned(),
        )
    }

    fn response(status: u16) -> HttpResponse {
        let response = http::Response::builder()
            .status(status)
            .body(SdkBody::empty())
            .unwrap();
        HttpResponse::try_from(response).unwrap()
    }

    fn service_error(status: u16, code: Option<&str>) -> SdkError<GetObjectError, HttpResponse> {
        let mut metadata = ErrorMetadata::builder();
        if let Some(code) = code {
            metadata = metadata.code(code);
        }
        SdkError::service_error(GetObjectError::generic(metadata.build()), response(status))
    }

    /// A missing key is OBJECT_NOT_FOUND by code or, without a code, by 404.
    #[test]
    fn missing_key_is_object_not_found() {
        for err in [
            classify_origin_answer(404, Some("NoSuchKey")),
            classify_origin_answer(404, None),
            classify_origin_answer(404, Some("NotFound")),
        ] {
            assert_eq!(
                reason(err),
                (
                    tonic::Code::NotFound,
                    ErrorCode::ObjectNotFound,
                    "object not found".to_owned()
                )
            );
        }
    }

    /// A missing bucket is the origin's problem, not a missing object.
    #[test]
    fn missing_bucket_is_origin_unavailable() {
        assert_eq!(
            reason(classify_origin_answer(404, Some("NoSuchBucket"))),
            (
                tonic::Code::Unavailable,
                ErrorCode::OriginUnavailable,
                "bucket not found".to_owned()
            )
        );
    }

    /// Refused credentials, by code or by a bodiless 403, are ORIGIN_ACCESS_DENIED.
    #[test]
    fn refused_credentials_are_origin_access_denied() {
        for err in [
            classify_origin_answer(403, Some("AccessDenied")),
            classify_origin_answer(403, Some("InvalidAccessKeyId")),
            classify_origin_answer(403, Some("SignatureDoesNotMatch")),
            classify_origin_answer(400, Some("AuthorizationHeaderMalformed")),
            classify_origin_answer(403, None),
            classify_origin_answer(401, None),
        ] {
            assert_eq!(
                reason(err),
                (
                    tonic::Code::PermissionDenied,
                    ErrorCode::OriginAccessDenied,
                    "the origin rejected the source's credentials".to_owned()
                )
            );
        }
    }

    /// Throttling (by code or by a bodiless 503 or 429) is UNAVAILABLE, a
    /// 503 with `Retry-After` at the gateway, with its own message.
    #[test]
    fn throttling_is_unavailable_with_its_own_message() {
        for err in [
            classify_origin_answer(503, Some("SlowDown")),
            classify_origin_answer(503, Some("ServiceUnavailable")),
            classify_origin_answer(503, None),
            classify_origin_answer(429, None),
        ] {
            assert_eq!(
                reason(err),
                (
                    tonic::Code::Unavailable,
                    ErrorCode::Unavailable,
                    "the origin is throttling requests".to_owned()
                )
            );
        }
        assert_eq!(ErrorCode::Unavailable.http_status(), 503);
    }

    /// Server errors are ORIGIN_UNAVAILABLE (502).
    #[test]
    fn server_errors_are_origin_unavailable() {
        for err in [
            classify_origin_answer(500, Some("InternalError")),
            classify_origin_answer(500, None),
            classify_origin_answer(502, None),
            classify_origin_answer(400, Some("SomethingNew")),
        ] {
            let (code, error_code, _) = reason(err);
            assert_eq!(code, tonic::Code::Unavailable);
            assert_eq!(error_code, ErrorCode::OriginUnavailable);
        }
    }

    /// Origin-side timeouts are ORIGIN_TIMEOUT.
    #[test]
    fn origin_timeouts_are_origin_timeout() {
        for err in [
            classify_origin_answer(400, Some("RequestTimeout")),
            classify_origin_answer(504, None),
            classify_origin_answer(408, None),
        ] {
            let (code, error_code, _) = reason(err);
            assert_eq!(code, tonic::Code::DeadlineExceeded);
            assert_eq!(error_code, ErrorCode::OriginTimeout);
        }
    }

    /// The error code beats the status when both are present.
    #[test]
    fn code_wins_over_status() {
        assert!(matches!(
            classify_origin_answer(404, Some("NoSuchBucket")),
            FetchError::BucketNotFound
        ));
        assert!(matches!(
            classify_origin_answer(403, Some("NoSuchKey")),
            FetchError::ObjectNotFound
        ));
    }

    /// A typed SDK service error is read through its status and code.
    #[test]
    fn sdk_service_errors_use_status_and_code() {
        assert!(matches!(
            classify_sdk_error("src", &service_error(404, Some("NoSuchKey"))),
            FetchError::ObjectNotFound
        ));
        assert!(matches!(
            classify_sdk_error("src", &service_error(404, Some("NoSuchBucket"))),
            FetchError::BucketNotFound
        ));
        assert!(matches!(
            classify_sdk_error("src", &service_error(403, None)),
            FetchError::OriginAccessDenied
        ));
        assert!(matches!(
            classify_sdk_error("src", &service_error(503, None)),
            FetchError::OriginThrottled
        ));
        assert!(matches!(
            classify_sdk_error("src", &service_error(500, None)),
            FetchError::OriginUnavailable
        ));
    }

    /// SDK timeouts, connect timeouts and refused connections map to timeout or unavailable.
    #[test]
    fn sdk_transport_failures_are_classified() {
        let timeout: SdkError<GetObjectError, HttpResponse> = SdkError::timeout_error("operation");
        assert!(matches!(
            classify_sdk_error("src", &timeout),
            FetchError::OriginTimeout
        ));

        let connect_timeout: SdkError<GetObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::timeout("connect".into()));
        assert!(matches!(
            classify_sdk_error("src", &connect_timeout),
            FetchError::OriginTimeout
        ));

        let refused: SdkError<GetObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert!(matches!(
            classify_sdk_error("src", &refused),
            FetchError::OriginUnavailable
        ));

        let unparsable: SdkError<GetObjectError, HttpResponse> =
            SdkError::response_error("garbage", response(500));
        assert!(matches!(
            classify_sdk_error("src", &unparsable),
            FetchError::OriginUnavailable
        ));

        let construction: SdkError<GetObjectError, HttpResponse> =
            SdkError::construction_failure("bad endpoint");
        assert!(matches!(
            classify_sdk_error("src", &construction),
            FetchError::Internal
        ));
    }

    /// The status message never carries the SDK's text.
    #[test]
    fn sdk_text_stays_out_of_the_status() {
        let err = service_error(403, Some("SignatureDoesNotMatch"));
        let (_, _, message) = reason(classify_sdk_error("src", &err));
        assert!(!message.contains("SignatureDoesNotMatch"), "{message}");
        assert_eq!(message, "the origin rejected the source's credentials");
    }

    /// Each remaining variant maps to its own error code.
    #[test]
    fn remaining_variants_map_to_their_codes() {
        let cases = [
            (FetchError::SourceNotFound, ErrorCode::SourceNotFound),
            (FetchError::SourceDisabled, ErrorCode::SourceDisabled),
            (FetchError::RegistryUnavailable, ErrorCode::Unavailable),
            (FetchError::TooLarge { cap: 10 }, ErrorCode::InputTooLarge),
            (FetchError::OriginThrottled, ErrorCode::Unavailable),
            (FetchError::Internal, ErrorCode::Internal),
            (
                FetchError::InvalidPath(PathRejection::ParentSegment),
                ErrorCode::ObjectNotFound,
            ),
            (
                FetchError::InvalidRequest {
                    field: "source_id",
                    problem: "must not be empty",
                },
                ErrorCode::InvalidArgument,
            ),
        ];
        for (err, expected) in cases {
            let status = tonic::Status::from(err);
            assert_eq!(ErrorCode::of_status(&status), expected);
            assert_eq!(status.code(), expected.grpc_code());
        }
    }

    /// The cap a too-large object broke travels as metadata, a refused
    /// request field as a field violation; the messages stay the same.
    #[test]
    fn dynamic_values_are_structure() {
        let status = tonic::Status::from(FetchError::TooLarge { cap: 10 });
        assert_eq!(status.message(), "object is larger than the 10 byte limit");
        let public = imgmesh_errors::PublicError::of("fetcher", &status);
        assert_eq!(public.metadata("limit_bytes"), Some("10"));
        let status = tonic::Status::from(FetchError::InvalidRequest {
            field: "source_id",
            problem: "must not be empty",
        });
        assert_eq!(status.message(), "source_id: must not be empty");
        let public = imgmesh_errors::PublicError::of("fetcher", &status);
        assert_eq!(public.field(), Some("source_id"));
    }

    /// An escape attempt reads exactly like a missing object.
    #[test]
    fn invalid_path_looks_like_a_missing_object() {
        let status = tonic::Status::from(FetchError::InvalidPath(PathRejection::ParentSegment));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "object not found");
    }
}
