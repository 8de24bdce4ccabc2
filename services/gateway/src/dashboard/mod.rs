//! The web dashboard: server-rendered pages under `/ui` on the admin
//! listener, over the same registry and renderer calls as the admin API.
//!
//! A person logs in at `/ui/login` with the admin token and gets a session
//! (see [`session`]); every other page needs one and sends the browser to
//! the login page without it. Every form carries the session's CSRF token
//! and every POST without it is refused with 403. Every response carries a
//! strict Content-Security-Policy (see [`html`]); the stylesheet and the
//! small script (it polls a running deploy's status and checks a new
//! subdomain as it is typed) are compiled into the binary and served from
//! `/ui/assets/`; nothing is loaded from anywhere else. Pages work without
//! the script. The pages themselves are in [`sources`], [`source_page`],
//! [`settings`], [`sandbox`], [`assets`] and [`overview`].

mod assets;
mod html;
mod overview;
mod sandbox;
mod session;
mod settings;
mod settings_forms;
mod source_page;
mod sources;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::handler::Handler as _;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tracing::Instrument as _;

use self::html::{csrf_field, escape, html_response, page, see_other};
use self::session::{LOGIN_COOKIE, LOGIN_TTL, SESSION_COOKIE, SESSION_TTL, Session, SessionStore};
use crate::admin::access::AdminApi;

/// Largest form body the dashboard reads.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// How long a form body may take to arrive in full.
const FORM_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The stylesheet, compiled in.
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");
/// The progressive-enhancement script, compiled in.
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");

/// The dashboard's state: the admin API it acts through and the live
/// sessions. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Dashboard {
    admin: AdminApi,
    sessions: Arc<SessionStore>,
    /// The Overview's samples of the gateway's counters.
    samples: overview::Samples,
}

/// The dashboard's routes, all under `/ui`, for the admin listener.
pub(crate) fn dashboard_router(admin: AdminApi) -> Router {
    let dashboard = Dashboard {
        admin,
        sessions: Arc::default(),
        samples: overview::start_sampling(),
    };
    Router::new()
        .route("/ui", get(|| async { see_other("/ui/sources") }))
        .route("/ui/", get(|| async { see_other("/ui/sources") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/dashboard.css", get(stylesheet))
        .route("/ui/assets/dashboard.js", get(script))
        .route("/ui/overview", get(overview::overview))
        .route("/ui/sources", get(sources::list))
        .route(
            "/ui/sources/new",
            get(sources::storage_step).post(sources::create),
        )
        .route("/ui/sources/new/s3", get(sources::details_step))
        .route("/ui/sources/new/subdomain", get(sources::subdomain_check))
        .route("/ui/sources/{id}", get(sources::show))
        .route("/ui/sources/{id}/status", get(sources::status_fragment))
        .route(
            "/ui/sources/{id}/deploy",
            get(sources::deploy_page).post(sources::deploy),
        )
        .route("/ui/sources/{id}/enabled", post(sources::set_enabled))
        .route(
            "/ui/sources/{id}/delete",
            get(sources::delete_confirmation).post(sources::delete),
        )
        .route("/ui/sources/{id}/purge", post(sources::purge))
        .route(
            "/ui/sources/{id}/assets",
            // The registry caps the file's size as it streams in.
            get(assets::assets).post(assets::upload_form.layer(DefaultBodyLimit::disable())),
        )
        .route("/ui/sources/{id}/upload", post(assets::upload))
        .route("/ui/sources/{id}/sandbox", get(sandbox::sandbox))
        .route("/ui/sources/{id}/preview", get(sandbox::preview))
        .route("/ui/sources/{id}/settings", post(settings::save))
        .route("/ui/sources/{id}/rotate-token", post(settings::rotate))
        .route(
            "/ui/sources/{id}/upload-credentials",
            post(settings::save_upload),
        )
        // Anything else under /ui is a page that does not exist, not the
        // admin API's JSON 401.
        .route("/ui/{*rest}", any(not_found))
        .layer(axum::middleware::from_fn(traced))
        .with_state(dashboard)
}

/// Runs a dashboard request in its `http.server` span (continuing the
/// caller's trace, like the admin API) and adds the security headers every
/// dashboard response carries.
async fn traced(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{method} dashboard"),
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    imgmesh_telemetry::continue_trace(&span, request.headers());
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    html::add_security_headers(response.headers_mut());
    response
}

/// 404 for a path under `/ui` that is no page.
async fn not_found() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such dashboard page.",
        None,
    )
}

/// A request with a live session; without one the page answers with a
/// redirect to the login page.
#[derive(Debug)]
struct LoggedIn(Session);

impl FromRequestParts<Dashboard> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        dashboard: &Dashboard,
    ) -> Result<LoggedIn, Response> {
        session::cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|id| dashboard.sessions.get(id, Instant::now()))
            .map(LoggedIn)
            .ok_or_else(|| see_other("/ui/login"))
    }
}

/// The fields of a posted form, in order.
#[derive(Debug, Default)]
struct FormFields(Vec<(String, String)>);

// === impl FormFields ===

impl FormFields {
    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, trimmed; empty when absent.
    fn text(&self, name: &str) -> &str {
        self.get(name).map_or("", str::trim)
    }
}

/// Reads an `application/x-www-form-urlencoded` body; one that is too
/// large, cut short or still arriving after [`FORM_READ_TIMEOUT`] is a 400.
async fn read_form(body: Body) -> Result<FormFields, Response> {
    let read = tokio::time::timeout(
        FORM_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_FORM_BYTES),
    );
    let Ok(Ok(bytes)) = read.await else {
        return Err(message_page(
            StatusCode::BAD_REQUEST,
            "Form not read",
            "The form could not be read (too large, cut short or too slow).",
            None,
        ));
    };
    Ok(FormFields(
        url::form_urlencoded::parse(&bytes)
            .into_owned()
            .collect::<Vec<_>>(),
    ))
}

/// Reads a form posted in `session` and refuses it with 403 unless it
/// carries the session's CSRF token.
async fn session_form(session: &Session, body: Body) -> Result<FormFields, Response> {
    let form = read_form(body).await?;
    if session::tokens_match(&session.csrf, form.get("csrf")) {
        Ok(form)
    } else {
        Err(csrf_refused())
    }
}

/// 403 for a form without the right CSRF token.
fn csrf_refused() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form did not come from this dashboard session (its CSRF token is missing \
         or wrong). Go back, reload the page and try again.",
        None,
    )
}

/// A page saying `message` with `status`, and the navigation when in a
/// session (`csrf`).
fn message_page(status: StatusCode, title: &str, message: &str, csrf: Option<&str>) -> Response {
    let main = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/ui/sources\">Back to Sources</a></p>",
        escape(title),
        escape(message)
    );
    html_response(status, page(title, csrf, &main))
}

// === login ===

/// `GET /ui/login`: the login form (or straight to the Sources when
/// already logged in).
async fn login_page(State(dashboard): State<Dashboard>, headers: HeaderMap) -> Response {
    let logged_in = session::cookie(&headers, SESSION_COOKIE)
        .and_then(|id| dashboard.sessions.get(id, Instant::now()))
        .is_some();
    if logged_in {
        return see_other("/ui/sources");
    }
    login_form(StatusCode::OK, None, &headers)
}

/// The login form with a fresh login CSRF value (as cookie and hidden
/// field), and `problem` above it when the last attempt failed.
fn login_form(status: StatusCode, problem: Option<&str>, headers: &HeaderMap) -> Response {
    let login_token = session::random_token();
    let problem = problem.map_or_else(String::new, |problem| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
            escape(problem)
        )
    });
    let main = format!(
        "<h1>Log in to imgmesh</h1>{problem}\
         <form method=\"post\" action=\"/ui/login\" class=\"stack\">{}\
         <label for=\"token\">Admin token</label>\
         <input type=\"password\" id=\"token\" name=\"token\" required autofocus \
         autocomplete=\"current-password\" aria-describedby=\"token-hint\">\
         <p class=\"hint\" id=\"token-hint\">The gateway's admin token \
         (<code>--admin-token-file</code>), the same one the admin API and the CLI use.</p>\
         <button type=\"submit\">Log in</button></form>",
        csrf_field(&login_token)
    );
    let mut response = html_response(status, page("Log in", None, &main));
    set_cookie(
        &mut response,
        LOGIN_COOKIE,
        &login_token,
        LOGIN_TTL,
        session::came_over_https(headers),
    );
    response
}

/// `POST /ui/login`: checks the admin token (a wrong one counts toward the
/// admin API's per-address limit) and starts a session.
async fn login(
    State(dashboard): State<Dashboard>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match read_form(body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !session::tokens_match(expected, form.get("csrf")) {
        return csrf_refused();
    }
    // Requests without a peer address (only in-process tests) share one.
    let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(info)| {
        info.0.ip()
    });
    let presented = form.get("token").unwrap_or_default().trim();
    match dashboard.admin.check_credential(client, presented).await {
        Ok(full_admin) => {
            let session = dashboard.sessions.create(Instant::now(), &full_admin.name);
            let secure = session::came_over_https(&headers);
            let mut response = see_other("/ui/sources");
            set_cookie(
                &mut response,
                SESSION_COOKIE,
                &session.id,
                SESSION_TTL,
                secure,
            );
            set_cookie(&mut response, LOGIN_COOKIE, "", Duration::ZERO, secure);
            response
        }
        Err(error) if error.status() == StatusCode::TOO_MANY_REQUESTS => login_form(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many wrong admin tokens from this address: {}.",
                error.message()
            )),
            &headers,
        ),
        Err(error) if error.status() == StatusCode::FORBIDDEN => login_form(
            StatusCode::FORBIDDEN,
            Some(&format!("{}.", error.message())),
            &headers,
        ),
        Err(_) => login_form(
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token."),
            &headers,
        ),
    }
}

/// `POST /ui/logout`: ends the session.
async fn logout(
    State(dashboard): State<Dashboard>,
    LoggedIn(session): LoggedIn,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = session_form(&session, body).await {
        return refused;
    }
    dashboard.sessions.remove(&session.id);
    let mut response = see_other("/ui/login");
    set_cookie(
        &mut response,
        SESSION_COOKIE,
        "",
        Duration::ZERO,
        session::came_over_https(&headers),
    );
    response
}

/// Appends a `Set-Cookie` for `name` to `response`.
fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: Duration, secure: bool) {
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(name, value, max_age, secure)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

// === assets ===

/// `GET /ui/assets/dashboard.css`.
async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

/// `GET /ui/assets/dashboard.js`.
async fn script() -> Response {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::Request;
    use secrecy::SecretString;
    use tower::ServiceExt as _;

    use super::*;

    const TOKEN: &str = "dashboard-test-admin-token";

    fn router() -> Router {
        let channel = imgmesh_runtime::grpc_channel("http://127.0.0.1:1").unwrap();
        crate::admin_router(AdminApi::new(
            &SecretString::from(TOKEN),
            channel.clone(),
            channel,
        ))
    }

    async fn send(router: &Router, request: Request<Body>) -> Response {
        router.clone().oneshot(request).await.unwrap()
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The value of `name="csrf" value="…"` in a page.
    fn csrf_of(html: &str) -> String {
        let start = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        html[start..start + 64].to_owned()
    }

    /// The `name=value` part of the response's Set-Cookie for `name`.
    fn cookie_of(response: &Response, name: &str) -> Option<String> {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap())
            .find(|value| value.starts_with(&format!("{name}=")))
            .map(|value| value.split(';').next().unwrap().to_owned())
    }

    fn post(path: &str, cookie: &str, body: String) -> Request<Body> {
        Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }

    /// Logging in with the admin token sets a session cookie that is not the
    /// token, with HttpOnly, SameSite=Strict and Path=/ui; a wrong token is
    /// 401; a login post without its CSRF value is 403; pages carry the CSP.
    #[tokio::test]
    async fn login_sets_a_strict_session_cookie() {
        let router = router();
        let response = send(
            &router,
            Request::get("/ui/login").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            html::CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(response.headers()[header::REFERRER_POLICY], "same-origin");
        let login_cookie = cookie_of(&response, LOGIN_COOKIE).unwrap();
        let csrf = csrf_of(&text(response).await);

        let wrong = send(
            &router,
            post(
                "/ui/login",
                &login_cookie,
                format!("csrf={csrf}&token=nope"),
            ),
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(cookie_of(&wrong, SESSION_COOKIE).is_none());

        let no_csrf = send(
            &router,
            post("/ui/login", &login_cookie, format!("token={TOKEN}")),
        )
        .await;
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);

        let right = send(
            &router,
            post(
                "/ui/login",
                &login_cookie,
                format!("csrf={csrf}&token={TOKEN}"),
            ),
        )
        .await;
        assert_eq!(right.status(), StatusCode::SEE_OTHER);
        assert_eq!(right.headers()[header::LOCATION], "/ui/sources");
        let set = right
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .find(|value| value.starts_with("imgmesh_session="))
            .unwrap();
        assert!(!set.contains(TOKEN));
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Secure"), "plain HTTP gets no Secure flag");
    }

    /// Without a session every page redirects to the login page; the API
    /// beside it still wants its bearer token; an unknown /ui path is a 404
    /// page with the dashboard's headers.
    #[tokio::test]
    async fn pages_need_a_session() {
        let router = router();
        for path in ["/ui/sources", "/ui/sources/new", "/ui/sources/src_1"] {
            let response = send(&router, Request::get(path).body(Body::empty()).unwrap()).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(response.headers()[header::LOCATION], "/ui/login", "{path}");
        }
        let forged = send(
            &router,
            Request::get("/ui/sources")
                .header(header::COOKIE, "imgmesh_session=0123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(forged.status(), StatusCode::SEE_OTHER);
        let api = send(
            &router,
            Request::get("/v1/sources").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        let missing = send(
            &router,
            Request::get("/ui/no/such/page")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            missing.headers()[header::CONTENT_SECURITY_POLICY],
            html::CONTENT_SECURITY_POLICY
        );
    }

    /// A wrong login counts toward the admin API's per-address limit: after
    /// ten, the right token is refused with 429 on the login form too.
    #[tokio::test]
    async fn wrong_logins_count_toward_the_admin_limit() {
        let router = router();
        let login = send(
            &router,
            Request::get("/ui/login").body(Body::empty()).unwrap(),
        )
        .await;
        let login_cookie = cookie_of(&login, LOGIN_COOKIE).unwrap();
        let csrf = csrf_of(&text(login).await);
        for _ in 0..10 {
            let response = send(
                &router,
                post(
                    "/ui/login",
                    &login_cookie,
                    format!("csrf={csrf}&token=guess"),
                ),
            )
            .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let right = send(
            &router,
            post(
                "/ui/login",
                &login_cookie,
                format!("csrf={csrf}&token={TOKEN}"),
            ),
        )
        .await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(cookie_of(&right, SESSION_COOKIE).is_none());
    }

    /// In a session, a POST without the session's CSRF token is 403 and
    /// logout with it ends the session.
    #[tokio::test]
    async fn session_forms_need_the_csrf_token() {
        let router = router();
        let login = send(
            &router,
            Request::get("/ui/login").body(Body::empty()).unwrap(),
        )
        .await;
        let login_cookie = cookie_of(&login, LOGIN_COOKIE).unwrap();
        let csrf = csrf_of(&text(login).await);
        let right = send(
            &router,
            post(
                "/ui/login",
                &login_cookie,
                format!("csrf={csrf}&token={TOKEN}"),
            ),
        )
        .await;
        let session_cookie = cookie_of(&right, SESSION_COOKIE).unwrap();
        let page = send(
            &router,
            Request::get("/ui/sources/new")
                .header(header::COOKIE, &session_cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK);
        let session_csrf = csrf_of(&text(page).await);
        assert_ne!(session_csrf, csrf);
        for body in ["name=x".to_owned(), format!("csrf={csrf}&name=x")] {
            let refused = send(&router, post("/ui/sources/new", &session_cookie, body)).await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        }
        let out = send(
            &router,
            post(
                "/ui/logout",
                &session_cookie,
                format!("csrf={session_csrf}"),
            ),
        )
        .await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let after = send(
            &router,
            Request::get("/ui/sources")
                .header(header::COOKIE, &session_cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(after.headers()[header::LOCATION], "/ui/login");
    }

    /// The assets are served from the binary with their types.
    #[tokio::test]
    async fn assets_are_embedded() {
        let router = router();
        for (path, content_type) in [
            ("/ui/assets/dashboard.css", "text/css; charset=utf-8"),
            ("/ui/assets/dashboard.js", "text/javascript; charset=utf-8"),
        ] {
            let response = send(&router, Request::get(path).body(Body::empty()).unwrap()).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
            assert!(
                !text(response).await.contains("http"),
                "{path} loads nothing from elsewhere"
            );
        }
    }
}
