//! The dashboard's Sources pages: the list with search, the New Source
//! wizard (storage type, S3 details, Deploy Source), the deploy status that
//! refreshes itself, a Source's page (drawn by [`super::source_page`]; its
//! settings edited and rotated in [`super::settings`]), enable/disable,
//! delete and purge (each destructive action confirmed on a page of its
//! own).
//!
//! Every action is the admin API's own path: the wizard's fields become the
//! same JSON body `POST /v1/sources` reads (so the same rules and messages
//! apply, shown next to the field they name), purges go through the same
//! target parsing, and all calls go to the registry and the renderer with
//! the admin API's deadlines.

use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use http::StatusCode;
use imgmesh_proto::registry::v1::{
    DeleteSourceRequest, DeploySourceRequest, ListSourcesRequest, Source, SourceStatus,
};
use imgmesh_proto::renderer::v1::{PurgeRequest, purge_request};
use serde_json::{Map, Value};

use super::html::{
    FieldNotes, csrf_field, escape, field_notes, html_response, page, see_other, url_component,
};
use super::session::Session;
use super::source_page::{
    error_page, get_source, last_deploy, source_page, status_name, status_section, storage_name,
};
use super::{Dashboard, FormFields, LoggedIn, session_form};
use crate::admin::audit;
use crate::admin::error::AdminError;
use crate::admin::json;
use crate::admin::purge::{self, Target};
use crate::admin::registry_call::{call, required, timed};

/// Deadline of the renderer's purge call (as the admin API's).
const PURGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The wizard's S3 fields: form name, label, input type, hint.
const S3_FIELDS: &[(&str, &str, &str, &str)] = &[
    (
        "name",
        "Source name",
        "text",
        "A name for you and the CLI; it cannot be changed later.",
    ),
    ("access_key_id", "Access Key ID", "text", ""),
    (
        "secret_access_key",
        "Secret Access Key",
        "password",
        "Stored encrypted; never shown again.",
    ),
    ("bucket", "Bucket Name", "text", ""),
    (
        "path_prefix",
        "Path Prefix (optional)",
        "text",
        "Serve only the objects under this folder of the bucket.",
    ),
    (
        "region",
        "Region",
        "text",
        "The bucket's region, e.g. us-east-1.",
    ),
    (
        "endpoint",
        "Endpoint URL",
        "url",
        "The S3-compatible service's URL, e.g. https://s3.example.com.",
    ),
    (
        "subdomain",
        "Subdomain",
        "text",
        "The Source serves at <subdomain>.<the gateway's base domain>.",
    ),
];

// === list ===

/// `GET /ui/sources`: every Source (or those whose name or subdomain
/// contains `?q=`), with its status.
pub(super) async fn list(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let search = query_value(query.as_deref(), "q");
    let sources = match call(
        dashboard
            .admin
            .registry()
            .list_sources(timed(ListSourcesRequest {})),
    )
    .await
    {
        Ok(response) => response.sources,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let needle = search.trim().to_lowercase();
    let mut shown: Vec<&Source> = sources
        .iter()
        .filter(|source| {
            needle.is_empty()
                || source.name.to_lowercase().contains(&needle)
                || source.routing().subdomain.to_lowercase().contains(&needle)
        })
        .collect();
    shown.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows = String::new();
    for source in &shown {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/sources/{id}\">{name}</a></td><td>{subdomain}</td>\
             <td>{storage}</td><td>{status}</td><td>{enabled}</td><td>{deployed}</td></tr>",
            id = escape(&url_component(&source.id)),
            name = escape(&source.name),
            subdomain = escape(&source.routing().subdomain),
            storage = storage_name(source),
            status = status_cell(source),
            enabled = if source.enabled { "Yes" } else { "No" },
            deployed = escape(&last_deploy(source)),
        );
    }
    let table = if shown.is_empty() {
        if needle.is_empty() {
            "<p id=\"no-sources\">No Sources yet. Create one with New Source.</p>".to_owned()
        } else {
            format!(
                "<p id=\"no-sources\">No Source's name or subdomain contains “{}”.</p>",
                escape(search.trim())
            )
        }
    } else {
        format!(
            "<table id=\"sources\"><caption>Sources</caption><thead><tr><th scope=\"col\">Name</th>\
             <th scope=\"col\">Subdomain</th><th scope=\"col\">Storage</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Enabled</th>\
             <th scope=\"col\">Last deploy</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let main = format!(
        "<div class=\"title-row\"><h1>Sources</h1>\
         <a class=\"button\" href=\"/ui/sources/new\" id=\"new-source\">New Source</a></div>\
         <form method=\"get\" action=\"/ui/sources\" role=\"search\" class=\"inline-form\">\
         <label for=\"q\">Search by name or subdomain</label>\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\">\
         <button type=\"submit\">Search</button></form>{table}",
        escape(search.trim())
    );
    html_response(StatusCode::OK, page("Sources", Some(&session.csrf), &main))
}

/// The status word, with the reason of a failed deploy.
fn status_cell(source: &Source) -> String {
    let name = status_name(source.deploy_state().status());
    if source.deploy_state().status() == SourceStatus::Failed {
        format!(
            "<span class=\"status status-{name}\">{name}</span>: {}",
            escape(&source.deploy_state().message)
        )
    } else {
        format!("<span class=\"status status-{name}\">{name}</span>")
    }
}

// === the New Source wizard ===

/// `GET /ui/sources/new`: step 1, the storage type.
pub(super) async fn storage_step(LoggedIn(session): LoggedIn) -> Response {
    let main = "<h1>New Source</h1><p class=\"step\">Step 1 of 2</p>\
         <form method=\"get\" action=\"/ui/sources/new/s3\" class=\"stack\">\
         <fieldset><legend>How do you store your media?</legend>\
         <div class=\"choice\"><input type=\"radio\" id=\"storage-s3\" name=\"storage\" \
         value=\"s3\" checked><label for=\"storage-s3\">Amazon S3</label></div>\
         <div class=\"choice\"><input type=\"radio\" id=\"storage-s3-compatible\" \
         name=\"storage\" value=\"s3_compatible\"><label for=\"storage-s3-compatible\">\
         S3-compatible storage (MinIO, Ceph, R2, …)</label></div></fieldset>\
         <button type=\"submit\" id=\"next\">Next</button></form>";
    html_response(
        StatusCode::OK,
        page("New Source", Some(&session.csrf), main),
    )
}

/// `GET /ui/sources/new/s3?storage=s3|s3_compatible`: step 2, the S3
/// details and the subdomain.
pub(super) async fn details_step(
    LoggedIn(session): LoggedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let compatible = query_value(query.as_deref(), "storage") == "s3_compatible";
    let mut values = FormFields::default();
    values.0.push(("region".to_owned(), "us-east-1".to_owned()));
    details_form(StatusCode::OK, &session.csrf, compatible, &values, None)
}

/// The S3 details form, filled with `values` (never the secret) and with
/// `error` next to the field it names (or above the form).
fn details_form(
    status: StatusCode,
    csrf: &str,
    compatible: bool,
    values: &FormFields,
    error: Option<&AdminError>,
) -> Response {
    let error_field = error.and_then(AdminError::field);
    let mut fields = String::new();
    for (name, label, kind, hint) in S3_FIELDS {
        if *name == "endpoint" && !compatible {
            continue;
        }
        let value = if *kind == "password" {
            ""
        } else {
            values.text(name)
        };
        let required = if matches!(*name, "path_prefix") {
            ""
        } else {
            " required"
        };
        let message = error
            .filter(|_| error_field == Some(name))
            .map(AdminError::message);
        let FieldNotes {
            hint: hint_html,
            error: error_html,
            invalid,
            described_by: described,
        } = field_notes(name, hint, message);
        let autocomplete = if *kind == "password" {
            " autocomplete=\"new-password\""
        } else {
            " autocomplete=\"off\""
        };
        // The subdomain is checked against the other Sources as it is typed.
        let (check, check_output) = if *name == "subdomain" {
            (
                " data-check=\"/ui/sources/new/subdomain\"",
                "<p class=\"hint\" id=\"subdomain-check\" aria-live=\"polite\"></p>",
            )
        } else {
            ("", "")
        };
        let _ = write!(
            fields,
            "<div class=\"field\"><label for=\"{name}\">{label}</label>\
             <input type=\"{kind}\" id=\"{name}\" name=\"{name}\" value=\"{value}\"\
             {required}{invalid}{described}{autocomplete}{check}>{check_output}{error_html}\
             {hint_html}</div>",
            label = escape(label),
            value = escape(value),
        );
    }
    let general_error = match error {
        Some(error)
            if !error_field.is_some_and(|field| {
                S3_FIELDS
                    .iter()
                    .any(|(name, ..)| *name == field && (compatible || *name != "endpoint"))
            }) =>
        {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>",
                escape(error.message())
            )
        }
        Some(_) => "<p class=\"error\" role=\"alert\" id=\"form-error\">The Source was not \
                    created: see the field marked below. Enter the Secret Access Key again.</p>"
            .to_owned(),
        None => String::new(),
    };
    let (storage, storage_label) = if compatible {
        ("s3_compatible", "S3-compatible storage")
    } else {
        ("s3", "Amazon S3")
    };
    let main = format!(
        "<h1>New Source: {storage_label}</h1><p class=\"step\">Step 2 of 2 · \
         <a href=\"/ui/sources/new\">change the storage type</a></p>{general_error}\
         <form method=\"post\" action=\"/ui/sources/new\" class=\"stack\" id=\"details\">{}\
         <input type=\"hidden\" name=\"storage\" value=\"{storage}\">\
         <fieldset><legend>Storage details</legend>{fields}</fieldset>\
         <p class=\"hint\">Deploying checks that these credentials may GetBucketLocation, \
         ListBucket and GetObject in the bucket.</p>\
         <button type=\"submit\" id=\"deploy-source\">Deploy Source</button></form>",
        csrf_field(csrf)
    );
    html_response(status, page("New Source", Some(csrf), &main))
}

/// `GET /ui/sources/new/subdomain?subdomain=…`: whether another Source
/// has that subdomain already, as a sentence (plain text) for the wizard's
/// script; the rest of the rules are the registry's, on Deploy Source.
pub(super) async fn subdomain_check(
    State(dashboard): State<Dashboard>,
    LoggedIn(_session): LoggedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let wanted = query_value(query.as_deref(), "subdomain");
    let wanted = wanted.trim();
    let sentence = if wanted.is_empty() {
        String::new()
    } else {
        match call(
            dashboard
                .admin
                .registry()
                .list_sources(timed(ListSourcesRequest {})),
        )
        .await
        {
            Ok(response) => match response
                .sources
                .iter()
                .find(|source| source.routing().subdomain.eq_ignore_ascii_case(wanted))
            {
                Some(owner) => format!("“{wanted}” is taken by the Source {}.", owner.name),
                None => format!("“{wanted}” is not used by any Source."),
            },
            Err(error) => format!("Could not check: {}", error.message()),
        }
    };
    let mut response = sentence.into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `POST /ui/sources/new`: creates the Source through the admin API's own
/// body parsing and the registry's validation, then deploys it and shows
/// the deploy's status.
pub(super) async fn create(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    body: Body,
) -> Response {
    let form = match session_form(&session, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let compatible = form.text("storage") == "s3_compatible";
    let mut fields = Map::new();
    for (name, ..) in S3_FIELDS {
        if *name == "endpoint" && !compatible {
            continue;
        }
        // The secret keeps its exact bytes; the rest are trimmed, as typed
        // values with stray spaces are a common paste mistake.
        let value = if *name == "secret_access_key" {
            form.get(name).unwrap_or_default()
        } else {
            form.text(name)
        };
        if !value.is_empty() {
            fields.insert((*name).to_owned(), Value::String(value.to_owned()));
        }
    }
    let body = Value::Object(fields).to_string();
    let created = async {
        let request = json::create_request(body.as_bytes())?;
        let response = call(dashboard.admin.registry().create_source(timed(request))).await?;
        required(response.source)
    }
    .await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.create",
        created.as_ref().map_or("", |source| source.id.as_str()),
        audit::body_field_names(body.as_bytes()),
        &created,
    )
    .await;
    let source = match created {
        Ok(source) => source,
        Err(error) => {
            let status = if error.status().is_client_error() {
                error.status()
            } else {
                StatusCode::BAD_GATEWAY
            };
            return details_form(status, &session.csrf, compatible, &form, Some(&error));
        }
    };
    start_deploy(&dashboard, &session, &source.id).await
}

/// Queues a deploy of Source `id` and sends the browser to its status page.
async fn start_deploy(dashboard: &Dashboard, session: &Session, id: &str) -> Response {
    let csrf = session.csrf.as_str();
    let deployed = call(
        dashboard
            .admin
            .registry()
            .deploy_source(timed(DeploySourceRequest {
                id_or_name: id.to_owned(),
            })),
    )
    .await;
    let source_id = deployed
        .as_ref()
        .ok()
        .and_then(|response| response.source.as_ref())
        .map_or(id, |source| source.id.as_str());
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.deploy",
        source_id,
        Vec::new(),
        &deployed,
    )
    .await;
    match deployed {
        Ok(_) => see_other(&format!("/ui/sources/{}/deploy", url_component(id))),
        Err(error) => error_page(&error, csrf),
    }
}

// === deploy status ===

/// `GET /ui/sources/{id}/deploy`: the deploy's status, refreshing itself
/// (with the script) until the deploy ends.
pub(super) async fn deploy_page(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
) -> Response {
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let link = format!("/ui/sources/{}", url_component(&source.id));
    let main = format!(
        "<h1>Deploy of {name}</h1>{status}\
         <p><a href=\"{link}/deploy\" id=\"refresh-status\">Refresh the status</a> · \
         <a href=\"{link}\">Open the Source</a> · <a href=\"/ui/sources\">All Sources</a></p>",
        name = escape(&source.name),
        status = status_section(&source, &session.csrf),
        link = escape(&link),
    );
    html_response(
        StatusCode::OK,
        page(
            &format!("Deploy of {}", source.name),
            Some(&session.csrf),
            &main,
        ),
    )
}

/// `GET /ui/sources/{id}/status`: the status section alone, for the
/// script to swap in.
pub(super) async fn status_fragment(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
) -> Response {
    match get_source(&dashboard, &id).await {
        Ok(source) => html_response(StatusCode::OK, status_section(&source, &session.csrf)),
        Err(error) => html_response(
            error.status(),
            format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                escape(error.message())
            ),
        ),
    }
}

/// `POST /ui/sources/{id}/deploy`: deploys again.
pub(super) async fn deploy(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    if let Err(refused) = session_form(&session, body).await {
        return refused;
    }
    start_deploy(&dashboard, &session, &id).await
}

// === a Source's page ===

/// `GET /ui/sources/{id}`: every setting, the status, and the actions.
pub(super) async fn show(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
) -> Response {
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    source_page(StatusCode::OK, &source, &session.csrf, "")
}

/// `POST /ui/sources/{id}/enabled` with `enabled=true|false`.
pub(super) async fn set_enabled(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let form = match session_form(&session, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let enabled = form.text("enabled") == "true";
    let body = serde_json::json!({ "enabled": enabled }).to_string();
    let updated = async {
        let request = json::update_request(id.clone(), body.as_bytes())?;
        call(dashboard.admin.registry().update_source(timed(request))).await
    }
    .await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.update",
        &id,
        vec!["enabled".to_owned()],
        &updated,
    )
    .await;
    match updated {
        Ok(_) => see_other(&format!("/ui/sources/{}", url_component(&id))),
        Err(error) => error_page(&error, &session.csrf),
    }
}

// === delete ===

/// `GET /ui/sources/{id}/delete`: asks before deleting.
pub(super) async fn delete_confirmation(
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
        "<h1>Delete {name}?</h1><p role=\"alert\">The Source stops serving at once and its \
         settings and credentials are deleted. The bucket is not touched.</p>\
         <form method=\"post\" action=\"/ui/sources/{id}/delete\" class=\"actions\">{}\
         <button type=\"submit\" class=\"danger\" id=\"confirm-delete\">Yes, delete {name}</button>\
         <a class=\"button\" href=\"/ui/sources/{id}\">Cancel</a></form>",
        csrf_field(&session.csrf),
        name = escape(&source.name),
    );
    html_response(
        StatusCode::OK,
        page(
            &format!("Delete {}", source.name),
            Some(&session.csrf),
            &main,
        ),
    )
}

/// `POST /ui/sources/{id}/delete`: deletes, then back to the list.
pub(super) async fn delete(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    if let Err(refused) = session_form(&session, body).await {
        return refused;
    }
    let deleted = call(
        dashboard
            .admin
            .registry()
            .delete_source(timed(DeleteSourceRequest {
                id_or_name: id.clone(),
            })),
    )
    .await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.delete",
        &id,
        Vec::new(),
        &deleted,
    )
    .await;
    match deleted {
        Ok(_) => see_other("/ui/sources"),
        Err(error) => error_page(&error, &session.csrf),
    }
}

// === purge ===

/// `POST /ui/sources/{id}/purge` with one of `path`, `prefix` or
/// `all=true`: without `confirm=yes` a page asking to confirm; with it, the
/// purge (the admin API's target rules), then the Source's page saying
/// what was purged.
pub(super) async fn purge(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let form = match session_form(&session, body).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let mut fields = Map::new();
    for name in ["path", "prefix"] {
        if let Some(value) = form.get(name) {
            fields.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
    if form.get("all").is_some() {
        fields.insert("all".to_owned(), Value::Bool(form.text("all") == "true"));
    }
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let target = match purge::target(Value::Object(fields).to_string().as_bytes()) {
        Ok(target) => target,
        Err(error) => {
            let notice = format!(
                "<p class=\"error\" role=\"alert\" id=\"purge-error\">Nothing purged: {}</p>",
                escape(error.message())
            );
            return source_page(error.status(), &source, &session.csrf, &notice);
        }
    };
    let what = match &target {
        Target::Path(path) => format!("the asset /{path}"),
        Target::Prefix(prefix) => format!("everything under {prefix}"),
        Target::All => "the whole Source".to_owned(),
    };
    if form.text("confirm") != "yes" {
        return purge_confirmation(&source, &session.csrf, &target, &what);
    }
    let mut request = tonic::Request::new(PurgeRequest {
        source_id: source.id.clone(),
        target: match &target {
            Target::Path(path) => Some(purge_request::Target::Path(path.clone())),
            Target::Prefix(prefix) => Some(purge_request::Target::Prefix(prefix.clone())),
            Target::All => None,
        },
    });
    request.set_timeout(PURGE_TIMEOUT);
    let purged = call(dashboard.admin.renderer().purge(request)).await;
    audit::record_change(
        &dashboard.admin,
        &session.credential,
        "source.purge",
        &source.id,
        Vec::new(),
        &purged,
    )
    .await;
    match purged {
        Ok(_) => {
            let notice = format!(
                "<p class=\"notice\" role=\"status\" id=\"purge-done\">Purged {} of {}: \
                 the next request renders it again.</p>",
                escape(&what),
                escape(&source.name)
            );
            source_page(StatusCode::OK, &source, &session.csrf, &notice)
        }
        Err(error) => error_page(&error, &session.csrf),
    }
}

/// The page asking to confirm a purge of `target`.
fn purge_confirmation(source: &Source, csrf: &str, target: &Target, what: &str) -> Response {
    let (field, value) = match target {
        Target::Path(path) => ("path", format!("/{path}")),
        Target::Prefix(prefix) => ("prefix", prefix.clone()),
        Target::All => ("all", "true".to_owned()),
    };
    let id = escape(&url_component(&source.id));
    let main = format!(
        "<h1>Purge {what} of {name}?</h1>\
         <p>The cached renders go; the next requests render again from the bucket.</p>\
         <form method=\"post\" action=\"/ui/sources/{id}/purge\" class=\"actions\">{}\
         <input type=\"hidden\" name=\"{field}\" value=\"{value}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\">\
         <button type=\"submit\" class=\"danger\" id=\"confirm-purge\">Yes, purge</button>\
         <a class=\"button\" href=\"/ui/sources/{id}\">Cancel</a></form>",
        csrf_field(csrf),
        what = escape(what),
        name = escape(&source.name),
        value = escape(&value),
    );
    html_response(StatusCode::OK, page("Confirm purge", Some(csrf), &main))
}

// === plumbing ===

/// The value of `name` in a query string; empty when absent.
fn query_value(query: Option<&str>, name: &str) -> String {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}
