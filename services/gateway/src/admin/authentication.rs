//! The admin API's front door: every request's span, its bearer token
//! checked ([`AdminApi::credential`]) and counted per address when wrong,
//! its scope checked ([`super::scope`]), the handler run with the
//! credential in the request's extensions, and the change recorded in the
//! audit log ([`super::audit`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderValue, header};
use tracing::Instrument as _;

use super::access::AdminApi;
use super::credential::AdminCredential;
use super::error::AdminError;
use super::{audit, body_timeout, scope};
use crate::metrics::METRICS;

/// Opens the request's span and refuses it with 401 unless it carries an
/// admin credential as `Authorization: Bearer …`, with 429 while its client
/// address is blocked for presenting too many wrong tokens, or with 403
/// when the credential's scope does not allow it; records every change in
/// the audit log; every answer names the span's trace in `traceresponse`.
pub(super) async fn authenticate(
    State(admin): State<AdminApi>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{method} admin"),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        admin.credential = tracing::field::Empty,
    );
    imgmesh_telemetry::continue_trace(&span, request.headers());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned);
    // Requests without a peer address (only in-process tests) share one.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| {
            peer.ip()
        });
    let now = Instant::now();
    let mut response = if let Some(wait) = admin.auth_failures.blocked_for(client, now) {
        METRICS.admin_auth_refused("rate_limited");
        span.in_scope(|| rate_limited(wait))
    } else {
        let credential = match &presented {
            Some(token) => admin.credential(token).instrument(span.clone()).await,
            None => Ok(None),
        };
        match credential {
            Ok(Some(credential)) => {
                authorized(&admin, credential, request, next)
                    .instrument(span.clone())
                    .await
            }
            Ok(None) => {
                if presented.is_some() {
                    admin.auth_failures.record_failure(client, now);
                    METRICS.admin_auth_refused("invalid_token");
                } else {
                    METRICS.admin_auth_refused("missing_token");
                }
                span.in_scope(|| AdminError::unauthenticated().into_response())
            }
            // The registry could not say whose token it is: not a wrong
            // token, so not counted.
            Err(unavailable) => span.in_scope(|| unavailable.into_response()),
        }
    };
    span.record("http.response.status_code", response.status().as_u16());
    crate::trace_response::name_trace(&span, &mut response);
    response
}

/// Runs an authenticated request: its scope checked, the handler run with
/// the credential in the request's extensions, and the change audited.
async fn authorized(
    admin: &AdminApi,
    credential: AdminCredential,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    tracing::Span::current().record("admin.credential", credential.name.as_str());
    let (response, resolved) =
        match scope::authorize(admin, &credential, &method, &path, query.as_deref()).await {
            Err(refused) => (refused.into_response(), None),
            Ok(resolved) => {
                let timeout = admin.body_read_timeout;
                let mut request = request
                    .map(|body| Body::new(body_timeout::IdleTimeoutBody::new(body, timeout)));
                request.extensions_mut().insert(credential.clone());
                (next.run(request).await, resolved)
            }
        };
    let outcome = audit::Outcome::of(&response);
    audit::record(admin, &credential, &method, &path, resolved, outcome).await;
    response
}

/// 429 with `Retry-After` (whole seconds, rounded up) for a blocked address.
fn rate_limited(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = AdminError::too_many_wrong_tokens(seconds).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bearer scheme is case-insensitive; other schemes and empty tokens are not tokens.
    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic YWJjOmRlZg=="), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
