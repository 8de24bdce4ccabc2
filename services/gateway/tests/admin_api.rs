//! The admin HTTP API against a fake registry (see `support`): bearer
//! authentication, each endpoint's mapping onto its registry call, and the
//! JSON errors naming their field.

use axum::body::Body;
use clap::Parser as _;
use http::{Method, Request, StatusCode};
use imgmesh_gateway::{GatewayConfig, GatewayState};
use imgmesh_proto::prost_types::FieldMask;
use imgmesh_proto::registry::v1::{
    AccessKey, CacheTtlBehavior, Routing, SourceUpdate, UpdateSourceRequest,
};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Harness, ROTATED_TOKEN};

/// Requests without the exact bearer token are 401 JSON, on every path, and never reach the registry.
#[tokio::test]
async fn admin_requires_the_bearer_token() {
    let admin = Harness::start().await;
    let authorizations = [
        None,
        Some("Bearer wrong-token-0000000000".to_owned()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[1..])),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(ADMIN_TOKEN.to_owned()),
        Some("Bearer ".to_owned()),
    ];
    for path in ["/v1/sources", "/v1/sources/demo", "/v1/nothing-here"] {
        for authorization in &authorizations {
            let mut request = Request::builder().uri(path);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let answer = admin.admin_raw(request.body(Body::empty()).unwrap()).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{path} {authorization:?}"
            );
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
            assert_eq!(answer.json()["error"]["code"], "UNAUTHENTICATED");
            assert!(!answer.text().contains(ADMIN_TOKEN));
        }
    }
    assert_eq!(admin.admin_calls(), 0);

    // The scheme is case-insensitive.
    let request = Request::builder()
        .uri("/v1/sources")
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(admin.admin_raw(request).await.status, StatusCode::OK);
}

/// Without an admin token the admin API is off, and `run` refuses an admin listener.
#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let config = GatewayConfig::try_parse_from(["imgmesh-gateway"]).unwrap();
    let state = GatewayState::build(&config).unwrap();
    assert!(state.admin().is_none());
    let listener = |port| async move {
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap()
    };
    let error = imgmesh_gateway::run(
        state,
        listener(0).await,
        listener(0).await,
        Some(listener(0).await),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("admin token"), "{error}");
}

/// `GET /v1/sources` lists every Source; `GET /v1/sources/{id}` shows one, with enum names and no secret.
#[tokio::test]
async fn list_and_get_sources() {
    let admin = Harness::start().await;
    let answer = admin.admin(Method::GET, "/v1/sources", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let listed = answer.json();
    let names: Vec<&str> = listed["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "shop"]);

    let answer = admin.admin(Method::GET, "/v1/sources/demo", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let source = answer.json();
    assert_eq!(source["id"], "src_demo");
    assert_eq!(source["status"], "deployed");
    assert_eq!(source["cache_ttl_behavior"], "respect_origin");
    assert_eq!(source["access_key_id_hint"], "…WXYZ");
    assert!(source.get("secret_access_key").is_none());

    let answer = admin.admin(Method::GET, "/v1/sources/nobody", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.json(),
        json!({"error": {"code": "SOURCE_NOT_FOUND", "message": "source not found"}})
    );
}

/// `POST /v1/sources` passes every field (secrets included) to CreateSource and answers 201 with Location and no secret.
#[tokio::test]
async fn create_source_maps_every_field() {
    let admin = Harness::start().await;
    let body = json!({
        "name": "shop",
        "subdomain": "shop",
        "custom_domains": ["img.shop.example"],
        "bucket": "shop-images",
        "region": "eu-west-1",
        "path_prefix": "catalog",
        "access_key_id": "AKIASHOP1234",
        "secret_access_key": "create-secret-canary-5e1d",
        "upload_access_key_id": "AKIAUPLOAD99",
        "upload_secret_access_key": "upload-secret-canary-77b2",
        "cache_ttl_behavior": "enforce_minimum",
        "cache_ttl_seconds": 600,
        "cache_ttl_error_seconds": 30,
        "secure_url_enabled": true,
        "enabled": false,
    });
    let answer = admin
        .admin(Method::POST, "/v1/sources", Some(&body.to_string()))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.header("location"), Some("/v1/sources/src_new"));
    let source = answer.json();
    assert_eq!(source["name"], "shop");
    assert_eq!(source["access_key_id_hint"], "…1234");
    assert_eq!(source["enabled"], false);
    assert_eq!(source["status"], "pending");
    assert!(!answer.text().contains("canary"), "{}", answer.text());

    let created = admin.registry.created.lock().unwrap().pop().unwrap();
    assert_eq!(
        created.access_key.unwrap().secret,
        "create-secret-canary-5e1d"
    );
    assert_eq!(
        created.upload_access_key.unwrap().secret,
        "upload-secret-canary-77b2"
    );
    assert_eq!(
        created.routing.unwrap().custom_domains,
        ["img.shop.example"]
    );
    assert_eq!(created.location.unwrap().path_prefix, "catalog");
    let cache = created.cache_policy.unwrap();
    assert_eq!(cache.behavior, i32::from(CacheTtlBehavior::EnforceMinimum));
    assert_eq!((cache.ttl_seconds, cache.error_ttl_seconds), (600, 30));
    assert!(created.secure_url_enabled);
    assert!(created.disabled);
}

/// Registry and body errors are JSON naming the field, with the status of their code.
#[tokio::test]
async fn errors_are_json_naming_the_field() {
    let admin = Harness::start().await;
    let answer = admin
        .admin(
            Method::POST,
            "/v1/sources",
            Some(r#"{"name": "bad", "subdomain": "Not_A_Label"}"#),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.json(),
        json!({"error": {
            "code": "INVALID_ARGUMENT",
            "message": "subdomain: must be a DNS label",
            "field": "subdomain",
        }})
    );

    let answer = admin
        .admin(Method::POST, "/v1/sources", Some(r#"{"name": "demo"}"#))
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.json()["error"]["code"], "ALREADY_EXISTS");
    assert_eq!(answer.json()["error"]["field"], "name");

    let calls = admin.admin_calls();
    let body_errors = [
        (r#"{"name": "x", "bukket": "images"}"#, "bukket"),
        (
            r#"{"name": "x", "cache_ttl_seconds": "1h"}"#,
            "cache_ttl_seconds",
        ),
        (r#"{"name": "x", "secret_access_key": "oops"#, "body"),
        ("[]", "body"),
    ];
    for (body, field) in body_errors {
        let answer = admin.admin(Method::POST, "/v1/sources", Some(body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.json()["error"]["field"], field, "{body}");
        assert!(!answer.text().contains("oops"), "{}", answer.text());
    }
    assert_eq!(
        admin.admin_calls(),
        calls,
        "bad bodies never reach the registry"
    );

    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let answer = admin.admin(Method::POST, "/v1/sources", Some(&big)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"]["field"], "body");

    let answer = admin.admin(Method::GET, "/v1/elsewhere", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["code"], "NOT_FOUND");
    let answer = admin.admin(Method::PUT, "/v1/sources", None).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.json()["error"]["code"], "METHOD_NOT_ALLOWED");
}

/// A registry that is down is a JSON 503 whose message carries no address.
#[tokio::test]
async fn registry_down_is_503() {
    let admin = Harness::with_peers(false, true).await;
    let answer = admin.admin(Method::GET, "/v1/sources", None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"]["code"], "UNAVAILABLE");
    assert_eq!(answer.json()["error"]["message"], "registry: unavailable");
    // A foreign status from a live registry is generic too.
    let admin = Harness::start().await;
    let answer = admin.admin(Method::GET, "/v1/sources/slow", None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!answer.text().contains("10.9.8.7"), "{}", answer.text());
}

/// `PATCH` sends only the fields present; `name` cannot be changed.
#[tokio::test]
async fn patch_updates_present_fields() {
    let admin = Harness::start().await;
    let answer = admin
        .admin(
            Method::PATCH,
            "/v1/sources/demo",
            Some(r#"{"enabled": false, "custom_domains": [], "secret_access_key": "patched-secret-1f"}"#),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["enabled"], false);
    assert!(!answer.text().contains("patched-secret"));
    let updated = admin.registry.updated.lock().unwrap().pop().unwrap();
    assert_eq!(
        updated,
        UpdateSourceRequest {
            id_or_name: "demo".to_owned(),
            source: Some(SourceUpdate {
                routing: Some(Routing::default()),
                access_key: Some(AccessKey {
                    id: String::new(),
                    secret: "patched-secret-1f".to_owned(),
                }),
                enabled: false,
                ..SourceUpdate::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec![
                    "access_key.secret".to_owned(),
                    "routing.custom_domains".to_owned(),
                    "enabled".to_owned(),
                ],
            }),
        }
    );

    let answer = admin
        .admin(
            Method::PATCH,
            "/v1/sources/demo",
            Some(r#"{"name": "renamed"}"#),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["field"], "name");
}

/// `DELETE` is 204; deploy is 202 with the Source deploying; ids are percent-decoded.
#[tokio::test]
async fn delete_and_deploy() {
    let admin = Harness::start().await;
    let answer = admin
        .admin(Method::DELETE, "/v1/sources/src_demo", None)
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty());
    assert_eq!(*admin.registry.deleted.lock().unwrap(), ["src_demo"]);

    let answer = admin
        .admin(Method::POST, "/v1/sources/%64emo/deploy", None)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    assert_eq!(answer.json()["status"], "deploying");
    assert_eq!(*admin.registry.deployed.lock().unwrap(), ["demo"]);

    let answer = admin
        .admin(Method::POST, "/v1/sources/nobody/deploy", None)
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// Rotation needs a grace period, passes it on, and returns the new token once.
#[tokio::test]
async fn rotate_token_returns_the_new_token() {
    let admin = Harness::start().await;
    let answer = admin
        .admin(Method::POST, "/v1/sources/demo/rotate-token", Some("{}"))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["field"], "grace_period_seconds");

    let answer = admin
        .admin(
            Method::POST,
            "/v1/sources/demo/rotate-token",
            Some(r#"{"grace_period_seconds": 86400}"#),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    assert_eq!(body["token"], ROTATED_TOKEN);
    assert_eq!(body["source"]["active_secure_tokens"], 2);
    let rotated = admin.registry.rotated.lock().unwrap().pop().unwrap();
    assert_eq!(rotated.grace_period_seconds, 86_400);

    // Reading the Source afterwards never shows a token.
    let answer = admin.admin(Method::GET, "/v1/sources/demo", None).await;
    assert!(!answer.text().contains(ROTATED_TOKEN));
}

/// An upload streams the raw body to UploadObject with the decoded key, content type and size.
#[tokio::test]
async fn upload_streams_the_body() {
    let admin = Harness::start().await;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/sources/demo/objects/photos/caf%C3%A9.jpg")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "image/jpeg")
        .header("content-length", bytes.len())
        .body(Body::from(bytes.clone()))
        .unwrap();
    let answer = admin.admin_raw(request).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"key": "prefix/photos/café.jpg", "etag": "\"etag-1\"", "size": 200_000})
    );
    let (header, stored) = admin.registry.uploads.lock().unwrap().pop().unwrap();
    assert_eq!(header.id_or_name, "demo");
    assert_eq!(header.key, "photos/café.jpg");
    assert_eq!(header.content_type, "image/jpeg");
    assert_eq!(header.size, 200_000);
    assert!(stored == bytes, "stored bytes differ");
}

/// Upload keys that are not percent-encoded UTF-8 are 400 naming `key` without a registry call (which keys are allowed is the registry's rule, tested there and through the mesh); registry refusals keep their field.
#[tokio::test]
async fn upload_refusals() {
    let admin = Harness::start().await;
    for key in ["100%.jpg", "a%zzb.jpg", "x%2.jpg"] {
        let answer = admin
            .admin(
                Method::PUT,
                &format!("/v1/sources/demo/objects/{key}"),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{key}");
        assert_eq!(answer.json()["error"]["field"], "key", "{key}");
    }
    assert_eq!(admin.admin_calls(), 0);

    let answer = admin
        .admin(Method::PUT, "/v1/sources/nouploads/objects/a.jpg", None)
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["field"], "upload_access_key_id");
}
