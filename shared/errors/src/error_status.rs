//! Writing an imgmesh error status, and reading its code back.
//!
//! A status is its [`ErrorCode`]'s gRPC code, a public-safe message and a
//! `google.rpc.ErrorInfo` whose `reason` is the code's name and whose
//! `domain` is [`ERROR_DOMAIN`]. Every dynamic value the message shows (a
//! field, an id, a limit) is also in the `ErrorInfo` metadata, under a
//! snake_case key that carries its unit (`limit_bytes`), as AIP-193 asks: the
//! message is for people, the metadata for programs, and no caller parses a
//! message. A refused request field is also a `google.rpc.BadRequest` field
//! violation ([`invalid_field`]).

use std::collections::HashMap;
use std::fmt;

use tonic_types::{ErrorDetails, StatusExt as _};

use crate::{ERROR_DOMAIN, ErrorCode};

/// The `ErrorInfo` metadata key naming the request field an error is about:
/// a refused field, or a unique field whose value is already taken.
pub const FIELD_KEY: &str = "field";

// === impl ErrorCode ===

impl ErrorCode {
    /// Builds the `tonic::Status` for this code with `message` (lowercase,
    /// no trailing punctuation, safe to show a public caller) when the
    /// message shows no dynamic value.
    pub fn status(self, message: impl Into<String>) -> tonic::Status {
        self.status_with(message, [])
    }

    /// Builds the `tonic::Status` for this code with `message` and, in its
    /// `ErrorInfo` metadata, every dynamic value the message shows, keyed by
    /// what it is: `[("limit_bytes", cap.to_string())]`. The values are as
    /// public as the message, so never a secret.
    pub fn status_with(
        self,
        message: impl Into<String>,
        metadata: impl IntoIterator<Item = (&'static str, String)>,
    ) -> tonic::Status {
        tonic::Status::with_error_details(self.grpc_code(), message, self.details(metadata))
    }

    /// Reads the code back from a status received over gRPC. A status
    /// without imgmesh's `ErrorInfo` that carries an I/O error (the peer's
    /// connection was reset or closed mid-call, e.g. it was killed) is
    /// [`ErrorCode::Unavailable`]: tonic reports it as UNKNOWN, which would
    /// otherwise read as an internal error.
    pub fn of_status(status: &tonic::Status) -> ErrorCode {
        status
            .get_details_error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .and_then(|info| ErrorCode::from_reason(&info.reason))
            .unwrap_or_else(|| {
                if connection_failed(status) {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::from_grpc_code(status.code())
                }
            })
    }

    /// The details of a status of this code: its `ErrorInfo`, carrying
    /// `metadata`.
    fn details(self, metadata: impl IntoIterator<Item = (&'static str, String)>) -> ErrorDetails {
        let metadata: HashMap<String, String> = metadata
            .into_iter()
            .map(|(key, value)| {
                debug_assert!(is_metadata_key(key), "{key:?} is no ErrorInfo metadata key");
                (key.to_owned(), value)
            })
            .collect();
        ErrorDetails::with_error_info(self.reason(), ERROR_DOMAIN, metadata)
    }
}

/// The `INVALID_ARGUMENT` status refusing request field `field` (as the API
/// spells it, `subdomain` or `custom_domains[1]`) because of `problem`
/// (lowercase, never a secret). Its message is `field: problem`; the field is
/// a `google.rpc.BadRequest` field violation described by `problem`, and the
/// `ErrorInfo` metadata's [`FIELD_KEY`].
pub fn invalid_field(field: &str, problem: impl fmt::Display) -> tonic::Status {
    let problem = problem.to_string();
    let code = ErrorCode::InvalidArgument;
    let mut details = code.details([(FIELD_KEY, field.to_owned())]);
    details.add_bad_request_violation(field, problem.as_str());
    tonic::Status::with_error_details(code.grpc_code(), format!("{field}: {problem}"), details)
}

/// Whether `key` is a valid `ErrorInfo` metadata key: `[a-z][a-zA-Z0-9-_]+`,
/// at most 64 characters (google.rpc.ErrorInfo).
fn is_metadata_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    key.len() <= 64
        && bytes.next().is_some_and(|first| first.is_ascii_lowercase())
        && bytes.len() > 0
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `status` came from a connection that failed: an I/O error
/// somewhere in its source chain, either as itself or as an HTTP/2 error
/// of I/O kind. The second is how a peer killed mid-stream shows: h2 ends
/// every open stream of a connection closed under it with a `BrokenPipe`
/// that it keeps inside its own error, which has no `source()`, and tonic
/// reads that error's missing reason as UNKNOWN.
pub(crate) fn connection_failed(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<std::io::Error>()
            || error
                .downcast_ref::<h2::Error>()
                .is_some_and(h2::Error::is_io)
        {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code survives a trip through a gRPC status unchanged.
    #[test]
    fn reason_round_trips_through_status() {
        for code in ErrorCode::ALL {
            let status = code.status("something happened");
            assert_eq!(status.code(), code.grpc_code());
            assert_eq!(ErrorCode::of_status(&status), code);
        }
    }

    /// The dynamic values of a status are its `ErrorInfo` metadata, beside
    /// its reason and imgmesh's domain; a status without values has none.
    #[test]
    fn dynamic_values_are_error_info_metadata() {
        let status = ErrorCode::InputTooLarge.status_with(
            "object is larger than the 10 byte limit",
            [("limit_bytes", 10.to_string())],
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "INPUT_TOO_LARGE");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata,
            HashMap::from([("limit_bytes".to_owned(), "10".to_owned())])
        );
        assert_eq!(status.message(), "object is larger than the 10 byte limit");
        let plain = ErrorCode::Internal.status("internal error");
        assert!(plain.get_details_error_info().unwrap().metadata.is_empty());
    }

    /// A refused field is named by the message, a BadRequest field violation
    /// and the `field` metadata.
    #[test]
    fn invalid_field_is_a_field_violation() {
        let status = invalid_field("custom_domains[1]", "must be a domain name");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "custom_domains[1]: must be a domain name");
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::InvalidArgument);
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "custom_domains[1]");
        assert_eq!(violations[0].description, "must be a domain name");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata[FIELD_KEY], "custom_domains[1]");
    }

    /// Metadata keys follow google.rpc.ErrorInfo's pattern.
    #[test]
    fn metadata_keys_follow_error_info() {
        for key in ["field", "limit_bytes", "source", "api_key_id", "maxAge-2"] {
            assert!(is_metadata_key(key), "{key}");
        }
        for key in [
            "",
            "f",
            "Field",
            "1field",
            "limit bytes",
            "a.b",
            &"k".repeat(65),
        ] {
            assert!(!is_metadata_key(key), "{key}");
        }
    }

    /// A status from a foreign peer falls back on its gRPC code.
    #[test]
    fn bare_status_maps_by_grpc_code() {
        let status = tonic::Status::unavailable("connection refused");
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::of_status(&status).http_status(), 503);
    }

    /// A deadline tonic reports as CANCELLED is a timeout (504), never a 500.
    #[test]
    fn cancelled_deadline_is_a_timeout() {
        let status = tonic::Status::cancelled("Timeout expired");
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::OriginTimeout);
        assert_eq!(ErrorCode::of_status(&status).http_status(), 504);
        let status = tonic::Status::deadline_exceeded("deadline exceeded");
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::OriginTimeout);
    }

    /// A call whose connection broke (a reset, as when the peer is killed
    /// mid-answer; tonic says UNKNOWN "transport error") is unavailable
    /// (503), never internal; an UNKNOWN status without an I/O cause stays
    /// internal.
    #[test]
    fn broken_connection_is_unavailable() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let status = tonic::Status::from_error(Box::new(reset));
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::of_status(&status).http_status(), 503);
        let status = tonic::Status::unknown("transport error");
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::Internal);
        // Our own answers keep their code whatever their cause.
        let status = ErrorCode::Internal.status("render failed");
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::Internal);
    }
}
