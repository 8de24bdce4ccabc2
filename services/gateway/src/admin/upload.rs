//! `PUT /v1/sources/{id_or_name}/objects/{key}`: streams the request body
//! into the registry's `UploadObject` call, which writes it under the
//! Source's prefix with the Source's upload credentials.
//!
//! The body is never held whole: each chunk the client sends becomes one
//! stream message. If the client's body breaks off, the stream ends with a
//! message the registry refuses (it never stores a short object).

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt as _;
use imgmesh_proto::registry::v1::upload_object_request::Part;
use imgmesh_proto::registry::v1::{UploadObjectHeader, UploadObjectRequest, UploadObjectResponse};

use super::access::AdminApi;
use super::{AdminError, SourceRef, body_error, json_response};
use crate::asset_path::percent_decoded;

/// Deadline for a whole upload.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Messages buffered between the body and the registry call.
const UPLOAD_QUEUE: usize = 4;

/// Uploads the request body as object `key` of the Source.
pub(super) async fn upload_object(
    State(admin): State<AdminApi>,
    SourceRef(id_or_name): SourceRef,
    uri: http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    let key = object_key(uri.path())?;
    let content_type = match headers.get(header::CONTENT_TYPE) {
        None => String::new(),
        Some(value) => value
            .to_str()
            .map_err(|_| AdminError::invalid_field("content-type", "must be ASCII"))?
            .to_owned(),
    };
    let size = match headers.get(header::CONTENT_LENGTH) {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| AdminError::invalid_field("content-length", "must be a number"))?,
    };

    let stored = stream_upload(
        &admin,
        UploadObjectHeader {
            id_or_name,
            key,
            content_type,
            size,
        },
        body,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({
            "key": stored.key,
            "etag": stored.etag,
            "size": stored.size,
        }),
    ))
}

/// Streams `body` into the registry's `UploadObject` call after `header`
/// (the admin API's upload and the dashboard's both go through here).
pub(crate) async fn stream_upload(
    admin: &AdminApi,
    header: UploadObjectHeader,
    body: Body,
) -> Result<UploadObjectResponse, AdminError> {
    let (messages, queue) = tokio::sync::mpsc::channel(UPLOAD_QUEUE);
    let header = UploadObjectRequest {
        part: Some(Part::Header(header)),
    };
    messages
        .send(header)
        .await
        .expect("the queue is empty and its receiver alive");
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(queue));
    request.set_timeout(UPLOAD_TIMEOUT);
    let mut registry = admin.registry();
    let upload = async move {
        match tokio::time::timeout(UPLOAD_TIMEOUT, registry.upload_object(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(AdminError::from_registry(&status)),
            Err(_elapsed) => Err(AdminError::registry_timed_out()),
        }
    };
    let pump = async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    // A message without a part: the registry refuses the
                    // upload, so a short object is never stored.
                    let _ = messages.send(UploadObjectRequest { part: None }).await;
                    return Err(body_error(&error));
                }
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            if chunk.is_empty() {
                continue;
            }
            let message = UploadObjectRequest {
                part: Some(Part::Chunk(chunk)),
            };
            if messages.send(message).await.is_err() {
                // The call ended early; its own result says why.
                break;
            }
        }
        Ok::<(), AdminError>(())
    };
    // Both run to their end: a refused call stops the pump (its sends
    // fail), and a broken body ends the stream with a message the registry
    // refuses. (Dropping the call instead could let the stream's clean end
    // reach the registry before the cancellation: a short object.) The
    // body's error is the one answered.
    let (pumped, stored) = tokio::join!(pump, upload);
    pumped?;
    stored
}

/// The object key of an upload path `/v1/sources/{id_or_name}/objects/{key}`:
/// the raw key decoded exactly once (the registry checks what it holds).
fn object_key(raw_path: &str) -> Result<String, AdminError> {
    let raw_key = raw_path
        .strip_prefix("/v1/sources/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(_, rest)| rest.strip_prefix("objects/"))
        .unwrap_or("");
    // What a key may hold is the registry's rule (one place, one message
    // per refusal); here it is only decoded.
    percent_decoded(raw_key).ok_or_else(|| {
        AdminError::invalid_field(
            "key",
            "must be percent-encoded UTF-8 (a '%' starts an escape)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys are decoded exactly once and passed on as they are (the
    /// registry decides which keys are allowed); broken escapes are refused.
    #[test]
    fn object_keys() {
        let ok = [
            ("/v1/sources/demo/objects/cat.jpg", "cat.jpg"),
            ("/v1/sources/demo/objects/a/b/c.png", "a/b/c.png"),
            (
                "/v1/sources/src_1/objects/caf%C3%A9%20noir.jpg",
                "café noir.jpg",
            ),
            ("/v1/sources/demo/objects/100%25.jpg", "100%.jpg"),
            ("/v1/sources/demo/objects/a%2525b.jpg", "a%25b.jpg"),
            ("/v1/sources/demo/objects/%2e%2e/x.jpg", "../x.jpg"),
            ("/v1/sources/demo/objects/", ""),
        ];
        for (path, key) in ok {
            assert_eq!(object_key(path).as_deref(), Ok(key), "{path}");
        }
        for path in [
            "/v1/sources/demo/objects/100%.jpg",
            "/v1/sources/demo/objects/a%zzb.jpg",
            "/v1/sources/demo/objects/%C3.jpg",
        ] {
            assert!(object_key(path).is_err(), "{path}");
        }
    }
}
