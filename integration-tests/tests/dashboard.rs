//! The dashboard in a real browser: Debian's Chromium, headless, driven
//! through chromedriver's WebDriver HTTP API, against a real mesh (s3s-fs,
//! Redis and the four services).
//!
//! Each page visited is checked for a `<label for>` on every field and for
//! loading nothing from any origin but the admin listener (from the page's
//! resource timings and the browser's network log), and saved as a
//! screenshot under `$CARGO_TARGET_TMPDIR/dashboard-screenshots`.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use futures::FutureExt as _;
use imgmesh_integration_tests::admin::SETTLE;
use imgmesh_integration_tests::fault_proxy::{Fault, FaultProxy};
use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{
    ADMIN_TOKEN, BASE_DOMAIN, BUCKET, ChildProcess, Mesh, MeshOptions, S3_ACCESS_KEY,
    S3_SECRET_KEY, request_with_body,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long the browser may take to show what a step expects.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The key WebDriver names a found element by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code points for Enter and Arrow Down.
const ENTER: &str = "\u{E007}";
const ARROW_DOWN: &str = "\u{E015}";

/// Logs in (a wrong token refused, pages redirect to the login page without
/// the session), refuses a form without its CSRF token, creates an S3 Source
/// through the wizard whose status turns to deployed without a reload, shows
/// the registry's own validation message next to the field, names the
/// missing s3:GetObject of a failed deploy with the policy, searches the
/// list, purges an asset (the next render is a miss), edits settings (a
/// refused one with the API's message, default parameters that then apply
/// to renders), rotates the signing token (shown once; the old one signs
/// through its grace period), renders in the image sandbox (a changed
/// parameter re-renders without a reload; the preview's size and colours
/// read from its bytes; the signed URL shown renders publicly), draws the
/// Overview's charts from the gateway's own counters, uploads a file from
/// the Assets page with the script and as a plain multipart form (its
/// thumbnail rendered by imgmesh; a Source without upload credentials says
/// so), lists the Source's objects with thumbnails and pages through them,
/// shows one Source's figures on the Overview, deletes a
/// Source and logs out, all by
/// keyboard and mouse in Chromium.
#[tokio::test]
async fn dashboard_in_a_real_browser() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(1200, 800).unwrap())
        .unwrap();
    mesh.put_object(
        "photos/quad.png",
        &fixtures::quadrants_png(200, 100).unwrap(),
    )
    .unwrap();
    let mut browser = Browser::start()
        .await
        .expect("chromedriver and chromium start");
    let outcome = AssertUnwindSafe(walk_through(&mesh, &mut browser))
        .catch_unwind()
        .await;
    browser.quit().await;
    match outcome {
        Ok(result) => result.unwrap(),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn walk_through(mesh: &Mesh, browser: &mut Browser) -> anyhow::Result<()> {
    let admin = format!("http://{}", mesh.gateway_admin_addr);
    browser.origin = admin.clone();

    // Without a session every page sends the browser to the login page.
    browser.goto(&format!("{admin}/ui/sources")).await?;
    assert_eq!(browser.path().await?, "/ui/login");
    browser.check_page("login").await?;

    // A wrong token is refused and sets no session.
    browser.type_into("#token", "not-the-admin-token").await?;
    browser.type_into("#token", ENTER).await?;
    let refused = browser.wait_for_text("#login-error").await?;
    assert_eq!(refused, "That is not the admin token.");
    assert!(browser.cookie("imgmesh_session").await?.is_none());
    browser.check_page("login-refused").await?;

    // The right one, typed and submitted with Enter, logs in.
    browser.type_into("#token", ADMIN_TOKEN).await?;
    browser.type_into("#token", ENTER).await?;
    browser.wait_for_path("/ui/sources").await?;
    let cookie = browser
        .cookie("imgmesh_session")
        .await?
        .context("no session cookie")?;
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(cookie["path"], "/ui", "{cookie}");
    let session_id = cookie["value"].as_str().unwrap().to_owned();
    assert!(!session_id.contains(ADMIN_TOKEN));
    browser.wait_for_text("#no-sources").await?;
    browser.check_page("sources-empty").await?;

    // A form posted in the session without its CSRF token is refused.
    let session_cookie = format!("imgmesh_session={session_id}");
    let forged = request_with_body(
        "POST",
        mesh.gateway_admin_addr,
        "localhost",
        "/ui/sources/new",
        &[
            ("cookie", session_cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"storage=s3&name=forged&subdomain=forged".to_vec(),
    )
    .await?;
    assert_eq!(forged.status, 403, "{}", forged.text());
    let listed = mesh.admin("GET", "/v1/sources", None).await?;
    assert_eq!(
        imgmesh_integration_tests::admin::json_of(&listed)["sources"],
        json!([])
    );

    // The wizard, storage step by keyboard: Arrow Down picks S3-compatible,
    // Enter goes on.
    browser.click("#new-source").await?;
    browser.wait_for_path("/ui/sources/new").await?;
    browser.check_page("new-source-storage").await?;
    browser.type_into("#storage-s3", ARROW_DOWN).await?;
    browser.type_into("#storage-s3-compatible", ENTER).await?;
    browser.wait_for_path("/ui/sources/new/s3").await?;
    browser.check_page("new-source-details").await?;

    // A subdomain the registry refuses: the API's own message, by the field.
    // The deploy stalls at the proxy until the test lets it through, so the
    // status page is seen deploying first.
    let proxy = FaultProxy::start(&mesh.s3_endpoint).await?;
    let bad_subdomain = "Not A Label";
    fill_details(browser, "shop", bad_subdomain, &proxy.endpoint()).await?;
    browser.click("#deploy-source").await?;
    let field_error = browser.wait_for_text("#subdomain-error").await?;
    let api = mesh
        .admin(
            "POST",
            "/v1/sources",
            Some(&json!({
                "name": "shop", "subdomain": bad_subdomain, "bucket": BUCKET,
                "region": "us-east-1", "endpoint": proxy.endpoint(),
                "access_key_id": S3_ACCESS_KEY, "secret_access_key": S3_SECRET_KEY,
            })),
        )
        .await?;
    assert_eq!(api.status, 400, "{}", api.text());
    let api_error = imgmesh_integration_tests::admin::json_of(&api);
    assert_eq!(api_error["error"]["field"], "subdomain");
    assert_eq!(field_error, api_error["error"]["message"].as_str().unwrap());
    browser.check_page("new-source-invalid").await?;

    proxy.set(Fault::StallBeforeHeaders);
    fill_details(browser, "shop", "shop", &proxy.endpoint()).await?;
    browser.click("#deploy-source").await?;
    browser.wait_for_path_suffix("/deploy").await?;
    assert_eq!(browser.text("#status-word").await?, "deploying");
    browser.check_page("deploy-running").await?;
    // A marker the page keeps only if it is never reloaded.
    browser
        .script("window.imgmeshMarker = 'still here'; return null;")
        .await?;
    proxy.set(Fault::Pass);
    browser.wait_for_exact("#status-word", "deployed").await?;
    assert_eq!(
        browser
            .script("return window.imgmeshMarker || null;")
            .await?,
        "still here",
        "the status turned to deployed without a reload"
    );
    browser.check_page("deploy-deployed").await?;
    let shop_page = browser.path().await?.trim_end_matches("/deploy").to_owned();

    // Credentials lacking GetObject: the failure names it, with the policy.
    let front = GetObjectDeniedFront::start().await?;
    browser
        .goto(&format!("{admin}/ui/sources/new/s3?storage=s3_compatible"))
        .await?;
    // The subdomain is checked while it is typed.
    browser.type_into("#subdomain", "shop").await?;
    browser
        .wait_for_exact("#subdomain-check", "“shop” is taken by the Source shop.")
        .await?;
    browser.check_page("new-source-subdomain-taken").await?;
    fill_details(browser, "locked", "locked", &front.endpoint()).await?;
    browser
        .wait_for_exact("#subdomain-check", "“locked” is not used by any Source.")
        .await?;
    browser.click("#deploy-source").await?;
    browser.wait_for_path_suffix("/deploy").await?;
    browser.wait_for_exact("#status-word", "failed").await?;
    assert_eq!(
        browser.text("#failure-reason").await?,
        "The deploy failed: missing s3:GetObject"
    );
    let missing = browser.text("#missing-permission").await?;
    assert!(
        missing.contains("lack the s3:GetObject permission"),
        "{missing}"
    );
    let policy: Value = serde_json::from_str(&browser.text("#iam-policy").await?)?;
    assert_eq!(
        policy["Statement"][1]["Resource"][0],
        format!("arn:aws:s3:::{BUCKET}/*")
    );
    browser.check_page("deploy-failed").await?;

    // The list shows both with their status; the search narrows it.
    browser.goto(&format!("{admin}/ui/sources")).await?;
    let table = browser.wait_for_text("#sources").await?;
    assert!(table.contains("shop"), "{table}");
    assert!(table.contains("deployed"), "{table}");
    assert!(table.contains("failed: missing s3:GetObject"), "{table}");
    browser.check_page("sources").await?;
    browser.type_into("#q", "lock").await?;
    browser.type_into("#q", ENTER).await?;
    browser.wait_for_path("/ui/sources").await?;
    let found = browser.wait_for_text("#sources").await?;
    assert!(
        found.contains("locked") && !found.contains("shop"),
        "{found}"
    );
    browser.check_page("sources-search").await?;

    // Purge an asset: a cached render is a miss afterwards.
    let url = "/photos/cat.jpg?w=120";
    let first = mesh.get("shop", url).await?;
    assert_eq!(first.status, 200, "{}", first.text());
    let cached = mesh.get("shop", url).await?;
    assert_eq!(cached.header("x-imgmesh-cache"), Some("hit"));
    browser.goto(&format!("{admin}{shop_page}")).await?;
    browser.wait_for_text("#settings").await?;
    browser.check_page("source").await?;
    browser
        .type_into("#purge-path", "https://shop.localhost/photos/cat.jpg")
        .await?;
    browser.click("#purge-asset").await?;
    browser.wait_for_text("#confirm-purge").await?;
    browser.check_page("purge-confirm").await?;
    browser.click("#confirm-purge").await?;
    let done = browser.wait_for_text("#purge-done").await?;
    assert!(done.contains("the asset /photos/cat.jpg"), "{done}");
    browser.check_page("purged").await?;
    let after = mesh.get("shop", url).await?;
    assert_eq!(after.status, 200);
    assert_eq!(after.header("x-imgmesh-cache"), Some("miss"));

    // Settings: a refused custom domain shows the API's message by the
    // field; default parameters and secure URLs are saved and apply.
    browser.clear("#custom_domains").await?;
    browser.type_into("#custom_domains", "bad_domain!").await?;
    browser.click("#save-settings").await?;
    let domain_error = browser.wait_for_text("#custom_domains-error").await?;
    let api = mesh
        .admin(
            "PATCH",
            "/v1/sources/shop",
            Some(&json!({ "custom_domains": ["bad_domain!"] })),
        )
        .await?;
    assert_eq!(api.status, 400, "{}", api.text());
    let api_error = imgmesh_integration_tests::admin::json_of(&api);
    assert_eq!(
        domain_error,
        api_error["error"]["message"].as_str().unwrap()
    );
    browser.check_page("settings-invalid").await?;
    browser.clear("#custom_domains").await?;
    browser.clear("#default_params").await?;
    browser.type_into("#default_params", "w=60&fm=png").await?;
    browser.click("#secure_url_enabled").await?;
    browser.click("#save-settings").await?;
    browser
        .wait_for_exact("#settings-saved", "Settings saved.")
        .await?;
    let shop = imgmesh_integration_tests::admin::json_of(
        &mesh.admin("GET", "/v1/sources/shop", None).await?,
    );
    assert_eq!(shop["default_params"], "w=60&fm=png");
    assert_eq!(shop["secure_url_enabled"], true);
    assert_eq!(shop["custom_domains"], json!([]));

    // The first token, shown once, signs URLs that render with the
    // default parameters; unsigned ones are refused.
    let first = rotate_in_browser(browser, "0").await?;
    browser.check_page("token-rotated").await?;
    let rendered = eventually(mesh, &signed(&first, "/photos/cat.jpg"), 200).await;
    fixtures::expect_image(&rendered.body, fixtures::Format::Png, 60, 40)?;
    eventually(mesh, "/photos/cat.jpg", 403).await;
    // A second rotation with a grace period: both tokens sign.
    browser.goto(&format!("{admin}{shop_page}")).await?;
    let second = rotate_in_browser(browser, "3600").await?;
    assert_ne!(first, second);
    let grace = browser.text("#grace").await?;
    assert!(grace.contains("keep working for 3600 s"), "{grace}");
    eventually(mesh, &signed(&second, "/photos/cat.jpg"), 200).await;
    let old = mesh.get("shop", &signed(&first, "/photos/cat.jpg")).await?;
    assert_eq!(old.status, 200, "the old token works in its grace period");
    browser.goto(&format!("{admin}{shop_page}")).await?;
    let settings = browser.wait_for_text("#settings").await?;
    assert!(!settings.contains(&second), "the token is shown only once");

    // Upload credentials: none at first (an upload is refused), then set
    // (the secret never shown), then an upload with them works.
    assert_eq!(
        browser.text("#upload-state").await?,
        "No upload credentials are set: uploads to this Source are refused."
    );
    let upload = || {
        let authorization = format!("Bearer {ADMIN_TOKEN}");
        async move {
            request_with_body(
                "PUT",
                mesh.gateway_admin_addr,
                "localhost",
                "/v1/sources/shop/objects/uploads/new.jpg",
                &[
                    ("authorization", authorization.as_str()),
                    ("content-type", "image/jpeg"),
                ],
                fixtures::jpeg(64, 64)?,
            )
            .await
        }
    };
    let refused = upload().await?;
    assert!(
        !(200..300).contains(&refused.status),
        "an upload without credentials: {}",
        refused.text()
    );
    browser
        .type_into("#upload_access_key_id", S3_ACCESS_KEY)
        .await?;
    browser
        .type_into("#upload_secret_access_key", S3_SECRET_KEY)
        .await?;
    browser.click("#save-upload").await?;
    browser
        .wait_for_exact("#upload-saved", "Upload credentials saved.")
        .await?;
    let state = browser.text("#upload-state").await?;
    assert!(state.starts_with("Uploads use the access key "), "{state}");
    let page = browser.command("GET", "/source", None).await?;
    assert!(!page.as_str().unwrap_or_default().contains(S3_SECRET_KEY));
    let uploaded = upload().await?;
    assert!((200..300).contains(&uploaded.status), "{}", uploaded.text());
    assert!(mesh.bucket_dir().join("uploads/new.jpg").is_file());
    browser.check_page("upload-credentials").await?;

    // The image sandbox: without the script's help (the form is submitted)
    // the render is shown with the Source's defaults (w=60&fm=png); a
    // changed width re-renders without a reload. The preview's pixels are
    // read from the bytes the admin listener serves, and the URL shown is
    // signed with the current token and renders on the public listener.
    browser.goto(&format!("{admin}{shop_page}")).await?;
    browser.click("#open-sandbox").await?;
    browser.wait_for_path_suffix("/sandbox").await?;
    browser.check_page("sandbox-empty").await?;
    browser
        .type_into("#sandbox-path", "photos/quad.png")
        .await?;
    browser.type_into("#sandbox-path", ENTER).await?;
    browser.wait_for_exact("#sandbox-size", "60 × 30").await?;
    assert_eq!(browser.text("#sandbox-format").await?, "image/png");
    browser
        .script("window.imgmeshMarker = 'sandbox'; return null;")
        .await?;
    browser.clear("#sandbox-w").await?;
    browser.type_into("#sandbox-w", "80").await?;
    browser.wait_for_exact("#sandbox-size", "80 × 40").await?;
    assert_eq!(
        browser
            .script("return window.imgmeshMarker || null;")
            .await?,
        "sandbox",
        "the preview changed without a reload"
    );
    let preview = browser
        .script("return document.getElementById('sandbox-preview').getAttribute('src');")
        .await?;
    let preview = preview.as_str().context("preview src")?.to_owned();
    assert!(preview.starts_with("/ui/sources/"), "{preview}");
    let shown = request_with_body(
        "GET",
        mesh.gateway_admin_addr,
        "localhost",
        &preview,
        &[("cookie", session_cookie.as_str())],
        Vec::new(),
    )
    .await?;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.header("x-imgmesh-width"), Some("80"));
    fixtures::expect_image(&shown.body, fixtures::Format::Png, 80, 40)?;
    let top_left = fixtures::pixel(&shown.body, 10, 10)?;
    let top_right = fixtures::pixel(&shown.body, 70, 10)?;
    assert!(
        top_left[0] > 200.0 && top_left[1] < 50.0 && top_left[2] < 50.0,
        "red quadrant: {top_left:?}"
    );
    assert!(
        top_right[0] < 50.0 && top_right[1] > 200.0 && top_right[2] < 50.0,
        "green quadrant: {top_right:?}"
    );
    let url = browser
        .script("return document.getElementById('sandbox-url').value;")
        .await?;
    // A whole URL, as the public gateway serves it: the Source's subdomain
    // under the base domain, signed.
    let origin = format!("https://shop.{BASE_DOMAIN}");
    let url = url.as_str().context("sandbox url")?;
    assert_eq!(
        url,
        format!("{origin}{}", signed(&second, "/photos/quad.png?w=80"))
    );
    let public = mesh
        .get("shop", url.strip_prefix(&origin).unwrap_or_default())
        .await?;
    assert_eq!(public.status, 200, "{}", public.text());
    fixtures::expect_image(&public.body, fixtures::Format::Png, 80, 40)?;
    let srcset = browser.text("#sandbox-srcset").await?;
    assert!(srcset.contains(" 2x, "), "{srcset}");
    for candidate in srcset.split(", ") {
        assert!(
            candidate.starts_with(&format!("{origin}/photos/quad.png?")),
            "{srcset}"
        );
    }
    let img_tag = browser.text("#sandbox-img").await?;
    assert!(
        img_tag.starts_with(&format!("<img src=\"{origin}/photos/quad.png?w=80&")),
        "{img_tag}"
    );
    browser.check_page("sandbox").await?;

    // The Overview draws the gateway's own counters: after the public
    // requests above, the request rate and the Redis hit ratio are not zero.
    browser.click("header nav a[href='/ui/overview']").await?;
    browser.wait_for_path("/ui/overview").await?;
    for chart in ["requests", "hit-ratio", "renders", "errors"] {
        let svg = browser
            .script(&format!(
                "return document.querySelectorAll('#chart-{chart} svg polyline').length;"
            ))
            .await?;
        assert_eq!(svg, 1, "{chart}: one line");
    }
    let requests = browser.text("#chart-requests .chart-summary").await?;
    let rate: f64 = requests
        .strip_prefix("latest ")
        .and_then(|rest| rest.split(' ').next())
        .context("request rate")?
        .parse()?;
    assert!(rate > 0.0, "{requests}");
    let ratio = browser.text("#chart-hit-ratio .chart-summary").await?;
    assert!(ratio.starts_with("latest "), "{ratio}");
    assert!(
        !ratio.starts_with("latest 0.00 "),
        "there were Redis hits: {ratio}"
    );
    browser.check_page("overview").await?;
    // One Source's figures, picked by keyboard: every public request above
    // was shop's, none was locked's.
    let highest = |summary: &str| -> anyhow::Result<f64> {
        Ok(summary
            .split("highest ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .with_context(|| format!("no highest in {summary:?}"))?
            .parse()?)
    };
    let all_highest = highest(&requests)?;
    for (name, busy) in [("shop", true), ("locked", false)] {
        browser.type_into("#overview-source", name).await?;
        browser.click("#overview-show").await?;
        browser.wait_for_exact("#overview-scope", name).await?;
        let summary = browser.text("#chart-requests .chart-summary").await?;
        let rate = highest(&summary)?;
        if busy {
            assert!(rate > 0.0 && rate <= all_highest, "{name}: {summary}");
        } else {
            assert_eq!(rate, 0.0, "{name}: {summary}");
        }
    }
    browser.check_page("overview-source").await?;
    // The Source's page links to its figures.
    browser.goto(&format!("{admin}{shop_page}")).await?;
    browser.click("#open-traffic").await?;
    browser.wait_for_exact("#overview-scope", "shop").await?;

    // Assets: a Source without upload credentials says so and offers no
    // file field.
    browser
        .goto(&format!("{admin}/ui/sources/locked/assets"))
        .await?;
    let refused = browser.wait_for_text("#no-upload-credentials").await?;
    assert!(
        refused.starts_with("No upload credentials are set"),
        "{refused}"
    );
    browser.check_page("assets-no-credentials").await?;
    // With them, the mouse-free equivalent of a drop: the file's path sent
    // to the file field, then Upload. The object lands in the bucket with
    // the same bytes and its thumbnail is rendered by imgmesh.
    browser.goto(&format!("{admin}{shop_page}")).await?;
    browser.click("#open-assets").await?;
    browser.wait_for_path_suffix("/assets").await?;
    browser.check_page("assets").await?;
    let file_dir = tempfile::tempdir()?;
    let file = file_dir.path().join("dropped.png");
    let bytes = fixtures::quadrants_png(240, 240)?;
    std::fs::write(&file, &bytes)?;
    browser
        .type_into("#upload-file", file.to_str().context("temp path")?)
        .await?;
    browser
        .type_into("#upload-key", "uploads/dropped.png")
        .await?;
    browser.click("#upload-button").await?;
    browser
        .wait_for_exact(
            "#upload-result",
            &format!("Uploaded uploads/dropped.png ({} bytes).", bytes.len()),
        )
        .await?;
    assert_eq!(
        browser
            .script("return document.getElementById('upload-progress').value;")
            .await?,
        100
    );
    assert_eq!(
        std::fs::read(mesh.bucket_dir().join("uploads/dropped.png"))?,
        bytes
    );
    browser
        .wait(|browser| async move {
            let loaded = browser
                .script(
                    "var i = document.querySelector('#uploaded img'); \
                     return !!i && i.complete && i.naturalWidth === 120;",
                )
                .await?;
            Ok(loaded == true)
        })
        .await?;
    let thumbnail = browser
        .script("return document.querySelector('#uploaded img').getAttribute('src');")
        .await?;
    let thumbnail = request_with_body(
        "GET",
        mesh.gateway_admin_addr,
        "localhost",
        thumbnail.as_str().context("thumbnail src")?,
        &[("cookie", session_cookie.as_str())],
        Vec::new(),
    )
    .await?;
    fixtures::expect_image(&thumbnail.body, fixtures::Format::Png, 120, 120)?;
    let corner = fixtures::pixel(&thumbnail.body, 5, 5)?;
    assert!(
        corner[0] > 200.0 && corner[1] < 50.0 && corner[2] < 50.0,
        "red quadrant: {corner:?}"
    );
    browser.check_page("assets-uploaded").await?;
    // An upload without the session's CSRF header is refused.
    let forged = request_with_body(
        "POST",
        mesh.gateway_admin_addr,
        "localhost",
        &format!("{shop_page}/upload?key=forged.png"),
        &[
            ("cookie", session_cookie.as_str()),
            ("content-type", "image/png"),
        ],
        bytes.clone(),
    )
    .await?;
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(!mesh.bucket_dir().join("forged.png").exists());

    // The same form without the script (its listeners dropped by replacing
    // the form with a clone): Chromium posts it as multipart/form-data, by
    // keyboard, and the answer page shows the result and a thumbnail.
    let without_script = "var f = document.getElementById('upload-form'); \
         f.replaceWith(f.cloneNode(true)); return true;";
    browser.script(without_script).await?;
    let plain = fixtures::quadrants_png(160, 160)?;
    let plain_file = file_dir.path().join("plain.png");
    std::fs::write(&plain_file, &plain)?;
    browser.clear("#upload-key").await?;
    browser
        .type_into("#upload-key", "uploads/plain.png")
        .await?;
    browser
        .type_into("#upload-file", plain_file.to_str().context("temp path")?)
        .await?;
    browser.type_into("#upload-button", ENTER).await?;
    browser
        .wait_for_exact(
            "#upload-form-result",
            &format!("Uploaded uploads/plain.png ({} bytes).", plain.len()),
        )
        .await?;
    assert_eq!(
        std::fs::read(mesh.bucket_dir().join("uploads/plain.png"))?,
        plain
    );
    browser
        .wait(|browser| async move {
            let loaded = browser
                .script(
                    "var i = document.getElementById('upload-form-thumbnail'); \
                     return !!i && i.complete && i.naturalWidth === 120;",
                )
                .await?;
            Ok(loaded == true)
        })
        .await?;
    browser.check_page("assets-uploaded-without-script").await?;
    // A refused key gets the registry's message on the page, with its status.
    browser.script(without_script).await?;
    browser.clear("#upload-key").await?;
    browser.type_into("#upload-key", "../escape.png").await?;
    browser
        .type_into("#upload-file", plain_file.to_str().context("temp path")?)
        .await?;
    browser.type_into("#upload-button", ENTER).await?;
    browser
        .wait_for_exact(
            "#upload-form-result",
            "The upload failed: key: must not contain '..' segments",
        )
        .await?;
    // A multipart post without the session's CSRF token is refused.
    let boundary = "imgmesh-test-boundary";
    let mut multipart = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"key\"\r\n\r\nforged.png\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"forged.png\"\r\n\
         content-type: image/png\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(&plain);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let forged = request_with_body(
        "POST",
        mesh.gateway_admin_addr,
        "localhost",
        &format!("{shop_page}/assets"),
        &[
            ("cookie", session_cookie.as_str()),
            (
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            ),
        ],
        multipart,
    )
    .await?;
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(!mesh.bucket_dir().join("forged.png").exists());

    // The listing: the bucket's objects with thumbnails rendered by
    // imgmesh, then a prefix typed by keyboard and paged two at a time.
    browser.goto(&format!("{admin}{shop_page}/assets")).await?;
    let listed = browser.wait_for_text("#objects").await?;
    for key in ["photos/cat.jpg", "photos/quad.png", "uploads/plain.png"] {
        assert!(listed.contains(key), "{key} listed: {listed}");
    }
    let quad = "#objects img[alt='photos/quad.png']";
    browser
        .wait(|browser| async move {
            let loaded = browser
                .script(&format!(
                    "var i = document.querySelector(\"{quad}\"); \
                     return !!i && i.complete && i.naturalWidth === 120;"
                ))
                .await?;
            Ok(loaded == true)
        })
        .await?;
    let src = browser
        .script(&format!(
            "return document.querySelector(\"{quad}\").getAttribute('src');"
        ))
        .await?;
    let thumbnail = request_with_body(
        "GET",
        mesh.gateway_admin_addr,
        "localhost",
        src.as_str().context("listed thumbnail src")?,
        &[("cookie", session_cookie.as_str())],
        Vec::new(),
    )
    .await?;
    fixtures::expect_image(&thumbnail.body, fixtures::Format::Png, 120, 120)?;
    let corner = fixtures::pixel(&thumbnail.body, 5, 5)?;
    assert!(
        corner[0] > 200.0 && corner[1] < 50.0 && corner[2] < 50.0,
        "red quadrant: {corner:?}"
    );
    browser.check_page("assets-listed").await?;
    // An object of the listing opens in the sandbox with its path, and the
    // sandbox links back to the listing to browse.
    browser
        .type_into("#objects a[href$='photos%2Fquad.png']", ENTER)
        .await?;
    browser.wait_for_path_suffix("/sandbox").await?;
    assert_eq!(
        browser
            .script("return document.getElementById('sandbox-path').value;")
            .await?,
        "photos/quad.png"
    );
    browser.wait_for_text("#sandbox-size").await?;
    browser.click("#sandbox-browse").await?;
    browser.wait_for_path_suffix("/assets").await?;
    browser
        .goto(&format!("{admin}{shop_page}/assets?per_page=2"))
        .await?;
    browser.type_into("#objects-prefix", "uploads/").await?;
    browser.type_into("#objects-prefix", ENTER).await?;
    let keys = || async {
        browser
            .script(
                "return Array.from(document.querySelectorAll('#objects a')) \
                 .map(a => a.textContent);",
            )
            .await
    };
    browser
        .wait(|browser| async move {
            Ok(browser.script("return location.search;").await? == "?prefix=uploads%2F&per_page=2")
        })
        .await?;
    assert_eq!(
        keys().await?,
        json!(["uploads/dropped.png", "uploads/new.jpg"])
    );
    assert!(browser.element("#objects-first").await.is_err());
    browser.type_into("#objects-next", ENTER).await?;
    browser
        .wait(|browser| async move {
            Ok(browser
                .script("return location.search.includes('page=');")
                .await?
                == true)
        })
        .await?;
    assert_eq!(keys().await?, json!(["uploads/plain.png"]));
    assert!(browser.element("#objects-next").await.is_err(), "last page");
    browser.check_page("assets-paged").await?;
    browser.click("#objects-first").await?;
    browser
        .wait(|browser| async move {
            Ok(browser.script("return location.search;").await? == "?prefix=uploads%2F&per_page=2")
        })
        .await?;
    assert_eq!(
        keys().await?,
        json!(["uploads/dropped.png", "uploads/new.jpg"])
    );
    browser.goto(&format!("{admin}{shop_page}")).await?;
    browser.wait_for_text("#settings").await?;

    // Disable, then delete with a confirmation.
    browser.click("#toggle-enabled").await?;
    browser
        .wait_for_exact("#toggle-enabled", "Enable Source")
        .await?;
    let shop = imgmesh_integration_tests::admin::json_of(
        &mesh.admin("GET", "/v1/sources/shop", None).await?,
    );
    assert_eq!(shop["enabled"], false);
    browser.click("#delete-source").await?;
    browser.wait_for_text("#confirm-delete").await?;
    browser.check_page("delete-confirm").await?;
    browser.click("#confirm-delete").await?;
    browser.wait_for_path("/ui/sources").await?;
    let remaining = browser.wait_for_text("#sources").await?;
    assert!(!remaining.contains("shop"), "{remaining}");
    assert_eq!(
        mesh.admin("GET", "/v1/sources/shop", None).await?.status,
        404
    );

    // Logging out ends the session.
    browser.click("header nav button").await?;
    browser.wait_for_path("/ui/login").await?;
    browser.goto(&format!("{admin}/ui/sources")).await?;
    assert_eq!(browser.path().await?, "/ui/login");
    let stale = request_with_body(
        "GET",
        mesh.gateway_admin_addr,
        "localhost",
        "/ui/sources",
        &[("cookie", session_cookie.as_str())],
        Vec::new(),
    )
    .await?;
    assert_eq!(stale.status, 303);
    assert_eq!(stale.header("location"), Some("/ui/login"));
    Ok(())
}

/// Rotates the current Source's signing token with `grace` seconds from
/// its page and returns the new token the answer shows.
async fn rotate_in_browser(browser: &Browser, grace: &str) -> anyhow::Result<String> {
    browser.clear("#grace_period_seconds").await?;
    browser.type_into("#grace_period_seconds", grace).await?;
    browser.click("#rotate-token").await?;
    let element = browser.find("#new-token").await?;
    let token = browser
        .command("GET", &format!("/element/{element}/property/value"), None)
        .await?;
    let token = token.as_str().context("token value")?.to_owned();
    anyhow::ensure!(!token.is_empty(), "no token shown");
    Ok(token)
}

/// `path_and_query` signed with `token` as imgix's client libraries do.
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

/// Polls `GET path` on the shop Source until it answers `status` (the
/// gateway caches Source settings briefly).
async fn eventually(
    mesh: &Mesh,
    path: &str,
    status: u16,
) -> imgmesh_integration_tests::HttpResponse {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let response = mesh.get("shop", path).await.unwrap();
        if response.status == status {
            return response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path}: still {} {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Fills the wizard's S3 details form (the page must be showing it).
async fn fill_details(
    browser: &Browser,
    name: &str,
    subdomain: &str,
    endpoint: &str,
) -> anyhow::Result<()> {
    for (field, value) in [
        ("name", name),
        ("access_key_id", S3_ACCESS_KEY),
        ("secret_access_key", S3_SECRET_KEY),
        ("bucket", BUCKET),
        ("region", "us-east-1"),
        ("endpoint", endpoint),
        ("subdomain", subdomain),
    ] {
        let selector = format!("#{field}");
        browser.clear(&selector).await?;
        browser.type_into(&selector, value).await?;
    }
    Ok(())
}

// === the browser ===

/// chromedriver with one Chromium session.
#[derive(Debug)]
struct Browser {
    driver: ChildProcess,
    driver_addr: std::net::SocketAddr,
    session: String,
    /// The admin listener's origin, the only one pages may load from.
    origin: String,
    screenshots: PathBuf,
    _profile: tempfile::TempDir,
    _logs: tempfile::TempDir,
}

// === impl Browser ===

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session with a
    /// throwaway profile.
    async fn start() -> anyhow::Result<Browser> {
        let logs = tempfile::tempdir()?;
        let profile = tempfile::tempdir()?;
        let (driver, port) = start_chromedriver(logs.path()).await?;
        let driver_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
                    // The network log, to check no page reaches another host.
                    "goog:loggingPrefs": { "performance": "ALL" },
                }
            }
        });
        let created = webdriver(driver_addr, "POST", "/session", Some(&capabilities)).await?;
        let session = created["sessionId"]
            .as_str()
            .with_context(|| format!("no session id in {created}"))?
            .to_owned();
        let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&screenshots)?;
        Ok(Browser {
            driver,
            driver_addr,
            session,
            origin: String::new(),
            screenshots,
            _profile: profile,
            _logs: logs,
        })
    }

    /// Ends the session (chromedriver closes Chromium) and stops chromedriver.
    async fn quit(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = webdriver(self.driver_addr, "DELETE", &path, None).await;
        self.driver.kill();
    }

    /// A command of this session.
    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        webdriver(self.driver_addr, method, &path, body).await
    }

    async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .await?;
        Ok(())
    }

    /// The current page's path.
    async fn path(&self) -> anyhow::Result<String> {
        let url = self.command("GET", "/url", None).await?;
        let url = url.as_str().context("url is not a string")?;
        let rest = url
            .strip_prefix(&self.origin)
            .with_context(|| format!("{url} is not on {}", self.origin))?;
        Ok(rest.split(['?', '#']).next().unwrap_or_default().to_owned())
    }

    async fn wait_for_path(&self, expected: &str) -> anyhow::Result<()> {
        self.wait(|browser| async move { Ok(browser.path().await? == expected) })
            .await
            .with_context(|| format!("never reached {expected}"))
    }

    async fn wait_for_path_suffix(&self, suffix: &str) -> anyhow::Result<()> {
        self.wait(|browser| async move { Ok(browser.path().await?.ends_with(suffix)) })
            .await
            .with_context(|| format!("never reached a path ending in {suffix}"))
    }

    /// Polls `check` until it holds, for up to [`STEP_TIMEOUT`].
    async fn wait<'a, F, Fut>(&'a self, check: F) -> anyhow::Result<()>
    where
        F: Fn(&'a Browser) -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let mut last_error = None;
        loop {
            match check(self).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => last_error = Some(error),
            }
            if tokio::time::Instant::now() > deadline {
                let source = self
                    .command("GET", "/source", None)
                    .await
                    .unwrap_or_default();
                bail!("timed out (last error: {last_error:?}); page:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element `selector` matches now.
    async fn element(&self, selector: &str) -> anyhow::Result<String> {
        let found = self
            .command(
                "POST",
                "/element",
                Some(&json!({ "using": "css selector", "value": selector })),
            )
            .await?;
        Ok(found[ELEMENT_KEY]
            .as_str()
            .with_context(|| format!("{selector}: {found}"))?
            .to_owned())
    }

    /// The element `selector` matches, waiting for it to appear.
    async fn find(&self, selector: &str) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            match self.element(selector).await {
                Ok(element) => return Ok(element),
                Err(error) if tokio::time::Instant::now() > deadline => {
                    let source = self
                        .command("GET", "/source", None)
                        .await
                        .unwrap_or_default();
                    bail!("{selector} never appeared ({error}); page:\n{source}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn type_into(&self, selector: &str, text: &str) -> anyhow::Result<()> {
        let element = self.find(selector).await?;
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    async fn clear(&self, selector: &str) -> anyhow::Result<()> {
        let element = self.find(selector).await?;
        self.command(
            "POST",
            &format!("/element/{element}/clear"),
            Some(&json!({})),
        )
        .await?;
        Ok(())
    }

    async fn click(&self, selector: &str) -> anyhow::Result<()> {
        let element = self.find(selector).await?;
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        )
        .await?;
        Ok(())
    }

    /// The rendered text of `selector`, once it is there.
    async fn text(&self, selector: &str) -> anyhow::Result<String> {
        let element = self.find(selector).await?;
        let text = self
            .command("GET", &format!("/element/{element}/text"), None)
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// The text of `selector` once it appears with some text.
    async fn wait_for_text(&self, selector: &str) -> anyhow::Result<String> {
        self.wait(|browser| async move { Ok(!browser.text(selector).await?.is_empty()) })
            .await
            .with_context(|| format!("{selector} never had text"))?;
        self.text(selector).await
    }

    /// Waits until `selector`'s text is `expected`, without navigating.
    async fn wait_for_exact(&self, selector: &str, expected: &str) -> anyhow::Result<()> {
        self.wait(|browser| async move { Ok(browser.text(selector).await? == expected) })
            .await
            .with_context(|| format!("{selector} never read {expected:?}"))
    }

    async fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The browser's cookie `name` for the current page, HttpOnly ones included.
    async fn cookie(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let cookies = self.command("GET", "/cookie", None).await?;
        Ok(cookies
            .as_array()
            .into_iter()
            .flatten()
            .find(|cookie| cookie["name"] == name)
            .cloned())
    }

    /// Checks the current page (every field has a `<label for>`, nothing
    /// was loaded from another origin, the browser sent no request
    /// elsewhere) and saves its screenshot as `name`.
    async fn check_page(&self, name: &str) -> anyhow::Result<()> {
        let unlabelled = self
            .script(
                "return Array.from(document.querySelectorAll(\
                 'input:not([type=hidden]), select, textarea'))\
                 .filter(f => !f.id || !document.querySelector('label[for=\"' + f.id + '\"]'))\
                 .map(f => f.name || f.outerHTML);",
            )
            .await?;
        assert_eq!(unlabelled, json!([]), "{name}: fields without a label");
        let loaded = self
            .script(
                "return [location.href].concat(performance.getEntriesByType('resource')\
                 .map(e => e.name));",
            )
            .await?;
        for url in loaded.as_array().context("resource list")? {
            let url = url.as_str().unwrap_or_default();
            assert!(
                url.starts_with(&format!("{}/", self.origin)),
                "{name}: loaded {url}, not from the admin listener"
            );
        }
        // Every request the browser sent over the network since the last
        // check, from its network log (chrome:, data: and about: URLs stay
        // inside the browser).
        let log = self
            .command("POST", "/se/log", Some(&json!({ "type": "performance" })))
            .await?;
        let mut requests = 0;
        for entry in log.as_array().context("performance log")? {
            let message: Value =
                serde_json::from_str(entry["message"].as_str().unwrap_or_default())?;
            let message = &message["message"];
            if message["method"] != "Network.requestWillBeSent" {
                continue;
            }
            let url = message["params"]["request"]["url"]
                .as_str()
                .unwrap_or_default();
            let network = ["http:", "https:", "ws:", "wss:"]
                .iter()
                .any(|scheme| url.starts_with(scheme));
            assert!(
                !network || url.starts_with(&format!("{}/", self.origin)),
                "{name}: the browser requested {url}"
            );
            requests += usize::from(network);
        }
        // Every checked page was reached by a request since the last check,
        // so an empty log would mean the log is not being read.
        assert!(requests > 0, "{name}: no request in the network log");
        let shot = self.command("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().context("screenshot is not base64 text")?)?;
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        std::fs::write(self.screenshots.join(format!("{name}.png")), png)?;
        Ok(())
    }
}

/// How many times chromedriver is started before giving up: with
/// `--port=0` it picks a port on one address family and may then find it
/// taken on the other, and exits.
const CHROMEDRIVER_ATTEMPTS: usize = 5;

/// Starts chromedriver on a port of its choosing, logging into `logs`, and
/// returns it with the port it listens on.
async fn start_chromedriver(logs: &std::path::Path) -> anyhow::Result<(ChildProcess, u16)> {
    let mut last_log = String::new();
    for attempt in 0..CHROMEDRIVER_ATTEMPTS {
        let driver = ChildProcess::spawn(
            &format!("chromedriver-{attempt}"),
            Command::new("chromedriver").arg("--port=0"),
            logs,
        )?;
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let log = driver.log();
            if let Some(port) = log
                .lines()
                .find_map(|line| line.split("started successfully on port ").nth(1))
            {
                return Ok((driver, port.trim().trim_end_matches('.').parse()?));
            }
            if log.contains("Exiting") || tokio::time::Instant::now() > deadline {
                last_log = log;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    bail!("chromedriver did not start in {CHROMEDRIVER_ATTEMPTS} attempts:\n{last_log}")
}

/// Sends one WebDriver command and returns its `value`; a WebDriver error
/// is an error carrying its message.
async fn webdriver(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    let bytes = body
        .map(|json| json.to_string().into_bytes())
        .unwrap_or_default();
    let host = addr.to_string();
    let response = request_with_body(method, addr, &host, path, headers, bytes).await?;
    let answer: Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("{method} {path}: not JSON: {}", response.text()))?;
    if response.status != 200 {
        bail!("{method} {path}: {} {}", response.status, answer["value"]);
    }
    Ok(answer["value"].clone())
}

// === a bucket whose credentials lack s3:GetObject ===

/// A path-style S3 front answering as AWS does for credentials whose IAM
/// policy allows GetBucketLocation and ListBucket but not GetObject: the
/// location and a one-key listing are answered, every object read is 403
/// `AccessDenied`.
#[derive(Debug)]
struct GetObjectDeniedFront {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

// === impl GetObjectDeniedFront ===

impl GetObjectDeniedFront {
    async fn start() -> anyhow::Result<GetObjectDeniedFront> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let target = head.split_whitespace().nth(1).unwrap_or_default();
                    let query = target.split_once('?').map_or("", |(_, query)| query);
                    let (status, body) = if query.split('&').any(|p| p.starts_with("location")) {
                        (
                            "200 OK",
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                             <LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                             </LocationConstraint>"
                                .to_owned(),
                        )
                    } else if query.contains("list-type=2") {
                        (
                            "200 OK",
                            format!(
                                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                                 <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                                 <Name>{BUCKET}</Name><Prefix></Prefix><KeyCount>1</KeyCount>\
                                 <MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated>\
                                 <Contents><Key>photos/cat.jpg</Key><Size>4</Size></Contents>\
                                 </ListBucketResult>"
                            ),
                        )
                    } else {
                        (
                            "403 Forbidden",
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>\
                             <Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                                .to_owned(),
                        )
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(GetObjectDeniedFront { addr, task })
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for GetObjectDeniedFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
