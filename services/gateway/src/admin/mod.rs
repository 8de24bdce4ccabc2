//! The admin HTTP API: Sources CRUD, deploy, token rotation and upload as
//! JSON over HTTP, on a listener of its own, for operators and their tools;
//! and purging cached derivatives (one call to the renderer).
//!
//! Every request needs `Authorization: Bearer <admin credential>`: the
//! bootstrap token of `--admin-token-file` (compared in constant time; the
//! API does not start without it) or a named, scoped admin token from the
//! registry (see [`access`]); the credential's scope decides what it may
//! do (see [`scope`]), and every change is recorded in the audit log with
//! the credential's name (see [`audit`]). An
//! address that presents ten wrong tokens within a minute is refused with
//! 429 — even with the right token — until that minute is over (see
//! [`access`] and [`auth_limit`]); a request body that stops arriving is a
//! 408 (see [`body_timeout`]). Each endpoint is one call to the source
//! registry over gRPC (see [`registry_call`]); registry errors come back as
//! `{"error":{"code","message","field"}}` with the HTTP status of their code
//! (see [`error`]). Secrets go in through create, update and rotate-token
//! bodies and never come out: the only secret ever answered is a freshly
//! rotated signing token, once. `docs/admin-api.openapi.yaml` documents
//! every endpoint.

pub(crate) mod access;
mod admin_tokens;
mod api_keys;
pub(crate) mod audit;
mod auth_limit;
mod authentication;
mod body_timeout;
pub(crate) mod credential;
pub(crate) mod error;
pub(crate) mod json;
pub(crate) mod purge;
pub(crate) mod registry_call;
pub(crate) mod scope;
pub(crate) mod upload;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use http::{HeaderValue, StatusCode, header};
use imgmesh_proto::registry::v1::{
    DeleteSourceRequest, DeploySourceRequest, GetSourceRequest, ListSourcesRequest,
    RotateSecureTokenRequest, Source,
};

use self::access::AdminApi;
use self::audit::{AuditNote, body_field_names, noted};
use self::authentication::authenticate;
use self::credential::AdminCredential;
pub(crate) use self::error::AdminError;
use self::registry_call::{call, required, timed};

/// Largest JSON body the admin API reads.
const MAX_JSON_BODY_BYTES: usize = 1024 * 1024;

/// The JSON API's router. Authentication wraps everything, unknown paths
/// included, so nothing about the API is visible without the token; the
/// dashboard's `/ui` pages beside it on the admin listener log in with the
/// same token and keep a session instead (see `crate::admin_router`).
pub(crate) fn api_router(admin: AdminApi) -> Router {
    Router::new()
        .route("/v1/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/v1/api-keys/{id}", axum::routing::delete(api_keys::revoke))
        .route(
            "/v1/admin-tokens",
            get(admin_tokens::list).post(admin_tokens::create),
        )
        .route(
            "/v1/admin-tokens/{id}",
            axum::routing::delete(admin_tokens::revoke),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/sources", get(list_sources).post(create_source))
        .route(
            "/v1/sources/{id_or_name}",
            get(get_source).patch(update_source).delete(delete_source),
        )
        .route("/v1/sources/{id_or_name}/deploy", post(deploy_source))
        .route("/v1/sources/{id_or_name}/rotate-token", post(rotate_token))
        .route("/v1/sources/{id_or_name}/purge", post(purge::purge))
        .route(
            "/v1/sources/{id_or_name}/objects/{*key}",
            put(upload::upload_object),
        )
        .fallback(|| async { AdminError::no_such_route() })
        .method_not_allowed_fallback(|| async { AdminError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            authenticate,
        ))
        .with_state(admin)
}

/// The `{id_or_name}` of a Source path, percent-decoded; a path that does
/// not decode is a JSON 400 like every other admin error.
struct SourceRef(String);

impl<S: Send + Sync> FromRequestParts<S> for SourceRef {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<SourceRef, AdminError> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AdminError::invalid_field("id_or_name", "must be UTF-8 when decoded"))?;
        params
            .into_iter()
            .find(|(name, _)| name == "id_or_name")
            .map(|(_, value)| SourceRef(value))
            .ok_or_else(AdminError::no_such_route)
    }
}

// === handlers ===

/// `GET /v1/sources`: every Source the credential may see.
async fn list_sources(
    State(admin): State<AdminApi>,
    Extension(credential): Extension<AdminCredential>,
) -> Result<Response, AdminError> {
    let response = call(admin.registry().list_sources(timed(ListSourcesRequest {}))).await?;
    let sources: Vec<_> = response
        .sources
        .iter()
        .filter(|source| credential.may_act_on(&source.id))
        .map(json::source_json)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "sources": sources }),
    ))
}

/// `POST /v1/sources`: 201 with the Source and its `Location`.
async fn create_source(State(admin): State<AdminApi>, body: Body) -> Result<Response, AdminError> {
    let body = read_json_body(body).await?;
    let request = json::create_request(&body)?;
    let response = call(admin.registry().create_source(timed(request))).await?;
    let source = required(response.source)?;
    let mut answer = source_response(StatusCode::CREATED, &source);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/sources/{}", source.id)) {
        answer.headers_mut().insert(header::LOCATION, location);
    }
    Ok(noted(
        answer,
        AuditNote {
            source_id: Some(source.id),
            fields: body_field_names(&body),
            ..AuditNote::default()
        },
    ))
}

/// `GET /v1/sources/{id_or_name}`.
async fn get_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
) -> Result<Response, AdminError> {
    let response = call(
        admin
            .registry()
            .get_source(timed(GetSourceRequest { id_or_name })),
    )
    .await?;
    Ok(source_response(StatusCode::OK, &required(response.source)?))
}

/// `PATCH /v1/sources/{id_or_name}`: changes the fields present.
async fn update_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
    body: Body,
) -> Result<Response, AdminError> {
    let request = json::update_request(id_or_name, &read_json_body(body).await?)?;
    // The update mask names the fields the body set (AIP-134 paths).
    let fields = request
        .update_mask
        .as_ref()
        .map(|mask| mask.paths.clone())
        .unwrap_or_default();
    let response = call(admin.registry().update_source(timed(request))).await?;
    let source = required(response.source)?;
    Ok(noted(
        source_response(StatusCode::OK, &source),
        AuditNote {
            source_id: Some(source.id),
            fields,
            ..AuditNote::default()
        },
    ))
}

/// `DELETE /v1/sources/{id_or_name}`: 204.
async fn delete_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
) -> Result<Response, AdminError> {
    call(
        admin
            .registry()
            .delete_source(timed(DeleteSourceRequest { id_or_name })),
    )
    .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /v1/sources/{id_or_name}/deploy`: 202, the deploy runs in the registry.
async fn deploy_source(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
) -> Result<Response, AdminError> {
    let response = call(
        admin
            .registry()
            .deploy_source(timed(DeploySourceRequest { id_or_name })),
    )
    .await?;
    let source = required(response.source)?;
    Ok(noted(
        source_response(StatusCode::ACCEPTED, &source),
        AuditNote {
            source_id: Some(source.id),
            ..AuditNote::default()
        },
    ))
}

/// `POST /v1/sources/{id_or_name}/rotate-token`: the new token, once.
async fn rotate_token(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
    body: Body,
) -> Result<Response, AdminError> {
    let grace_period_seconds = json::grace_period_seconds(&read_json_body(body).await?)?;
    let response = call(
        admin
            .registry()
            .rotate_secure_token(timed(RotateSecureTokenRequest {
                id_or_name,
                grace_period_seconds,
            })),
    )
    .await?;
    let source = required(response.source)?;
    Ok(noted(
        json_response(
            StatusCode::OK,
            &serde_json::json!({
                "token": response.token,
                "source": json::source_json(&source),
            }),
        ),
        AuditNote {
            source_id: Some(source.id),
            fields: vec!["grace_period_seconds".to_owned()],
            ..AuditNote::default()
        },
    ))
}

// === plumbing ===

/// Reads a JSON body up to [`MAX_JSON_BODY_BYTES`]; a body that stops
/// arriving is a 408.
async fn read_json_body(body: Body) -> Result<bytes::Bytes, AdminError> {
    axum::body::to_bytes(body, MAX_JSON_BODY_BYTES)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                AdminError::body_too_large(MAX_JSON_BODY_BYTES)
            } else {
                body_error(&error)
            }
        })
}

/// Why a request body could not be read: it stalled (408) or broke off.
fn body_error(error: &(dyn std::error::Error + 'static)) -> AdminError {
    if body_timeout::is_body_timeout(error) {
        AdminError::body_timed_out()
    } else {
        AdminError::body_unreadable()
    }
}

fn source_response(status: StatusCode, source: &Source) -> Response {
    json_response(status, &json::source_json(source))
}

/// A JSON response that no cache keeps.
pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {

    /// `docs/admin-api.openapi.yaml` documents every route and method the router serves.
    #[test]
    fn openapi_documents_every_route() {
        let doc = include_str!("../../../../docs/admin-api.openapi.yaml");
        let routes: &[(&str, &[&str])] = &[
            ("/v1/api-keys", &["get", "post"]),
            ("/v1/api-keys/{id}", &["delete"]),
            ("/v1/admin-tokens", &["get", "post"]),
            ("/v1/admin-tokens/{id}", &["delete"]),
            ("/v1/audit", &["get"]),
            ("/v1/sources", &["get", "post"]),
            ("/v1/sources/{id_or_name}", &["get", "patch", "delete"]),
            ("/v1/sources/{id_or_name}/deploy", &["post"]),
            ("/v1/sources/{id_or_name}/rotate-token", &["post"]),
            ("/v1/sources/{id_or_name}/purge", &["post"]),
            ("/v1/sources/{id_or_name}/objects/{key}", &["put"]),
        ];
        for (path, methods) in routes {
            let start = doc
                .find(&format!("\n  {path}:\n"))
                .unwrap_or_else(|| panic!("{path} is not documented"));
            let block = &doc[start + 1..];
            let end = block[path.len() + 4..]
                .find("\n  /")
                .map_or(block.len(), |at| at + path.len() + 4);
            for method in *methods {
                assert!(
                    block[..end].contains(&format!("\n    {method}:\n")),
                    "{method} {path} is not documented"
                );
            }
        }
        for code in [
            "UNAUTHENTICATED",
            "INVALID_ARGUMENT",
            "SOURCE_NOT_FOUND",
            "UNIMPLEMENTED",
            "FORBIDDEN",
        ] {
            assert!(doc.contains(code), "{code} is not documented");
        }
    }
}
