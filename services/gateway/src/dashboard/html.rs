//! HTML building blocks of the dashboard: escaping, the page frame and the
//! security headers every dashboard response carries.
//!
//! Everything that did not come from this file's own literals goes through
//! [`escape`] before it is written into a page, attribute values included.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The Content-Security-Policy of every dashboard response: only this
/// origin's own styles and scripts (no inline ones), no framing, forms post
/// only here.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'; object-src 'none'";

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content
/// and in quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` percent-encoded for a URL path segment or query value.
pub(crate) fn url_component(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// What surrounds a form field: its hint, its error and the attributes that
/// tie both to the input, for screen readers.
#[derive(Debug)]
pub(crate) struct FieldNotes {
    /// The hint paragraph, or nothing.
    pub(crate) hint: String,
    /// The error paragraph, or nothing.
    pub(crate) error: String,
    /// ` aria-invalid="true"` when the field has an error.
    pub(crate) invalid: &'static str,
    /// ` aria-describedby="…"` naming the hint and the error, or nothing.
    pub(crate) described_by: String,
}

/// The notes of field `name`: `hint` (none when empty) and `error`, the
/// refused message when the refused field is this one.
pub(crate) fn field_notes(name: &str, hint: &str, error: Option<&str>) -> FieldNotes {
    let mut described = Vec::new();
    let hint = if hint.is_empty() {
        String::new()
    } else {
        described.push(format!("{name}-hint"));
        format!("<p class=\"hint\" id=\"{name}-hint\">{}</p>", escape(hint))
    };
    let (error, invalid) = match error {
        Some(message) => {
            described.push(format!("{name}-error"));
            (
                format!(
                    "<p class=\"error field-error\" id=\"{name}-error\">{}</p>",
                    escape(message)
                ),
                " aria-invalid=\"true\"",
            )
        }
        None => (String::new(), ""),
    };
    let described_by = if described.is_empty() {
        String::new()
    } else {
        format!(" aria-describedby=\"{}\"", described.join(" "))
    };
    FieldNotes {
        hint,
        error,
        invalid,
        described_by,
    }
}

/// A whole page: `title` (escaped here) and `main` (already HTML). With a
/// session's `csrf`, the header has the navigation and the logout button.
pub(crate) fn page(title: &str, csrf: Option<&str>, main: &str) -> String {
    let nav = csrf.map_or_else(String::new, |csrf| {
        format!(
            "<nav aria-label=\"Main\"><a href=\"/ui/sources\">Sources</a>\
             <a href=\"/ui/overview\">Overview</a>\
             <form method=\"post\" action=\"/ui/logout\" class=\"inline\">{}\
             <button type=\"submit\">Log out</button></form></nav>",
            csrf_field(csrf)
        )
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · imgmesh</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/dashboard.css\">\
         <script src=\"/ui/assets/dashboard.js\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/ui/sources\">imgmesh</a>{nav}</header>\
         <main id=\"main\">{main}</main></body></html>\n",
        escape(title)
    )
}

/// The hidden field carrying a form's CSRF token.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// An HTML response with `status`.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A `303 See Other` to `location` (a path of ours).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Adds the headers every dashboard response carries: the CSP, no MIME
/// sniffing, no framing, referrers only to this origin, and no caching of
/// pages (assets set their own `Cache-Control`).
pub(crate) fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character that could end an element or a quoted attribute is escaped.
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain-name_1"), "plain-name_1");
    }

    /// The page frame escapes its title and links only the embedded assets.
    #[test]
    fn page_frame() {
        let html = page("<b>", None, "<p>x</p>");
        assert!(html.contains("<title>&lt;b&gt; · imgmesh</title>"));
        assert!(html.contains("href=\"/ui/assets/dashboard.css\""));
        assert!(!html.contains("Log out"));
        let html = page("t", Some("tok\""), "");
        assert!(html.contains("name=\"csrf\" value=\"tok&quot;\""));
    }
}
