//! What can go wrong while answering an image request, and the one place it
//! becomes an HTTP response.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use imgmesh_errors::{ErrorCode, FIELD_KEY, PublicError};

use crate::render_plan::PlanError;

/// imgix's default error TTL in seconds: 4xx answers are cacheable this
/// long unless the Source sets its own (see `image_handler`).
pub(crate) const DEFAULT_ERROR_TTL_SECONDS: u32 = 300;

/// `Cache-Control` for 4xx answers before the Source is known.
const CLIENT_ERROR_CACHE_CONTROL: &str = "public, max-age=300";

/// Every way an image request can fail. The `Display` text is the public
/// response body: it never carries upstream internals or secrets.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The Host names no Source, or one that was never deployed.
    #[error("unknown host")]
    UnknownHost,
    /// The Host's Source is disabled.
    #[error("source disabled")]
    SourceDisabled,
    /// The Source requires signed URLs and `s` is missing, misplaced or wrong.
    #[error("invalid signature")]
    InvalidSignature,
    /// The URL's `expires` time has passed.
    #[error("url has expired")]
    Expired,
    /// The path cannot name an object (empty, dot segments, control characters...).
    #[error("not found")]
    InvalidPath,
    /// More requests are in flight than `--max-in-flight` allows.
    #[error("too many requests in flight; retry shortly")]
    Overloaded,
    /// Only GET and HEAD serve images.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A query parameter is invalid; the message names it.
    #[error(transparent)]
    InvalidParameter(#[from] PlanError),
    /// An upstream service answered with an error.
    #[error("{message}")]
    Upstream {
        /// What went wrong, as the upstream classified it.
        code: ErrorCode,
        /// Public-safe description.
        message: String,
    },
}

// === impl GatewayError ===

impl GatewayError {
    /// Converts a status from `service` (e.g. `"renderer"`) as
    /// [`PublicError`] reads it: imgmesh services write public-safe
    /// messages; a status without imgmesh's `ErrorInfo` (a transport
    /// failure, a deadline) may carry internals (addresses, OS errors), so
    /// it gets a generic message instead.
    pub fn from_status(service: &'static str, status: &tonic::Status) -> GatewayError {
        GatewayError::upstream(PublicError::of(service, status))
    }

    /// `service` did not answer within its deadline: our own tier is slow or
    /// stuck, so the caller may retry (503), unlike an origin timeout (504).
    pub fn timed_out(service: &'static str) -> GatewayError {
        GatewayError::upstream(PublicError::timed_out(service))
    }

    /// An upstream failure as a public caller may see it.
    fn upstream(public: PublicError) -> GatewayError {
        GatewayError::Upstream {
            code: public.code(),
            message: public.into_message(),
        }
    }

    /// The error's code in imgmesh's catalogue (`imgmesh_errors`): its
    /// `ErrorInfo` reason on gRPC, and (but for 405) its HTTP status.
    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::UnknownHost => ErrorCode::SourceNotFound,
            GatewayError::SourceDisabled => ErrorCode::SourceDisabled,
            GatewayError::InvalidSignature => ErrorCode::SignatureInvalid,
            GatewayError::Overloaded => ErrorCode::Overloaded,
            GatewayError::InvalidPath | GatewayError::Expired => ErrorCode::ObjectNotFound,
            GatewayError::MethodNotAllowed | GatewayError::InvalidParameter(_) => {
                ErrorCode::InvalidArgument
            }
            GatewayError::Upstream { code, .. } => *code,
        }
    }

    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> StatusCode {
        if matches!(self, GatewayError::MethodNotAllowed) {
            return StatusCode::METHOD_NOT_ALLOWED;
        }
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<GatewayError> for tonic::Status {
    /// The error as the public gRPC API answers it: its code's gRPC status
    /// with an `ErrorInfo` carrying its reason (and, for a refused
    /// parameter, the parameter as its `field` metadata), and the same
    /// public-safe message as the HTTP body.
    fn from(error: GatewayError) -> tonic::Status {
        let metadata = match &error {
            GatewayError::InvalidParameter(plan_error) => {
                vec![(FIELD_KEY, parameter_of(plan_error))]
            }
            _ => Vec::new(),
        };
        error.code().status_with(error.to_string(), metadata)
    }
}

/// The query parameter (or plan field) a plan error refuses.
fn parameter_of(error: &PlanError) -> String {
    match error {
        PlanError::InvalidBase64 { param } | PlanError::InvalidValue { param, .. } => param.clone(),
        PlanError::UnknownParameter { name } => name.clone(),
        PlanError::InvalidPlan { field, .. } => format!("plan.{field}"),
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        let shed = matches!(
            self,
            GatewayError::Overloaded
                | GatewayError::Upstream {
                    code: ErrorCode::Overloaded,
                    ..
                }
        );
        if status.is_server_error() && !shed {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        } else if shed {
            // Expected under overload and counted in metrics; a warning per
            // refusal would make shedding cost as much as serving.
            tracing::debug!(status = status.as_u16(), error = %self, "request shed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        // A String body is sent as `text/plain; charset=utf-8`.
        let mut response = (status, self.to_string()).into_response();
        let headers = response.headers_mut();
        // A 403 is not cached: a URL signed with a token the gateway has
        // not picked up yet must start working as soon as it has.
        let cache_control = if status.is_client_error() && status != StatusCode::FORBIDDEN {
            HeaderValue::from_static(CLIENT_ERROR_CACHE_CONTROL)
        } else {
            HeaderValue::from_static("no-store")
        };
        headers.insert(header::CACHE_CONTROL, cache_control);
        // The body may echo a query value; never let a browser sniff it as HTML.
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // Throttling, a tier that is down or full, and timeouts are worth a
        // retry: say when.
        if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::TOO_MANY_REQUESTS
                | StatusCode::GATEWAY_TIMEOUT
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(error: GatewayError) -> (StatusCode, http::HeaderMap, String) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Each gateway error answers with its status, a text body and the cache policy for its class.
    #[tokio::test]
    async fn errors_map_to_statuses_and_headers() {
        let (status, headers, body) = parts(GatewayError::UnknownHost).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, "unknown host");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            header(&headers, "cache-control"),
            Some("public, max-age=300")
        );
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "retry-after"), None);

        let (status, _, body) = parts(GatewayError::InvalidPath).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, "not found")
        );

        let (status, headers, body) = parts(GatewayError::SourceDisabled).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::GONE, "source disabled")
        );
        assert_eq!(
            header(&headers, "cache-control"),
            Some("public, max-age=300")
        );

        let (status, headers, body) = parts(GatewayError::InvalidSignature).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::FORBIDDEN, "invalid signature")
        );
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));

        let (status, _, body) = parts(GatewayError::Expired).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, "url has expired")
        );

        let (status, headers, _) = parts(GatewayError::MethodNotAllowed).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));

        let plan_error = crate::render_plan::parse_render_plan("", "txt64=@@@", None).unwrap_err();
        let (status, _, body) = parts(plan_error.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, "txt64: value is not valid base64url");
    }

    /// An imgmesh status keeps its code and message; 5xx answers are never cached and 503 says when to retry.
    #[tokio::test]
    async fn imgmesh_statuses_keep_their_message() {
        let status = ErrorCode::Unavailable.status("renderer is draining");
        let (status, headers, body) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "renderer is draining");
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        assert_eq!(header(&headers, "retry-after"), Some("1"));

        let status = ErrorCode::Overloaded.status("too busy");
        let (status, headers, _) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&headers, "retry-after"), Some("1"));
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));

        let status = ErrorCode::CorruptInput.status("input cannot be decoded");
        let (status, headers, _) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(header(&headers, "retry-after"), None);

        let status = ErrorCode::Internal.status("internal error");
        let (status, headers, _) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    }

    /// The public gRPC API's status for a refused parameter names the
    /// parameter in its metadata; other statuses carry no metadata.
    #[test]
    fn grpc_status_names_the_refused_parameter() {
        let plan_error = crate::render_plan::parse_render_plan("", "txt64=@@@", None).unwrap_err();
        let status = tonic::Status::from(GatewayError::from(plan_error));
        let public = PublicError::of("gateway", &status);
        assert_eq!(public.code(), ErrorCode::InvalidArgument);
        assert_eq!(public.message(), "txt64: value is not valid base64url");
        assert_eq!(public.field(), Some("txt64"));
        let status = tonic::Status::from(GatewayError::UnknownHost);
        let public = PublicError::of("gateway", &status);
        assert_eq!(public.code(), ErrorCode::SourceNotFound);
        assert_eq!(public.field(), None);
    }

    /// A foreign or transport status never leaks its message (addresses, OS errors), and our own deadlines answer 503.
    #[tokio::test]
    async fn foreign_status_messages_are_replaced() {
        let status =
            tonic::Status::unavailable("tcp connect error: 10.1.2.3:50053: Connection refused");
        let (status, _, body) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "renderer: unavailable");

        let status = tonic::Status::deadline_exceeded("Timeout expired");
        let (status, headers, body) = parts(GatewayError::from_status("registry", &status)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "registry did not answer in time");
        assert_eq!(header(&headers, "retry-after"), Some("1"));

        // tonic's own client deadline: CANCELLED "Timeout expired", seen with
        // a frozen renderer. A retryable 503, not a 500.
        let status = tonic::Status::cancelled("Timeout expired");
        let (status, headers, body) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "renderer did not answer in time");
        assert_eq!(header(&headers, "retry-after"), Some("1"));

        let status = tonic::Status::unknown("h2 protocol error: frame too large");
        let (status, _, body) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, "renderer: internal");

        let status = ErrorCode::OriginTimeout.status("origin did not answer in time");
        let (status, headers, _) = parts(GatewayError::from_status("renderer", &status)).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(header(&headers, "retry-after"), Some("1"));
    }
}
