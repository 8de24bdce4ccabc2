//! The image sandbox: pick an asset of a Source, set rendering parameters
//! grouped as in imgix's Rendering API docs, and see the render with its
//! size, format, bytes and cache status, plus the URL (signed when the
//! Source requires it), an `<img>` tag and a srcset to copy. The URLs are
//! whole, `https://<subdomain>.<base domain>/<path>?…`, as the public
//! gateway serves them (and as the public gRPC API's `Describe` names
//! them); only a gateway without a known base domain shows the path and
//! query alone.
//!
//! The preview is served through the admin listener by
//! `/ui/sources/{id}/preview`, so the page's `img-src 'self'` holds. It
//! parses the parameters with the Source's default parameters exactly as
//! the public gateway does ([`crate::render_plan::parse_render_plan`]) and
//! asks the renderer with the same request ([`render_request`]), so the
//! render and its cache entry are the public URL's. The form is a plain
//! GET that works without the script; with it the result section is
//! fetched again (`?fragment=1`) as the controls change.

use std::fmt::Write as _;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use http::{HeaderValue, StatusCode, header};
use imgmesh_imgix_params::check_asset_key;
use imgmesh_imgix_params::signature::signature;
use imgmesh_proto::registry::v1::{ResolveHostRequest, SecureUrlToken, Source};
use imgmesh_proto::renderer::v1::{CacheStatus, RenderResponse};

use super::html::{escape, html_response, page, url_component};
use super::source_page::{error_page, get_source};
use super::{Dashboard, LoggedIn};
use crate::admin::registry_call::{call, timed};
use crate::image_handler::render_request;
use crate::render_plan::parse_render_plan;

/// How a control is drawn.
#[derive(Debug, Clone, Copy)]
enum Control {
    /// A number field with `min`, `max` and `step`.
    Number(&'static str, &'static str, &'static str),
    /// A text field with a placeholder.
    Text(&'static str),
    /// A choice among values (the first, empty, means "not set").
    Choice(&'static [&'static str]),
}

/// A control: the parameter, its label and how it is drawn.
type Field = (&'static str, &'static str, Control);

/// The parameter groups of the Rendering API docs: legend and controls.
const GROUPS: &[(&str, &[Field])] = &[
    (
        "Size and fit",
        &[
            ("w", "Width (w)", Control::Number("1", "8192", "1")),
            ("h", "Height (h)", Control::Number("1", "8192", "1")),
            (
                "fit",
                "Fit (fit)",
                Control::Choice(&[
                    "", "clip", "crop", "fill", "fillmax", "max", "min", "scale", "facearea",
                ]),
            ),
            (
                "dpr",
                "Device pixel ratio (dpr)",
                Control::Number("1", "5", "0.5"),
            ),
        ],
    ),
    (
        "Crop and focal point",
        &[
            (
                "crop",
                "Crop (crop)",
                Control::Text("focalpoint, top,left, entropy"),
            ),
            (
                "fp-x",
                "Focal point x (fp-x)",
                Control::Number("0", "1", "0.01"),
            ),
            (
                "fp-y",
                "Focal point y (fp-y)",
                Control::Number("0", "1", "0.01"),
            ),
        ],
    ),
    (
        "Format and quality",
        &[
            (
                "fm",
                "Format (fm)",
                Control::Choice(&["", "jpg", "pjpg", "png", "webp", "avif", "gif"]),
            ),
            ("q", "Quality (q)", Control::Number("0", "100", "1")),
            ("auto", "Automatic (auto)", Control::Text("format,compress")),
        ],
    ),
    (
        "Adjustments",
        &[
            (
                "bri",
                "Brightness (bri)",
                Control::Number("-100", "100", "1"),
            ),
            ("con", "Contrast (con)", Control::Number("-100", "100", "1")),
            (
                "sat",
                "Saturation (sat)",
                Control::Number("-100", "100", "1"),
            ),
            ("blur", "Blur (blur)", Control::Number("0", "2000", "1")),
            ("sharp", "Sharpen (sharp)", Control::Number("0", "100", "1")),
        ],
    ),
    (
        "Watermark and text",
        &[
            ("mark", "Watermark image (mark)", Control::Text("/logo.png")),
            ("txt", "Text (txt)", Control::Text("Hello")),
        ],
    ),
];

/// Device pixel ratios of the srcset.
const SRCSET_DPRS: &[&str] = &["1", "2", "3"];

/// What the sandbox was asked for: the asset and the parameters set, in
/// the groups' order, without empty ones.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    path: String,
    params: Vec<(&'static str, String)>,
}

// === impl Request ===

impl Request {
    /// Reads `path` and the known parameters from a query string; anything
    /// else is ignored.
    fn from_query(query: Option<&str>) -> Request {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_owned())
                .unwrap_or_default()
        };
        let params = GROUPS
            .iter()
            .flat_map(|(_, controls)| controls.iter())
            .filter_map(|&(name, _, _)| {
                let value = value(name);
                (!value.is_empty()).then_some((name, value))
            })
            .collect();
        Request {
            path: value("path").trim_start_matches('/').to_owned(),
            params,
        }
    }

    /// The value set for `name`.
    fn get(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(key, _)| *key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// The imgix query of the parameters (no `path`), with `extra` last.
    fn render_query(&self, extra: Option<(&str, &str)>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            if extra.is_none_or(|(extra, _)| extra != *name) {
                query.append_pair(name, value);
            }
        }
        if let Some((name, value)) = extra {
            query.append_pair(name, value);
        }
        query.finish()
    }

    /// The dashboard's query for this request (`path` first).
    fn dashboard_query(&self) -> String {
        let rest = self.render_query(None);
        let path = format!("path={}", url_component(&self.path));
        if rest.is_empty() {
            path
        } else {
            format!("{path}&{rest}")
        }
    }
}

/// `key` as a URL path: `/` and each segment percent-encoded but for the
/// unreserved characters.
fn url_path(key: &str) -> String {
    let mut path = String::from("/");
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            path.push(char::from(byte));
        } else {
            let _ = write!(path, "%{byte:02X}");
        }
    }
    path
}

/// The public URL's path and query for `path` with `query`, signed with
/// `token` when given (imgix's [`signature`], as the gateway checks it).
fn public_path(path: &str, query: &str, token: Option<&str>) -> String {
    let raw_path = url_path(path);
    let query = (!query.is_empty()).then_some(query);
    let Some(token) = token else {
        return query.map_or_else(|| raw_path.clone(), |query| format!("{raw_path}?{query}"));
    };
    let signature = signature(token, &raw_path, query);
    match query {
        Some(query) => format!("{raw_path}?{query}&s={signature}"),
        None => format!("{raw_path}?s={signature}"),
    }
}

/// The origin of `subdomain` on the public gateway under `base_domain`
/// (`https`, as the public gRPC API's `Describe` says); `None` without a
/// base domain.
fn public_origin(base_domain: &str, subdomain: &str) -> Option<String> {
    (!base_domain.is_empty() && !subdomain.is_empty())
        .then(|| format!("https://{subdomain}.{base_domain}"))
}

/// The token new URLs are signed with: one without an end, else the one
/// that lasts longest.
fn newest_token(tokens: &[SecureUrlToken]) -> Option<&str> {
    tokens
        .iter()
        .max_by_key(|token| {
            if token.expires_at == 0 {
                i64::MAX
            } else {
                token.expires_at
            }
        })
        .map(|token| token.token.as_str())
}

/// The Source's signing token, asked of the registry the way the gateway
/// asks for a host (by its subdomain); `None` when URLs are not signed.
async fn signing_token(dashboard: &Dashboard, source: &Source) -> Result<Option<String>, String> {
    if !source.secure_url_enabled {
        return Ok(None);
    }
    let resolved = call(
        dashboard
            .admin
            .registry()
            .resolve_host(timed(ResolveHostRequest {
                host: format!("{}.dashboard.invalid", source.routing().subdomain),
                custom_domain: false,
            })),
    )
    .await
    .map_err(|error| error.message().to_owned())?;
    Ok(newest_token(&resolved.secure_url_tokens).map(str::to_owned))
}

/// Renders `request` on `source` as the public gateway would (without
/// `Accept`, so `auto=format` keeps the asked format).
async fn render(
    dashboard: &Dashboard,
    source: &Source,
    request: &Request,
) -> Result<RenderResponse, String> {
    check_asset_key(&request.path)
        .map_err(|refused| format!("That is not an asset path: {refused}."))?;
    let parsed = parse_render_plan(&source.default_params, &request.render_query(None), None)
        .map_err(|error| format!("The parameters were refused: {error}."))?;
    let render = render_request(source, request.path.clone(), parsed.plan, "", 0);
    let mut renderer = dashboard.admin.renderer();
    call(renderer.render(timed(render)))
        .await
        .map_err(|error| error.message().to_owned())
}

/// The cache status the renderer reported, as the public gateway names it.
fn cache_status(rendered: &RenderResponse) -> &'static str {
    match rendered.cache_status() {
        CacheStatus::Hit => "hit",
        CacheStatus::Stale => "stale",
        CacheStatus::Miss | CacheStatus::Unspecified => "miss",
    }
}

/// `GET /ui/sources/{id}/preview?path=…&<params>`: the rendered bytes, with
/// `X-Imgmesh-Cache`, `X-Imgmesh-Width` and `X-Imgmesh-Height`.
pub(super) async fn preview(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let request = Request::from_query(query.as_deref());
    let rendered = match render(&dashboard, &source, &request).await {
        Ok(rendered) => rendered,
        Err(message) => return (StatusCode::BAD_GATEWAY, message).into_response(),
    };
    let status = cache_status(&rendered);
    let content_type = HeaderValue::from_str(&rendered.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let (width, height) = (rendered.width, rendered.height);
    let mut response = rendered.data.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert("x-imgmesh-cache", HeaderValue::from_static(status));
    headers.insert("x-imgmesh-width", HeaderValue::from(width));
    headers.insert("x-imgmesh-height", HeaderValue::from(height));
    response
}

/// `GET /ui/sources/{id}/sandbox?path=…&<params>`: the controls and, when
/// an asset is named, the render; with `fragment=1` the result section alone.
pub(super) async fn sandbox(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let source = match get_source(&dashboard, &id).await {
        Ok(source) => source,
        Err(error) => return error_page(&error, &session.csrf),
    };
    let fragment_only =
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
            .any(|(key, value)| key == "fragment" && value == "1");
    let request = Request::from_query(query.as_deref());
    let result = result_section(&dashboard, &source, &request).await;
    if fragment_only {
        return html_response(StatusCode::OK, result);
    }
    let main = format!(
        "<h1>Image sandbox: {name}</h1>\
         <p><a href=\"/ui/sources/{id}\">Back to the Source</a> · \
         <a href=\"/ui/sources/{id}/assets\" id=\"sandbox-browse\">Browse the Source's \
         objects</a> (each opens here)</p>{form}{result}",
        name = escape(&source.name),
        id = escape(&url_component(&source.id)),
        form = controls(&source, &request),
    );
    html_response(
        StatusCode::OK,
        page(
            &format!("Sandbox: {}", source.name),
            Some(&session.csrf),
            &main,
        ),
    )
}

/// The sandbox's form: the asset path and the grouped controls.
fn controls(source: &Source, request: &Request) -> String {
    let id = escape(&url_component(&source.id));
    let mut html = format!(
        "<form method=\"get\" action=\"/ui/sources/{id}/sandbox\" id=\"sandbox\" \
         class=\"stack\" data-fragment=\"/ui/sources/{id}/sandbox\">\
         <label for=\"sandbox-path\">Asset path</label>\
         <input type=\"text\" id=\"sandbox-path\" name=\"path\" required \
         placeholder=\"photos/cat.jpg\" value=\"{}\">",
        escape(&request.path)
    );
    for (legend, group) in GROUPS {
        let _ = write!(html, "<fieldset><legend>{}</legend>", escape(legend));
        for &(name, label, control) in *group {
            let field = format!("sandbox-{name}");
            let value = request.get(name);
            let _ = write!(html, "<label for=\"{field}\">{}</label>", escape(label));
            match control {
                Control::Number(min, max, step) => {
                    let _ = write!(
                        html,
                        "<input type=\"number\" id=\"{field}\" name=\"{name}\" min=\"{min}\" \
                         max=\"{max}\" step=\"{step}\" value=\"{}\">",
                        escape(value)
                    );
                }
                Control::Text(placeholder) => {
                    let _ = write!(
                        html,
                        "<input type=\"text\" id=\"{field}\" name=\"{name}\" \
                         placeholder=\"{}\" value=\"{}\">",
                        escape(placeholder),
                        escape(value)
                    );
                }
                Control::Choice(choices) => {
                    let _ = write!(html, "<select id=\"{field}\" name=\"{name}\">");
                    for choice in choices {
                        let selected = if *choice == value { " selected" } else { "" };
                        let shown = if choice.is_empty() {
                            "(not set)"
                        } else {
                            choice
                        };
                        let _ = write!(
                            html,
                            "<option value=\"{}\"{selected}>{}</option>",
                            escape(choice),
                            escape(shown)
                        );
                    }
                    html.push_str("</select>");
                }
            }
        }
        html.push_str("</fieldset>");
    }
    html.push_str("<button type=\"submit\" id=\"sandbox-render\">Render</button></form>");
    html
}

/// The result: the preview image with its size, format, bytes and cache
/// status, and the URL, `<img>` tag and srcset to copy.
async fn result_section(dashboard: &Dashboard, source: &Source, request: &Request) -> String {
    if request.path.is_empty() {
        return "<section id=\"sandbox-result\" aria-live=\"polite\"><p class=\"hint\">\
                Type an asset path to see it rendered.</p></section>"
            .to_owned();
    }
    let rendered = match render(dashboard, source, request).await {
        Ok(rendered) => rendered,
        Err(message) => {
            return format!(
                "<section id=\"sandbox-result\" aria-live=\"polite\">\
                 <p class=\"error\" role=\"alert\" id=\"sandbox-error\">{}</p></section>",
                escape(&message)
            );
        }
    };
    let token = match signing_token(dashboard, source).await {
        Ok(token) => token,
        Err(message) => {
            return format!(
                "<section id=\"sandbox-result\" aria-live=\"polite\">\
                 <p class=\"error\" role=\"alert\">The signing token could not be read: {}</p>\
                 </section>",
                escape(&message)
            );
        }
    };
    let token = token.as_deref();
    let origin = public_origin(dashboard.admin.base_domain(), &source.routing().subdomain);
    let public_url = |query: &str| {
        let path = public_path(&request.path, query, token);
        origin
            .as_ref()
            .map_or_else(|| path.clone(), |origin| format!("{origin}{path}"))
    };
    let url = public_url(&request.render_query(None));
    let srcset = SRCSET_DPRS
        .iter()
        .map(|dpr| {
            format!(
                "{} {dpr}x",
                public_url(&request.render_query(Some(("dpr", dpr))))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let img_tag = format!(
        "<img src=\"{}\" srcset=\"{}\" alt=\"\">",
        escape(&url),
        escape(&srcset)
    );
    let preview = format!(
        "/ui/sources/{}/preview?{}",
        url_component(&source.id),
        request.dashboard_query()
    );
    let where_note = match &origin {
        Some(origin) => format!(
            "<p class=\"hint\">URLs as the public gateway serves them, at the Source's \
             subdomain under the gateway's base domain (<code id=\"sandbox-origin\">{}</code>; \
             its custom domains serve the same paths).</p>",
            escape(origin)
        ),
        None => format!(
            "<p class=\"hint\">Paths on the Source's host (<code>{}</code> under the \
             gateway's base domain, or a custom domain).</p>",
            escape(&source.routing().subdomain)
        ),
    };
    let signed_note = if token.is_some() {
        "<p class=\"hint\">This Source requires signed URLs: these carry an <code>s</code> \
         signature made with its current signing token.</p>"
    } else {
        ""
    };
    format!(
        "<section id=\"sandbox-result\" aria-live=\"polite\"><h2>Result</h2>\
         <img id=\"sandbox-preview\" src=\"{preview}\" alt=\"Render of {alt}\">\
         <dl class=\"settings\" id=\"sandbox-details\">\
         <dt>Size</dt><dd id=\"sandbox-size\">{width} × {height}</dd>\
         <dt>Format</dt><dd id=\"sandbox-format\">{format}</dd>\
         <dt>Bytes</dt><dd id=\"sandbox-bytes\">{bytes}</dd>\
         <dt>Cache</dt><dd id=\"sandbox-cache\">{cache}</dd></dl>{signed_note}{where_note}\
         <label for=\"sandbox-url\">URL</label>\
         <input type=\"text\" id=\"sandbox-url\" readonly value=\"{url}\">\
         <label for=\"sandbox-img\"><code>&lt;img&gt;</code> tag</label>\
         <textarea id=\"sandbox-img\" readonly rows=\"3\">{img}</textarea>\
         <label for=\"sandbox-srcset\">srcset</label>\
         <textarea id=\"sandbox-srcset\" readonly rows=\"3\">{srcset}</textarea></section>",
        preview = escape(&preview),
        alt = escape(&request.path),
        width = rendered.width,
        height = rendered.height,
        format = escape(&rendered.content_type),
        bytes = rendered.data.len(),
        cache = cache_status(&rendered),
        url = escape(&url),
        img = escape(&img_tag),
        srcset = escape(&srcset),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the known parameters are read, empty ones dropped, in the
    /// groups' order; the path loses a leading slash.
    #[test]
    fn reads_known_parameters() {
        let request = Request::from_query(Some("fm=png&path=%2Fa%20b.jpg&evil=1&w=200&h=&q=80"));
        assert_eq!(request.path, "a b.jpg");
        assert_eq!(
            request.params,
            vec![
                ("w", "200".to_owned()),
                ("fm", "png".to_owned()),
                ("q", "80".to_owned())
            ]
        );
        assert_eq!(request.render_query(None), "w=200&fm=png&q=80");
        assert_eq!(request.render_query(Some(("w", "1"))), "fm=png&q=80&w=1");
        assert_eq!(request.dashboard_query(), "path=a+b.jpg&w=200&fm=png&q=80");
    }

    /// A whole URL's origin is the Source's subdomain under the base
    /// domain, over https; without a base domain there is none.
    #[test]
    fn public_origin_of_a_source() {
        assert_eq!(
            public_origin("img.example.com", "shop").as_deref(),
            Some("https://shop.img.example.com")
        );
        assert_eq!(public_origin("", "shop"), None);
    }

    /// The public path encodes what a path segment must not hold, and the
    /// signature is imgix's md5(token + path + "?" + query) — checked
    /// against md5 of the literal string computed independently.
    #[test]
    fn signs_like_imgix() {
        assert_eq!(url_path("a b/c?.jpg"), "/a%20b/c%3F.jpg");
        assert_eq!(public_path("x.jpg", "w=10", None), "/x.jpg?w=10");
        // The digest is computed here with the md5 crate on the literal
        // string imgix signs, not by the code under test.
        let expected = {
            use md5::Digest as _;
            hex::encode(md5::Md5::digest(b"tok/x.jpg?w=10"))
        };
        assert_eq!(
            public_path("x.jpg", "w=10", Some("tok")),
            format!("/x.jpg?w=10&s={expected}")
        );
        let bare = {
            use md5::Digest as _;
            hex::encode(md5::Md5::digest(b"tok/x.jpg"))
        };
        assert_eq!(
            public_path("x.jpg", "", Some("tok")),
            format!("/x.jpg?s={bare}")
        );
    }

    /// New URLs are signed with the token that has no end, else the one
    /// that lasts longest.
    #[test]
    fn picks_the_newest_token() {
        let token = |token: &str, expires_at| SecureUrlToken {
            token: token.to_owned(),
            expires_at,
        };
        assert_eq!(
            newest_token(&[token("old", 100), token("new", 0)]),
            Some("new")
        );
        assert_eq!(newest_token(&[token("a", 100), token("b", 200)]), Some("b"));
        assert_eq!(newest_token(&[]), None);
    }

    /// Every control has a label tied to it, and what was set is shown again
    /// (escaped).
    #[test]
    fn controls_are_labelled() {
        let source = Source {
            id: "src_1".to_owned(),
            ..Source::default()
        };
        let request = Request::from_query(Some("path=a.jpg&txt=%22hi%22&fit=crop"));
        let html = controls(&source, &request);
        for (_, group) in GROUPS {
            for (name, _, _) in *group {
                assert!(html.contains(&format!("<label for=\"sandbox-{name}\">")));
                assert!(html.contains(&format!("id=\"sandbox-{name}\" name=\"{name}\"")));
            }
        }
        assert!(html.contains("value=\"&quot;hi&quot;\""));
        assert!(html.contains("<option value=\"crop\" selected>"));
    }
}
