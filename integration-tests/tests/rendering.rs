//! The imgix Rendering API through the real mesh (gateway → renderer →
//! fetcher → S3): output sizes for every fit mode, pixels for crops and
//! effects, decoded formats, content negotiation, JSON metadata,
//! animations, watermarks, every spec parameter fed garbage, and the
//! passthrough of URLs without parameters.

use imgmesh_integration_tests::admin::{create_deployed, rotate};
use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{HttpResponse, Mesh, MeshOptions, S3_SECRET_KEY};
use serde_json::json;

/// A mesh with Source `demo` holding the test originals.
async fn rendering_mesh() -> Mesh {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    let objects: Vec<(&str, Vec<u8>)> = vec![
        ("photo.jpg", fixtures::jpeg(400, 300).unwrap()),
        ("small.jpg", fixtures::jpeg(64, 48).unwrap()),
        ("quadrants.png", fixtures::quadrants_png(200, 100).unwrap()),
        ("mark.png", fixtures::quadrants_png(40, 20).unwrap()),
        ("anim.gif", fixtures::animated_gif(40, 30, 4).unwrap()),
    ];
    for (key, bytes) in objects {
        mesh.put_object(key, &bytes).unwrap();
    }
    for orientation in 1..=8 {
        let bytes = fixtures::oriented_quadrants_jpeg(80, 40, orientation).unwrap();
        mesh.put_object(&format!("oriented/{orientation}.jpg"), &bytes)
            .unwrap();
    }
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    mesh
}

async fn get_ok(mesh: &Mesh, path_and_query: &str) -> HttpResponse {
    let response = mesh.get("demo", path_and_query).await.unwrap();
    assert_eq!(
        response.status,
        200,
        "{path_and_query}: {}",
        response.text()
    );
    response
}

/// Asserts every band is within `tolerance` of `expected`.
#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert!(
        actual.len() >= expected.len()
            && actual
                .iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() <= tolerance),
        "{what}: {actual:?} vs {expected:?}"
    );
}

const RED: [f64; 3] = [255.0, 0.0, 0.0];
const GREEN: [f64; 3] = [0.0, 255.0, 0.0];
const BLUE: [f64; 3] = [0.0, 0.0, 255.0];
const WHITE: [f64; 3] = [255.0, 255.0, 255.0];

/// Output dimensions for every fit mode on a 400×300 original, from imgix's documentation.
#[tokio::test]
async fn fit_mode_dimensions() {
    let mesh = rendering_mesh().await;
    let cases = [
        ("w=200", 200, 150),
        ("h=150", 200, 150),
        ("w=200&h=200", 200, 150),
        ("fit=clip&w=200&h=200", 200, 150),
        ("fit=crop&w=200&h=200", 200, 200),
        ("fit=max&w=800", 400, 300),
        ("fit=max&w=200&h=200", 200, 150),
        ("fit=min&w=800&h=800", 300, 300),
        ("fit=min&w=100&h=50", 100, 50),
        ("fit=scale&w=100&h=300", 100, 300),
        ("fit=fill&w=300&h=300", 300, 300),
        ("fit=fillmax&w=800&h=800", 800, 800),
        ("fit=clamp&w=300&h=400", 300, 400),
        ("fit=facearea&w=200&h=200", 200, 150),
        ("fit=crop&w=320&ar=16:9", 320, 180),
        ("fit=crop&ar=1:1", 300, 300),
        ("fit=crop&w=500&h=500&max-w=300&max-h=200", 300, 200),
        ("fit=crop&w=50&h=50&min-w=100", 100, 50),
        ("w=0.5", 200, 150),
        ("w=100&dpr=2", 200, 150),
        ("rect=0,0,100,50", 100, 50),
        ("rect=100,100,200,100&w=100", 100, 50),
        ("pad=10", 420, 320),
        ("w=220&h=220&pad=10", 220, 170),
        ("border=5,red", 400, 300),
        ("w=9000", 8192, 6144),
        ("f=crop&width=120&height=120", 120, 120),
    ];
    for (query, width, height) in cases {
        let response = get_ok(&mesh, &format!("/photo.jpg?{query}&fm=png")).await;
        fixtures::expect_image(&response.body, Format::Png, width, height)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
    }
}

/// Pixel checks: crops keep the named part, mono gives R=G=B, invert inverts,
/// bg fills padding, rot=90 with rot-type=pivot swaps axes and turns counter-clockwise, flips mirror.
#[tokio::test]
async fn pixels_follow_the_parameters() {
    let mesh = rendering_mesh().await;
    let px =
        |response: &HttpResponse, x: i32, y: i32| fixtures::pixel(&response.body, x, y).unwrap();

    let left = get_ok(&mesh, "/quadrants.png?fit=crop&w=50&h=50&crop=left&fm=png").await;
    assert_close(
        &px(&left, 40, 5),
        &RED,
        2.0,
        "crop=left keeps the left part",
    );
    assert_close(
        &px(&left, 10, 45),
        &BLUE,
        2.0,
        "crop=left keeps the left part",
    );
    let right = get_ok(&mesh, "/quadrants.png?fit=crop&w=50&h=50&crop=right&fm=png").await;
    assert_close(&px(&right, 10, 5), &GREEN, 2.0, "crop=right");

    let mono = get_ok(&mesh, "/photo.jpg?mono=777&fm=png").await;
    for (x, y) in [(10, 10), (200, 150), (390, 290)] {
        let p = px(&mono, x, y);
        assert!(
            (p[0] - p[1]).abs() <= 1.0 && (p[1] - p[2]).abs() <= 1.0,
            "mono R=G=B: {p:?}"
        );
    }

    let inverted = get_ok(&mesh, "/quadrants.png?invert=true&fm=png").await;
    assert_close(
        &px(&inverted, 10, 10),
        &[0.0, 255.0, 255.0],
        1.0,
        "invert red",
    );
    assert_close(
        &px(&inverted, 190, 90),
        &[0.0, 0.0, 0.0],
        1.0,
        "invert white",
    );

    let padded = get_ok(&mesh, "/quadrants.png?pad=20&bg=00f&fm=png").await;
    assert_close(&px(&padded, 5, 5), &BLUE, 1.0, "bg fills padding");
    assert_close(&px(&padded, 25, 25), &RED, 1.0, "image inside padding");
    let filled = get_ok(
        &mesh,
        "/quadrants.png?fit=fill&w=200&h=200&bg=ff00ff&fm=jpg",
    )
    .await;
    assert_close(
        &px(&filled, 100, 5),
        &[255.0, 0.0, 255.0],
        8.0,
        "bg fills the fill canvas",
    );

    let turned = get_ok(&mesh, "/quadrants.png?rot=90&rot-type=pivot&fm=png").await;
    fixtures::expect_image(&turned.body, Format::Png, 100, 200).unwrap();
    assert_close(&px(&turned, 10, 190), &RED, 1.0, "counter-clockwise");

    let flipped = get_ok(&mesh, "/quadrants.png?flip=hv&fm=png").await;
    assert_close(&px(&flipped, 10, 10), &WHITE, 1.0, "flip=hv");

    let rect = get_ok(&mesh, "/quadrants.png?rect=110,10,80,30&fm=png").await;
    assert_close(&px(&rect, 40, 15), &GREEN, 1.0, "rect");

    let bright = get_ok(&mesh, "/quadrants.png?bri=50&fm=png").await;
    assert!(
        px(&bright, 10, 60)[1] > 50.0,
        "bri lifts the blue quadrant's green"
    );
}

/// EXIF orientations 1–8 all come out upright.
#[tokio::test]
async fn exif_orientations_come_out_upright() {
    let mesh = rendering_mesh().await;
    for orientation in 1..=8 {
        let response = get_ok(&mesh, &format!("/oriented/{orientation}.jpg?fm=png")).await;
        fixtures::expect_image(&response.body, Format::Png, 80, 40)
            .unwrap_or_else(|e| panic!("orientation {orientation}: {e}"));
        for (x, y, colour) in [
            (10, 10, RED),
            (70, 10, GREEN),
            (10, 30, BLUE),
            (70, 30, WHITE),
        ] {
            let p = fixtures::pixel(&response.body, x, y).unwrap();
            assert_close(
                &p,
                &colour,
                12.0,
                &format!("orientation {orientation} at ({x}, {y})"),
            );
        }
    }
}

/// Every format is what was asked, verified by decoding; auto=format follows Accept and says Vary.
#[tokio::test]
async fn formats_and_negotiation() {
    let mesh = rendering_mesh().await;
    let cases = [
        ("fm=jpg", Format::Jpeg, "image/jpeg"),
        ("fm=pjpg", Format::Jpeg, "image/jpeg"),
        ("fm=png", Format::Png, "image/png"),
        ("fm=png8", Format::Png, "image/png"),
        ("fm=png32", Format::Png, "image/png"),
        ("fm=webp", Format::Webp, "image/webp"),
        ("fm=webp&lossless=true", Format::Webp, "image/webp"),
        ("fm=avif", Format::Avif, "image/avif"),
        ("fm=gif", Format::Gif, "image/gif"),
    ];
    for (query, format, content_type) in cases {
        let response = get_ok(&mesh, &format!("/photo.jpg?w=120&{query}")).await;
        fixtures::expect_image(&response.body, format, 120, 90)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{query}"
        );
        assert_eq!(response.header("vary"), None, "{query}");
    }

    let negotiated = [
        ("image/avif,image/webp,*/*", Format::Avif),
        ("image/webp,*/*", Format::Webp),
        ("image/png,*/*", Format::Jpeg),
    ];
    for (accept, format) in negotiated {
        let response = mesh
            .get_with(
                "demo",
                "/photo.jpg?w=120&auto=format",
                &[("accept", accept)],
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{accept}");
        fixtures::expect_image(&response.body, format, 120, 90)
            .unwrap_or_else(|e| panic!("{accept}: {e}"));
        assert_eq!(response.header("vary"), Some("Accept"), "{accept}");
    }
    // One cache entry per negotiated format, not per Accept spelling.
    let again = mesh
        .get_with(
            "demo",
            "/photo.jpg?w=120&auto=format",
            &[("accept", "text/html,image/avif;q=0.9")],
        )
        .await
        .unwrap();
    assert_eq!(again.header("x-imgmesh-cache"), Some("hit"));

    let blurhash = get_ok(&mesh, "/photo.jpg?fm=blurhash").await;
    assert_eq!(
        blurhash.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(blurhash.text().len(), 28, "{}", blurhash.text());
}

/// fm=json returns imgix's metadata document, checked field by field.
#[tokio::test]
async fn json_metadata_document() {
    let mesh = rendering_mesh().await;
    let response = get_ok(&mesh, "/oriented/6.jpg?fm=json&w=10").await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    let document: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(document["Content-Type"], "image/jpeg");
    assert!(
        document["Content-Length"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        document["PixelWidth"], 40,
        "stored width, before orientation"
    );
    assert_eq!(document["PixelHeight"], 80);
    assert_eq!(document["Orientation"], 6);
    assert_eq!(document["ColorModel"], "RGB");
    assert_eq!(document["Depth"], 8);
    assert_eq!(document["HasAlpha"], false);
    assert_eq!(document["TIFF"]["Orientation"], 6);
    assert_eq!(document["JFIF"]["IsProgressive"], false);
    let png: serde_json::Value =
        serde_json::from_slice(&get_ok(&mesh, "/quadrants.png?fm=json").await.body).unwrap();
    assert_eq!(
        (png["Content-Type"].as_str(), png["PixelWidth"].as_i64()),
        (Some("image/png"), Some(200))
    );
}

/// Animated GIFs stay animated with every frame transformed; frame=N picks one.
#[tokio::test]
async fn animations() {
    let mesh = rendering_mesh().await;
    let resized = get_ok(&mesh, "/anim.gif?w=20").await;
    fixtures::expect_image(&resized.body, Format::Gif, 20, 15).unwrap();
    let pages = fixtures::decode_all_pages(&resized.body).unwrap();
    assert_eq!(pages.get_int("n-pages").unwrap(), 4);
    let webp = get_ok(&mesh, "/anim.gif?w=20&fm=webp&invert=true").await;
    let pages = fixtures::decode_all_pages(&webp.body).unwrap();
    assert_eq!(pages.get_int("n-pages").unwrap(), 4);
    let last = pages.getpoint(5, 3 * 15 + 5).unwrap();
    assert_close(&last, &[95.0], 3.0, "the fourth frame (160) inverted");
    let second = get_ok(&mesh, "/anim.gif?frame=2&fm=png").await;
    assert_close(
        &fixtures::pixel(&second.body, 5, 5).unwrap(),
        &[80.0],
        2.0,
        "frame=2",
    );
    let still = get_ok(&mesh, "/anim.gif?fm=jpg").await;
    fixtures::expect_image(&still.body, Format::Jpeg, 40, 30).unwrap();
}

/// mark and blend images come from the same Source through the fetcher; a missing mark renders without it.
#[tokio::test]
async fn overlays_from_the_same_source() {
    let mesh = rendering_mesh().await;
    let marked = get_ok(
        &mesh,
        "/quadrants.png?mark=/mark.png&mark-align=top,left&mark-pad=0&fm=png",
    )
    .await;
    // The 40×20 mark's green quadrant lands over the base's red one.
    assert_close(
        &fixtures::pixel(&marked.body, 25, 2).unwrap(),
        &GREEN,
        1.0,
        "mark",
    );
    let encoded = get_ok(
        &mesh,
        "/quadrants.png?mark64=L21hcmsucG5n&mark-align=top,left&mark-pad=0&fm=png",
    )
    .await;
    assert_eq!(encoded.body, marked.body, "mark64 is the same mark");
    let missing = get_ok(
        &mesh,
        "/quadrants.png?mark=/nope.png&mark-align=top,left&mark-pad=0&fm=png",
    )
    .await;
    assert_close(
        &fixtures::pixel(&missing.body, 25, 2).unwrap(),
        &RED,
        1.0,
        "no mark",
    );
    let blended = get_ok(
        &mesh,
        "/quadrants.png?blend=/mark.png&blend-mode=normal&blend-x=100&blend-y=50&fm=png",
    )
    .await;
    assert_close(
        &fixtures::pixel(&blended.body, 102, 52).unwrap(),
        &RED,
        1.0,
        "blend image",
    );
    let tinted = get_ok(
        &mesh,
        "/quadrants.png?blend=808080&blend-mode=multiply&fm=png",
    )
    .await;
    assert_close(
        &fixtures::pixel(&tinted.body, 190, 90).unwrap(),
        &[128.0, 128.0, 128.0],
        2.0,
        "blend colour",
    );
    let text = get_ok(
        &mesh,
        "/quadrants.png?txt=Hi&txt-size=40&txt-color=000&txt-align=middle,center&fm=png",
    )
    .await;
    assert_ne!(
        text.body,
        get_ok(&mesh, "/quadrants.png?fm=png").await.body,
        "txt draws"
    );
}

/// Every spec parameter fed edge and garbage values answers 200 (imgix's
/// fallback: the value is ignored or clamped); only undecodable base64 is 400.
#[tokio::test]
async fn garbage_values_never_fail() {
    let mesh = rendering_mesh().await;
    let long = "9".repeat(10_000);
    let values = [
        "-1",
        "0",
        "99999999",
        "NaN",
        "",
        "%00",
        "a,b,c,d",
        long.as_str(),
    ];
    // `expires` is the gateway's (signed-URL expiry, tested with the edge suite).
    let mut names: Vec<&str> = imgmesh_imgix_params::Spec::get()
        .params()
        .map(|p| p.name.as_str())
        .filter(|name| *name != "expires")
        .collect();
    names.sort_unstable();
    for name in names {
        for value in values {
            let query = format!("{name}={value}");
            let response = mesh
                .get("demo", &format!("/small.jpg?{query}"))
                .await
                .unwrap();
            assert_eq!(
                response.status,
                200,
                "{}: {}",
                &query[..query.len().min(80)],
                response.text()
            );
            assert!(
                fixtures::sniff(&response.body).is_some() || name == "fm",
                "{name}={value}: not an image"
            );
        }
    }
    for query in ["w64=@@@", "txt64=%FF", "mark64=A", "fit64=Y3JvcA=extra"] {
        let response = mesh
            .get("demo", &format!("/small.jpg?{query}"))
            .await
            .unwrap();
        assert_eq!(response.status, 400, "{query}: {}", response.text());
    }
    // auto and ch have no base64 variant: auto64 is an unknown parameter.
    assert_eq!(
        mesh.get("demo", "/small.jpg?auto64=@@@")
            .await
            .unwrap()
            .status,
        200
    );
}

/// A URL without rendering parameters is a passthrough, as imgix's cs page
/// says: "you can serve an image without any parameters to serve it as a
/// passthrough" (https://docs.imgix.com/apis/url/format/cs, "Rendering
/// non-web-safe colors"). Through the mesh: a JPEG with EXIF orientation 6
/// and a PNG come back byte for byte with their content type, cached (a
/// hit, a 304 for the ETag); `ixlib` and `auto=format` with an Accept that
/// names no better format change nothing; `w`, `fm=json`, `fm=blurhash`,
/// `auto=format` with AVIF accepted and a Source's default params render;
/// a Source's image_missing without appended params is served as it is
/// with 404; a signed URL (with `ixlib` and `expires`) is a passthrough.
#[tokio::test]
async fn urls_without_parameters_serve_the_original() {
    let mesh = rendering_mesh().await;
    let exif = fixtures::oriented_quadrants_jpeg(80, 40, 6).unwrap();
    mesh.put_object("as-is/exif.jpg", &exif).unwrap();
    let png = fixtures::quadrants_png(200, 100).unwrap();
    mesh.put_object("as-is/quadrants.png", &png).unwrap();

    for (path, original, content_type) in [
        ("/as-is/exif.jpg", &exif, "image/jpeg"),
        ("/as-is/quadrants.png", &png, "image/png"),
    ] {
        let served = get_ok(&mesh, path).await;
        assert_eq!(served.body.as_ref(), original.as_slice(), "{path}");
        assert_eq!(served.header("content-type"), Some(content_type));
        let again = get_ok(&mesh, path).await;
        assert_eq!(again.header("x-imgmesh-cache"), Some("hit"), "{path}");
        assert_eq!(again.body.as_ref(), original.as_slice(), "{path}");
        let etag = served.header("etag").expect("an ETag").to_owned();
        let not_modified = mesh
            .get_with("demo", path, &[("if-none-match", etag.as_str())])
            .await
            .unwrap();
        assert_eq!(not_modified.status, 304, "{path}");
        for query in ["ixlib=js-3.8.0", "auto=format"] {
            let same = mesh
                .get_with(
                    "demo",
                    &format!("{path}?{query}"),
                    &[("accept", "image/png,image/*")],
                )
                .await
                .unwrap();
            assert_eq!(same.status, 200, "{path}?{query}");
            assert_eq!(same.body.as_ref(), original.as_slice(), "{path}?{query}");
        }
    }

    let sized = get_ok(&mesh, "/as-is/exif.jpg?w=20").await;
    // Orientation 6: the stored 40 × 80 comes out upright, 20 × 10.
    fixtures::expect_image(&sized.body, Format::Jpeg, 20, 10).unwrap();
    let json = get_ok(&mesh, "/as-is/exif.jpg?fm=json").await;
    assert_eq!(json.header("content-type"), Some("application/json"));
    let blurhash = get_ok(&mesh, "/as-is/exif.jpg?fm=blurhash").await;
    assert_eq!(
        blurhash.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let negotiated = mesh
        .get_with(
            "demo",
            "/as-is/exif.jpg?auto=format",
            &[("accept", "image/avif,image/*")],
        )
        .await
        .unwrap();
    assert_eq!(negotiated.status, 200);
    fixtures::expect_image(&negotiated.body, Format::Avif, 80, 40).unwrap();

    mesh.create_source("defaulted", S3_SECRET_KEY, &["--default-params=fm=png"])
        .await
        .expect("source is created");
    mesh.create_source(
        "fallback",
        S3_SECRET_KEY,
        &["--image-missing=/as-is/exif.jpg"],
    )
    .await
    .expect("source is created");
    let rendered = mesh.get("defaulted", "/as-is/exif.jpg").await.unwrap();
    assert_eq!(rendered.status, 200, "{}", rendered.text());
    fixtures::expect_image(&rendered.body, Format::Png, 80, 40).unwrap();
    for url in ["/nothing-here.jpg", "/nothing-here.jpg?w=20"] {
        let missing = mesh.get("fallback", url).await.unwrap();
        assert_eq!(missing.status, 404, "{url}");
        assert_eq!(missing.body.as_ref(), exif.as_slice(), "{url}");
        assert_eq!(missing.header("content-type"), Some("image/jpeg"));
    }

    // `s`, `ixlib` and `expires` are not rendering parameters: a signed
    // URL without any other is a passthrough too.
    let secure = create_deployed(&mesh, "secure", json!({"secure_url_enabled": true})).await;
    let (token, _) = rotate(&mesh, secure["id"].as_str().unwrap(), 0).await;
    let unsigned = mesh.get("secure", "/as-is/exif.jpg").await.unwrap();
    assert_eq!(unsigned.status, 403);
    for url in [
        "/as-is/exif.jpg",
        "/as-is/exif.jpg?ixlib=js-3.8.0&expires=4102444800",
    ] {
        let signed = mesh
            .cli_json(&["sign", url, "--token", &token])
            .await
            .unwrap();
        let signed = signed["url"].as_str().unwrap();
        let served = mesh.get("secure", signed).await.unwrap();
        assert_eq!(served.status, 200, "{signed}: {}", served.text());
        assert_eq!(served.body.as_ref(), exif.as_slice(), "{signed}");
    }
}
