//! `/v1/api-keys`: the API keys of the public gRPC render API, kept by the
//! registry. A key is shown once, in the answer to its creation; listing
//! shows everything but the key.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use imgmesh_proto::json::api_key as key_json;
use imgmesh_proto::registry::v1::{CreateApiKeyRequest, ListApiKeysRequest, RevokeApiKeyRequest};

use super::access::AdminApi;
use super::audit;
use super::registry_call::{call, timed};
use super::{AdminError, json_response, read_json_body};

/// `POST /v1/api-keys` with `{"name", "operations": [..], "source_ids":
/// [..]}` (no or an empty `source_ids`: every Source): 201 with the key
/// under `key`, shown this once.
pub(super) async fn create(
    State(admin): State<AdminApi>,
    body: Body,
) -> Result<Response, AdminError> {
    let body = read_json_body(body).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| AdminError::invalid_field("body", "must be a JSON object"))?;
    let name = value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| AdminError::invalid_field("name", "must be a string"))?;
    let operations = strings(&value, "operations")?
        .ok_or_else(|| AdminError::invalid_field("operations", "must list operations"))?;
    let source_ids = strings(&value, "source_ids")?.unwrap_or_default();
    let response = call(admin.registry().create_api_key(timed(CreateApiKeyRequest {
        name: name.to_owned(),
        operations,
        all_sources: source_ids.is_empty(),
        source_ids,
    })))
    .await?;
    let key = response.api_key.ok_or_else(no_key)?;
    let mut json = key_json(&key);
    json["key"] = serde_json::Value::String(response.secret);
    Ok(audit::noted(
        json_response(StatusCode::CREATED, &json),
        audit::AuditNote {
            fields: audit::body_field_names(&body),
            target_id: Some(key.id),
            ..audit::AuditNote::default()
        },
    ))
}

/// `GET /v1/api-keys`: every key, revoked ones included, without secrets.
pub(super) async fn list(State(admin): State<AdminApi>) -> Result<Response, AdminError> {
    let response = call(admin.registry().list_api_keys(timed(ListApiKeysRequest {}))).await?;
    let keys: Vec<_> = response.api_keys.iter().map(key_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "api_keys": keys }),
    ))
}

/// `DELETE /v1/api-keys/{id}`: revokes the key; 200 with it as stored.
pub(super) async fn revoke(
    State(admin): State<AdminApi>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let response = call(
        admin
            .registry()
            .revoke_api_key(timed(RevokeApiKeyRequest { id })),
    )
    .await?;
    let key = response.api_key.ok_or_else(no_key)?;
    Ok(json_response(StatusCode::OK, &key_json(&key)))
}

/// The array of strings at `field` (also read by `admin_tokens`); `None` when it is absent or null.
pub(super) fn strings(
    value: &serde_json::Value,
    field: &str,
) -> Result<Option<Vec<String>>, AdminError> {
    match value.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| AdminError::invalid_field(field, "must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(AdminError::invalid_field(
            field,
            "must be an array of strings",
        )),
    }
}

fn no_key() -> AdminError {
    AdminError::coded(
        imgmesh_errors::ErrorCode::Internal,
        "registry: answer without an api key",
    )
}
