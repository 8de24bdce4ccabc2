//! What a public caller may see of a failed call to another tier: the one
//! reading of a `tonic::Status` the gateway's answers, the admin API and the
//! CLI share.
//!
//! imgmesh services write public-safe messages, so a status in imgmesh's
//! domain keeps its message, its code, the field it refuses and its
//! `ErrorInfo` metadata. Any other status (a transport failure, a deadline,
//! a peer that is not imgmesh) may carry internals such as addresses or OS
//! errors, so it gets a generic message naming only the tier and what
//! happened.

use std::collections::BTreeMap;
use std::fmt;

use tonic_types::StatusExt as _;

use crate::error_status::connection_failed;
use crate::{ERROR_DOMAIN, ErrorCode, FIELD_KEY};

/// Who answered a failed call, as far as its status tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An imgmesh service: the status carries imgmesh's `ErrorInfo`.
    Imgmesh,
    /// Nobody in time: `DEADLINE_EXCEEDED`, or `CANCELLED`, which is how
    /// tonic reports a deadline that passed.
    TimedOut,
    /// Nobody: the connection could not be made or broke (`UNAVAILABLE`
    /// without imgmesh's `ErrorInfo`, or an I/O error).
    Unreachable,
    /// A peer that does not serve the call (`UNIMPLEMENTED` without
    /// imgmesh's `ErrorInfo`).
    Unimplemented,
    /// Anything else that is not imgmesh.
    Foreign,
}

/// A failed call as a public caller may see it: a catalogue code, a
/// public-safe message and, from imgmesh statuses only, the field at fault
/// and the dynamic values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    answer: Answer,
    code: ErrorCode,
    message: String,
    field: Option<String>,
    metadata: BTreeMap<String, String>,
}

// === impl PublicError ===

impl PublicError {
    /// Reads `status`, which `service` (`"registry"`, `"renderer"`)
    /// answered or the transport made up on its behalf.
    pub fn of(service: &str, status: &tonic::Status) -> PublicError {
        let details = status.get_error_details();
        if let Some(info) = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
        {
            // A reason this build does not know (a newer peer) still comes
            // with an imgmesh message; its gRPC code says what it is.
            let code = ErrorCode::from_reason(&info.reason)
                .unwrap_or_else(|| ErrorCode::from_grpc_code(status.code()));
            let field = details
                .bad_request()
                .and_then(|bad_request| bad_request.field_violations.first())
                .map(|violation| violation.field.clone())
                .or_else(|| info.metadata.get(FIELD_KEY).cloned());
            let message = if status.message().is_empty() {
                generic_message(service, code)
            } else {
                status.message().to_owned()
            };
            return PublicError {
                answer: Answer::Imgmesh,
                code,
                message,
                field,
                metadata: info.metadata.clone().into_iter().collect(),
            };
        }
        let answer = match status.code() {
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Answer::TimedOut,
            tonic::Code::Unavailable => Answer::Unreachable,
            _ if connection_failed(status) => Answer::Unreachable,
            tonic::Code::Unimplemented => Answer::Unimplemented,
            _ => Answer::Foreign,
        };
        match answer {
            Answer::TimedOut => PublicError::timed_out(service),
            Answer::Unimplemented => PublicError::generic(
                answer,
                ErrorCode::Internal,
                format!("the {service} does not support this yet"),
            ),
            _ => {
                let code = ErrorCode::of_status(status);
                PublicError::generic(answer, code, generic_message(service, code))
            }
        }
    }

    /// `service` did not answer within the caller's deadline: our own tier
    /// is slow or stuck, so the caller may retry (`UNAVAILABLE`, 503),
    /// unlike an origin that timed out (504).
    pub fn timed_out(service: &str) -> PublicError {
        PublicError::generic(
            Answer::TimedOut,
            ErrorCode::Unavailable,
            format!("{service} did not answer in time"),
        )
    }

    /// An error with no field and no metadata.
    fn generic(answer: Answer, code: ErrorCode, message: String) -> PublicError {
        PublicError {
            answer,
            code,
            message,
            field: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Who answered.
    pub fn answer(&self) -> Answer {
        self.answer
    }

    /// The catalogue code, which gives the HTTP status.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message a public caller may see.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, owned.
    pub fn into_message(self) -> String {
        self.message
    }

    /// The request field at fault, as the API spells it (`subdomain`,
    /// `custom_domains[1]`): the status's first `BadRequest` field
    /// violation, else its `field` metadata.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The dynamic value the status carries under `key` in its `ErrorInfo`
    /// metadata.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }
}

impl fmt::Display for PublicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `service: <the code's reason in words>`, e.g. `renderer: unavailable`.
fn generic_message(service: &str, code: ErrorCode) -> String {
    format!(
        "{service}: {}",
        code.reason().to_ascii_lowercase().replace('_', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invalid_field;

    /// `status` after a trip over the wire: its HTTP/2 headers and back.
    fn over_the_wire(status: tonic::Status) -> tonic::Status {
        let response = status.into_http::<()>();
        tonic::Status::from_header_map(response.headers()).expect("a grpc-status header")
    }

    /// An imgmesh status keeps its code, message, field and metadata over
    /// the wire.
    #[test]
    fn imgmesh_status_round_trips() {
        let status = over_the_wire(invalid_field("subdomain", "must be a dns label"));
        let public = PublicError::of("registry", &status);
        assert_eq!(public.answer(), Answer::Imgmesh);
        assert_eq!(public.code(), ErrorCode::InvalidArgument);
        assert_eq!(public.message(), "subdomain: must be a dns label");
        assert_eq!(public.field(), Some("subdomain"));
        assert_eq!(public.metadata(FIELD_KEY), Some("subdomain"));

        let status = over_the_wire(ErrorCode::AlreadyExists.status_with(
            "subdomain: a source with this subdomain already exists",
            [(FIELD_KEY, "subdomain".to_owned())],
        ));
        let public = PublicError::of("registry", &status);
        assert_eq!(public.code(), ErrorCode::AlreadyExists);
        assert_eq!(public.field(), Some("subdomain"));

        let status = over_the_wire(ErrorCode::InputTooLarge.status_with(
            "object is larger than the 10 byte limit",
            [("limit_bytes", "10".to_owned())],
        ));
        let public = PublicError::of("registry", &status);
        assert_eq!(public.code(), ErrorCode::InputTooLarge);
        assert_eq!(public.message(), "object is larger than the 10 byte limit");
        assert_eq!(public.metadata("limit_bytes"), Some("10"));
        assert_eq!(public.field(), None);
    }

    /// A message is never parsed for a field: only the structure names one.
    #[test]
    fn field_comes_only_from_structure() {
        let status = ErrorCode::InvalidArgument.status("subdomain: must be a dns label");
        assert_eq!(PublicError::of("registry", &status).field(), None);
    }

    /// An imgmesh status with an empty message, or a reason this build does
    /// not know, still reads as imgmesh's, by its gRPC code.
    #[test]
    fn imgmesh_status_without_message_or_known_reason() {
        let public = PublicError::of("registry", &ErrorCode::Internal.status(""));
        assert_eq!(public.answer(), Answer::Imgmesh);
        assert_eq!(public.message(), "registry: internal");

        let details = tonic_types::ErrorDetails::with_error_info(
            "SOMETHING_NEW",
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        );
        let status =
            tonic::Status::with_error_details(tonic::Code::NotFound, "gone somewhere", details);
        let public = PublicError::of("registry", &status);
        assert_eq!(public.answer(), Answer::Imgmesh);
        assert_eq!(public.code(), ErrorCode::ObjectNotFound);
        assert_eq!(public.message(), "gone somewhere");
    }

    /// A foreign status, made by the peer or by the local transport, never
    /// shows its message (addresses, OS errors): a generic one names the
    /// tier and what happened.
    #[test]
    fn foreign_status_gets_a_generic_message() {
        let cases = [
            (
                tonic::Status::unavailable("tcp connect error: 10.1.2.3:50053: Connection refused"),
                Answer::Unreachable,
                ErrorCode::Unavailable,
                "renderer: unavailable",
            ),
            (
                tonic::Status::from_error(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                ))),
                Answer::Unreachable,
                ErrorCode::Unavailable,
                "renderer: unavailable",
            ),
            (
                tonic::Status::deadline_exceeded("Timeout expired"),
                Answer::TimedOut,
                ErrorCode::Unavailable,
                "renderer did not answer in time",
            ),
            (
                tonic::Status::cancelled("Timeout expired"),
                Answer::TimedOut,
                ErrorCode::Unavailable,
                "renderer did not answer in time",
            ),
            (
                tonic::Status::unimplemented("Purge is not implemented at 10.0.0.1"),
                Answer::Unimplemented,
                ErrorCode::Internal,
                "the renderer does not support this yet",
            ),
            (
                tonic::Status::unknown("h2 protocol error: frame too large"),
                Answer::Foreign,
                ErrorCode::Internal,
                "renderer: internal",
            ),
            (
                tonic::Status::not_found("/srv/data/x.jpg"),
                Answer::Foreign,
                ErrorCode::ObjectNotFound,
                "renderer: object not found",
            ),
        ];
        for (status, answer, code, message) in cases {
            let public = PublicError::of("renderer", &status);
            assert_eq!(public.answer(), answer, "{status:?}");
            assert_eq!(public.code(), code, "{status:?}");
            assert_eq!(public.message(), message, "{status:?}");
            assert_eq!(public.field(), None);
        }
    }

    /// A status whose `ErrorInfo` belongs to another domain is foreign:
    /// neither its message nor its details are shown.
    #[test]
    fn other_domains_are_foreign() {
        let mut details = tonic_types::ErrorDetails::with_error_info(
            "QUOTA",
            "example.com",
            std::collections::HashMap::from([("bucket".to_owned(), "secret-bucket".to_owned())]),
        );
        details.add_bad_request_violation("bucket", "is private");
        let status = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "bucket: secret-bucket is private",
            details,
        );
        let public = PublicError::of("registry", &status);
        assert_eq!(public.answer(), Answer::Foreign);
        assert_eq!(public.code(), ErrorCode::InvalidArgument);
        assert_eq!(public.message(), "registry: invalid argument");
        assert_eq!(public.field(), None);
        assert_eq!(public.metadata("bucket"), None);
    }
}
