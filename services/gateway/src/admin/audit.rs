//! The audit log of the admin API: every change asked of it (create, edit,
//! delete, deploy, rotate, purge, upload, API key and admin token create
//! and revoke) is recorded in the registry's database with the credential's
//! name, the action, the Source, the names of the fields it set (never
//! their values) and the result (`ok`, or the error code it was refused
//! with, scope refusals included). `GET /v1/audit?source=&limit=` reads it.
//!
//! [`record`] runs in the authentication layer after the handler, so no
//! change can forget it; handlers add what only they know (the Source id
//! a create got, the fields a body set) as an [`AuditNote`] on their
//! response. Admin token changes are recorded by the registry itself when it
//! makes them (the CLI makes them without the gateway); their handlers mark the answer [`RecordedByRegistry`].

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{Method, StatusCode};
use imgmesh_proto::registry::v1::{
    AuditEvent, GetSourceRequest, ListAuditEventsRequest, RecordAuditEventRequest,
};

use super::AdminError;
use super::access::AdminApi;
use super::credential::AdminCredential;
use super::error::ErrorCodeNote;
use super::json_response;
use super::registry_call::{call, timed};
use crate::asset_path::percent_decoded;

/// What a handler adds to its answer for the audit record.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote {
    /// The Source's id, once known (a create learns it from the registry).
    pub(crate) source_id: Option<String>,
    /// The names of the fields the request set.
    pub(crate) fields: Vec<String>,
    /// The id of the key created.
    pub(crate) target_id: Option<String>,
}

/// Marks an answer whose change the registry has recorded already.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordedByRegistry;

/// `response` with `note` for the audit record.
pub(crate) fn noted(mut response: Response, note: AuditNote) -> Response {
    response.extensions_mut().insert(note);
    response
}

/// The top-level field names of a JSON object body, sorted: what a create
/// or an edit set (never the values).
pub(crate) fn body_field_names(body: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(fields)) => {
            let mut names: Vec<String> = fields.keys().cloned().collect();
            names.sort();
            names
        }
        _ => Vec::new(),
    }
}

/// The audited action of `method path`, with the Source reference and the
/// key id its path names; `None` for reads and unknown routes.
fn action(method: &Method, path: &str) -> Option<(&'static str, Option<String>, Option<String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let decoded = |segment: &str| percent_decoded(segment);
    let (action, source, target) = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "sources"]) => ("source.create", None, None),
        ("PATCH", ["v1", "sources", id]) => ("source.update", decoded(id), None),
        ("DELETE", ["v1", "sources", id]) => ("source.delete", decoded(id), None),
        ("POST", ["v1", "sources", id, "deploy"]) => ("source.deploy", decoded(id), None),
        ("POST", ["v1", "sources", id, "rotate-token"]) => {
            ("source.rotate_token", decoded(id), None)
        }
        ("POST", ["v1", "sources", id, "purge"]) => ("source.purge", decoded(id), None),
        ("PUT", ["v1", "sources", id, "objects", _, ..]) => ("object.upload", decoded(id), None),
        ("POST", ["v1", "api-keys"]) => ("api_key.create", None, None),
        ("DELETE", ["v1", "api-keys", id]) => ("api_key.revoke", None, decoded(id)),
        ("POST", ["v1", "admin-tokens"]) => ("admin_token.create", None, None),
        ("DELETE", ["v1", "admin-tokens", id]) => ("admin_token.revoke", None, decoded(id)),
        _ => return None,
    };
    Some((action, source, target))
}

/// What the audit record takes from an answer: read before the record is
/// sent (a response body is not `Sync`, so the answer itself is not held
/// across the call).
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The registry recorded the change already.
    recorded: bool,
    /// What the handler noted.
    note: AuditNote,
    /// `ok`, or the code the change was refused with.
    result: String,
}

// === impl Outcome ===

impl Outcome {
    /// The outcome `response` tells.
    pub(crate) fn of(response: &Response) -> Outcome {
        let extensions = response.extensions();
        let result = if response.status().is_success() {
            "ok".to_owned()
        } else {
            extensions.get::<ErrorCodeNote>().map_or_else(
                || response.status().as_u16().to_string(),
                |code| code.0.to_owned(),
            )
        };
        Outcome {
            recorded: extensions.get::<RecordedByRegistry>().is_some(),
            note: extensions.get::<AuditNote>().cloned().unwrap_or_default(),
            result,
        }
    }
}

/// Records the change `method path` made by `credential` with its
/// `outcome` (see the module documentation); reads are not recorded. The
/// Source is the id the handler noted, else the one the scope check
/// resolved, else the path's reference as asked. A record the registry
/// cannot take is logged as an error: the change itself has happened.
pub(crate) async fn record(
    admin: &AdminApi,
    credential: &AdminCredential,
    method: &Method,
    path: &str,
    resolved_source: Option<String>,
    outcome: Outcome,
) {
    let Some((action, path_source, path_target)) = action(method, path) else {
        return;
    };
    if outcome.recorded {
        return;
    }
    let Outcome { note, result, .. } = outcome;
    let event = AuditEvent {
        credential: credential.name.clone(),
        action: action.to_owned(),
        source_id: note
            .source_id
            .or(resolved_source)
            .or(path_source)
            .unwrap_or_default(),
        fields: note.fields,
        target_id: note.target_id.or(path_target).unwrap_or_default(),
        result,
        ..AuditEvent::default()
    };
    send(admin, event).await;
}

/// Records `action` on Source `source_id` by the credential named
/// `credential`, with the `fields` it set and its `outcome` (`ok`, or the
/// code of the error it failed with): for changes made outside the admin
/// API's routes, the dashboard's forms. Lost like [`record`]'s when the
/// registry does not take it.
pub(crate) async fn record_change<T>(
    admin: &AdminApi,
    credential: &str,
    action: &'static str,
    source_id: &str,
    fields: Vec<String>,
    outcome: &Result<T, AdminError>,
) {
    let result = match outcome {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.code().to_owned(),
    };
    let event = AuditEvent {
        credential: credential.to_owned(),
        action: action.to_owned(),
        source_id: source_id.to_owned(),
        fields,
        result,
        ..AuditEvent::default()
    };
    send(admin, event).await;
}

/// Sends `event` to the registry's audit log; a record it does not take is
/// logged as an error (the change itself has happened).
async fn send(admin: &AdminApi, event: AuditEvent) {
    let (action, credential) = (event.action.clone(), event.credential.clone());
    let recorded = call(
        admin
            .registry()
            .record_audit_event(timed(RecordAuditEventRequest { event: Some(event) })),
    )
    .await;
    if let Err(error) = recorded {
        tracing::error!(
            audit.action = %action,
            admin.credential = %credential,
            error = error.message(),
            "audit record lost: the registry did not take it"
        );
    }
}

/// `GET /v1/audit?source=&limit=`: the audit log, newest first (`source`
/// an id or a name, `limit` 100 by default, at most 1000).
pub(super) async fn list(
    State(admin): State<AdminApi>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let mut source = String::new();
    let mut limit = 0;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "source" => source = value.into_owned(),
            "limit" => {
                limit = value
                    .parse()
                    .map_err(|_| AdminError::invalid_field("limit", "must be a whole number"))?;
            }
            _ => {}
        }
    }
    // A name is looked up; an id of a Source since deleted is used as given.
    let source_id = if source.is_empty() {
        String::new()
    } else {
        match call(admin.registry().get_source(timed(GetSourceRequest {
            id_or_name: source.clone(),
        })))
        .await
        {
            Ok(response) => response.source.map_or(source, |found| found.id),
            Err(error) if error.status() == StatusCode::NOT_FOUND => source,
            Err(error) => return Err(error),
        }
    };
    let response = call(
        admin
            .registry()
            .list_audit_events(timed(ListAuditEventsRequest { source_id, limit })),
    )
    .await?;
    let events: Vec<_> = response
        .events
        .iter()
        .map(imgmesh_proto::json::audit_event)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "events": events }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each change route maps to its action with the Source or key its path
    /// names; reads and unknown routes are not audited.
    #[test]
    fn actions() {
        let cases = [
            (
                Method::POST,
                "/v1/sources",
                Some(("source.create", None, None)),
            ),
            (
                Method::PATCH,
                "/v1/sources/my%20shop",
                Some(("source.update", Some("my shop"), None)),
            ),
            (
                Method::PUT,
                "/v1/sources/src_1/objects/a/b.jpg",
                Some(("object.upload", Some("src_1"), None)),
            ),
            (
                Method::DELETE,
                "/v1/api-keys/key_1",
                Some(("api_key.revoke", None, Some("key_1"))),
            ),
            (Method::GET, "/v1/sources", None),
            (Method::POST, "/v1/nothing", None),
        ];
        for (method, path, expected) in cases {
            let got = action(&method, path);
            let got = got
                .as_ref()
                .map(|(action, source, target)| (*action, source.as_deref(), target.as_deref()));
            assert_eq!(got, expected, "{method} {path}");
        }
    }

    /// Field names come from the body's top level, sorted; values never do.
    #[test]
    fn field_names_only() {
        assert_eq!(
            body_field_names(br#"{"secret_access_key":"hunter2","bucket":"b"}"#),
            vec!["bucket", "secret_access_key"]
        );
        assert!(body_field_names(b"not json").is_empty());
    }
}
