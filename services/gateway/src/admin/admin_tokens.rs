//! `/v1/admin-tokens`: the admin API's named, scoped credentials, kept by
//! the registry (only a full admin reaches these routes; see
//! [`super::scope`]). A token is shown once, in the answer to its
//! creation; listing shows everything but the token. The registry records
//! each create and revoke in the audit log under the calling credential's
//! name (passed as `actor`), so these answers are marked
//! [`RecordedByRegistry`].

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use http::StatusCode;
use imgmesh_proto::json::admin_token as token_json;
use imgmesh_proto::registry::v1::{
    AdminScope, CreateAdminTokenRequest, ListAdminTokensRequest, RevokeAdminTokenRequest,
};

use super::access::AdminApi;
use super::audit::RecordedByRegistry;
use super::credential::AdminCredential;
use super::registry_call::{call, timed};
use super::{AdminError, json_response, read_json_body};

/// `POST /v1/admin-tokens` with `{"name", "scope": "read_only" |
/// "source_admin" | "full_admin", "source_ids": [..], "expires_at": <Unix
/// seconds>}` (`source_ids` only for `source_admin`; no `expires_at`:
/// never): 201 with the token under `token`, shown this once.
pub(super) async fn create(
    State(admin): State<AdminApi>,
    Extension(credential): Extension<AdminCredential>,
    body: Body,
) -> Result<Response, AdminError> {
    let body = read_json_body(body).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| AdminError::invalid_field("body", "must be a JSON object"))?;
    let name = value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| AdminError::invalid_field("name", "must be a string"))?;
    let scope = match value.get("scope").and_then(serde_json::Value::as_str) {
        Some("read_only") => AdminScope::ReadOnly,
        Some("source_admin") => AdminScope::SourceAdmin,
        Some("full_admin") => AdminScope::FullAdmin,
        _ => {
            return Err(AdminError::invalid_field(
                "scope",
                "must be read_only, source_admin or full_admin",
            ));
        }
    };
    let source_ids = super::api_keys::strings(&value, "source_ids")?.unwrap_or_default();
    let expires_at_unix = match value.get("expires_at") {
        None | Some(serde_json::Value::Null) => 0,
        Some(at) => at
            .as_i64()
            .ok_or_else(|| AdminError::invalid_field("expires_at", "must be Unix seconds"))?,
    };
    let answer = call(
        admin
            .registry()
            .create_admin_token(timed(CreateAdminTokenRequest {
                name: name.to_owned(),
                scope: scope.into(),
                source_ids,
                expires_at_unix,
                actor: credential.name,
            })),
    )
    .await;
    let response = match answer {
        Ok(response) => response,
        Err(error) => return Ok(recorded(error.into_response())),
    };
    let token = response.admin_token.ok_or_else(no_token)?;
    let mut json = token_json(&token);
    json["token"] = serde_json::Value::String(response.secret);
    Ok(recorded(json_response(StatusCode::CREATED, &json)))
}

/// `GET /v1/admin-tokens`: every token, revoked and expired ones included,
/// without secrets.
pub(super) async fn list(State(admin): State<AdminApi>) -> Result<Response, AdminError> {
    let response = call(
        admin
            .registry()
            .list_admin_tokens(timed(ListAdminTokensRequest {})),
    )
    .await?;
    let tokens: Vec<_> = response.admin_tokens.iter().map(token_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "admin_tokens": tokens }),
    ))
}

/// `DELETE /v1/admin-tokens/{id}`: revokes the token; 200 with it as stored.
pub(super) async fn revoke(
    State(admin): State<AdminApi>,
    Extension(credential): Extension<AdminCredential>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let answer = call(
        admin
            .registry()
            .revoke_admin_token(timed(RevokeAdminTokenRequest {
                id,
                actor: credential.name,
            })),
    )
    .await;
    let response = match answer {
        Ok(response) => response,
        Err(error) => return Ok(recorded(error.into_response())),
    };
    let token = response.admin_token.ok_or_else(no_token)?;
    Ok(recorded(json_response(StatusCode::OK, &token_json(&token))))
}

/// `response` marked as already in the audit log.
fn recorded(mut response: Response) -> Response {
    response.extensions_mut().insert(RecordedByRegistry);
    response
}

fn no_token() -> AdminError {
    AdminError::coded(
        imgmesh_errors::ErrorCode::Internal,
        "registry: answer without an admin token",
    )
}
