//! Bad input: oversized, unsupported, corrupt and hostile originals and
//! overlays, and garbage parameters, refused cleanly or rendered, never a
//! panic.

use super::*;

/// Inputs over the byte limit are refused before they are even sniffed.
#[test]
fn byte_limit_refuses_large_inputs() {
    let original = test_images::jpeg(64, 48);
    let limits = RenderLimits {
        max_object_bytes: original.len() as u64 - 1,
        ..RenderLimits::default()
    };
    let input = RenderInput {
        original: &original,
        ..RenderInput::default()
    };
    let error = render_image(&input, &RenderPlan::default(), &limits).unwrap_err();
    assert!(
        matches!(error, RenderError::ObjectTooLarge { .. }),
        "{error:?}"
    );
}

/// Non-image bytes, SVG, PDF, TIFF, MATLAB and BMP are UNSUPPORTED_INPUT.
#[test]
fn unsupported_inputs_are_refused() {
    let tiff = test_images::tiff(16, 16);
    let inputs: [&[u8]; 7] = [
        b"hello, world",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
        b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
        &tiff,
        b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024",
        b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0",
        b"",
    ];
    for input in inputs {
        let error = try_render(input, "w=10").unwrap_err();
        assert!(matches!(error, RenderError::UnsupportedInput), "{error:?}");
    }
}

/// Truncated or garbled images of a served format are CORRUPT_INPUT, not a panic.
#[test]
fn corrupt_inputs_are_refused() {
    let jpeg = test_images::jpeg(400, 300);
    let png = test_images::png(64, 64);
    let inputs: [&[u8]; 5] = [
        &jpeg[..jpeg.len() / 2],
        &jpeg[..200],
        b"\xFF\xD8\xFF\xE0 this is not really a jpeg",
        &png[..png.len() / 2],
        b"\0\0\0\x1cftypavif\0\0\0\0garbage",
    ];
    for input in inputs {
        for query in ["w=100", "w=100&trim=auto&blur=5", "fm=json"] {
            let result = try_render(input, query);
            assert!(
                matches!(result, Err(RenderError::CorruptInput))
                    || (query == "fm=json" && result.is_ok()),
                "{query}: {result:?}"
            );
        }
    }
}

/// A watermark that is a decompression bomb is refused from its header and left out.
#[test]
fn bomb_overlays_are_left_out() {
    let base = test_images::png(64, 48);
    let bomb = test_images::png_header_only(50_000, 50_000);
    let input = RenderInput {
        original: &base,
        shared_original: None,
        watermark: Some(&bomb),
        blend: Some(&bomb),
    };
    let started = Instant::now();
    let derivative = render_with(input, "mark=/bomb.png&blend=/bomb.png&fm=png");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(derivative.data, render(&base, "fm=png").data);
}

/// Long text at a large size is laid out only as far as it can show.
#[test]
fn long_large_text_stays_cheap() {
    let base = test_images::png(300, 100);
    let long = "W".repeat(500);
    let started = Instant::now();
    for query in [
        format!("txt={long}&txt-size=1000&fm=png"),
        format!("txt={long}&txt-size=1000&txt-clip=start&fm=png"),
        format!("txt={long}&txt-size=1000&txt-clip=ellipsis&fm=png"),
        format!("txt={long}&txt-size=1000&txt-fit=max&fm=png"),
    ] {
        let derivative = render(&base, &query);
        assert_eq!(decoded_size(&derivative.data), (300, 100), "{query}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A watermark or blend image that does not decode is left out, not an error.
#[test]
fn undecodable_overlays_are_skipped() {
    let base = test_images::png(64, 48);
    let input = RenderInput {
        original: &base,
        shared_original: None,
        watermark: Some(b"not an image"),
        blend: Some(b"\x89PNG\r\n\x1a\ngarbage"),
    };
    let derivative = render_with(input, "mark=/m.png&blend=/b.png&fm=png");
    assert_eq!(decoded_size(&derivative.data), (64, 48));
}

/// libvips itself refuses loaders outside the allow-list (TIFF, SVG).
#[test]
fn libvips_blocks_other_loaders() {
    crate::pipeline::load::libvips::init().unwrap();
    let tiff = test_images::tiff(16, 16);
    assert!(VipsImage::new_from_buffer(&tiff, "").is_err());
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>";
    assert!(VipsImage::new_from_buffer(svg, "").is_err());
    rs_vips::Vips::error_clear();
    assert!(VipsImage::new_from_buffer(&test_images::jpeg(16, 16), "").is_ok());
}

/// Edge and garbage values of every parameter render (or are refused cleanly), never panic.
#[test]
fn garbage_parameters_render() {
    let original = test_images::jpeg(64, 48);
    for param in imgmesh_imgix_params::Spec::get().params() {
        for value in ["-1", "0", "100", "0.5", "NaN", "a,b,c,d", "ff0000"] {
            let query = format!("{}={value}", param.name);
            let Ok(parsed) = parse_render_plan("", &query, None) else {
                continue;
            };
            let input = RenderInput {
                original: &original,
                ..RenderInput::default()
            };
            let result = render_image(&input, &parsed.plan, &RenderLimits::default());
            assert!(result.is_ok(), "{query}: {result:?}");
        }
    }
}

/// The finding itself: thousands of tiny GIF frames (cheap to declare,
/// tens of seconds to render) are stopped near the budget even with the
/// frame limit raised past them, wherever the time goes (building the
/// per-frame pipelines, or libvips evaluating them).
#[test]
fn time_budget_bounds_thousands_of_tiny_frames() {
    let gif = test_images::animated_gif(8, 8, 3_000);
    let limits = RenderLimits {
        max_frames: 10_000,
        max_render: Duration::from_millis(500),
        ..RenderLimits::default()
    };
    let started = Instant::now();
    let stopped = render_image(&input(&gif), &plan("w=16"), &limits);
    let elapsed = started.elapsed();
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { limit_ms: 500 })),
        "{stopped:?}"
    );
    assert!(elapsed < Duration::from_millis(2_500), "took {elapsed:?}");
}
