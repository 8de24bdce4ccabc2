//! The admin API's named, scoped credentials and its audit log, on real
//! processes: tokens made through the admin API and with `imgmesh
//! admin-tokens`, the scope matrix (read-only, Source admin, full admin),
//! revoked and expired tokens refused, failed authentications limited per
//! address, and every change in the audit log (`GET /v1/audit`, `imgmesh
//! audit`) under the right credential's name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgmesh_integration_tests::admin::{create, json_of, source_body};
use imgmesh_integration_tests::{HttpResponse, Mesh, MeshOptions, request_with_body};
use serde_json::{Value, json};

/// Sends `method path` to the admin API with `token` as the bearer.
async fn as_token(
    mesh: &Mesh,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> HttpResponse {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    request_with_body(
        method,
        mesh.gateway_admin_addr,
        "localhost",
        path,
        &headers,
        body.map(|json| json.to_string().into_bytes())
            .unwrap_or_default(),
    )
    .await
    .unwrap()
}

/// Creates an admin token through the admin API (as the bootstrap token);
/// returns its id and the token.
async fn admin_token(mesh: &Mesh, body: Value) -> (String, String) {
    let created = mesh
        .admin("POST", "/v1/admin-tokens", Some(&body))
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let created = json_of(&created);
    let token = created["token"]
        .as_str()
        .expect("the token, once")
        .to_owned();
    assert!(token.starts_with("imat_") && token.len() == 69, "{token}");
    (created["id"].as_str().unwrap().to_owned(), token)
}

/// Asserts `response` is the 403 a scope refuses with, its message
/// containing `words`.
fn assert_forbidden(response: &HttpResponse, words: &str) {
    assert_eq!(response.status, 403, "{}", response.text());
    let error = &json_of(response)["error"];
    assert_eq!(error["code"], "FORBIDDEN");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(words), "{message}");
}

/// The audit log as the bootstrap token reads it, newest first.
async fn audit_log(mesh: &Mesh) -> Vec<Value> {
    let response = mesh
        .admin("GET", "/v1/audit?limit=1000", None)
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    json_of(&response)["events"].as_array().unwrap().clone()
}

/// Whether `events` holds one by `credential` of `action` on `source`
/// with `result`.
fn logged(events: &[Value], credential: &str, action: &str, source: &str, result: &str) -> bool {
    events.iter().any(|event| {
        event["credential"] == credential
            && event["action"] == action
            && event["source_id"] == source
            && event["result"] == result
    })
}

/// The scope matrix: a read-only token reads but changes nothing; a Source
/// admin lists, reads and changes only its Sources and reaches no
/// credentials; a full admin made by the CLI changes anything. Revoked and
/// expired tokens are refused (401), and each change (edit, deploy, rotate,
/// purge, upload, key and token create and revoke) — allowed or refused —
/// is in the audit log under the credential's name, with field names only.
#[tokio::test]
async fn scope_matrix_and_audit_log() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    let alpha = create(&mesh, &source_body(&mesh, "alpha", json!({}))).await;
    let beta = create(&mesh, &source_body(&mesh, "beta", json!({}))).await;
    let alpha = alpha["id"].as_str().unwrap().to_owned();
    let beta = beta["id"].as_str().unwrap().to_owned();

    let (reader_id, reader) =
        admin_token(&mesh, json!({"name": "reader", "scope": "read_only"})).await;
    let (alpha_team_id, alpha_team) = admin_token(
        &mesh,
        json!({"name": "alpha team", "scope": "source_admin", "source_ids": [alpha]}),
    )
    .await;
    let ops = mesh
        .cli_json(&["admin-tokens", "create", "--name=ops", "--scope=full-admin"])
        .await
        .unwrap();
    let ops_token = ops["token"].as_str().unwrap().to_owned();
    let listed = mesh.cli_json(&["admin-tokens", "list"]).await.unwrap();
    let listed_text = listed.to_string();
    for secret in [&reader, &alpha_team, &ops_token] {
        assert!(
            !listed_text.contains(&secret[5..]),
            "the list shows a token"
        );
    }
    assert_eq!(listed["admin_tokens"].as_array().unwrap().len(), 3);

    // Read-only: reads everything, changes nothing.
    let sources = as_token(&mesh, &reader, "GET", "/v1/sources", None).await;
    assert_eq!(sources.status, 200, "{}", sources.text());
    assert_eq!(json_of(&sources)["sources"].as_array().unwrap().len(), 2);
    let edit = json!({"default_params": "w=100"});
    let path_alpha = format!("/v1/sources/{alpha}");
    let path_beta = format!("/v1/sources/{beta}");
    let refused = as_token(&mesh, &reader, "PATCH", &path_alpha, Some(&edit)).await;
    assert_forbidden(&refused, "read-only");
    let refused = as_token(
        &mesh,
        &reader,
        "POST",
        "/v1/sources",
        Some(&source_body(&mesh, "gamma", json!({}))),
    )
    .await;
    assert_forbidden(&refused, "read-only");
    let refused = as_token(
        &mesh,
        &reader,
        "POST",
        "/v1/admin-tokens",
        Some(&json!({"name": "escalated", "scope": "full_admin"})),
    )
    .await;
    assert_forbidden(&refused, "read-only");

    // Source admin: only its Sources.
    let sources = as_token(&mesh, &alpha_team, "GET", "/v1/sources", None).await;
    assert_eq!(sources.status, 200, "{}", sources.text());
    let listed = json_of(&sources);
    let ids: Vec<&str> = listed["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| source["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![alpha.as_str()]);
    let edited = as_token(&mesh, &alpha_team, "PATCH", &path_alpha, Some(&edit)).await;
    assert_eq!(edited.status, 200, "{}", edited.text());
    let by_name = as_token(&mesh, &alpha_team, "GET", "/v1/sources/alpha", None).await;
    assert_eq!(by_name.status, 200, "{}", by_name.text());
    for (method, path) in [
        ("GET", path_beta.clone()),
        ("GET", "/v1/sources/beta".to_owned()),
        ("PATCH", path_beta.clone()),
        ("DELETE", path_beta.clone()),
        ("POST", format!("{path_beta}/deploy")),
        ("POST", format!("{path_beta}/purge")),
        ("GET", format!("/v1/audit?source={beta}")),
    ] {
        let refused = as_token(&mesh, &alpha_team, method, &path, Some(&edit)).await;
        assert_forbidden(&refused, "may not act on Source");
    }
    let missing = as_token(&mesh, &alpha_team, "GET", "/v1/sources/nowhere", None).await;
    assert_forbidden(&missing, "may not act on Source");
    for (method, path, words) in [
        ("POST", "/v1/sources", "cannot create Sources"),
        ("GET", "/v1/api-keys", "need a full admin"),
        ("GET", "/v1/admin-tokens", "need a full admin"),
        ("GET", "/v1/audit", "?source=<id>"),
    ] {
        let refused = as_token(&mesh, &alpha_team, method, path, Some(&edit)).await;
        assert_forbidden(&refused, words);
    }
    let own_log = as_token(
        &mesh,
        &alpha_team,
        "GET",
        &format!("/v1/audit?source={alpha}"),
        None,
    )
    .await;
    assert_eq!(own_log.status, 200, "{}", own_log.text());
    let deployed = as_token(
        &mesh,
        &alpha_team,
        "POST",
        &format!("{path_alpha}/deploy"),
        None,
    )
    .await;
    assert_eq!(deployed.status, 202, "{}", deployed.text());

    let rotated = as_token(
        &mesh,
        &alpha_team,
        "POST",
        &format!("{path_alpha}/rotate-token"),
        Some(&json!({"grace_period_seconds": 0})),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let rotated_token = json_of(&rotated)["token"].as_str().unwrap().to_owned();
    let purged = as_token(
        &mesh,
        &alpha_team,
        "POST",
        &format!("{path_alpha}/purge"),
        Some(&json!({"prefix": "photos/"})),
    )
    .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    let upload = as_token(
        &mesh,
        &alpha_team,
        "PUT",
        &format!("{path_alpha}/objects/new.jpg"),
        None,
    )
    .await;
    assert_eq!(
        upload.status,
        400,
        "no upload credentials: {}",
        upload.text()
    );

    // The CLI's full admin changes another Source.
    let rekeyed = as_token(
        &mesh,
        &ops_token,
        "PATCH",
        &path_beta,
        Some(&json!({"secret_access_key": "imgmesh-rekey-canary-93b1"})),
    )
    .await;
    assert_eq!(rekeyed.status, 200, "{}", rekeyed.text());

    let key = as_token(
        &mesh,
        &ops_token,
        "POST",
        "/v1/api-keys",
        Some(&json!({"name": "thumbs", "operations": ["render"]})),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.text());
    let key_id = json_of(&key)["id"].as_str().unwrap().to_owned();
    let api_key = json_of(&key)["key"].as_str().unwrap().to_owned();
    let dropped = as_token(
        &mesh,
        &ops_token,
        "DELETE",
        &format!("/v1/api-keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(dropped.status, 200, "{}", dropped.text());

    // Revoked: refused from the next request on.
    let revoked = mesh
        .admin("DELETE", &format!("/v1/admin-tokens/{alpha_team_id}"), None)
        .await
        .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(json_of(&revoked)["revoked_at"].as_i64().unwrap() > 0);
    let refused = as_token(&mesh, &alpha_team, "GET", "/v1/sources", None).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    let revoked_by_cli = mesh
        .cli_json(&["admin-tokens", "revoke", &reader_id])
        .await
        .unwrap();
    assert!(revoked_by_cli["revoked_at"].as_i64().unwrap() > 0);
    let refused = as_token(&mesh, &reader, "GET", "/v1/sources", None).await;
    assert_eq!(refused.status, 401, "{}", refused.text());

    // Expired: works until its expiry, refused after.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (_, short) = admin_token(
        &mesh,
        json!({"name": "short", "scope": "read_only", "expires_at": now + 2}),
    )
    .await;
    let works = as_token(&mesh, &short, "GET", "/v1/sources", None).await;
    assert_eq!(works.status, 200, "{}", works.text());
    // Waiting for the clock, not for readiness: the expiry is in seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refused = as_token(&mesh, &short, "GET", "/v1/sources", None).await;
    assert_eq!(refused.status, 401, "{}", refused.text());

    // The audit log: each change under its credential, refusals included.
    let events = audit_log(&mesh).await;
    assert!(logged(&events, "alpha team", "source.update", &alpha, "ok"));
    assert!(logged(&events, "alpha team", "source.deploy", &alpha, "ok"));
    assert!(logged(
        &events,
        "alpha team",
        "source.update",
        &beta,
        "FORBIDDEN"
    ));
    assert!(logged(
        &events,
        "alpha team",
        "source.delete",
        &beta,
        "FORBIDDEN"
    ));
    assert!(logged(
        &events,
        "reader",
        "source.update",
        &alpha,
        "FORBIDDEN"
    ));
    assert!(logged(
        &events,
        "reader",
        "admin_token.create",
        "",
        "FORBIDDEN"
    ));
    assert!(logged(&events, "ops", "source.update", &beta, "ok"));
    assert!(logged(
        &events,
        "alpha team",
        "source.rotate_token",
        &alpha,
        "ok"
    ));
    assert!(logged(&events, "alpha team", "source.purge", &alpha, "ok"));
    assert!(logged(
        &events,
        "alpha team",
        "object.upload",
        &alpha,
        "INVALID_ARGUMENT"
    ));
    assert!(logged(&events, "ops", "api_key.create", "", "ok"));
    assert!(logged(&events, "ops", "api_key.revoke", "", "ok"));
    assert!(
        events
            .iter()
            .filter(|event| event["action"].as_str().unwrap().starts_with("api_key."))
            .all(|event| event["target_id"] == key_id.as_str())
    );
    assert!(logged(&events, "bootstrap", "source.create", &alpha, "ok"));
    assert!(logged(&events, "bootstrap", "admin_token.revoke", "", "ok"));
    assert!(logged(&events, "cli", "admin_token.create", "", "ok"));
    assert!(logged(&events, "cli", "admin_token.revoke", "", "ok"));
    let edit_event = events
        .iter()
        .find(|event| {
            event["credential"] == "alpha team"
                && event["action"] == "source.update"
                && event["result"] == "ok"
        })
        .unwrap();
    assert_eq!(edit_event["fields"], json!(["default_params"]));
    let rekey_event = events
        .iter()
        .find(|event| event["credential"] == "ops" && event["action"] == "source.update")
        .unwrap();
    assert_eq!(rekey_event["fields"], json!(["access_key.secret"]));
    let created_reader = events
        .iter()
        .find(|event| {
            event["action"] == "admin_token.create" && event["target_id"] == reader_id.as_str()
        })
        .expect("the reader's creation is logged with its id");
    assert_eq!(created_reader["credential"], "bootstrap");
    let log_text = Value::Array(events.clone()).to_string();
    for secret in [
        reader.as_str(),
        alpha_team.as_str(),
        ops_token.as_str(),
        short.as_str(),
        rotated_token.as_str(),
        api_key.as_str(),
        "imgmesh-rekey-canary-93b1",
        imgmesh_integration_tests::S3_SECRET_KEY,
    ] {
        assert!(!log_text.contains(secret), "the audit log holds a secret");
    }

    // `imgmesh audit --source` shows one Source's changes, newest first.
    let alpha_log = mesh
        .cli_json(&["audit", &format!("--source={alpha}")])
        .await
        .unwrap();
    let alpha_events = alpha_log["events"].as_array().unwrap();
    assert!(!alpha_events.is_empty());
    assert!(
        alpha_events
            .iter()
            .all(|event| event["source_id"] == alpha.as_str())
    );
    let times: Vec<i64> = alpha_events
        .iter()
        .map(|event| event["at_unix_micros"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    let text = mesh.cli(&["audit", "--limit=1"]).await.unwrap();
    assert!(text.status.success());

    // Failed authentications stay limited per address: after ten wrong
    // tokens even a valid named one is refused with 429.
    for attempt in 0..10 {
        let wrong = format!("imat_{attempt:064}");
        let refused = as_token(&mesh, &wrong, "GET", "/v1/sources", None).await;
        assert!(
            refused.status == 401 || refused.status == 429,
            "{}",
            refused.status
        );
    }
    let blocked = as_token(&mesh, &ops_token, "GET", "/v1/sources", None).await;
    assert_eq!(blocked.status, 429, "{}", blocked.text());
}

/// Sends `method path` to the dashboard with `cookie` and, for a POST, the
/// form `fields`; returns the status, every `Set-Cookie` value and the body.
async fn dashboard_request(
    mesh: &Mesh,
    method: &str,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, Vec<String>, String) {
    use http_body_util::{BodyExt as _, Full};

    let stream = tokio::net::TcpStream::connect(mesh.gateway_admin_addr)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let body = fields
        .iter()
        .map(|(name, value)| format!("{}={}", form_encoded(name), form_encoded(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/x-www-form-urlencoded");
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    let response = sender
        .send_request(request.body(Full::new(bytes::Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            let value = value.to_str().unwrap();
            value.split(';').next().unwrap_or_default().to_owned()
        })
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cookies, String::from_utf8_lossy(&body).into_owned())
}

/// `text` encoded for an `application/x-www-form-urlencoded` body.
fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The CSRF token a dashboard page's forms carry.
fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// Changes made outside the admin API's JSON routes are audited too: a
/// dashboard form posted in a session of a named full-admin token is
/// recorded under that token's name (once: not again by the registry), and
/// a change the operator's CLI makes straight to the registry, and a purge
/// it asks a renderer for, are recorded under `cli` and shown by
/// `imgmesh audit`.
#[tokio::test]
async fn dashboard_and_cli_changes_are_audited() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    let gamma = create(&mesh, &source_body(&mesh, "gamma", json!({}))).await;
    let gamma = gamma["id"].as_str().unwrap().to_owned();
    let (_, web_ops) = admin_token(&mesh, json!({"name": "web ops", "scope": "full_admin"})).await;

    // Log in to the dashboard with the named token, as a browser would.
    let (status, cookies, html) = dashboard_request(&mesh, "GET", "/ui/login", "", &[]).await;
    assert_eq!(status, 200, "{html}");
    let login_cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with("imgmesh_login="))
        .expect("a login cookie")
        .clone();
    let login_csrf = csrf_of(&html);
    let (status, cookies, html) = dashboard_request(
        &mesh,
        "POST",
        "/ui/login",
        &login_cookie,
        &[("csrf", &login_csrf), ("token", &web_ops)],
    )
    .await;
    assert_eq!(status, 303, "{html}");
    let session = cookies
        .iter()
        .find(|cookie| cookie.starts_with("imgmesh_session="))
        .expect("a session cookie")
        .clone();

    // Disable the Source through its page's form.
    let page_path = format!("/ui/sources/{gamma}");
    let (status, _, html) = dashboard_request(&mesh, "GET", &page_path, &session, &[]).await;
    assert_eq!(status, 200, "{html}");
    let csrf = csrf_of(&html);
    let (status, _, html) = dashboard_request(
        &mesh,
        "POST",
        &format!("{page_path}/enabled"),
        &session,
        &[("csrf", &csrf), ("enabled", "false")],
    )
    .await;
    assert_eq!(status, 303, "{html}");

    let events = audit_log(&mesh).await;
    assert!(
        logged(&events, "web ops", "source.update", &gamma, "ok"),
        "{events:#?}"
    );
    let updates: Vec<&Value> = events
        .iter()
        .filter(|event| event["action"] == "source.update" && event["source_id"] == gamma)
        .collect();
    assert_eq!(updates.len(), 1, "recorded once: {updates:#?}");
    assert_eq!(updates[0]["fields"], json!(["enabled"]));

    // The CLI's change, straight to the registry, is recorded under `cli`.
    let deployed = mesh.cli(&["sources", "deploy", &gamma]).await.unwrap();
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let gamma_log = mesh
        .cli_json(&["audit", &format!("--source={gamma}")])
        .await
        .unwrap();
    let gamma_events = gamma_log["events"].as_array().unwrap();
    assert!(
        logged(gamma_events, "cli", "source.deploy", &gamma, "ok"),
        "{gamma_events:#?}"
    );
    // The gateway's own registry calls are not recorded a second time.
    assert!(
        gamma_events
            .iter()
            .filter(|event| event["credential"] == "cli")
            .all(|event| event["action"] == "source.deploy"),
        "{gamma_events:#?}"
    );

    // A purge goes to a renderer, which keeps no log: the CLI records it.
    let purged = mesh
        .cli(&[
            "purge",
            &gamma,
            "--all",
            &format!("--renderer-url={}", mesh.renderer_url),
        ])
        .await
        .unwrap();
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    let gamma_log = mesh
        .cli_json(&["audit", &format!("--source={gamma}")])
        .await
        .unwrap();
    let gamma_events = gamma_log["events"].as_array().unwrap();
    assert!(
        logged(gamma_events, "cli", "source.purge", &gamma, "ok"),
        "{gamma_events:#?}"
    );
}
