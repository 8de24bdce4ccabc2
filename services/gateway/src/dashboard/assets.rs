//! The Assets page: upload to a Source from the browser, by drag-and-drop
//! or with a file field, with a progress bar, through the Source's upload
//! credentials; each uploaded file is shown with a thumbnail rendered by
//! imgmesh itself (the sandbox's preview route, `w=120&h=120&fit=crop`).
//!
//! The upload route forwards the request body, streamed, to the admin
//! API's own upload path ([`crate::admin::upload::stream_upload`]), so the
//! registry's key rules and messages apply. The script sends the session's
//! CSRF token in `X-CSRF-Token`; a request without it is refused.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, StatusCode, header};
use imgmesh_proto::registry::v1::{Source, UploadObjectHeader};

use super::html::{escape, html_response, page, url_component};
use super::source_page::{error_page, get_source};
use super::{Dashboard, LoggedIn, session};
use crate::admin::upload::stream_upload;

/// Header carrying the session's CSRF token on an upload.
const CSRF_HEADER: &str = "x-csrf-token";

/// `GET /ui/sources/{id}/assets`: the upload section, or why uploads are
/// refused.
pub(super) async fn assets(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
) -> Response {
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let id = escape(&url_component(&source.id));
    let main = format!(
        "<h1>Assets: {name}</h1>\
         <p><a href=\"/ui/sources/{id}\">Back to the Source</a> · \
         <a href=\"/ui/sources/{id}/sandbox\">Image sandbox</a></p>{upload}",
        name = escape(&source.name),
        upload = upload_section(&source, &session.csrf),
    );
    html_response(
        StatusCode::OK,
        page(
            &format!("Assets: {}", source.name),
            Some(&session.csrf),
            &main,
        ),
    )
}

/// The upload section: a drop zone and a file field when the Source has
/// upload credentials, else a plain statement that uploads are refused.
fn upload_section(source: &Source, csrf: &str) -> String {
    let id = escape(&url_component(&source.id));
    if source.upload_access_key_id_hint.is_empty() {
        return format!(
            "<h2>Upload</h2><p class=\"error\" role=\"alert\" id=\"no-upload-credentials\">\
             No upload credentials are set: uploads to this Source are refused. Set them on \
             <a href=\"/ui/sources/{id}\">the Source's page</a>.</p>"
        );
    }
    format!(
        "<h2>Upload</h2>\
         <p class=\"hint\">Files are written under the Source's path prefix with its upload \
         credentials (access key {hint}). Uploading from this page needs JavaScript; \
         <code>imgmesh sources upload</code> does the same from a shell.</p>\
         <div id=\"drop-zone\" class=\"drop-zone\" data-upload=\"/ui/sources/{id}/upload\" \
         data-preview=\"/ui/sources/{id}/preview\" data-sandbox=\"/ui/sources/{id}/sandbox\" \
         data-csrf=\"{csrf}\"><p>Drop a file here, or choose one:</p>\
         <label for=\"upload-file\">File</label>\
         <input type=\"file\" id=\"upload-file\" name=\"file\">\
         <label for=\"upload-key\">Object key (empty: the file's name)</label>\
         <input type=\"text\" id=\"upload-key\" name=\"key\" placeholder=\"photos/new.jpg\">\
         <button type=\"button\" id=\"upload-button\">Upload</button>\
         <label for=\"upload-progress\">Progress</label>\
         <progress id=\"upload-progress\" max=\"100\" value=\"0\"></progress>\
         <p id=\"upload-result\" role=\"status\"></p></div>\
         <h2>Uploaded in this visit</h2><ul id=\"uploaded\" class=\"thumbnails\"></ul>",
        hint = escape(&source.upload_access_key_id_hint),
        csrf = escape(csrf),
    )
}

/// `POST /ui/sources/{id}/upload?key=…`: the body, streamed, as object
/// `key` of the Source; the answer is a plain-text sentence.
pub(super) async fn upload(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok());
    if !session::tokens_match(&session.csrf, presented) {
        return (
            StatusCode::FORBIDDEN,
            "This upload did not come from this dashboard session (its CSRF token is missing \
             or wrong).",
        )
            .into_response();
    }
    let key = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "key")
        .map(|(_, key)| key.trim().trim_start_matches('/').to_owned())
        .unwrap_or_default();
    if key.is_empty() {
        return (StatusCode::BAD_REQUEST, "Name the object key.").into_response();
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let Ok(size) = text(header::CONTENT_LENGTH).parse::<u64>() else {
        return (
            StatusCode::LENGTH_REQUIRED,
            "The upload needs a Content-Length.",
        )
            .into_response();
    };
    let header = UploadObjectHeader {
        id_or_name: id,
        key,
        content_type: text(header::CONTENT_TYPE),
        size,
    };
    match stream_upload(&dashboard.admin, header, body).await {
        Ok(stored) => (
            StatusCode::CREATED,
            format!("Uploaded {} ({} bytes).", stored.key, stored.size),
        )
            .into_response(),
        Err(error) => (
            error.status(),
            format!("The upload failed: {}", error.message()),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without upload credentials the page says uploads are refused and
    /// offers no file field; with them, the field is labelled and the drop
    /// zone carries the session's CSRF token, escaped.
    #[test]
    fn upload_section_by_credentials() {
        let mut source = Source {
            id: "src_1".to_owned(),
            ..Source::default()
        };
        let none = upload_section(&source, "tok");
        assert!(none.contains("No upload credentials are set"));
        assert!(!none.contains("type=\"file\""));
        source.upload_access_key_id_hint = "AKIA".to_owned();
        let some = upload_section(&source, "t\"k");
        assert!(some.contains("<label for=\"upload-file\">"));
        assert!(some.contains("data-csrf=\"t&quot;k\""));
        assert!(some.contains("data-upload=\"/ui/sources/src_1/upload\""));
    }
}
