//! A Source's page — its settings, its deploy status, the forms that
//! change it and its actions — and what every page about one Source starts
//! from: the Source from the registry ([`get_source`]) or a page saying why
//! not ([`error_page`]).
//!
//! The pages that act on a Source ([`super::sources`], [`super::settings`],
//! [`super::assets`], [`super::sandbox`]) build on this module; it builds on
//! the forms of [`super::settings_forms`] and on nothing above it.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use axum::response::Response;
use http::StatusCode;
use imgmesh_proto::registry::v1::{GetSourceRequest, Source, SourceStatus};

use super::html::{csrf_field, escape, html_response, page, url_component};
use super::{Dashboard, FormFields, message_page, settings_forms};
use crate::admin::error::AdminError;
use crate::admin::json;
use crate::admin::registry_call::{call, required, timed};

/// Source `id` (or name) from the registry.
pub(super) async fn get_source(dashboard: &Dashboard, id: &str) -> Result<Source, AdminError> {
    let response = call(
        dashboard
            .admin
            .registry()
            .get_source(timed(GetSourceRequest {
                id_or_name: id.to_owned(),
            })),
    )
    .await?;
    required(response.source)
}

/// A page saying what went wrong, with the error's status.
pub(super) fn error_page(error: &AdminError, csrf: &str) -> Response {
    let title = if error.status() == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something went wrong"
    };
    message_page(error.status(), title, error.message(), Some(csrf))
}

/// A Source's page with `notice` (HTML) above it.
pub(super) fn source_page(
    status: StatusCode,
    source: &Source,
    csrf: &str,
    notice: &str,
) -> Response {
    source_page_with(status, source, csrf, notice, None)
}

/// A Source's page whose settings form is re-shown with what was
/// `submitted` and the error it got, when given.
pub(super) fn source_page_with(
    status: StatusCode,
    source: &Source,
    csrf: &str,
    notice: &str,
    submitted: Option<(&FormFields, &AdminError)>,
) -> Response {
    let edit = settings_forms::settings_form(
        source,
        csrf,
        submitted.map(|(form, _)| form),
        submitted.map(|(_, error)| error),
    );
    let rotation = settings_forms::rotation_form(source, csrf);
    let upload = settings_forms::upload_form(source, csrf);
    let id = escape(&url_component(&source.id));
    let settings = settings_list(source);
    let (toggle_value, toggle_label) = if source.enabled {
        ("false", "Disable Source")
    } else {
        ("true", "Enable Source")
    };
    let csrf_html = csrf_field(csrf);
    let main = format!(
        "<h1>{name}</h1>{notice}{status}\
         <p><a href=\"/ui/sources/{id}/sandbox\" id=\"open-sandbox\">Image sandbox</a> · \
         <a href=\"/ui/sources/{id}/assets\" id=\"open-assets\">Assets</a> · \
         <a href=\"/ui/overview?source={id}\" id=\"open-traffic\">Traffic, last hour</a></p>\
         <h2>Settings</h2>{settings}{edit}{rotation}{upload}\
         <h2>Actions</h2>\
         <div class=\"actions\">\
         <form method=\"post\" action=\"/ui/sources/{id}/enabled\">{csrf_html}\
         <input type=\"hidden\" name=\"enabled\" value=\"{toggle_value}\">\
         <button type=\"submit\" id=\"toggle-enabled\">{toggle_label}</button></form>\
         <form method=\"post\" action=\"/ui/sources/{id}/deploy\">{csrf_html}\
         <button type=\"submit\">Deploy again</button></form>\
         <a class=\"button danger\" href=\"/ui/sources/{id}/delete\" id=\"delete-source\">\
         Delete Source…</a></div>\
         <h2>Purge cached images</h2>\
         <p class=\"hint\">Purging drops cached renders; the next request renders again \
         from the bucket.</p>\
         <form method=\"post\" action=\"/ui/sources/{id}/purge\" class=\"inline-form\">\
         {csrf_html}<label for=\"purge-path\">Asset URL or path</label>\
         <input type=\"text\" id=\"purge-path\" name=\"path\" required \
         placeholder=\"/photos/cat.jpg\">\
         <button type=\"submit\" id=\"purge-asset\">Purge asset…</button></form>\
         <form method=\"post\" action=\"/ui/sources/{id}/purge\" class=\"inline-form\">\
         {csrf_html}<label for=\"purge-prefix\">Path prefix</label>\
         <input type=\"text\" id=\"purge-prefix\" name=\"prefix\" required \
         placeholder=\"photos/\">\
         <button type=\"submit\" id=\"purge-prefix-button\">Purge prefix…</button></form>\
         <form method=\"post\" action=\"/ui/sources/{id}/purge\" class=\"inline-form\">\
         {csrf_html}<input type=\"hidden\" name=\"all\" value=\"true\">\
         <button type=\"submit\" id=\"purge-all\">Purge the whole Source…</button></form>",
        name = escape(&source.name),
        status = status_section(source, csrf),
    );
    html_response(status, page(&source.name, Some(csrf), &main))
}

/// Every setting of `source`, labelled; secrets are never in a [`Source`].
fn settings_list(source: &Source) -> String {
    let json = json::source_json(source);
    let yes_no = |flag: bool| if flag { "Yes" } else { "No" }.to_owned();
    let or_none = |text: &str| {
        if text.is_empty() {
            "—".to_owned()
        } else {
            text.to_owned()
        }
    };
    let rows: Vec<(&str, String)> = vec![
        ("ID", source.id.clone()),
        ("Subdomain", source.routing().subdomain.clone()),
        (
            "Custom domains",
            or_none(&source.routing().custom_domains.join(", ")),
        ),
        ("Storage", storage_name(source).to_owned()),
        ("Bucket", source.location().bucket.clone()),
        ("Region", or_none(&source.location().region)),
        ("Endpoint", or_none(&source.location().endpoint)),
        ("Path prefix", or_none(&source.location().path_prefix)),
        ("Access Key ID", or_none(&source.access_key().id_hint)),
        (
            "Upload Access Key ID",
            or_none(&source.upload_access_key().id_hint),
        ),
        ("Default parameters", or_none(&source.default_params)),
        (
            "Cache TTL behaviour",
            json["cache_ttl_behavior"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "Cache TTL (s)",
            source.cache_policy().ttl_seconds.to_string(),
        ),
        (
            "Error TTL (s)",
            source.cache_policy().error_ttl_seconds.to_string(),
        ),
        (
            "Image missing",
            or_none(&source.fallback_images().missing().path),
        ),
        (
            "Image missing: append parameters",
            yes_no(source.fallback_images().missing().append_params),
        ),
        (
            "Image error",
            or_none(&source.fallback_images().error().path),
        ),
        (
            "Image error: append parameters",
            yes_no(source.fallback_images().error().append_params),
        ),
        ("Secure URLs", yes_no(source.secure_url_enabled)),
        (
            "Active signing tokens",
            source.active_secure_tokens.to_string(),
        ),
        ("Enabled", yes_no(source.enabled)),
        ("Last deploy", last_deploy(source)),
        ("Config version", source.config_version.to_string()),
    ];
    let mut html = String::from("<dl class=\"settings\" id=\"settings\">");
    for (label, value) in rows {
        let _ = write!(
            html,
            "<dt>{}</dt><dd>{}</dd>",
            escape(label),
            escape(&value)
        );
    }
    html.push_str("</dl>");
    html
}

/// The status section: the state, and for a failed deploy the reason, the
/// missing permission with the IAM policy that grants it, and a retry. While
/// the deploy runs, `data-poll` tells the script where to fetch the next one.
pub(super) fn status_section(source: &Source, csrf: &str) -> String {
    let status = source.deploy_state().status();
    let name = status_name(status);
    let poll = if status == SourceStatus::Deploying {
        format!(
            " data-poll=\"/ui/sources/{}/status\"",
            escape(&url_component(&source.id))
        )
    } else {
        String::new()
    };
    let mut section = format!(
        "<section id=\"deploy-status\" aria-live=\"polite\" data-status=\"{name}\"{poll}>\
         <h2>Status: <span class=\"status status-{name}\" id=\"status-word\">{name}</span></h2>"
    );
    match status {
        SourceStatus::Deployed => {
            section.push_str("<p>The Source is deployed and serves images.</p>");
            if !source.deploy_state().message.is_empty() {
                let _ = write!(
                    section,
                    "<p class=\"hint\">Note: {}</p>",
                    escape(&source.deploy_state().message)
                );
            }
        }
        SourceStatus::Failed => {
            let _ = write!(
                section,
                "<p class=\"error\" id=\"failure-reason\">The deploy failed: {}</p>",
                escape(&source.deploy_state().message)
            );
            if let Some(permission) = missing_permission(&source.deploy_state().message) {
                let _ = write!(
                    section,
                    "<p id=\"missing-permission\">The read credentials lack the \
                     <strong>{permission}</strong> permission. Grant them this IAM policy \
                     (the bucket is filled in), then deploy again:</p>\
                     <pre id=\"iam-policy\" tabindex=\"0\" aria-label=\"IAM policy\">{}</pre>",
                    escape(&iam_policy(
                        &source.location().bucket,
                        &source.location().path_prefix
                    )),
                    permission = escape(permission),
                );
            }
            let _ = write!(
                section,
                "<form method=\"post\" action=\"/ui/sources/{}/deploy\">{}\
                 <button type=\"submit\">Deploy again</button></form>",
                escape(&url_component(&source.id)),
                csrf_field(csrf)
            );
        }
        SourceStatus::Deploying => section.push_str(
            "<p>Checking the bucket with the Source's credentials… This page updates \
             itself; without scripts, use the refresh link.</p>",
        ),
        SourceStatus::Pending | SourceStatus::Unspecified => {
            let _ = write!(
                section,
                "<p>Not deployed since its last change; it does not serve until it is.</p>\
                 <form method=\"post\" action=\"/ui/sources/{}/deploy\">{}\
                 <button type=\"submit\">Deploy Source</button></form>",
                escape(&url_component(&source.id)),
                csrf_field(csrf)
            );
        }
    }
    section.push_str("</section>");
    section
}

/// The permission a deploy failure names (`missing s3:GetObject` →
/// `s3:GetObject`), as the registry's deploy checks write it.
fn missing_permission(message: &str) -> Option<&str> {
    let permission = message.strip_prefix("missing ")?;
    matches!(
        permission,
        "s3:GetBucketLocation" | "s3:ListBucket" | "s3:GetObject"
    )
    .then_some(permission)
}

/// The IAM policy the read credentials need on `bucket` (objects under
/// `prefix` when set).
fn iam_policy(bucket: &str, prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let objects = if prefix.is_empty() {
        format!("arn:aws:s3:::{bucket}/*")
    } else {
        format!("arn:aws:s3:::{bucket}/{prefix}/*")
    };
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [objects],
            },
        ],
    });
    serde_json::to_string_pretty(&policy).unwrap_or_default()
}

/// The word for `status` the pages show and the stylesheet colours.
pub(super) fn status_name(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Unspecified | SourceStatus::Pending => "pending",
        SourceStatus::Deploying => "deploying",
        SourceStatus::Deployed => "deployed",
        SourceStatus::Failed => "failed",
    }
}

/// "Amazon S3" or "S3-compatible" (a Source with its own endpoint).
pub(super) fn storage_name(source: &Source) -> &'static str {
    if source.location().endpoint.is_empty() {
        "Amazon S3"
    } else {
        "S3-compatible"
    }
}

/// When the Source last deployed, as an HTTP date, or "never".
pub(super) fn last_deploy(source: &Source) -> String {
    u64::try_from(source.deploy_state().last_deployed_at)
        .ok()
        .filter(|seconds| *seconds > 0)
        .map_or_else(
            || "never".to_owned(),
            |seconds| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds)),
        )
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::registry::v1::{DeployState, Location};
    use serde_json::Value;

    use super::*;

    /// The permission is read only from the registry's own failure wording.
    #[test]
    fn missing_permission_from_the_deploy_message() {
        assert_eq!(
            missing_permission("missing s3:GetObject"),
            Some("s3:GetObject")
        );
        assert_eq!(
            missing_permission("missing s3:ListBucket"),
            Some("s3:ListBucket")
        );
        assert_eq!(missing_permission("the credentials were rejected"), None);
        assert_eq!(missing_permission("missing s3:PutObject"), None);
    }

    /// The policy names the bucket for the bucket-level actions and the
    /// objects under the prefix for GetObject.
    #[test]
    fn policy_has_the_bucket_filled_in() {
        let policy: Value = serde_json::from_str(&iam_policy("photos", "/shop/")).unwrap();
        assert_eq!(policy["Statement"][0]["Resource"][0], "arn:aws:s3:::photos");
        assert_eq!(
            policy["Statement"][1]["Resource"][0],
            "arn:aws:s3:::photos/shop/*"
        );
        assert_eq!(policy["Statement"][1]["Action"][0], "s3:GetObject");
    }

    /// A failed Source's status says why, escaped, and offers a retry; a
    /// deploying one asks to be polled; a deployed one does not.
    #[test]
    fn status_section_by_state() {
        let mut source = Source {
            id: "src_1".into(),
            location: Some(Location {
                bucket: "b".into(),
                ..Location::default()
            }),
            deploy_state: Some(DeployState {
                status: SourceStatus::Failed.into(),
                message: "missing s3:GetObject".into(),
                last_deployed_at: 0,
            }),
            ..Source::default()
        };
        let html = status_section(&source, "tok");
        assert!(html.contains("data-status=\"failed\""));
        assert!(html.contains("<strong>s3:GetObject</strong>"));
        assert!(html.contains("arn:aws:s3:::b/*"));
        assert!(!html.contains("data-poll"));
        source.deploy_state.get_or_insert_default().status = SourceStatus::Deploying.into();
        assert!(status_section(&source, "tok").contains("data-poll=\"/ui/sources/src_1/status\""));
        source.deploy_state.get_or_insert_default().status = SourceStatus::Deployed.into();
        source.deploy_state.get_or_insert_default().message = "<b>".into();
        let html = status_section(&source, "tok");
        assert!(!html.contains("data-poll"));
        assert!(html.contains("&lt;b&gt;"));
    }
}
