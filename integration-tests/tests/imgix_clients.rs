//! imgix's own client libraries against the real mesh: `@imgix/js-core`
//! (pinned in tools/package.json) and the `imgix` Python package (installed
//! into tools/python by scripts/install-deps.sh) build plain and signed
//! URLs and srcsets — fixed width with dpr variants and variable quality,
//! fluid widths, explicit widths, `ixlib`, `expires` and base64 (`txt64`)
//! parameters — for two Sources, and every URL they build answers 200 with
//! the width and format the library asked for. A signed URL with any one
//! byte changed is refused, and one whose `expires` has passed is 404
//! (https://docs.imgix.com/apis/rendering/expiration: "If the given
//! expiration date is in the past, the image will not be served and a 404
//! status code will be returned"; in the future, "the image will be served
//! with a Cache-Control header that displays the amount of time in seconds
//! remaining until the image expires").
//!
//! The scripts in integration-tests/clients/ print what they built and what
//! they asked for; nothing expected here is read from imgmesh's output.

use std::path::PathBuf;

use imgmesh_integration_tests::admin::{create_deployed, rotate};
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{Mesh, MeshOptions, find_tool};
use serde_json::{Value, json};

/// The original every URL names: a path with a space, so the libraries'
/// path encoding is exercised too.
const PATH: &str = "/photos/hero photo.jpg";
/// Its size: every output keeps this 4:3 aspect ratio.
const ORIGINAL: (i32, i32) = (1280, 960);

/// One URL a library built, with what it asked for.
#[derive(Debug)]
struct Built {
    kind: String,
    url: String,
    width: i32,
    format: Format,
    signed: bool,
}

/// The repository's root (this crate lives one level below it).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the repository")
        .to_path_buf()
}

/// Runs a client script and reads its JSON lines.
async fn built_by(mut command: tokio::process::Command, token: &str) -> Vec<Built> {
    let output = command
        .args(["plain.localhost", "signed.localhost", token, PATH])
        .output()
        .await
        .expect("the client script runs");
    assert!(
        output.status.success(),
        "client script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built: Vec<Built> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            Built {
                kind: value["kind"].as_str().unwrap().to_owned(),
                url: value["url"].as_str().unwrap().to_owned(),
                width: i32::try_from(value["width"].as_i64().unwrap()).unwrap(),
                format: match value["format"].as_str().unwrap() {
                    "webp" => Format::Webp,
                    "png" => Format::Png,
                    "jpeg" => Format::Jpeg,
                    other => panic!("unexpected format {other}"),
                },
                signed: value["signed"].as_bool().unwrap(),
            }
        })
        .collect();
    assert!(built.len() >= 20, "too few URLs: {built:?}");
    built
}

/// The subdomain and path-and-query of a URL a library built.
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, _) = rest.split_once('/').expect("a path");
    let subdomain = host.strip_suffix(".localhost").expect("a test host");
    (subdomain, &rest[host.len()..])
}

/// Starts a mesh serving [`PATH`] from Source `plain` (open) and Source
/// `signed` (secure URLs); returns it with `signed`'s token.
async fn mesh() -> (Mesh, String) {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object(
        PATH.trim_start_matches('/'),
        &fixtures::jpeg(ORIGINAL.0, ORIGINAL.1).unwrap(),
    )
    .unwrap();
    create_deployed(&mesh, "plain", json!({})).await;
    let signed = create_deployed(&mesh, "signed", json!({"secure_url_enabled": true})).await;
    let (token, _) = rotate(&mesh, signed["id"].as_str().unwrap(), 0).await;
    (mesh, token)
}

/// Checks that the library built what each kind says: `ixlib` on plain URLs
/// and not where it was turned off, `expires` where asked, and variable
/// quality (a `q` falling as the dpr rises) in the dpr srcsets.
fn check_built(built: &[Built]) {
    let of = |kind: &str| -> Vec<&Built> { built.iter().filter(|url| url.kind == kind).collect() };
    assert!(of("url")[0].url.contains("ixlib="), "{built:?}");
    assert!(!of("url without ixlib")[0].url.contains("ixlib="));
    assert!(of("signed url with expires")[0].url.contains("expires="));
    assert!(of("url with txt64")[0].url.contains("txt64="));
    for signed in [false, true] {
        let qualities: Vec<u32> = built
            .iter()
            .filter(|url| url.kind.starts_with("dpr srcset") && url.signed == signed)
            .map(|url| {
                let query = url.url.split_once('?').expect("a query").1;
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("q="))
                    .expect("a q per dpr")
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(qualities.len(), 5, "dpr 1x to 5x");
        assert!(
            qualities.windows(2).all(|pair| pair[0] > pair[1]),
            "variable quality: {qualities:?}"
        );
    }
    for kind in ["signed fluid srcset", "fluid srcset", "signed width srcset"] {
        assert!(
            built.iter().any(|url| url.kind.starts_with(kind)),
            "no {kind}"
        );
    }
}

/// Requests every URL: an expired one must be 404, every other must be the
/// image asked for (a URL with `expires` cached no longer than it lives);
/// for every signed URL, every single-byte change is refused.
async fn check_all(mesh: &Mesh, built: &[Built]) {
    check_built(built);
    let (expired, live): (Vec<&Built>, Vec<&Built>) = built
        .iter()
        .partition(|url| url.kind.starts_with("expired"));
    assert_eq!(expired.len(), 1);
    for url in &expired {
        let (subdomain, path_and_query) = split_url(&url.url);
        let response = mesh.get(subdomain, path_and_query).await.unwrap();
        assert_eq!(response.status, 404, "{}: {}", url.kind, url.url);
    }
    for url in live {
        let (subdomain, path_and_query) = split_url(&url.url);
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            mesh.get(subdomain, path_and_query),
        )
        .await
        .expect("answered in time")
        .unwrap();
        assert_eq!(
            response.status,
            200,
            "{}: {} → {}",
            url.kind,
            url.url,
            response.text()
        );
        let decoded = fixtures::decode(&response.body).unwrap();
        let height = (f64::from(url.width) * f64::from(ORIGINAL.1) / f64::from(ORIGINAL.0)).round();
        assert_eq!(
            (decoded.format, decoded.width),
            (url.format, url.width),
            "{}: {}",
            url.kind,
            url.url
        );
        assert!(
            (f64::from(decoded.height) - height).abs() <= 1.0,
            "{}: height {} for width {}",
            url.kind,
            decoded.height,
            url.width
        );
        if url.url.contains("expires=") {
            // The library set expires an hour ahead.
            let max_age: u64 = response
                .header("cache-control")
                .and_then(|value| value.split("max-age=").nth(1))
                .and_then(|rest| rest.split(',').next())
                .and_then(|seconds| seconds.trim().parse().ok())
                .unwrap_or_else(|| panic!("{}: no max-age", url.kind));
            assert!(max_age <= 3600, "{}: max-age {max_age}", url.kind);
        }
    }
    for url in built.iter().filter(|url| url.signed) {
        let (subdomain, path_and_query) = split_url(&url.url);
        for at in 1..path_and_query.len() {
            let mut changed = path_and_query.as_bytes().to_vec();
            changed[at] = match changed[at] {
                b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => changed[at] + 1,
                b'9' => b'0',
                b'z' => b'a',
                b'Z' => b'A',
                _ => b'x',
            };
            let changed = String::from_utf8(changed).unwrap();
            let response = mesh.get(subdomain, &changed).await.unwrap();
            assert!(
                (400..500).contains(&response.status),
                "{}: {changed} answered {}",
                url.kind,
                response.status
            );
        }
    }
}

/// URLs and srcsets built by `@imgix/js-core` all render as asked; signed
/// ones fail with any byte changed.
#[tokio::test]
async fn imgix_js_core_urls_render_as_asked() {
    let (mesh, token) = mesh().await;
    let modules = repo_root().join("tools/node_modules");
    assert!(
        modules.join("@imgix/js-core").is_dir(),
        "@imgix/js-core is not installed: `make test` installs it (tools/package.json)"
    );
    let mut command = tokio::process::Command::new(find_tool("node").unwrap());
    command
        .arg(repo_root().join("integration-tests/clients/imgix-js-core.cjs"))
        .env("NODE_PATH", modules);
    let built = built_by(command, &token).await;
    check_all(&mesh, &built).await;
}

/// URLs and srcsets built by imgix's Python library all render as asked;
/// signed ones fail with any byte changed.
#[tokio::test]
async fn imgix_python_urls_render_as_asked() {
    let (mesh, token) = mesh().await;
    let site = repo_root().join("tools/python");
    assert!(
        site.join("imgix").is_dir(),
        "the imgix Python package is not installed: `make test` installs it into tools/python"
    );
    let mut command = tokio::process::Command::new(find_tool("python3").unwrap());
    command
        .arg(repo_root().join("integration-tests/clients/imgix_python.py"))
        .env("PYTHONPATH", site);
    let built = built_by(command, &token).await;
    check_all(&mesh, &built).await;
}
