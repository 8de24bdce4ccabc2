//! Object keys as S3 stores them: keys with spaces, non-ASCII, `+`, `%`,
//! parentheses, backslashes and the other characters S3 accepts are
//! uploaded through the admin API, listed by S3 exactly as given
//! (ListObjectsV2 under the Source's prefix), served at their
//! percent-encoded URL and purged by it; keys with empty (`a//b`) and `.`
//! segments are uploaded, served and purged at the URL that names them.
//! (edge.rs `any_addressable_key_uploads_serves_and_purges` checks the
//! refusals; this checks that what S3 lists is what a URL addresses.)

use std::collections::BTreeSet;

use imgmesh_integration_tests::admin::{create_deployed, json_of};
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{
    ADMIN_TOKEN, BUCKET, Mesh, MeshOptions, S3_ACCESS_KEY, S3_SECRET_KEY,
};
use serde_json::json;

/// Percent-encodes `key` for a URL path as imgix's client libraries do:
/// everything but unreserved characters and `/`, byte by byte.
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

/// The first answer for `url` once it is 200 (a fresh Source may take a
/// moment to be seen by every tier).
async fn served(mesh: &Mesh, url: &str) -> imgmesh_integration_tests::HttpResponse {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = mesh.get("listed", url).await.unwrap();
        if response.status == 200 {
            return response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url}: still {} {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A mesh with Source `listed` (prefix `photos`, upload credentials),
/// and the Source's id.
async fn mesh_with_source() -> (Mesh, String) {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    let source = create_deployed(
        &mesh,
        "listed",
        json!({
            "path_prefix": "photos",
            "upload_access_key_id": S3_ACCESS_KEY,
            "upload_secret_access_key": S3_SECRET_KEY,
        }),
    )
    .await;
    let id = source["id"].as_str().unwrap().to_owned();
    (mesh, id)
}

/// Uploads a 120 × 60 PNG as `key` (sent as `raw_key` in the upload path)
/// and checks the answer names `photos/<key>`.
async fn upload(mesh: &Mesh, id: &str, raw_key: &str, key: &str) {
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    let uploaded = imgmesh_integration_tests::request_with_body(
        "PUT",
        mesh.gateway_admin_addr,
        "localhost",
        &format!("/v1/sources/{id}/objects/{raw_key}"),
        &[
            ("authorization", authorization.as_str()),
            ("content-type", "image/png"),
        ],
        fixtures::png(120, 60).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(uploaded.status, 201, "{key}: {}", uploaded.text());
    assert_eq!(json_of(&uploaded)["key"], format!("photos/{key}"), "{key}");
}

/// The keys S3 lists under `photos/` (ListObjectsV2).
async fn listed_keys(mesh: &Mesh) -> BTreeSet<String> {
    let client = imgmesh_s3_client::BucketClient::new(&imgmesh_s3_client::BucketAccess {
        location: imgmesh_s3_client::BucketLocation {
            bucket: BUCKET.to_owned(),
            region: "us-east-1".to_owned(),
            endpoint: Some(mesh.s3_endpoint.clone()),
            path_prefix: String::new(),
        },
        key: imgmesh_s3_client::AccessKey::new(S3_ACCESS_KEY, S3_SECRET_KEY),
    });
    let listing = client
        .primary()
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("photos/")
        .send()
        .await
        .expect("ListObjectsV2");
    listing
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect()
}

/// `path` serves the uploaded PNG at `w=60` (a hit the second time), is
/// purged by its URL, and the next request is a miss.
async fn serves_and_purges(mesh: &Mesh, id: &str, path: &str) {
    let url = format!("{path}?w=60&fm=png");
    let served = served(mesh, &url).await;
    fixtures::expect_image(&served.body, Format::Png, 60, 30).unwrap();
    let again = mesh.get("listed", &url).await.unwrap();
    assert_eq!(again.header("x-imgmesh-cache"), Some("hit"), "{path}");
    let purged = mesh
        .admin(
            "POST",
            &format!("/v1/sources/{id}/purge"),
            Some(&json!({ "path": format!("https://listed.localhost{url}") })),
        )
        .await
        .unwrap();
    assert_eq!(purged.status, 200, "{path}: {}", purged.text());
    let after = mesh.get("listed", &url).await.unwrap();
    assert_eq!(after.status, 200, "{path}");
    assert_eq!(after.header("x-imgmesh-cache"), Some("miss"), "{path}");
}

/// Every key uploaded is listed by S3 exactly, under the prefix, and each
/// listed key serves at its encoded URL and is purged by that URL.
#[tokio::test]
async fn uploaded_keys_are_listed_served_and_purged_as_given() {
    let (mesh, id) = mesh_with_source().await;
    let keys = [
        "two  spaces.png",
        "Ünïcödé/naïve café.png",
        "写真 (2).png",
        "a+b=c&d.png",
        "50% off!.png",
        "it's [draft] @home, v1;2.png",
        "~tilde/$dollar*.png",
        "back\\slash (1).png",
        "dir\\sub\\x.png",
    ];
    for key in keys {
        upload(&mesh, &id, &encode_path(key), key).await;
    }
    let listed = listed_keys(&mesh).await;
    let expected: BTreeSet<String> = keys.iter().map(|key| format!("photos/{key}")).collect();
    assert_eq!(listed, expected, "S3 lists the keys as uploaded");
    for listed_key in &listed {
        let key = listed_key.strip_prefix("photos/").unwrap();
        serves_and_purges(&mesh, &id, &format!("/{}", encode_path(key))).await;
    }
}

/// Keys with empty (`a//b`) and `.` segments, which S3 stores as keys of
/// their own and imgmesh no longer refuses: each uploads under the prefix
/// as given, serves at the URL path that names it byte for byte (`//` and
/// `/./` sent as they are, and `%2E` decoded once to `.`), and is purged by
/// that URL. The test store, s3s-fs, keeps objects as files, so it files
/// `a//b` and `a/./b` at the path `a/b` and lists them so; AWS S3 lists
/// the keys as given (docs/migrating-from-imgix.md, "Object keys").
#[tokio::test]
async fn empty_and_dot_segment_keys_upload_serve_and_purge() {
    let (mesh, id) = mesh_with_source().await;
    // (key, the URL paths that name it, where a file-system store files it)
    let keys = [
        (
            "a//double.png",
            &["/a//double.png", "/a%2F%2Fdouble.png"][..],
            "a/double.png",
        ),
        (
            "dot/./seg.png",
            &["/dot/./seg.png", "/dot/%2E/seg.png"][..],
            "dot/seg.png",
        ),
        (
            "./lead.png",
            &["/./lead.png", "/%2e/lead.png"][..],
            "lead.png",
        ),
    ];
    for (key, _, _) in keys {
        upload(&mesh, &id, key, key).await;
    }
    // s3s-fs lists the files it wrote: the keys with their empty and `.`
    // segments resolved (what AWS S3 would list is the keys as given).
    let filed: BTreeSet<String> = keys
        .iter()
        .map(|(_, _, file)| format!("photos/{file}"))
        .collect();
    assert_eq!(listed_keys(&mesh).await, filed, "s3s-fs lists its files");
    for (_, paths, _) in keys {
        for path in paths {
            serves_and_purges(&mesh, &id, path).await;
        }
    }
}
