//! The forms on a Source's page that change it — its editable settings,
//! its upload credentials and its signing-token rotation — and reading the
//! settings form back as the admin API's JSON ([`form_value`]).
//!
//! The handlers the forms post to are in [`super::settings`].

use std::fmt::Write as _;

use imgmesh_proto::registry::v1::Source;
use serde_json::Value;

use super::FormFields;
use super::html::{FieldNotes, csrf_field, escape, field_notes, url_component};
use crate::admin::error::AdminError;
use crate::admin::json;

/// How an editable setting is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    /// Comma- or space-separated, sent as an array of strings.
    List,
    Seconds,
    Checkbox,
    /// One of the cache TTL behaviours.
    TtlBehavior,
}

/// The editable settings: API field name, label, kind, hint.
pub(super) const SETTINGS: &[(&str, &str, Kind, &str)] = &[
    ("subdomain", "Subdomain", Kind::Text, ""),
    (
        "custom_domains",
        "Custom domains",
        Kind::List,
        "Separated by commas or spaces; each must point at the gateway.",
    ),
    (
        "default_params",
        "Default parameters",
        Kind::Text,
        "Applied unless the URL sets them, e.g. auto=format&q=75.",
    ),
    (
        "cache_ttl_behavior",
        "Cache TTL behaviour",
        Kind::TtlBehavior,
        "",
    ),
    (
        "cache_ttl_seconds",
        "Cache TTL (seconds)",
        Kind::Seconds,
        "",
    ),
    (
        "cache_ttl_error_seconds",
        "Error TTL (seconds)",
        Kind::Seconds,
        "",
    ),
    (
        "image_missing",
        "Image missing (path or URL)",
        Kind::Text,
        "Served instead of a missing asset.",
    ),
    (
        "image_missing_append_params",
        "Image missing: append the request's parameters",
        Kind::Checkbox,
        "",
    ),
    (
        "image_error",
        "Image error (path or URL)",
        Kind::Text,
        "Served instead of an asset that cannot be rendered.",
    ),
    (
        "image_error_append_params",
        "Image error: append the request's parameters",
        Kind::Checkbox,
        "",
    ),
    (
        "secure_url_enabled",
        "Secure URLs (require a signature)",
        Kind::Checkbox,
        "",
    ),
];

/// The cache TTL behaviours, as the API names them, with their labels.
const TTL_BEHAVIORS: &[(&str, &str)] = &[
    ("respect_origin", "Respect the origin's Cache-Control"),
    ("override_origin", "Override the origin with the TTL"),
    ("enforce_minimum", "Enforce the TTL as a minimum"),
];

/// The settings form of `source`, filled from `submitted` when re-shown
/// after `error` (shown next to the field it names).
pub(super) fn settings_form(
    source: &Source,
    csrf: &str,
    submitted: Option<&FormFields>,
    error: Option<&AdminError>,
) -> String {
    let current = json::source_json(source);
    let error_field = error.and_then(AdminError::field);
    let mut fields = String::new();
    for (name, label, kind, hint) in SETTINGS {
        let value = match submitted {
            Some(form) if *kind == Kind::Checkbox => form.get(name).is_some().to_string(),
            Some(form) => form.text(name).to_owned(),
            None => display_value(&current[*name]),
        };
        // A field's error names it, or one of its items (`custom_domains[1]`).
        let message = error
            .filter(|_| {
                error_field
                    .is_some_and(|field| field == *name || field.starts_with(&format!("{name}[")))
            })
            .map(AdminError::message);
        let FieldNotes {
            hint: hint_html,
            error: error_html,
            invalid,
            described_by: described,
        } = field_notes(name, hint, message);
        let label = escape(label);
        let input = match kind {
            Kind::Checkbox => {
                let checked = if value == "true" { " checked" } else { "" };
                format!(
                    "<div class=\"choice\"><input type=\"checkbox\" id=\"{name}\" name=\"{name}\" \
                     value=\"on\"{checked}{invalid}{described}><label for=\"{name}\">{label}</label></div>"
                )
            }
            Kind::TtlBehavior => {
                let mut options = String::new();
                for (behavior, text) in TTL_BEHAVIORS {
                    let selected = if value == *behavior { " selected" } else { "" };
                    let _ = write!(
                        options,
                        "<option value=\"{behavior}\"{selected}>{}</option>",
                        escape(text)
                    );
                }
                format!(
                    "<label for=\"{name}\">{label}</label><select id=\"{name}\" name=\"{name}\"\
                     {invalid}{described}>{options}</select>"
                )
            }
            Kind::Seconds => format!(
                "<label for=\"{name}\">{label}</label><input type=\"number\" min=\"0\" \
                 id=\"{name}\" name=\"{name}\" value=\"{}\"{invalid}{described}>",
                escape(&value)
            ),
            Kind::Text | Kind::List => format!(
                "<label for=\"{name}\">{label}</label><input type=\"text\" id=\"{name}\" \
                 name=\"{name}\" value=\"{}\" autocomplete=\"off\"{invalid}{described}>",
                escape(&value)
            ),
        };
        let _ = write!(
            fields,
            "<div class=\"field\">{input}{error_html}{hint_html}</div>"
        );
    }
    let general_error = match error {
        Some(error)
            if !error_field.is_some_and(|field| {
                SETTINGS
                    .iter()
                    .any(|(name, ..)| field == *name || field.starts_with(&format!("{name}[")))
            }) =>
        {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"settings-error\">{}</p>",
                escape(error.message())
            )
        }
        Some(_) => "<p class=\"error\" role=\"alert\" id=\"settings-error\">Nothing was \
                    saved: see the field marked below.</p>"
            .to_owned(),
        None => String::new(),
    };
    format!(
        "<h2 id=\"edit-settings\">Edit settings</h2>{general_error}\
         <form method=\"post\" action=\"/ui/sources/{}/settings\" class=\"stack\" \
         id=\"settings-form\">{}{fields}\
         <button type=\"submit\" id=\"save-settings\">Save settings</button></form>",
        escape(&url_component(&source.id)),
        csrf_field(csrf)
    )
}

/// A setting's current value as the form shows it.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The form's value of setting `name` as the API's JSON: numbers that do
/// not parse stay strings, so the API's own "must be an integer" applies.
pub(super) fn form_value(form: &FormFields, name: &str, kind: Kind) -> Value {
    let text = form.text(name);
    match kind {
        Kind::Checkbox => Value::Bool(form.get(name).is_some()),
        Kind::Seconds => text
            .parse::<u64>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
        Kind::List => Value::Array(
            text.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
        Kind::Text | Kind::TtlBehavior => Value::String(text.to_owned()),
    }
}

/// The upload credentials section of `source`: whether any are set, a
/// form setting them (both fields, as the API wants) and one removing them.
pub(super) fn upload_form(source: &Source, csrf: &str) -> String {
    let id = escape(&url_component(&source.id));
    let csrf_html = csrf_field(csrf);
    let (state, remove) = if source.upload_access_key().id_hint.is_empty() {
        (
            "No upload credentials are set: uploads to this Source are refused.".to_owned(),
            String::new(),
        )
    } else {
        (
            format!(
                "Uploads use the access key {}.",
                source.upload_access_key().id_hint
            ),
            format!(
                "<form method=\"post\" action=\"/ui/sources/{id}/upload-credentials\">\
                 {csrf_html}<input type=\"hidden\" name=\"remove\" value=\"yes\">\
                 <button type=\"submit\" class=\"danger\" id=\"remove-upload\">Remove upload \
                 credentials</button></form>"
            ),
        )
    };
    format!(
        "<h2>Upload credentials</h2><p id=\"upload-state\">{}</p>\
         <form method=\"post\" action=\"/ui/sources/{id}/upload-credentials\" class=\"stack\">\
         {csrf_html}<label for=\"upload_access_key_id\">Upload Access Key ID</label>\
         <input type=\"text\" id=\"upload_access_key_id\" name=\"upload_access_key_id\" \
         autocomplete=\"off\" required>\
         <label for=\"upload_secret_access_key\">Upload Secret Access Key</label>\
         <input type=\"password\" id=\"upload_secret_access_key\" \
         name=\"upload_secret_access_key\" autocomplete=\"new-password\" required>\
         <button type=\"submit\" id=\"save-upload\">Save upload credentials</button></form>\
         {remove}",
        escape(&state)
    )
}

/// The rotation form of `source`.
pub(super) fn rotation_form(source: &Source, csrf: &str) -> String {
    format!(
        "<h2>Signing token</h2>\
         <p>{} active token(s). Rotating adds a new token, shown once; the old ones keep \
         signing valid URLs for the grace period, then stop.</p>\
         <form method=\"post\" action=\"/ui/sources/{}/rotate-token\" class=\"inline-form\">{}\
         <label for=\"grace_period_seconds\">Grace period (seconds)</label>\
         <input type=\"number\" min=\"0\" id=\"grace_period_seconds\" \
         name=\"grace_period_seconds\" value=\"3600\" required>\
         <button type=\"submit\" id=\"rotate-token\">Rotate token</button></form>",
        source.active_secure_tokens,
        escape(&url_component(&source.id)),
        csrf_field(csrf)
    )
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::registry::v1::Routing;

    use super::*;

    /// Form values become the API's JSON: lists split, bad numbers kept as
    /// text for the API to refuse, unchecked boxes false.
    #[test]
    fn form_values_become_api_json() {
        let form = FormFields(vec![
            (
                "custom_domains".into(),
                "a.example.com, b.example.com c".into(),
            ),
            ("cache_ttl_seconds".into(), "600".into()),
            ("cache_ttl_error_seconds".into(), "ten".into()),
            ("secure_url_enabled".into(), "on".into()),
        ]);
        assert_eq!(
            form_value(&form, "custom_domains", Kind::List),
            serde_json::json!(["a.example.com", "b.example.com", "c"])
        );
        assert_eq!(form_value(&form, "cache_ttl_seconds", Kind::Seconds), 600);
        assert_eq!(
            form_value(&form, "cache_ttl_error_seconds", Kind::Seconds),
            "ten"
        );
        assert_eq!(
            form_value(&form, "secure_url_enabled", Kind::Checkbox),
            true
        );
        assert_eq!(
            form_value(&form, "image_error_append_params", Kind::Checkbox),
            false
        );
    }

    /// The form shows the Source's values and an error by its field (an
    /// item's error by its list).
    #[test]
    fn form_shows_values_and_errors() {
        let source = Source {
            id: "src_1".into(),
            default_params: "w=60&fm=png".into(),
            routing: Some(Routing {
                custom_domains: vec!["a.example.com".into()],
                ..Routing::default()
            }),
            secure_url_enabled: true,
            ..Source::default()
        };
        let html = settings_form(&source, "tok", None, None);
        assert!(html.contains("value=\"w=60&amp;fm=png\""));
        assert!(html.contains("value=\"a.example.com\""));
        assert!(html.contains(
            "id=\"secure_url_enabled\" name=\"secure_url_enabled\" value=\"on\" checked"
        ));
        let error = AdminError::invalid_field("custom_domains[0]", "must be a domain name");
        let html = settings_form(&source, "tok", None, Some(&error));
        assert!(
            html.contains(
                "id=\"custom_domains-error\">custom_domains[0]: must be a domain name</p>"
            )
        );
    }
}
