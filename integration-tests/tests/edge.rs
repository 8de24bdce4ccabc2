//! The edge of the mesh on real processes: Source states at the gateway,
//! custom domains, secure URLs and token rotation, `expires`, path-prefix
//! escapes, the admin HTTP API, and a canary run proving no secret reaches a
//! log line, a span or an error body.

use std::time::Duration;

use imgmesh_integration_tests::admin::{
    SETTLE, create, create_deployed, deploy, json_of, rotate, source_body,
};
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{
    ADMIN_TOKEN, HttpResponse, Mesh, MeshOptions, OtlpReceiver, S3_ACCESS_KEY, S3_SECRET_KEY,
};
use imgmesh_proto::fetcher::v1::FetchObjectRequest;
use imgmesh_proto::fetcher::v1::fetcher_service_client::FetcherServiceClient;
use serde_json::{Value, json};

// === helpers ===

/// `path_and_query` with `s` appended as imgix's client libraries do.
fn signed(token: &str, path_and_query: &str) -> String {
    use md5::Digest as _;
    let s = hex::encode(md5::Md5::digest(format!("{token}{path_and_query}")));
    let joiner = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{path_and_query}{joiner}s={s}")
}

/// Polls `GET path` on `<subdomain>.localhost` until it answers `status`
/// (the gateway caches host lookups briefly).
async fn eventually(mesh: &Mesh, subdomain: &str, path: &str, status: u16) -> HttpResponse {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let response = mesh.get(subdomain, path).await.unwrap();
        if response.status == status {
            return response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subdomain} {path}: still {} {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a mesh with a 640×480 JPEG at `photos/cat.jpg`.
async fn mesh_with_cat(options: MeshOptions) -> Mesh {
    let mesh = Mesh::start(options).await.expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(640, 480).unwrap())
        .unwrap();
    mesh
}

// === Source states ===

/// A never-deployed Source is 404 exactly like an unknown host; once deployed it serves; disabled it is 410 at the gateway and refused by the fetcher; enabled again it serves.
#[tokio::test]
async fn source_states_at_the_gateway() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    let created = create(&mesh, &source_body(&mesh, "fresh", json!({}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "pending");

    let unknown = mesh.get("nobody", "/photos/cat.jpg").await.unwrap();
    let undeployed = mesh.get("fresh", "/photos/cat.jpg").await.unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(undeployed.status, 404, "{}", undeployed.text());
    assert_eq!(undeployed.body, unknown.body);

    deploy(&mesh, &id).await;
    let served = eventually(&mesh, "fresh", "/photos/cat.jpg?w=64", 200).await;
    fixtures::expect_image(&served.body, Format::Jpeg, 64, 48).unwrap();

    let disabled = mesh
        .admin(
            "PATCH",
            &format!("/v1/sources/{id}"),
            Some(&json!({"enabled": false})),
        )
        .await
        .unwrap();
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    let disabled = json_of(&disabled);
    let gone = eventually(&mesh, "fresh", "/photos/cat.jpg?w=64", 410).await;
    assert_eq!(gone.text(), "source disabled");

    // The fetcher refuses the disabled Source too, even to the renderer.
    let mut fetcher =
        FetcherServiceClient::new(mesh.grpc_channel(&mesh.fetcher_url, "renderer").unwrap());
    let refused = match fetcher
        .fetch_object(FetchObjectRequest {
            source_id: id.clone(),
            path: "photos/cat.jpg".to_owned(),
            max_bytes: 0,
            source_config_version: disabled["config_version"].as_u64().unwrap(),
            ..FetchObjectRequest::default()
        })
        .await
    {
        Err(status) => status,
        Ok(response) => response
            .into_inner()
            .message()
            .await
            .expect_err("a disabled Source's object was streamed"),
    };
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert_eq!(refused.message(), "source not found");

    let enabled = mesh
        .admin(
            "PATCH",
            &format!("/v1/sources/{id}"),
            Some(&json!({"enabled": true})),
        )
        .await
        .unwrap();
    assert_eq!(enabled.status, 200, "{}", enabled.text());
    eventually(&mesh, "fresh", "/photos/cat.jpg?w=64", 200).await;
}

/// A Source answers on its custom domain (exact match); other hosts outside the base domain are 404.
#[tokio::test]
async fn custom_domains_route_to_their_source() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    create_deployed(
        &mesh,
        "branded",
        json!({"custom_domains": ["images.example.test"]}),
    )
    .await;
    let get = |host: &'static str| {
        imgmesh_integration_tests::get(mesh.gateway_addr, host, "/photos/cat.jpg?w=32", &[])
    };
    let deadline = tokio::time::Instant::now() + SETTLE;
    let served = loop {
        let response = get("Images.Example.test:8080").await.unwrap();
        if response.status == 200 || tokio::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(served.status, 200, "{}", served.text());
    fixtures::expect_image(&served.body, Format::Jpeg, 32, 24).unwrap();
    for host in [
        "other.example.test",
        "x.images.example.test",
        "example.test",
    ] {
        let response = get(host).await.unwrap();
        assert_eq!(response.status, 404, "{host}: {}", response.text());
    }
}

// === secure URLs ===

/// During a rotation URLs signed with the old and the new token both work; after the grace period the old ones are 403.
#[tokio::test]
async fn token_rotation_keeps_live_urls_through_the_grace_period() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    let source = create_deployed(&mesh, "secure", json!({"secure_url_enabled": true})).await;
    let id = source["id"].as_str().unwrap().to_owned();
    let (first, _) = rotate(&mesh, &id, 0).await;
    let url = "/photos/cat.jpg?w=100";
    eventually(&mesh, "secure", &signed(&first, url), 200).await;
    let unsigned = mesh.get("secure", url).await.unwrap();
    assert_eq!(unsigned.status, 403);
    assert_eq!(unsigned.text(), "invalid signature");

    let (second, rotated) = rotate(&mesh, &id, 2).await;
    let rotated_at = tokio::time::Instant::now();
    assert_ne!(first, second);
    assert_eq!(rotated["active_secure_tokens"], 2, "{rotated}");
    eventually(&mesh, "secure", &signed(&second, url), 200).await;
    let old = mesh.get("secure", &signed(&first, url)).await.unwrap();
    assert!(
        rotated_at.elapsed() < Duration::from_secs(2),
        "too slow to observe the grace period"
    );
    assert_eq!(old.status, 200, "old token refused during the grace period");

    let expired = eventually(&mesh, "secure", &signed(&first, url), 403).await;
    assert_eq!(expired.text(), "invalid signature");
    assert!(rotated_at.elapsed() >= Duration::from_secs(2));
    let new = mesh.get("secure", &signed(&second, url)).await.unwrap();
    assert_eq!(new.status, 200);
}

/// Missing, wrong, truncated, reordered, tampered and injected signatures are 403, and none of them reaches the renderer, the fetcher, S3 or Redis.
#[tokio::test]
async fn forged_signatures_do_no_work() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let mesh = mesh_with_cat(MeshOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..MeshOptions::default()
    })
    .await;
    let source = create_deployed(&mesh, "locked", json!({"secure_url_enabled": true})).await;
    let (token, _) = rotate(&mesh, source["id"].as_str().unwrap(), 0).await;
    let good = signed(&token, "/photos/cat.jpg?h=300&w=400");
    let s = good.rsplit_once("s=").unwrap().1.to_owned();
    // Wait until the gateway knows the token, without rendering anything: a
    // correctly signed URL that has expired is refused (404) right after
    // the signature check.
    eventually(
        &mesh,
        "locked",
        &signed(&token, "/photos/cat.jpg?expires=1"),
        404,
    )
    .await;

    let forged = [
        "/photos/cat.jpg?h=300&w=400".to_owned(),
        signed("not-the-token", "/photos/cat.jpg?h=300&w=400"),
        good[..good.len() - 1].to_owned(),
        good.replace(&s, &s.to_uppercase()),
        format!("/photos/cat.jpg?w=400&h=300&s={s}"),
        good.replace("w=400", "w=401"),
        good.replace("/photos/cat.jpg", "/photos/%63at.jpg"),
        format!("{good}&w=2000"),
        format!("{good}&s={s}"),
        format!("/photos/cat.jpg?s={s}&h=300&w=400"),
        format!("/photos/cat.jpg?h=300&%73=x&w=400&s={s}"),
        format!("/photos/cat.jpg?s={s}"),
    ];
    let mut forged_traces = vec![];
    for (i, url) in forged.iter().enumerate() {
        let trace_id = format!("{:032x}", 0xf0f0_0000_u64 + i as u64);
        let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
        let response = mesh
            .get_with("locked", url, &[("traceparent", traceparent.as_str())])
            .await
            .unwrap();
        assert_eq!(response.status, 403, "{url}: {}", response.text());
        assert_eq!(response.text(), "invalid signature", "{url}");
        assert_eq!(response.header("cache-control"), Some("no-store"));
        forged_traces.push(trace_id);
    }
    assert_eq!(
        mesh.redis_dbsize().await.unwrap(),
        0,
        "a forged URL reached Redis"
    );

    // The genuine URL renders, so the counters above could have moved.
    let good_trace = "0000000000000000000000000000abcd";
    let traceparent = format!("00-{good_trace}-00f067aa0ba902b7-01");
    let response = mesh
        .get_with("locked", &good, &[("traceparent", traceparent.as_str())])
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    fixtures::expect_image(&response.body, Format::Jpeg, 400, 300).unwrap();
    assert_eq!(mesh.redis_dbsize().await.unwrap(), 1);

    // Once the genuine request's fetcher span has arrived, every earlier
    // span has been exported too: none of the forged ones reached the
    // renderer or the fetcher (hence S3 and libvips).
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let spans = receiver.spans();
        let fetched = spans
            .iter()
            .any(|s| s.trace_id == good_trace && s.service == "imgmesh-fetcher");
        let gateway_saw_forged = forged_traces.iter().all(|trace| {
            spans
                .iter()
                .any(|s| &s.trace_id == trace && s.service == "imgmesh-gateway")
        });
        if fetched && gateway_saw_forged {
            let leaked: Vec<_> = spans
                .iter()
                .filter(|s| forged_traces.contains(&s.trace_id))
                .filter(|s| {
                    s.service == "imgmesh-renderer"
                        || s.service == "imgmesh-fetcher"
                        || s.name == "renderer.render"
                })
                .collect();
            assert!(leaked.is_empty(), "forged URLs did work: {leaked:#?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans missing: fetched={fetched} gateway_saw_forged={gateway_saw_forged}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `expires` in the past is 404 with nothing rendered; in the future, `max-age` never reaches past it.
#[tokio::test]
async fn expires_is_honoured() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    create_deployed(&mesh, "timed", json!({})).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    eventually(
        &mesh,
        "timed",
        &format!("/photos/cat.jpg?w=10&expires={}", now - 5),
        404,
    )
    .await;
    assert_eq!(mesh.redis_dbsize().await.unwrap(), 0);

    let response = eventually(
        &mesh,
        "timed",
        &format!("/photos/cat.jpg?w=10&expires={}", now + 60),
        200,
    )
    .await;
    let max_age: u64 = response
        .header("cache-control")
        .and_then(|v| v.strip_prefix("public, max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{:?}", response.header("cache-control")));
    assert!(max_age <= 60, "max-age {max_age} reaches past expires");
}

// === path prefix ===

/// No encoding of `..`, slashes or backslashes gets out of the Source's path prefix.
#[tokio::test]
async fn path_prefix_cannot_be_escaped() {
    let mesh = Mesh::start(MeshOptions::default()).await.unwrap();
    let cat = fixtures::jpeg(320, 240).unwrap();
    mesh.put_object("public/cat.jpg", &cat).unwrap();
    mesh.put_object("secret.jpg", &cat).unwrap();
    mesh.put_object("public/..secret.jpg", &cat).unwrap();
    create_deployed(&mesh, "prefixed", json!({"path_prefix": "public"})).await;

    let inside = eventually(&mesh, "prefixed", "/cat.jpg?w=32", 200).await;
    fixtures::expect_image(&inside.body, Format::Jpeg, 32, 24).unwrap();
    // A name that merely starts with dots is an ordinary name.
    assert_eq!(
        mesh.get("prefixed", "/..secret.jpg").await.unwrap().status,
        200
    );

    for path in [
        "/secret.jpg",
        "/../secret.jpg",
        "/..",
        "/cat.jpg/../../secret.jpg",
        "/%2e%2e/secret.jpg",
        "/%2E%2E/secret.jpg",
        "/.%2e/secret.jpg",
        "/%2e%2e%2fsecret.jpg",
        "/%2F../secret.jpg",
        "/%2F%2E%2E%2Fsecret.jpg",
        "/..%2Fsecret.jpg",
        "/..%5Csecret.jpg",
        "/%5C..%5Csecret.jpg",
        "/..%255Csecret.jpg",
        "//secret.jpg",
        "//public/cat.jpg",
        "/public//../secret.jpg",
        "/a/%2e%2e/%2e%2e/secret.jpg",
        "/%00/../secret.jpg",
    ] {
        let response = mesh.get("prefixed", path).await.unwrap();
        assert_eq!(response.status, 404, "{path}: {}", response.text());
    }
}

// === admin API ===

/// The admin API creates, lists, gets, updates, deploys and deletes Sources on the real registry, with JSON errors naming the field and 401 without the token.
#[tokio::test]
async fn admin_api_manages_sources() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    let addr = mesh.gateway_admin_addr;
    let without = imgmesh_integration_tests::get(addr, "localhost", "/v1/sources", &[])
        .await
        .unwrap();
    assert_eq!(without.status, 401);
    assert_eq!(without.header("www-authenticate"), Some("Bearer"));
    let wrong = imgmesh_integration_tests::get(
        addr,
        "localhost",
        "/v1/sources",
        &[("authorization", "Bearer imgmesh-test-admin-token-WRONG")],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 401);

    let bad = mesh
        .admin(
            "POST",
            "/v1/sources",
            Some(&source_body(
                &mesh,
                "bad",
                json!({"subdomain": "Not_A_Label"}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    let error = json_of(&bad);
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(error["error"]["field"], "subdomain");
    assert!(!bad.text().contains(S3_SECRET_KEY));

    let created = create(
        &mesh,
        &source_body(&mesh, "shop", json!({"path_prefix": "photos"})),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["path_prefix"], "photos");
    assert_eq!(created["status"], "pending");
    let duplicate = mesh
        .admin(
            "POST",
            "/v1/sources",
            Some(&source_body(&mesh, "shop", json!({}))),
        )
        .await
        .unwrap();
    assert_eq!(duplicate.status, 409, "{}", duplicate.text());
    assert_eq!(json_of(&duplicate)["error"]["code"], "ALREADY_EXISTS");

    let listed = mesh.admin("GET", "/v1/sources", None).await.unwrap();
    assert_eq!(listed.status, 200);
    let names: Vec<String> = json_of(&listed)["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["shop"]);
    let by_name = mesh.admin("GET", "/v1/sources/shop", None).await.unwrap();
    assert_eq!(json_of(&by_name)["id"], id.as_str());

    let patched = mesh
        .admin(
            "PATCH",
            &format!("/v1/sources/{id}"),
            Some(&json!({"default_params": "w=50"})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(json_of(&patched)["default_params"], "w=50");

    deploy(&mesh, &id).await;
    let served = eventually(&mesh, "shop", "/cat.jpg", 200).await;
    fixtures::expect_image(&served.body, Format::Jpeg, 50, 38).unwrap();

    for response in [&listed, &by_name, &patched] {
        assert!(
            !response.text().contains(S3_SECRET_KEY),
            "{}",
            response.text()
        );
    }

    let deleted = mesh
        .admin("DELETE", &format!("/v1/sources/{id}"), None)
        .await
        .unwrap();
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let gone = mesh.admin("GET", "/v1/sources/shop", None).await.unwrap();
    assert_eq!(gone.status, 404);
    assert_eq!(json_of(&gone)["error"]["code"], "SOURCE_NOT_FOUND");
    eventually(&mesh, "shop", "/cat.jpg", 404).await;
}

/// An object uploaded through the admin API lands under the prefix and is served by the gateway.
#[tokio::test]
async fn admin_upload_then_serve() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    let source = create_deployed(
        &mesh,
        "uploads",
        json!({
            "path_prefix": "photos",
            "upload_access_key_id": S3_ACCESS_KEY,
            "upload_secret_access_key": S3_SECRET_KEY,
        }),
    )
    .await;
    let id = source["id"].as_str().unwrap();
    let png = fixtures::png(200, 100).unwrap();
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    let uploaded = imgmesh_integration_tests::request_with_body(
        "PUT",
        mesh.gateway_admin_addr,
        "localhost",
        &format!("/v1/sources/{id}/objects/new/dog.png"),
        &[
            ("authorization", authorization.as_str()),
            ("content-type", "image/png"),
        ],
        png.clone(),
    )
    .await
    .unwrap();
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let stored = json_of(&uploaded);
    assert_eq!(stored["key"], "photos/new/dog.png");
    assert_eq!(stored["size"], png.len());
    assert_eq!(
        std::fs::read(mesh.bucket_dir().join("photos/new/dog.png")).unwrap(),
        png
    );
    let served = eventually(&mesh, "uploads", "/new/dog.png?w=50", 200).await;
    fixtures::expect_image(&served.body, Format::Png, 50, 25).unwrap();
}

/// Percent-encodes `key` for a URL path: everything but unreserved
/// characters and `/`, byte by byte (so non-ASCII becomes its UTF-8 escapes).
fn encode_path(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Object keys with spaces, non-ASCII, `+`, `%`, parentheses, `?` and `#`
/// are uploaded through the admin API, served by the gateway at their
/// percent-encoded URL and purged by that URL (the next request is a miss);
/// keys that could leave the prefix (`..` segments, a leading slash) and
/// control characters are refused with 400 and the reason, and nothing is
/// written (object_keys.rs covers backslashes, `//` and `.` segments).
#[tokio::test]
async fn any_addressable_key_uploads_serves_and_purges() {
    let mesh = mesh_with_cat(MeshOptions::default()).await;
    let source = create_deployed(
        &mesh,
        "keys",
        json!({
            "path_prefix": "photos",
            "upload_access_key_id": S3_ACCESS_KEY,
            "upload_secret_access_key": S3_SECRET_KEY,
        }),
    )
    .await;
    let id = source["id"].as_str().unwrap().to_owned();
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    let upload = |key: String, body: Vec<u8>| {
        let (authorization, id) = (authorization.clone(), id.clone());
        let addr = mesh.gateway_admin_addr;
        async move {
            imgmesh_integration_tests::request_with_body(
                "PUT",
                addr,
                "localhost",
                &format!("/v1/sources/{id}/objects/{key}"),
                &[
                    ("authorization", authorization.as_str()),
                    ("content-type", "image/png"),
                ],
                body,
            )
            .await
            .unwrap()
        }
    };
    let png = fixtures::png(200, 100).unwrap();
    for key in [
        "with space.png",
        "café noir.png",
        "日本/写真.png",
        "a+b.png",
        "100%.png",
        "photo (1).png",
        "what?.png",
        "#1.png",
    ] {
        let uploaded = upload(encode_path(key), png.clone()).await;
        assert_eq!(uploaded.status, 201, "{key}: {}", uploaded.text());
        assert_eq!(json_of(&uploaded)["key"], format!("photos/{key}"), "{key}");
        assert_eq!(
            std::fs::read(mesh.bucket_dir().join("photos").join(key)).unwrap(),
            png,
            "{key}"
        );
        let url = format!("/{}?w=50", encode_path(key));
        let served = eventually(&mesh, "keys", &url, 200).await;
        fixtures::expect_image(&served.body, Format::Png, 50, 25).unwrap();
        let again = mesh.get("keys", &url).await.unwrap();
        assert_eq!(again.header("x-imgmesh-cache"), Some("hit"), "{key}");
        let purged = mesh
            .admin(
                "POST",
                &format!("/v1/sources/{id}/purge"),
                Some(&json!({ "path": format!("https://keys.localhost{url}") })),
            )
            .await
            .unwrap();
        assert_eq!(purged.status, 200, "{key}: {}", purged.text());
        let after = mesh.get("keys", &url).await.unwrap();
        assert_eq!(after.status, 200, "{key}");
        assert_eq!(after.header("x-imgmesh-cache"), Some("miss"), "{key}");
    }
    for (encoded, reason) in [
        ("%2e%2e/x.png", "'..' segments"),
        ("a/%2E%2E/../x.png", "'..' segments"),
        ("/x.png", "must not start with '/'"),
        ("a%5C..%5Cx.png", "'..' segments"),
        ("a%00b.png", "control characters"),
        ("a%0Ab.png", "control characters"),
    ] {
        let refused = upload(encoded.to_owned(), png.clone()).await;
        assert_eq!(refused.status, 400, "{encoded}: {}", refused.text());
        let error = json_of(&refused);
        assert_eq!(error["error"]["code"], "INVALID_ARGUMENT", "{encoded}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("key") && message.contains(reason),
            "{encoded}: {message}"
        );
    }
    assert!(!mesh.bucket_dir().join("photos/x.png").exists());
}

// === secrets ===

/// With every service at trace level, the S3 secret, the upload secret, the signing token, the admin token, an API key (used on the gRPC API of a further gateway at info level) and a named admin token appear in no log line, no span, no error body and no audit record, in any common encoding.
#[tokio::test]
async fn canary_secrets_leave_no_trace() {
    use base64::Engine as _;

    let receiver = OtlpReceiver::start().await.unwrap();
    let mesh = mesh_with_cat(MeshOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        log_filter: Some("trace".to_owned()),
        ..MeshOptions::default()
    })
    .await;
    let upload_secret = "imgmesh-upload-canary-6a41f09e27cd";
    let mut bodies = vec![];

    let source = create_deployed(
        &mesh,
        "canary",
        json!({
            "secure_url_enabled": true,
            "upload_access_key_id": "IMGMESHUPLOADCANARY",
            "upload_secret_access_key": upload_secret,
        }),
    )
    .await;
    bodies.push(source.to_string());
    let id = source["id"].as_str().unwrap().to_owned();
    let (token, rotated) = rotate(&mesh, &id, 0).await;
    bodies.push(rotated.to_string());

    // A rendered request, refused ones, and an origin error.
    let ok = eventually(
        &mesh,
        "canary",
        &signed(&token, "/photos/cat.jpg?w=80"),
        200,
    )
    .await;
    assert_eq!(ok.status, 200);
    for url in [
        "/photos/cat.jpg?w=80".to_owned(),
        signed("wrong", "/photos/cat.jpg?w=80"),
        signed(&token, "/photos/missing.jpg"),
        signed(&token, "/photos/cat.jpg?txt64=@@@"),
    ] {
        let response = mesh.get("canary", &url).await.unwrap();
        assert!(response.status >= 400, "{url}: {}", response.status);
        bodies.push(response.text());
    }
    let broken = create_deployed_or_failed(&mesh, "broken", "imgmesh-wrong-canary-0d9e3b").await;
    bodies.push(broken.to_string());
    let response = mesh.get("broken", "/photos/cat.jpg").await.unwrap();
    bodies.push(response.text());

    // Admin API refusals that carried secrets in.
    let refused = mesh
        .admin(
            "POST",
            "/v1/sources",
            Some(&source_body(
                &mesh,
                "refused",
                json!({"subdomain": "Bad_Label", "upload_secret_access_key": upload_secret}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 400);
    bodies.push(refused.text());
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    let truncated = imgmesh_integration_tests::request_with_body(
        "POST",
        mesh.gateway_admin_addr,
        "localhost",
        "/v1/sources",
        &[("authorization", authorization.as_str())],
        format!(r#"{{"name": "x", "secret_access_key": "{S3_SECRET_KEY}"#).into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(truncated.status, 400);
    bodies.push(truncated.text());
    let upload = imgmesh_integration_tests::request_with_body(
        "PUT",
        mesh.gateway_admin_addr,
        "localhost",
        &format!("/v1/sources/{id}/objects/canary.jpg"),
        &[("authorization", authorization.as_str())],
        b"not really an image".to_vec(),
    )
    .await
    .unwrap();
    bodies.push(upload.text());
    let sources = mesh.admin("GET", "/v1/sources", None).await.unwrap();
    bodies.push(sources.text());

    // An API key: made through the admin API (the one answer that shows
    // it), used, refused and revoked on a gateway serving the gRPC API.
    let created = mesh
        .admin(
            "POST",
            "/v1/api-keys",
            Some(&json!({"name": "canary", "operations": ["render"], "source_ids": [id]})),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let api_key = json_of(&created)["key"].as_str().unwrap().to_owned();
    let key_id = json_of(&created)["id"].as_str().unwrap().to_owned();
    let (mut api_gateway, _, _) = mesh
        .spawn_gateway(&mesh.renderer_url, &["--grpc-listen=127.0.0.1:0"])
        .await
        .unwrap();
    let grpc = api_gateway.listening("grpc").await.unwrap();
    let mut client = imgmesh_proto::image::v1::image_service_client::ImageServiceClient::connect(
        format!("http://{grpc}"),
    )
    .await
    .unwrap();
    let canary_target = |params: &str| imgmesh_proto::image::v1::ImageTarget {
        source: Some(imgmesh_proto::image::v1::image_target::Source::Subdomain(
            "canary".to_owned(),
        )),
        path: "photos/cat.jpg".to_owned(),
        params: params.to_owned(),
        accept: String::new(),
    };
    let last = if api_key.ends_with('0') { '1' } else { '0' };
    let wrong_key = format!("{}{last}", &api_key[..api_key.len() - 1]);
    for (key, params) in [
        (&api_key, "w=80"),
        (&api_key, "txt64=@@@"),
        (&wrong_key, "w=80"),
    ] {
        let mut request = tonic::Request::new(imgmesh_proto::image::v1::DescribeRequest {
            target: Some(canary_target(params)),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        if let Err(status) = client.describe(request).await {
            bodies.push(format!("{status:?}"));
        }
    }
    let listed = mesh.admin("GET", "/v1/api-keys", None).await.unwrap();
    bodies.push(listed.text());
    let revoked = mesh
        .admin("DELETE", &format!("/v1/api-keys/{key_id}"), None)
        .await
        .unwrap();
    assert_eq!(revoked.status, 200);
    bodies.push(revoked.text());
    bodies.push(api_gateway.log());

    // A named admin token: made (the one answer that shows it), used to
    // change the Source's secret, revoked, presented again; then the audit
    // log of all the above, which must name fields and never hold a value.
    let made = mesh
        .admin(
            "POST",
            "/v1/admin-tokens",
            Some(&json!({"name": "canary admin", "scope": "source_admin", "source_ids": [id]})),
        )
        .await
        .unwrap();
    assert_eq!(made.status, 201, "{}", made.text());
    let admin_token = json_of(&made)["token"].as_str().unwrap().to_owned();
    let admin_token_id = json_of(&made)["id"].as_str().unwrap().to_owned();
    let named_authorization = format!("Bearer {admin_token}");
    let rekeyed = imgmesh_integration_tests::request_with_body(
        "PATCH",
        mesh.gateway_admin_addr,
        "localhost",
        &format!("/v1/sources/{id}"),
        &[
            ("authorization", named_authorization.as_str()),
            ("content-type", "application/json"),
        ],
        json!({
            "upload_access_key_id": "IMGMESHUPLOADCANARY",
            "upload_secret_access_key": upload_secret,
        })
        .to_string()
        .into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(rekeyed.status, 200, "{}", rekeyed.text());
    bodies.push(rekeyed.text());
    let dropped = mesh
        .admin(
            "DELETE",
            &format!("/v1/admin-tokens/{admin_token_id}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(dropped.status, 200);
    bodies.push(dropped.text());
    let refused = imgmesh_integration_tests::request_with_body(
        "GET",
        mesh.gateway_admin_addr,
        "localhost",
        "/v1/sources",
        &[("authorization", named_authorization.as_str())],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(refused.status, 401);
    bodies.push(refused.text());
    let audit = mesh
        .admin("GET", "/v1/audit?limit=1000", None)
        .await
        .unwrap();
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert!(
        audit.text().contains("canary admin"),
        "the named token's change is not in the audit log"
    );
    bodies.push(audit.text());

    // Wait until the exporters have gone quiet (at trace level the batches
    // are large and h2's own spans crowd the queue, so no single span can
    // be waited for).
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now_seen = receiver.spans().len();
        if now_seen > 0 && now_seen == seen {
            break;
        }
        seen = now_seen;
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans never settled"
        );
    }

    let logs = mesh.all_logs();
    assert!(
        logs.lines().count() > 100,
        "trace logging is not on: {} lines",
        logs.lines().count()
    );
    let spans: Vec<String> = receiver.spans().iter().map(|s| s.text()).collect();
    let everything = [logs, spans.join("\n"), bodies.join("\n")];
    for secret in [
        S3_SECRET_KEY,
        upload_secret,
        token.as_str(),
        ADMIN_TOKEN,
        api_key.as_str(),
        admin_token.as_str(),
    ] {
        let encodings = [
            secret.to_owned(),
            hex::encode(secret),
            base64::engine::general_purpose::STANDARD.encode(secret),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        ];
        for (place, text) in ["logs", "spans", "bodies"].iter().zip(&everything) {
            for encoded in &encodings {
                if let Some(at) = text.find(encoded.as_str()) {
                    let from = at.saturating_sub(200);
                    panic!(
                        "a secret leaked into {place}: …{}…",
                        &text[from..(at + encoded.len() + 50).min(text.len())]
                    );
                }
            }
        }
    }
}

/// Creates a Source with a wrong secret and deploys it; the deploy fails
/// with a reason (returned), or — for stores that cannot tell — succeeds.
async fn create_deployed_or_failed(mesh: &Mesh, name: &str, secret: &str) -> Value {
    let created = create(
        mesh,
        &source_body(mesh, name, json!({"secret_access_key": secret})),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let response = mesh
        .admin("POST", &format!("/v1/sources/{id}/deploy"), None)
        .await
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.text());
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let source = json_of(
            &mesh
                .admin("GET", &format!("/v1/sources/{id}"), None)
                .await
                .unwrap(),
        );
        if matches!(source["status"].as_str(), Some("deployed" | "failed")) {
            return source;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deploy never ended: {source}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
