//! Limits: pixels, frames and time, each refused or stopped and counted.

use super::*;

/// A 10000×10000 PNG (small on disk) is refused as too large, from its header.
#[test]
fn pixel_limit_refuses_large_images() {
    crate::pipeline::load::libvips::init().unwrap();
    let black = VipsImage::black(10_000, 10_000)
        .unwrap()
        .pngsave_buffer_with_opts(VOption::new().set("compression", 1))
        .unwrap();
    let error = try_render(&black, "w=100").unwrap_err();
    assert!(
        matches!(
            error,
            RenderError::TooManyPixels {
                pixels: 100_000_000,
                limit: DEFAULT_MAX_PIXELS
            }
        ),
        "{error:?}"
    );
}

/// A hand-made 50000×50000 PNG header is refused before any decode, quickly.
#[test]
fn bomb_header_is_refused_before_decoding() {
    let bomb = test_images::png_header_only(50_000, 50_000);
    assert!(bomb.len() < 100);
    crate::pipeline::load::libvips::init().unwrap();
    let started = Instant::now();
    let error = try_render(&bomb, "w=100").unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            error,
            RenderError::TooManyPixels {
                pixels: 2_500_000_000,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
}

/// The limit is inclusive, and every page of an animation counts.
#[test]
fn pixel_limit_is_inclusive_and_counts_pages() {
    let original = test_images::jpeg(400, 300);
    let limits = |max_pixels| RenderLimits {
        max_pixels,
        ..RenderLimits::default()
    };
    let at_limit = render_image(&input(&original), &plan("w=100"), &limits(120_000));
    assert!(at_limit.is_ok(), "{at_limit:?}");
    let over = render_image(&input(&original), &plan("w=100"), &limits(119_999));
    assert!(
        matches!(over, Err(RenderError::TooManyPixels { .. })),
        "{over:?}"
    );
    let gif = test_images::animated_gif(100, 100, 3);
    let one_page = render_image(&input(&gif), &plan("w=50&frame=1"), &limits(20_000));
    assert!(
        matches!(
            one_page,
            Err(RenderError::TooManyPixels { pixels: 30_000, .. })
        ),
        "{one_page:?}"
    );
}

/// An animated output counts every page against the pixel limit, even
/// though each frame alone is small.
#[test]
fn pixel_limit_counts_every_frame_of_an_animation() {
    let gif = test_images::animated_gif(50, 50, 40);
    let limits = RenderLimits {
        max_pixels: 99_999,
        ..RenderLimits::default()
    };
    let animated = render_image(&input(&gif), &plan("w=20"), &limits);
    assert!(
        matches!(
            animated,
            Err(RenderError::TooManyPixels {
                pixels: 100_000,
                limit: 99_999
            })
        ),
        "{animated:?}"
    );
}

/// A GIF of more frames than the frame limit is refused from its header,
/// fast (no frame decoded) and counted; a still output of its first frame, which
/// decodes only that frame, still renders.
#[test]
fn frame_limit_refuses_long_animations_before_decoding() {
    let gif = test_images::animated_gif(4, 4, 2_000);
    let counted = stopped_renders("frames");
    let started = Instant::now();
    let refused = try_render(&gif, "w=2");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            refused,
            Err(RenderError::TooManyFrames {
                frames: 2_000,
                limit: DEFAULT_MAX_FRAMES
            })
        ),
        "{refused:?}"
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    assert!(stopped_renders("frames") > counted, "not counted");
    let error = refused.unwrap_err();
    assert_eq!(
        error.to_string(),
        "image has 2000 frames, more than the limit of 500"
    );
    assert_eq!(error.code(), imgmesh_errors::ErrorCode::InputTooLarge);

    let late_frame = try_render(&gif, "frame=501&fm=png");
    assert!(
        matches!(late_frame, Err(RenderError::TooManyFrames { .. })),
        "{late_frame:?}"
    );
    let still = render(&gif, "fm=png");
    assert_eq!(decoded_size(&still.data), (4, 4));
}

/// The frame limit is inclusive: an animation of exactly `max_frames`
/// frames renders animated.
#[test]
fn frame_limit_is_inclusive() {
    let gif = test_images::animated_gif(8, 8, 30);
    let limits = |max_frames| RenderLimits {
        max_frames,
        ..RenderLimits::default()
    };
    let at_limit = render_image(&input(&gif), &plan("w=4"), &limits(30)).unwrap();
    assert_eq!(decode_all(&at_limit.data).get_int("n-pages").unwrap(), 30);
    let over = render_image(&input(&gif), &plan("w=4"), &limits(29));
    assert!(
        matches!(
            over,
            Err(RenderError::TooManyFrames {
                frames: 30,
                limit: 29
            })
        ),
        "{over:?}"
    );
}

/// A render over a tiny time budget is stopped with RENDER_TOO_SLOW (and
/// counted), and the next render on the same thread (same libvips state)
/// succeeds.
#[test]
fn time_budget_stops_an_animation_and_the_thread_renders_again() {
    let gif = test_images::animated_gif(32, 32, 300);
    let tiny = RenderLimits {
        max_render: Duration::from_millis(1),
        ..RenderLimits::default()
    };
    let counted = stopped_renders("time");
    let stopped = render_image(&input(&gif), &plan("w=64"), &tiny);
    assert!(stopped_renders("time") > counted, "not counted");
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { limit_ms: 1 })),
        "{stopped:?}"
    );
    let error = stopped.unwrap_err();
    assert_eq!(
        error.to_string(),
        "image took longer than the limit of 1 ms to render"
    );
    assert_eq!(error.code(), imgmesh_errors::ErrorCode::InputTooLarge);

    let jpeg = render(&test_images::jpeg(100, 80), "w=50");
    assert_eq!(decoded_size(&jpeg.data), (50, 40));
    let animated = render(&gif, "w=16");
    assert_eq!(decode_all(&animated.data).get_int("n-pages").unwrap(), 300);
}

/// The budget stops libvips mid-evaluation: a single-frame render whose
/// encoder alone takes seconds (a 64-megapixel PNG) ends soon after the
/// budget. The render checks its budget only before the encoder, so only
/// the kill switch inside libvips can end it early.
#[test]
fn time_budget_kills_libvips_mid_evaluation() {
    let original = test_images::jpeg(1_000, 1_000);
    let limits = RenderLimits {
        max_render: Duration::from_millis(200),
        ..RenderLimits::default()
    };
    let started = Instant::now();
    let stopped = render_image(
        &input(&original),
        &plan("w=8000&h=8000&fit=scale&fm=png"),
        &limits,
    );
    let elapsed = started.elapsed();
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { limit_ms: 200 })),
        "{stopped:?} after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1_500), "took {elapsed:?}");
    let next = render(&original, "w=100&fm=png");
    assert_eq!(decoded_size(&next.data), (100, 100));
}

/// On a one-worker pool, a render stopped by its budget frees the worker:
/// the next render on the same pool succeeds.
#[tokio::test]
async fn stopped_render_frees_the_pool_worker() {
    let limits = RenderLimits {
        max_render: Duration::from_millis(100),
        ..RenderLimits::default()
    };
    let pool = crate::service::render_pool::RenderPool::new(1, limits);
    let heavy = RenderSources::original(test_images::jpeg(1_000, 1_000));
    let stopped = pool
        .render(heavy, resolved("w=8000&h=8000&fit=scale&fm=png"))
        .await;
    assert!(
        matches!(stopped, Err(RenderError::RenderTooSlow { .. })),
        "{stopped:?}"
    );
    let small = RenderSources::original(test_images::jpeg(100, 80));
    let derivative = pool.render(small, resolved("w=50")).await.unwrap();
    assert_eq!((derivative.width, derivative.height), (50, 40));
}
