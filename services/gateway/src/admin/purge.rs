//! `POST /v1/sources/{id_or_name}/purge`: drops the cached derivatives of
//! one asset, of everything under a path prefix, or of the whole Source.
//!
//! The body names exactly one target — `{"path": "/photos/cat.jpg"}` (a
//! full image URL works too: its path is used), `{"prefix": "photos/"}` or
//! `{"all": true}` — so an empty or mistyped body never purges a whole
//! Source by accident. The renderer bumps one generation counter in Redis
//! (O(1), effective on every replica at once); the answer is 200 with what
//! was purged and the new generation.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use imgmesh_proto::registry::v1::GetSourceRequest;
use imgmesh_proto::renderer::v1::{PurgeRequest, purge_request};

use super::access::AdminApi;
use super::registry_call::{call, required, timed};
use super::{AdminError, SourceRef, json_response, read_json_body};
use crate::asset_path::asset_path;

/// Deadline of the renderer's purge call.
const PURGE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to purge, from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One asset path (decoded, without leading slash).
    Path(String),
    /// A directory prefix (without leading slash).
    Prefix(String),
    /// The whole Source.
    All,
}

/// `POST /v1/sources/{id_or_name}/purge`.
pub(super) async fn purge(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
    body: Body,
) -> Result<Response, AdminError> {
    let target = target(&read_json_body(body).await?)?;
    let source = required(
        call(
            admin
                .registry()
                .get_source(timed(GetSourceRequest { id_or_name })),
        )
        .await?
        .source,
    )?;
    let mut request = tonic::Request::new(PurgeRequest {
        source_id: source.id.clone(),
        target: match &target {
            Target::Path(path) => Some(purge_request::Target::Path(path.clone())),
            Target::Prefix(prefix) => Some(purge_request::Target::Prefix(prefix.clone())),
            Target::All => None,
        },
    });
    request.set_timeout(PURGE_TIMEOUT);
    let purged = call(admin.renderer().purge(request)).await?;
    let (scope, value) = match &target {
        Target::Path(path) => ("path", serde_json::json!(path)),
        Target::Prefix(prefix) => ("prefix", serde_json::json!(prefix)),
        Target::All => ("all", serde_json::json!(true)),
    };
    Ok(super::audit::noted(
        json_response(
            StatusCode::OK,
            &serde_json::json!({
                "source_id": source.id,
                "purged": { scope: value },
                "generation": purged.generation,
            }),
        ),
        super::audit::AuditNote {
            source_id: Some(source.id.clone()),
            fields: vec![scope.to_owned()],
            ..super::audit::AuditNote::default()
        },
    ))
}

/// Reads the body's one target.
pub(crate) fn target(body: &[u8]) -> Result<Target, AdminError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| AdminError::invalid_field("body", "must be a JSON object"))?;
    let object = value
        .as_object()
        .ok_or_else(|| AdminError::invalid_field("body", "must be a JSON object"))?;
    if let Some(field) = object
        .keys()
        .find(|key| !matches!(key.as_str(), "path" | "prefix" | "all"))
    {
        return Err(AdminError::invalid_field(
            field,
            "is not a purge field (path, prefix or all)",
        ));
    }
    if object.len() != 1 {
        return Err(AdminError::invalid_field(
            "body",
            "must name exactly one of path, prefix or all",
        ));
    }
    let text = |field: &str| {
        object[field]
            .as_str()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .ok_or_else(|| AdminError::invalid_field(field, "must be a non-empty string"))
    };
    if object.contains_key("all") {
        return match object["all"] {
            serde_json::Value::Bool(true) => Ok(Target::All),
            _ => Err(AdminError::invalid_field("all", "must be true")),
        };
    }
    if object.contains_key("prefix") {
        let prefix = text("prefix")?.trim_start_matches('/');
        if prefix.is_empty() {
            return Err(AdminError::invalid_field(
                "prefix",
                "must name a directory (use {\"all\": true} for the whole Source)",
            ));
        }
        return Ok(Target::Prefix(prefix.to_owned()));
    }
    let raw = text("path")?;
    // An image URL names its asset by its path; the query is a rendering,
    // and a purge covers every rendering of the asset.
    let without_origin = match raw.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => raw,
    };
    let path = without_origin
        .split(['?', '#'])
        .next()
        .unwrap_or(without_origin);
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    asset_path(&path)
        .map(Target::Path)
        .ok_or_else(|| AdminError::invalid_field("path", "is not a valid asset path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Result<Target, String> {
        target(body.as_bytes()).map_err(|error| format!("{error:?}"))
    }

    /// Each target is read from its field; paths are normalised like image
    /// requests (decoded, no leading slash, no query).
    #[test]
    fn bodies_name_one_target() {
        let path = |p: &str| Ok(Target::Path(p.to_owned()));
        assert_eq!(
            parsed(r#"{"path":"/photos/cat.jpg"}"#),
            path("photos/cat.jpg")
        );
        assert_eq!(
            parsed(r#"{"path":"photos/cat.jpg"}"#),
            path("photos/cat.jpg")
        );
        assert_eq!(parsed(r#"{"path":"/a%20b.jpg?w=100"}"#), path("a b.jpg"));
        assert_eq!(
            parsed(r#"{"path":"https://demo.imgmesh.test/photos/cat.jpg?w=1&s=x"}"#),
            path("photos/cat.jpg")
        );
        assert_eq!(
            parsed(r#"{"prefix":"/photos/2024"}"#),
            Ok(Target::Prefix("photos/2024".to_owned()))
        );
        assert_eq!(parsed(r#"{"all":true}"#), Ok(Target::All));
    }

    /// Anything else is a 400 naming the field, and never purges everything.
    #[test]
    fn bad_bodies_are_refused() {
        for (body, field) in [
            ("", "body"),
            ("[]", "body"),
            ("{}", "body"),
            (r#"{"path":"a.jpg","all":true}"#, "body"),
            (r#"{"url":"a.jpg"}"#, "url"),
            (r#"{"all":false}"#, "all"),
            (r#"{"all":"yes"}"#, "all"),
            (r#"{"path":""}"#, "path"),
            (r#"{"path":7}"#, "path"),
            (r#"{"path":"/a/../b.jpg"}"#, "path"),
            (r#"{"path":"https://host"}"#, "path"),
            (r#"{"prefix":"/"}"#, "prefix"),
        ] {
            let error = target(body.as_bytes()).unwrap_err();
            let response = axum::response::IntoResponse::into_response(error);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let debug = format!("{:?}", target(body.as_bytes()).unwrap_err());
            assert!(debug.contains(field), "{body}: {debug}");
        }
    }
}
