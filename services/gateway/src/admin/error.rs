//! What the admin API answers when something goes wrong: one JSON shape,
//! `{"error":{"code":"…","message":"…","field":"…"}}`, with the HTTP status
//! of its code.
//!
//! Registry errors are read by [`PublicError`]: they keep their
//! [`ErrorCode`] and public-safe message, and the field their structure
//! names (a `BadRequest` field violation, or the `field` metadata of a taken
//! unique field) is `"field"`. Statuses without imgmesh's `ErrorInfo`
//! (transport failures, deadlines) may carry internals, so they get a
//! generic message.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use imgmesh_errors::{Answer, ErrorCode, PublicError};

/// One admin API error, ready to become a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

// === impl AdminError ===

impl AdminError {
    /// An error with an imgmesh [`ErrorCode`], answered with that code's HTTP status.
    pub(crate) fn coded(code: ErrorCode, message: impl Into<String>) -> AdminError {
        AdminError {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.reason(),
            message: message.into(),
            field: None,
        }
    }

    /// `INVALID_ARGUMENT` naming `field`; the message is `field: problem`.
    pub(crate) fn invalid_field(field: &str, problem: impl std::fmt::Display) -> AdminError {
        AdminError {
            field: Some(field.to_owned()),
            ..AdminError::coded(ErrorCode::InvalidArgument, format!("{field}: {problem}"))
        }
    }

    /// 401: no bearer token, or not the configured one.
    pub(crate) fn unauthenticated() -> AdminError {
        AdminError {
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHENTICATED",
            message: "missing or invalid bearer token".to_owned(),
            field: None,
        }
    }

    /// 403: the credential is valid but its scope does not allow this.
    pub(crate) fn forbidden(message: impl Into<String>) -> AdminError {
        AdminError {
            status: StatusCode::FORBIDDEN,
            code: "FORBIDDEN",
            message: message.into(),
            field: None,
        }
    }

    /// 404 for a path the admin API does not serve.
    pub(crate) fn no_such_route() -> AdminError {
        AdminError {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: "no such endpoint".to_owned(),
            field: None,
        }
    }

    /// 405 for a method the path does not serve.
    pub(crate) fn method_not_allowed() -> AdminError {
        AdminError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: "method not allowed".to_owned(),
            field: None,
        }
    }

    /// 413 for a JSON body over the limit.
    pub(crate) fn body_too_large(limit: usize) -> AdminError {
        AdminError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::InputTooLarge.reason(),
            message: format!("body: larger than {limit} bytes"),
            field: Some("body".to_owned()),
        }
    }

    /// The request body could not be read to its end (the client went away
    /// or broke the framing).
    pub(crate) fn body_unreadable() -> AdminError {
        AdminError::invalid_field("body", "could not be read")
    }

    /// 429: the client's address presented too many wrong tokens; it may
    /// try again in `retry_after_seconds`.
    pub(crate) fn too_many_wrong_tokens(retry_after_seconds: u64) -> AdminError {
        AdminError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "RATE_LIMITED",
            message: format!(
                "too many wrong bearer tokens from this address; retry in {retry_after_seconds} s"
            ),
            field: None,
        }
    }

    /// 408: the client stopped sending the request body before its end.
    pub(crate) fn body_timed_out() -> AdminError {
        AdminError {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "REQUEST_TIMEOUT",
            message: "body: the client stopped sending it before its end".to_owned(),
            field: Some("body".to_owned()),
        }
    }

    /// Converts a status from the registry as [`PublicError`] reads it: an
    /// imgmesh status keeps its code, message and the field its structure
    /// names; any other gets a generic message (it may carry addresses or
    /// OS errors), and a registry that does not serve the call is 501.
    pub(crate) fn from_registry(status: &tonic::Status) -> AdminError {
        let public = PublicError::of("registry", status);
        if public.answer() == Answer::Unimplemented {
            return AdminError {
                status: StatusCode::NOT_IMPLEMENTED,
                code: "UNIMPLEMENTED",
                message: public.into_message(),
                field: None,
            };
        }
        AdminError {
            field: public.field().map(str::to_owned),
            ..AdminError::coded(public.code(), public.into_message())
        }
    }

    /// The registry did not answer within the admin API's deadline.
    pub(crate) fn registry_timed_out() -> AdminError {
        let public = PublicError::timed_out("registry");
        AdminError::coded(public.code(), public.into_message())
    }

    /// The HTTP status answered.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The field the error names, when it names one.
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message answered.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The code answered (`FORBIDDEN`, `INVALID_ARGUMENT`, …).
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, message = %self.message, "admin request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code, message = %self.message, "admin request refused");
        }
        let mut error = serde_json::json!({
            "code": self.code,
            "message": self.message,
        });
        if let Some(field) = self.field {
            error["field"] = serde_json::Value::String(field);
        }
        let mut response =
            super::json_response(self.status, &serde_json::json!({ "error": error }));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // The audit log records the code a change was refused with.
        response.extensions_mut().insert(ErrorCodeNote(self.code));
        response
    }
}

/// The code of an error answer (set by `AdminError::into_response`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCodeNote(pub(crate) &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: AdminError) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    /// A registry INVALID_ARGUMENT keeps its message and names the field of
    /// its field violation, as JSON.
    #[tokio::test]
    async fn invalid_argument_names_the_field() {
        let status = imgmesh_errors::invalid_field("subdomain", "must be a DNS label");
        let (http, headers, body) = body_of(AdminError::from_registry(&status)).await;
        assert_eq!(http, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "code": "INVALID_ARGUMENT",
                "message": "subdomain: must be a DNS label",
                "field": "subdomain",
            }})
        );
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["cache-control"], "no-store");
    }

    /// Each imgmesh code keeps its HTTP status; a field is named only by a
    /// status's structure, never read out of its message.
    #[tokio::test]
    async fn codes_map_to_statuses() {
        let cases = [
            (
                ErrorCode::SourceNotFound.status("source not found"),
                404,
                "SOURCE_NOT_FOUND",
                None,
            ),
            (
                ErrorCode::AlreadyExists.status_with(
                    "subdomain: already taken",
                    [(imgmesh_errors::FIELD_KEY, "subdomain".to_owned())],
                ),
                409,
                "ALREADY_EXISTS",
                Some("subdomain"),
            ),
            (
                ErrorCode::SourceDisabled.status("source is disabled"),
                410,
                "SOURCE_DISABLED",
                None,
            ),
            (
                ErrorCode::Unavailable.status("deploy: try again"),
                503,
                "UNAVAILABLE",
                None,
            ),
            (
                ErrorCode::InvalidArgument.status("bad request"),
                400,
                "INVALID_ARGUMENT",
                None,
            ),
            (
                ErrorCode::InvalidArgument.status("subdomain: a message names no field"),
                400,
                "INVALID_ARGUMENT",
                None,
            ),
        ];
        for (status, http, code, field) in cases {
            let (got, _, body) = body_of(AdminError::from_registry(&status)).await;
            assert_eq!(got.as_u16(), http, "{status:?}");
            assert_eq!(body["error"]["code"], code);
            assert_eq!(body["error"]["message"], status.message());
            assert_eq!(body["error"]["field"].as_str(), field, "{status:?}");
        }
    }

    /// Foreign statuses never show their message; a deadline (also as tonic's
    /// CANCELLED "Timeout expired") is 503 and UNIMPLEMENTED is 501.
    #[tokio::test]
    async fn foreign_statuses_are_generic() {
        let cases = [
            (
                tonic::Status::unavailable("tcp connect error 10.0.0.1:50051"),
                503,
                "registry: unavailable",
            ),
            (
                tonic::Status::deadline_exceeded("Timeout expired"),
                503,
                "registry did not answer in time",
            ),
            (
                tonic::Status::cancelled("Timeout expired"),
                503,
                "registry did not answer in time",
            ),
            (
                tonic::Status::unimplemented("deploy is not implemented"),
                501,
                "the registry does not support this yet",
            ),
            (
                tonic::Status::unknown("h2 protocol error"),
                500,
                "registry: internal",
            ),
        ];
        for (status, http, message) in cases {
            let (got, _, body) = body_of(AdminError::from_registry(&status)).await;
            assert_eq!(got.as_u16(), http, "{status:?}");
            assert_eq!(body["error"]["message"], message);
        }
    }

    /// 401 carries `WWW-Authenticate: Bearer`.
    #[tokio::test]
    async fn unauthenticated_asks_for_bearer() {
        let (status, headers, body) = body_of(AdminError::unauthenticated()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    }
}
