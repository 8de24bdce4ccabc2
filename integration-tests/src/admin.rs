//! Sources through the gateway's admin API, as tests need them: create,
//! deploy and wait, rotate the signing token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{BUCKET, HttpResponse, Mesh, S3_ACCESS_KEY, S3_SECRET_KEY};

/// How long a test waits for the gateway's host cache (200 ms in tests) or
/// a deploy to catch up.
pub const SETTLE: Duration = Duration::from_secs(20);

/// A create body for a Source `name` (subdomain = name) on the test bucket
/// with the test credentials, plus `extra` fields.
pub fn source_body(mesh: &Mesh, name: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": name,
        "subdomain": name,
        "bucket": BUCKET,
        "region": "us-east-1",
        "endpoint": mesh.s3_endpoint,
        "access_key_id": S3_ACCESS_KEY,
        "secret_access_key": S3_SECRET_KEY,
    });
    for (key, value) in extra.as_object().expect("extra is an object") {
        body[key] = value.clone();
    }
    body
}

/// The body of `response` as JSON (panics with the text when it is not).
pub fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// Creates a Source through the admin API (not deployed) and returns it.
pub async fn create(mesh: &Mesh, body: &Value) -> Value {
    let response = mesh.admin("POST", "/v1/sources", Some(body)).await.unwrap();
    assert_eq!(response.status, 201, "{}", response.text());
    json_of(&response)
}

/// Deploys a Source through the admin API and waits until it is deployed.
pub async fn deploy(mesh: &Mesh, id: &str) -> Value {
    let response = mesh
        .admin("POST", &format!("/v1/sources/{id}/deploy"), None)
        .await
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.text());
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let response = mesh
            .admin("GET", &format!("/v1/sources/{id}"), None)
            .await
            .unwrap();
        let source = json_of(&response);
        match source["status"].as_str() {
            Some("deployed") => return source,
            Some("failed") => panic!("deploy failed: {source}"),
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not deployed: {source}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates and deploys a Source, returning it.
pub async fn create_deployed(mesh: &Mesh, name: &str, extra: Value) -> Value {
    let created = create(mesh, &source_body(mesh, name, extra)).await;
    deploy(mesh, created["id"].as_str().unwrap()).await
}

/// Rotates a Source's secure URL token and returns the new one.
pub async fn rotate(mesh: &Mesh, id: &str, grace_period_seconds: u32) -> (String, Value) {
    let response = mesh
        .admin(
            "POST",
            &format!("/v1/sources/{id}/rotate-token"),
            Some(&json!({ "grace_period_seconds": grace_period_seconds })),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let body = json_of(&response);
    (
        body["token"].as_str().unwrap().to_owned(),
        body["source"].clone(),
    )
}
