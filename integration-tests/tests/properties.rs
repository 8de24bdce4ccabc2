//! Properties of the edge checked black-box against the real mesh, for
//! generated inputs rather than a list: a URL signed the way imgix's client
//! libraries sign it is served, and no one-byte change of it (replaced,
//! deleted or inserted, anywhere in the path, query or signature) is; and
//! no path, however its dots, slashes and backslashes are encoded, reads an
//! object outside the Source's path prefix — not at the bucket's root, not
//! in a sibling prefix, not in another bucket of the S3 server, not in the
//! server's own directory.
//!
//! (The same invariants are unit properties in `services/gateway/src/signing.rs`,
//! `services/fetcher/src/object_key.rs` and the query → plan idempotence in
//! `shared/imgix-params/tests/properties.rs`; here they go through the
//! gateway, the fetcher and a real S3 server that maps keys to files.)

use std::time::Duration;

use imgmesh_integration_tests::admin::{SETTLE, create_deployed, rotate};
use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{HttpResponse, Mesh, MeshOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

/// A current-thread runtime for driving the mesh from proptest's
/// synchronous closures.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `path_and_query` with `s` appended as imgix's client libraries do:
/// MD5 of the token, the path and the query, lowercase hex.
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

/// Polls until `path` on `subdomain` answers `status` (host cache, deploy).
async fn eventually(mesh: &Mesh, subdomain: &str, path: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let response = mesh.get(subdomain, path).await.unwrap();
        if response.status == status {
            return;
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

/// Object keys of the signing test's Source, each a small JPEG.
const SIGNED_KEYS: [&str; 3] = ["cat.jpg", "a/b.jpg", "x y.jpg"];

/// One edit of a URL: replace, delete or insert a byte at `at`.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, u8),
}

// === impl Edit ===

impl Edit {
    /// `url` with this edit applied; `None` when it changes nothing or the
    /// result is no request target any client could send.
    fn apply(&self, url: &str) -> Option<String> {
        let mut bytes = url.as_bytes().to_vec();
        match self {
            Edit::Replace(at, byte) => {
                // Byte 0 is the leading `/` of the request target.
                let at = 1 + at.index(bytes.len() - 1);
                bytes[at] = *byte;
            }
            Edit::Delete(at) => {
                bytes.remove(1 + at.index(bytes.len() - 1));
            }
            Edit::Insert(at, byte) => {
                bytes.insert(1 + at.index(bytes.len()), *byte);
            }
        }
        let edited = String::from_utf8(bytes).ok()?;
        if edited == url || edited.contains('#') {
            return None;
        }
        edited.parse::<http::uri::PathAndQuery>().ok()?;
        Some(edited)
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    // Printable ASCII: what a URL can carry unescaped.
    let byte = 0x21u8..0x7f;
    prop_oneof![
        (any::<prop::sample::Index>(), byte.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
        (any::<prop::sample::Index>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
    ]
}

/// A query as client libraries write it: a few parameters the renderer
/// ignores or accepts whatever their value (none named `s`).
fn query() -> impl Strategy<Value = Option<String>> {
    let pair = prop_oneof![
        "w=[1-9][0-9]?",
        "h=[1-9][0-9]?",
        "q=[1-9][0-9]?",
        "utm_[a-z]{1,4}=[a-z0-9%+.,-]{0,6}",
        "ixlib=[a-z]{2,4}-[0-9][.][0-9]",
    ];
    proptest::option::of(prop::collection::vec(pair, 1..4).prop_map(|pairs| pairs.join("&")))
}

/// A URL of an existing object signed with the Source's token is served
/// (200), and every one-byte edit of it is refused (never 200, never 5xx;
/// 403 unless the edit broke the request before the signature is read).
#[test]
fn signed_urls_serve_and_no_one_byte_edit_does() {
    let rt = runtime();
    let (mesh, token) = rt.block_on(async {
        let mesh = Mesh::start(MeshOptions::default())
            .await
            .expect("mesh starts");
        let jpeg = fixtures::jpeg(48, 32).unwrap();
        for key in SIGNED_KEYS {
            mesh.put_object(key, &jpeg).unwrap();
        }
        let source = create_deployed(&mesh, "signed", json!({"secure_url_enabled": true})).await;
        let (token, _) = rotate(&mesh, source["id"].as_str().unwrap(), 0).await;
        eventually(&mesh, "signed", &signed(&token, "/cat.jpg"), 200).await;
        (mesh, token)
    });
    let paths = ["/cat.jpg", "/a/b.jpg", "/x%20y.jpg"];
    let strategy = (
        prop::sample::select(paths.to_vec()),
        query(),
        prop::collection::vec(edit(), 6),
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let refused = std::cell::Cell::new(0usize);
    let result = runner.run(&strategy, |(path, query, edits)| {
        let path_and_query = match &query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let url = signed(&token, &path_and_query);
        rt.block_on(async {
            let served = mesh.get("signed", &url).await.unwrap();
            prop_assert_eq!(served.status, 200, "{} → {}", url, served.text());
            for edit in &edits {
                let Some(edited) = edit.apply(&url) else {
                    continue;
                };
                let response: HttpResponse = mesh
                    .get("signed", &edited)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{edited}: {e}")))?;
                prop_assert!(
                    response.status != 200 && response.status < 500,
                    "{} (from {}) answered {} {}",
                    edited,
                    url,
                    response.status,
                    response.text()
                );
                refused.set(refused.get() + usize::from(response.status == 403));
            }
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Most edits reach the signature check and fail it there.
    let refused = refused.get();
    assert!(refused > 100, "only {refused} edits were 403");
}

/// Path segments an escape is built from: dot segments and separators in
/// every encoding, names of what lies outside, and ordinary names.
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "..",
        ".",
        "",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "%2e",
        "%252e%252e",
        "%2f",
        "%2F",
        "%5c",
        "%5C",
        "..%2f",
        "..%5c",
        "%00",
        "public",
        "publicity",
        "images",
        "vault",
        "s3",
        "cat.jpg",
        "secret.jpg",
    ])
}

/// The secret's size: no derivative of an object inside the prefix has it.
const SECRET_SIZE: (i32, i32) = (123, 45);

/// No generated path reads a secret outside the prefix `public`: whatever
/// it answers (200 for an object inside, else 4xx, never 5xx), a 200 is
/// never the secret (which has a size no inside object has).
#[test]
fn no_path_leaves_the_prefix() {
    let rt = runtime();
    let mesh = rt.block_on(async {
        let mesh = Mesh::start(MeshOptions::default())
            .await
            .expect("mesh starts");
        let inside = fixtures::jpeg(64, 48).unwrap();
        let secret = fixtures::jpeg(SECRET_SIZE.0, SECRET_SIZE.1).unwrap();
        mesh.put_object("public/cat.jpg", &inside).unwrap();
        // No directory inside the prefix: s3s-fs answers a key that names
        // a directory with 500 InternalError (S3 itself would say 404).
        mesh.put_object("secret.jpg", &secret).unwrap();
        mesh.put_object("publicity/secret.jpg", &secret).unwrap();
        // Another bucket of the S3 server, and the server's own directory.
        let s3_root = mesh.bucket_dir().parent().unwrap().to_path_buf();
        std::fs::create_dir_all(s3_root.join("vault")).unwrap();
        std::fs::write(s3_root.join("vault/secret.jpg"), &secret).unwrap();
        std::fs::write(s3_root.join("secret.jpg"), &secret).unwrap();
        std::fs::write(mesh.dir.path().join("secret.jpg"), &secret).unwrap();
        create_deployed(&mesh, "prefixed", json!({"path_prefix": "public"})).await;
        eventually(&mesh, "prefixed", "/cat.jpg", 200).await;
        mesh
    });
    // Every path is aimed at a file: the secret, or the object inside.
    let strategy = (
        prop::collection::vec(segment(), 0..6),
        prop::sample::select(vec!["secret.jpg", "cat.jpg"]),
        prop::bool::ANY,
        prop::bool::ANY,
    );
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let served = std::cell::Cell::new(0usize);
    let sent = std::cell::Cell::new(0usize);
    let result = runner.run(
        &strategy,
        |(mut segments, file, double_slash, encoded_slash)| {
            segments.push(file);
            let separator = if encoded_slash { "%2F" } else { "/" };
            let lead = if double_slash { "//" } else { "/" };
            let path = format!("{lead}{}", segments.join(separator));
            if path.parse::<http::uri::PathAndQuery>().is_err() {
                return Ok(());
            }
            sent.set(sent.get() + 1);
            rt.block_on(async {
                let response = mesh
                    .get("prefixed", &path)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                prop_assert!(
                    response.status < 500,
                    "{} answered {} {}\n{}",
                    path,
                    response.status,
                    response.text(),
                    mesh.log_tail()
                );
                if response.status == 200 {
                    served.set(served.get() + 1);
                    let decoded = fixtures::decode(&response.body)
                        .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                    prop_assert_ne!(
                        (decoded.width, decoded.height),
                        SECRET_SIZE,
                        "{} served the secret",
                        path
                    );
                }
                Ok(())
            })
        },
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert!(sent.get() > 350, "only {} paths were sent", sent.get());
    // The generator does reach the object inside the prefix too.
    assert!(served.get() > 0, "no generated path was served");
    eprintln!(
        "{} of {} paths sent were served from inside the prefix",
        served.get(),
        sent.get()
    );
}
