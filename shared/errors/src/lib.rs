//! The error vocabulary every imgmesh service speaks.
//!
//! Each service keeps its own `thiserror` enum for what can go wrong inside
//! it; at the edge of the service that enum is turned into an [`ErrorCode`]
//! carried over gRPC as a `tonic::Status` with a `google.rpc.ErrorInfo`
//! detail whose `reason` is the code's name. The gateway reads the reason back
//! and maps it to exactly one HTTP status. Both mappings live here, in one
//! `match` each, so a code cannot mean different things on different hops.
//!
//! A status also carries its structure, so no caller parses a message
//! ([`error_status`]): every dynamic value the message shows is in the
//! `ErrorInfo` metadata, and a refused field is a `google.rpc.BadRequest`
//! field violation. [`PublicError`] is the one reading of a status that a
//! public caller may see (the gateway's answers, the admin API, the CLI).

#![warn(missing_docs)]

use std::fmt;

mod error_status;
mod public_error;

pub use crate::error_status::{FIELD_KEY, invalid_field};
pub use crate::public_error::{Answer, PublicError};

/// The `ErrorInfo.domain` imgmesh stamps on its errors.
pub const ERROR_DOMAIN: &str = "imgmesh.dev";

/// The `ErrorInfo` metadata key of an OVERLOADED status that names what
/// ran out when it was not room to run: [`MEMORY_SHORTAGE`]. A caller that
/// learns a concurrency limit from a tier's refusals (the gateway's) learns
/// only from refusals without it: a render refused because it does not fit
/// the memory free now says nothing about how many renders the tier runs.
pub const SHORTAGE_KEY: &str = "shortage";

/// [`SHORTAGE_KEY`]'s value for a request refused because it needs more
/// memory than is free now, though another would be taken.
pub const MEMORY_SHORTAGE: &str = "memory";

/// Everything that can go wrong that a caller needs to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No Source has that id, name or host.
    SourceNotFound,
    /// The Source exists but is disabled.
    SourceDisabled,
    /// The object does not exist in the Source's bucket.
    ObjectNotFound,
    /// A request field or parameter is invalid; the message names it and
    /// the status carries it as a field violation.
    InvalidArgument,
    /// The thing being created already exists (a name or subdomain is taken).
    AlreadyExists,
    /// The request's signature is missing or wrong.
    SignatureInvalid,
    /// The origin rejected the Source's credentials or permissions.
    OriginAccessDenied,
    /// The input exceeds the byte or pixel limit.
    InputTooLarge,
    /// The input is in a format imgmesh does not read.
    UnsupportedInput,
    /// The input claims a supported format but cannot be decoded.
    CorruptInput,
    /// The origin failed or was unreachable.
    OriginUnavailable,
    /// The origin did not answer in time.
    OriginTimeout,
    /// An imgmesh tier is over capacity; retry later.
    Overloaded,
    /// An imgmesh tier is down or not ready.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
    /// No API key was presented, or it is unknown or revoked.
    ApiKeyInvalid,
    /// The API key may not perform this operation on this Source.
    ApiKeyForbidden,
    /// No API key has that id.
    ApiKeyNotFound,
}

// === impl ErrorCode ===

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::SourceNotFound,
        ErrorCode::SourceDisabled,
        ErrorCode::ObjectNotFound,
        ErrorCode::InvalidArgument,
        ErrorCode::AlreadyExists,
        ErrorCode::SignatureInvalid,
        ErrorCode::OriginAccessDenied,
        ErrorCode::InputTooLarge,
        ErrorCode::UnsupportedInput,
        ErrorCode::CorruptInput,
        ErrorCode::OriginUnavailable,
        ErrorCode::OriginTimeout,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::ApiKeyInvalid,
        ErrorCode::ApiKeyForbidden,
        ErrorCode::ApiKeyNotFound,
    ];

    /// The `ErrorInfo.reason` string, e.g. `SOURCE_NOT_FOUND`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorCode::SourceNotFound => "SOURCE_NOT_FOUND",
            ErrorCode::SourceDisabled => "SOURCE_DISABLED",
            ErrorCode::ObjectNotFound => "OBJECT_NOT_FOUND",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::SignatureInvalid => "SIGNATURE_INVALID",
            ErrorCode::OriginAccessDenied => "ORIGIN_ACCESS_DENIED",
            ErrorCode::InputTooLarge => "INPUT_TOO_LARGE",
            ErrorCode::UnsupportedInput => "UNSUPPORTED_INPUT",
            ErrorCode::CorruptInput => "CORRUPT_INPUT",
            ErrorCode::OriginUnavailable => "ORIGIN_UNAVAILABLE",
            ErrorCode::OriginTimeout => "ORIGIN_TIMEOUT",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::ApiKeyInvalid => "API_KEY_INVALID",
            ErrorCode::ApiKeyForbidden => "API_KEY_FORBIDDEN",
            ErrorCode::ApiKeyNotFound => "API_KEY_NOT_FOUND",
        }
    }

    /// Parses a reason string back into a code.
    pub fn from_reason(reason: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.reason() == reason)
    }

    /// The gRPC status code this error travels as.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::SourceNotFound | ErrorCode::ObjectNotFound => tonic::Code::NotFound,
            ErrorCode::SourceDisabled => tonic::Code::FailedPrecondition,
            ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
            ErrorCode::SignatureInvalid => tonic::Code::Unauthenticated,
            ErrorCode::OriginAccessDenied => tonic::Code::PermissionDenied,
            ErrorCode::InputTooLarge | ErrorCode::Overloaded => tonic::Code::ResourceExhausted,
            ErrorCode::UnsupportedInput | ErrorCode::CorruptInput => {
                tonic::Code::FailedPrecondition
            }
            ErrorCode::OriginUnavailable | ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::OriginTimeout => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
            ErrorCode::ApiKeyInvalid => tonic::Code::Unauthenticated,
            ErrorCode::ApiKeyForbidden => tonic::Code::PermissionDenied,
            ErrorCode::ApiKeyNotFound => tonic::Code::NotFound,
        }
    }

    /// The HTTP status the gateway answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::SourceNotFound | ErrorCode::ObjectNotFound => 404,
            ErrorCode::SourceDisabled => 410,
            ErrorCode::InvalidArgument => 400,
            ErrorCode::AlreadyExists => 409,
            ErrorCode::SignatureInvalid => 403,
            // The origin refused *us*, not the client: a gateway error.
            ErrorCode::OriginAccessDenied | ErrorCode::OriginUnavailable => 502,
            ErrorCode::InputTooLarge => 413,
            ErrorCode::UnsupportedInput => 415,
            ErrorCode::CorruptInput => 422,
            // A full tier sheds with 503 + `Retry-After`, as imgix and
            // imgproxy do; 429 would blame the client for our capacity.
            ErrorCode::Overloaded | ErrorCode::Unavailable => 503,
            ErrorCode::OriginTimeout => 504,
            ErrorCode::Internal => 500,
            ErrorCode::ApiKeyInvalid => 401,
            ErrorCode::ApiKeyForbidden => 403,
            ErrorCode::ApiKeyNotFound => 404,
        }
    }

    /// The code a bare gRPC status maps to when it carries no `ErrorInfo`
    /// (a transport failure, a deadline, a peer that is not imgmesh).
    ///
    /// tonic reports a deadline that passed as `CANCELLED` ("Timeout
    /// expired"), on the client and on the server alike, so `CANCELLED` is a
    /// timeout here too: never an internal error.
    pub fn from_grpc_code(code: tonic::Code) -> ErrorCode {
        match code {
            tonic::Code::NotFound => ErrorCode::ObjectNotFound,
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorCode::InvalidArgument,
            tonic::Code::AlreadyExists => ErrorCode::AlreadyExists,
            tonic::Code::PermissionDenied => ErrorCode::OriginAccessDenied,
            tonic::Code::Unauthenticated => ErrorCode::SignatureInvalid,
            tonic::Code::ResourceExhausted => ErrorCode::Overloaded,
            tonic::Code::Unavailable => ErrorCode::Unavailable,
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ErrorCode::OriginTimeout,
            _ => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reason strings are unique, so parsing them back is unambiguous.
    #[test]
    fn reasons_are_unique() {
        let mut reasons: Vec<_> = ErrorCode::ALL.iter().map(|c| c.reason()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), ErrorCode::ALL.len());
    }

    /// Every reason parses back into its code, and nothing else parses.
    #[test]
    fn reasons_parse_back() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_reason(code.reason()), Some(code));
        }
        assert_eq!(ErrorCode::from_reason("NOT_A_REASON"), None);
    }

    /// The HTTP mapping matches the statuses imgix users expect.
    #[test]
    fn http_statuses_match_imgix() {
        assert_eq!(ErrorCode::SourceNotFound.http_status(), 404);
        assert_eq!(ErrorCode::ObjectNotFound.http_status(), 404);
        assert_eq!(ErrorCode::SourceDisabled.http_status(), 410);
        assert_eq!(ErrorCode::SignatureInvalid.http_status(), 403);
        assert_eq!(ErrorCode::InputTooLarge.http_status(), 413);
        assert_eq!(ErrorCode::UnsupportedInput.http_status(), 415);
        assert_eq!(ErrorCode::CorruptInput.http_status(), 422);
    }
}
