//! The Assets page: the objects under the Source's prefix, a page at a
//! time (the registry's `ListObjects`, with the Source's read credentials),
//! each with a thumbnail rendered by imgmesh itself (the sandbox's preview
//! route, `w=120&h=120&fit=crop`); and upload to the Source from the
//! browser, by drag-and-drop or with a file field, with a progress bar,
//! through the Source's upload credentials.
//!
//! Paging follows S3's continuation token (`?page=`), forward only: the
//! page links to the next one and back to the first; `?prefix=` narrows
//! the listing and `?per_page=` sets its size (1 to
//! [`MAX_PAGE_SIZE`], default [`PAGE_SIZE`]).
//!
//! The upload form works both ways. With the script, a dropped or chosen
//! file is sent as the raw body of `POST /ui/sources/{id}/upload` with the
//! session's CSRF token in `X-CSRF-Token` (a request without it is
//! refused), so its progress can be shown. Without it, the browser posts
//! the same form as `multipart/form-data` to `POST /ui/sources/{id}/assets`
//! (`csrf`, then `key`, then `file`), answered with the page and the
//! upload's result. Both forward the file, streamed, to the admin API's own
//! upload path ([`crate::admin::upload::stream_upload`]), so the registry's
//! size cap, key rules and messages apply to both.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use imgmesh_proto::registry::v1::{
    ListObjectsRequest, Source, UploadObjectHeader, UploadObjectResponse,
};

use super::html::{csrf_field, escape, html_response, page, url_component};
use super::source_page::{error_page, get_source};
use super::{Dashboard, LoggedIn, csrf_refused, session};
use crate::admin::audit;
use crate::admin::error::AdminError;
use crate::admin::registry_call::{call, timed};
use crate::admin::upload::stream_upload;

/// Header carrying the session's CSRF token on an upload.
const CSRF_HEADER: &str = "x-csrf-token";

/// Longest text field (`csrf`, `key`) read from the multipart form.
const MAX_TEXT_FIELD_BYTES: usize = 4096;

/// Chunks of a multipart file queued ahead of the registry call.
const FILE_QUEUE: usize = 4;

/// Objects listed on a page by default.
const PAGE_SIZE: u32 = 24;
/// Most objects listed on a page.
const MAX_PAGE_SIZE: u32 = 100;

/// Which page of the listing to show: `?prefix=&page=&per_page=`.
#[derive(Debug, Default, PartialEq)]
struct Listing {
    /// Keys starting with this, relative to the Source's prefix.
    prefix: String,
    /// The registry's token of the page; empty for the first.
    page: String,
    /// Objects on the page.
    per_page: u32,
}

// === impl Listing ===

impl Listing {
    /// The listing a page's query asks for.
    fn of_query(query: Option<&str>) -> Listing {
        let mut listing = Listing {
            per_page: PAGE_SIZE,
            ..Listing::default()
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*name {
                "prefix" => listing.prefix = value.trim().trim_start_matches('/').to_owned(),
                "page" => listing.page = value.into_owned(),
                "per_page" => {
                    if let Ok(size) = value.trim().parse::<u32>() {
                        listing.per_page = size.clamp(1, MAX_PAGE_SIZE);
                    }
                }
                _ => {}
            }
        }
        listing
    }

    /// The query of this listing's page `page` (empty: the first).
    fn query(&self, page: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !self.prefix.is_empty() {
            query.append_pair("prefix", &self.prefix);
        }
        if self.per_page != PAGE_SIZE {
            query.append_pair("per_page", &self.per_page.to_string());
        }
        if !page.is_empty() {
            query.append_pair("page", page);
        }
        query.finish()
    }
}

/// `GET /ui/sources/{id}/assets`: a page of the Source's objects and the
/// upload section (or why uploads are refused).
pub(super) async fn assets(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let listing = Listing::of_query(query.as_deref());
    assets_page(&dashboard, &session.csrf, &id, &listing, StatusCode::OK, "").await
}

/// The Assets page of Source `id` at `listing`, with `status` and `notice`
/// (HTML) above the upload section.
async fn assets_page(
    dashboard: &Dashboard,
    csrf: &str,
    id: &str,
    listing: &Listing,
    status: StatusCode,
    notice: &str,
) -> Response {
    let source = match get_source(dashboard, id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, csrf),
    };
    let objects = objects_section(dashboard, &source, listing).await;
    let id = escape(&url_component(&source.id));
    let main = format!(
        "<h1>Assets: {name}</h1>\
         <p><a href=\"/ui/sources/{id}\">Back to the Source</a> · \
         <a href=\"/ui/sources/{id}/sandbox\">Image sandbox</a></p>{notice}{upload}{objects}",
        name = escape(&source.name),
        upload = upload_section(&source, csrf),
    );
    html_response(
        status,
        page(&format!("Assets: {}", source.name), Some(csrf), &main),
    )
}

/// The listing: a prefix filter, one page of objects with thumbnails and
/// sandbox links, and the paging links; or why the registry could not list.
async fn objects_section(dashboard: &Dashboard, source: &Source, listing: &Listing) -> String {
    let id = escape(&url_component(&source.id));
    let filter = format!(
        "<h2>Objects</h2>\
         <form method=\"get\" action=\"/ui/sources/{id}/assets\" class=\"inline\" \
         id=\"objects-filter\"><label for=\"objects-prefix\">Key prefix</label>\
         <input type=\"text\" id=\"objects-prefix\" name=\"prefix\" value=\"{prefix}\" \
         placeholder=\"photos/\">{per_page}\
         <button type=\"submit\" id=\"objects-show\">List</button></form>",
        prefix = escape(&listing.prefix),
        // A page size asked in the URL is kept when the prefix changes.
        per_page = if listing.per_page == PAGE_SIZE {
            String::new()
        } else {
            format!(
                "<input type=\"hidden\" name=\"per_page\" value=\"{}\">",
                listing.per_page
            )
        },
    );
    let listed = call(
        dashboard
            .admin
            .registry()
            .list_objects(timed(ListObjectsRequest {
                id_or_name: source.id.clone(),
                prefix: listing.prefix.clone(),
                page_size: listing.per_page,
                page_token: listing.page.clone(),
            })),
    )
    .await;
    let page = match listed {
        Ok(page) => page,
        Err(error) => {
            return format!(
                "{filter}<p class=\"error\" role=\"alert\" id=\"objects-error\">\
                 The objects could not be listed: {}</p>",
                escape(error.message())
            );
        }
    };
    if page.objects.is_empty() {
        return format!(
            "{filter}<p id=\"no-objects\">No objects {under}.</p>",
            under = if listing.prefix.is_empty() {
                "under the Source's prefix".to_owned()
            } else {
                format!(
                    "whose key starts with \u{201c}{}\u{201d}",
                    escape(&listing.prefix)
                )
            }
        );
    }
    let mut items = String::new();
    for object in &page.objects {
        let path = format!("?path={}", url_component(&object.key));
        let _ = write!(
            items,
            "<li><img src=\"/ui/sources/{id}/preview{path}&amp;w=120&amp;h=120&amp;fit=crop\" \
             width=\"120\" height=\"120\" alt=\"{key}\" loading=\"lazy\">\
             <a href=\"/ui/sources/{id}/sandbox{path}\">{key}</a>\
             <span class=\"hint\">{size}</span></li>",
            path = escape(&path),
            key = escape(&object.key),
            size = escape(&byte_size(object.size)),
        );
    }
    let mut paging = Vec::new();
    if !listing.page.is_empty() {
        paging.push(format!(
            "<a href=\"/ui/sources/{id}/assets{query}\" id=\"objects-first\">First page</a>",
            query = escape(&question(&listing.query(""))),
        ));
    }
    if !page.next_page_token.is_empty() {
        paging.push(format!(
            "<a href=\"/ui/sources/{id}/assets{query}\" id=\"objects-next\" rel=\"next\">\
             Next page</a>",
            query = escape(&question(&listing.query(&page.next_page_token))),
        ));
    }
    format!(
        "{filter}<ul id=\"objects\" class=\"thumbnails\">{items}</ul>\
         <nav aria-label=\"Pages of objects\" class=\"paging\">{}</nav>",
        paging.join(" · ")
    )
}

/// `query` as a URL's query part: empty, or with its `?`.
fn question(query: &str) -> String {
    if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    }
}

/// A size in bytes for people: bytes, KiB or MiB.
fn byte_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// The upload section: a drop zone and a file field when the Source has
/// upload credentials, else a plain statement that uploads are refused.
fn upload_section(source: &Source, csrf: &str) -> String {
    let id = escape(&url_component(&source.id));
    if source.upload_access_key().id_hint.is_empty() {
        return format!(
            "<h2>Upload</h2><p class=\"error\" role=\"alert\" id=\"no-upload-credentials\">\
             No upload credentials are set: uploads to this Source are refused. Set them on \
             <a href=\"/ui/sources/{id}\">the Source's page</a>.</p>"
        );
    }
    // The fields are in the order the multipart handler reads them: the
    // CSRF token and the key before the file.
    format!(
        "<h2>Upload</h2>\
         <p class=\"hint\">Files are written under the Source's path prefix with its upload \
         credentials (access key {hint}). <code>imgmesh sources upload</code> does the same \
         from a shell.</p>\
         <form method=\"post\" action=\"/ui/sources/{id}/assets\" \
         enctype=\"multipart/form-data\" id=\"upload-form\">{csrf_html}\
         <div id=\"drop-zone\" class=\"drop-zone\" data-upload=\"/ui/sources/{id}/upload\" \
         data-preview=\"/ui/sources/{id}/preview\" data-sandbox=\"/ui/sources/{id}/sandbox\" \
         data-csrf=\"{csrf}\"><p>Drop a file here, or choose one:</p>\
         <label for=\"upload-key\">Object key (empty: the file's name)</label>\
         <input type=\"text\" id=\"upload-key\" name=\"key\" placeholder=\"photos/new.jpg\">\
         <label for=\"upload-file\">File</label>\
         <input type=\"file\" id=\"upload-file\" name=\"file\">\
         <button type=\"submit\" id=\"upload-button\">Upload</button>\
         <label for=\"upload-progress\">Progress</label>\
         <progress id=\"upload-progress\" max=\"100\" value=\"0\"></progress>\
         <p id=\"upload-result\" role=\"status\"></p></div></form>\
         <h2>Uploaded in this visit</h2><ul id=\"uploaded\" class=\"thumbnails\"></ul>",
        hint = escape(&source.upload_access_key().id_hint),
        csrf = escape(csrf),
        csrf_html = csrf_field(csrf),
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
        id_or_name: id.clone(),
        key,
        content_type: text(header::CONTENT_TYPE),
        size,
    };
    let stored = stream_upload(&dashboard.admin, header, body).await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "object.upload",
        &id,
        Vec::new(),
        &stored,
    )
    .await;
    match stored {
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

/// `POST /ui/sources/{id}/assets`: the upload form posted without the
/// script, as `multipart/form-data`. The `csrf` field must come before the
/// file (a file before it is refused with 403); `key` (empty: the file's
/// name) is read when it comes before the file, as the form sends it. The
/// file is streamed to the registry, which applies its size cap. The
/// answer is the Assets page with the upload's result above the form.
pub(super) async fn upload_form(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = match multipart {
        Ok(multipart) => upload_multipart(&dashboard, &session, &id, multipart).await,
        Err(rejection) => Err(FormUpload::Refused(
            StatusCode::BAD_REQUEST,
            format!("the form could not be read: {}", rejection.body_text()),
        )),
    };
    let (status, notice) = match result {
        Ok((key, stored)) => {
            let preview = format!("?path={}", url_component(&key));
            let source_id = escape(&url_component(&id));
            (
                StatusCode::CREATED,
                format!(
                    "<p role=\"status\" id=\"upload-form-result\">Uploaded {key} ({size} bytes).\
                     </p><p><img id=\"upload-form-thumbnail\" width=\"120\" height=\"120\" \
                     alt=\"{key}\" src=\"/ui/sources/{source_id}/preview{preview}&amp;w=120&amp;\
                     h=120&amp;fit=crop\"> <a href=\"/ui/sources/{source_id}/sandbox{preview}\">\
                     Open in the sandbox</a></p>",
                    key = escape(&key),
                    size = stored.size,
                    preview = escape(&preview),
                ),
            )
        }
        Err(FormUpload::CsrfRefused) => return csrf_refused(),
        Err(FormUpload::Refused(status, message)) => (
            status,
            format!(
                "<p class=\"error\" role=\"alert\" id=\"upload-form-result\">\
                 The upload failed: {}</p>",
                escape(&message)
            ),
        ),
    };
    let listing = Listing::of_query(None);
    assets_page(&dashboard, &session.csrf, &id, &listing, status, &notice).await
}

/// Why a multipart upload stored nothing.
#[derive(Debug)]
enum FormUpload {
    /// The form's CSRF token is missing or wrong, or came after the file.
    CsrfRefused,
    /// Refused (by the form's reading or by the registry) with `status`
    /// and a message for the person.
    Refused(StatusCode, String),
}

// === impl FormUpload ===

impl From<AdminError> for FormUpload {
    fn from(error: AdminError) -> FormUpload {
        FormUpload::Refused(error.status(), error.message().to_owned())
    }
}

/// Reads the multipart form's fields in order and streams its file to the
/// registry; the key it was stored at (relative to the Source's prefix)
/// and what the registry says it wrote.
async fn upload_multipart(
    dashboard: &Dashboard,
    session: &session::Session,
    id: &str,
    mut multipart: Multipart,
) -> Result<(String, UploadObjectResponse), FormUpload> {
    let unreadable = |error: axum::extract::multipart::MultipartError| {
        FormUpload::Refused(
            error.status(),
            format!("the form could not be read: {}", error.body_text()),
        )
    };
    let mut csrf_ok = false;
    let mut key = String::new();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("csrf") => {
                let value = text_field(field).await?;
                csrf_ok = session::tokens_match(&session.csrf, Some(&value));
            }
            Some("key") => key = text_field(field).await?,
            Some("file") => {
                if !csrf_ok {
                    return Err(FormUpload::CsrfRefused);
                }
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let key = match key.trim().trim_start_matches('/') {
                    "" => file_name,
                    key => key.to_owned(),
                };
                if key.is_empty() {
                    return Err(FormUpload::Refused(
                        StatusCode::BAD_REQUEST,
                        "choose a file to upload".to_owned(),
                    ));
                }
                // Unknown to the browser: let the registry sniff it, as
                // the script's upload does.
                let content_type = field
                    .content_type()
                    .filter(|kind| *kind != "application/octet-stream")
                    .unwrap_or_default()
                    .to_owned();
                let header = UploadObjectHeader {
                    id_or_name: id.to_owned(),
                    key: key.clone(),
                    content_type,
                    size: 0,
                };
                let stored = stream_field(dashboard, &session.credential, header, field).await?;
                return Ok((key, stored));
            }
            _ => {}
        }
    }
    if csrf_ok {
        Err(FormUpload::Refused(
            StatusCode::BAD_REQUEST,
            "choose a file to upload".to_owned(),
        ))
    } else {
        Err(FormUpload::CsrfRefused)
    }
}

/// A text field of at most [`MAX_TEXT_FIELD_BYTES`].
async fn text_field(mut field: Field<'_>) -> Result<String, FormUpload> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|error| {
        FormUpload::Refused(
            error.status(),
            format!("the form could not be read: {}", error.body_text()),
        )
    })? {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Err(FormUpload::Refused(
                StatusCode::BAD_REQUEST,
                format!("a form field is longer than {MAX_TEXT_FIELD_BYTES} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| {
        FormUpload::Refused(
            StatusCode::BAD_REQUEST,
            "a form field is not UTF-8 text".to_owned(),
        )
    })
}

/// Streams the file `field` into the admin API's upload path after
/// `header`: its chunks are queued into the body [`stream_upload`] reads,
/// so the file is never held whole here. The upload is audited under
/// `credential`.
async fn stream_field(
    dashboard: &Dashboard,
    credential: &str,
    header: UploadObjectHeader,
    mut field: Field<'_>,
) -> Result<UploadObjectResponse, FormUpload> {
    let (chunks, queue) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(FILE_QUEUE);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(queue));
    let pump = async move {
        loop {
            let next = match field.chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => return,
                Err(error) => Err(std::io::Error::other(error.body_text())),
            };
            let failed = next.is_err();
            // A closed queue means the upload already ended; its own result
            // says why.
            if chunks.send(next).await.is_err() || failed {
                return;
            }
        }
    };
    let source = header.id_or_name.clone();
    let ((), stored) = tokio::join!(pump, stream_upload(&dashboard.admin, header, body));
    audit::record_change(
        &dashboard.admin,
        credential,
        "object.upload",
        &source,
        Vec::new(),
        &stored,
    )
    .await;
    Ok(stored?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing's query: defaults, a clamped page size, a prefix
    /// without its leading slash; and the links' queries keep the prefix
    /// and size, adding the page token only when there is one.
    #[test]
    fn listing_queries() {
        assert_eq!(
            Listing::of_query(None),
            Listing {
                prefix: String::new(),
                page: String::new(),
                per_page: PAGE_SIZE,
            }
        );
        let listing = Listing::of_query(Some("prefix=%2Fphotos%2F&per_page=500&page=t%2B1"));
        assert_eq!(listing.prefix, "photos/");
        assert_eq!(listing.per_page, MAX_PAGE_SIZE);
        assert_eq!(listing.page, "t+1");
        assert_eq!(listing.query(""), "prefix=photos%2F&per_page=100");
        assert_eq!(
            listing.query("n/x"),
            "prefix=photos%2F&per_page=100&page=n%2Fx"
        );
        assert_eq!(Listing::of_query(Some("per_page=0")).per_page, 1);
        assert_eq!(Listing::of_query(None).query(""), "");
        assert_eq!(byte_size(10), "10 bytes");
        assert_eq!(byte_size(2048), "2.0 KiB");
    }

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
        source.upload_access_key.get_or_insert_default().id_hint = "AKIA".to_owned();
        let some = upload_section(&source, "t\"k");
        assert!(some.contains("<label for=\"upload-file\">"));
        assert!(some.contains("data-csrf=\"t&quot;k\""));
        assert!(some.contains("data-upload=\"/ui/sources/src_1/upload\""));
        // Without the script the same form posts multipart, its CSRF
        // token and key before the file.
        assert!(some.contains("enctype=\"multipart/form-data\""));
        let (csrf, key, file) = (
            some.find("name=\"csrf\"").unwrap(),
            some.find("name=\"key\"").unwrap(),
            some.find("name=\"file\"").unwrap(),
        );
        assert!(csrf < key && key < file, "{some}");
    }
}
