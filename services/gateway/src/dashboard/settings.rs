//! What the forms on a Source's page post (the forms themselves are in
//! [`super::settings_forms`]): its editable settings, its upload
//! credentials and its signing-token rotation.
//!
//! The settings form posts the fields that changed as the same JSON body
//! `PATCH /v1/sources/{id}` reads, so the admin API's rules and the
//! registry's validation apply with their messages, shown next to the
//! field. Upload credentials are set (both fields) or removed the same way;
//! the secret is never shown. Rotation is the admin API's `rotate-token`:
//! the new token is shown once, on the answer page, and never again.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use imgmesh_proto::registry::v1::RotateSecureTokenRequest;
use serde_json::{Map, Value};

use super::html::{escape, html_response, page, url_component};
use super::settings_forms::{Kind, SETTINGS, form_value};
use super::source_page::{error_page, get_source, source_page, source_page_with};
use super::{Dashboard, LoggedIn, session_form};
use crate::admin::audit;
use crate::admin::error::AdminError;
use crate::admin::json;
use crate::admin::registry_call::{call, required, timed};

/// `POST /ui/sources/{id}/settings`: saves the settings that changed.
pub(super) async fn save(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let form = match session_form(&session, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let current = json::source_json(&source);
    let mut changes = Map::new();
    for (name, _, kind, _) in SETTINGS {
        let value = form_value(&form, name, *kind);
        if value != current[*name] {
            changes.insert((*name).to_owned(), value);
        }
    }
    if changes.is_empty() {
        let notice = "<p class=\"notice\" role=\"status\" id=\"settings-saved\">Nothing \
                      changed.</p>";
        return source_page(StatusCode::OK, &source, &session.csrf, notice);
    }
    let body = Value::Object(changes).to_string();
    let updated = async {
        let request = json::update_request(source.id.clone(), body.as_bytes())?;
        required(
            call(dashboard.admin.registry().update_source(timed(request)))
                .await?
                .source,
        )
    }
    .await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.update",
        &source.id,
        audit::body_field_names(body.as_bytes()),
        &updated,
    )
    .await;
    match updated {
        Ok(updated) => {
            let notice = "<p class=\"notice\" role=\"status\" id=\"settings-saved\">Settings \
                          saved.</p>";
            source_page(StatusCode::OK, &updated, &session.csrf, notice)
        }
        Err(error) => {
            let status = if error.status().is_client_error() {
                error.status()
            } else {
                StatusCode::BAD_GATEWAY
            };
            source_page_with(status, &source, &session.csrf, "", Some((&form, &error)))
        }
    }
}

/// `POST /ui/sources/{id}/upload-credentials`: sets both upload fields, or
/// with `remove=yes` removes them, through the API's `PATCH` body.
pub(super) async fn save_upload(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let form = match session_form(&session, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let body = if form.text("remove") == "yes" {
        serde_json::json!({ "upload_access_key_id": "", "upload_secret_access_key": "" })
    } else {
        serde_json::json!({
            "upload_access_key_id": form.text("upload_access_key_id"),
            // The secret keeps its exact bytes.
            "upload_secret_access_key": form.get("upload_secret_access_key").unwrap_or_default(),
        })
    }
    .to_string();
    let updated = async {
        let request = json::update_request(id.clone(), body.as_bytes())?;
        required(
            call(dashboard.admin.registry().update_source(timed(request)))
                .await?
                .source,
        )
    }
    .await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.update",
        updated
            .as_ref()
            .map_or(id.as_str(), |source| source.id.as_str()),
        audit::body_field_names(body.as_bytes()),
        &updated,
    )
    .await;
    match updated {
        Ok(updated) => {
            let notice = "<p class=\"notice\" role=\"status\" id=\"upload-saved\">Upload \
                          credentials saved.</p>";
            source_page(StatusCode::OK, &updated, &session.csrf, notice)
        }
        Err(error) => {
            let source = match get_source(&dashboard, &id).await {
                Ok(source) => source,
                Err(error) => return error_page(&error, &session.csrf),
            };
            let notice = format!(
                "<p class=\"error\" role=\"alert\" id=\"upload-error\">Upload credentials not \
                 saved: {}</p>",
                escape(error.message())
            );
            let status = if error.status().is_client_error() {
                error.status()
            } else {
                StatusCode::BAD_GATEWAY
            };
            source_page(status, &source, &session.csrf, &notice)
        }
    }
}

/// `POST /ui/sources/{id}/rotate-token`: a new signing token, shown once.
pub(super) async fn rotate(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let form = match session_form(&session, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let grace = form_value(&form, "grace_period_seconds", Kind::Seconds);
    let body = serde_json::json!({ "grace_period_seconds": grace }).to_string();
    let rotated = async {
        let grace_period_seconds = json::grace_period_seconds(body.as_bytes())?;
        let response = call(dashboard.admin.registry().rotate_secure_token(timed(
            RotateSecureTokenRequest {
                id_or_name: id.clone(),
                grace_period_seconds,
            },
        )))
        .await?;
        Ok::<_, AdminError>((response, grace_period_seconds))
    }
    .await;
    let source_id = match &rotated {
        Ok((response, _)) => response
            .source
            .as_ref()
            .map_or(id.as_str(), |source| source.id.as_str()),
        Err(_) => id.as_str(),
    };
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.rotate_token",
        source_id,
        Vec::new(),
        &rotated,
    )
    .await;
    let rotated = rotated.map(|(response, grace)| (response.token, grace));
    let (token, grace) = match rotated {
        Ok(rotated) => rotated,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let until = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(grace.into()));
    let link = format!("/ui/sources/{}", url_component(&id));
    let main = format!(
        "<h1>New signing token</h1>\
         <p role=\"alert\"><strong>Copy it now: it is shown only this once.</strong></p>\
         <p><label for=\"new-token\">Token</label> \
         <input type=\"text\" id=\"new-token\" value=\"{}\" readonly size=\"40\"></p>\
         <p id=\"grace\">The previous tokens keep working for {grace} s (until {}).</p>\
         <p><a href=\"{}\">Back to the Source</a></p>",
        escape(&token),
        escape(&until),
        escape(&link),
    );
    let mut response = html_response(
        StatusCode::OK,
        page("New signing token", Some(&session.csrf), &main),
    );
    // The token must not outlive this page anywhere.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
