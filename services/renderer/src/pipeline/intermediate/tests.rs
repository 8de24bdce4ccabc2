//! Reuse of kept decodes: when it happens, when it must not, its bounds,
//! and that its pixels are a fresh render's.

use std::sync::Arc;
use std::time::Duration;

use imgmesh_imgix_params::parse_render_plan;
use tokio::sync::Semaphore;

use super::*;
use crate::pipeline::{Derivative, RenderInput, RenderLimits, render, render_reusing};
use crate::test_images;

/// A resolved plan from an imgix query.
fn plan(query: &str) -> ResolvedPlan {
    let parsed = parse_render_plan("", query, None).unwrap();
    ResolvedPlan::resolve(&parsed.plan).unwrap()
}

/// `query` on `original`, through `intermediates` when given.
fn render_with(original: &[u8], query: &str, intermediates: Option<&Intermediates>) -> Derivative {
    let input = RenderInput {
        original,
        ..RenderInput::default()
    };
    let plan = plan(query);
    match intermediates {
        Some(intermediates) => {
            render_reusing(&input, &plan, &RenderLimits::default(), Some(intermediates))
        }
        None => render(&input, &plan, &RenderLimits::default()),
    }
    .unwrap_or_else(|error| panic!("{query}: {error}"))
}

/// A cache of `budget` bytes, a minute's life, no running memory.
fn cache(budget: u64) -> Intermediates {
    Intermediates::new(budget, Duration::from_secs(60), None)
}

/// (decodes, intermediate hits) so far in this process (nextest runs each
/// test in its own).
fn counts() -> (u64, u64) {
    (METRICS.originals_decoded(), METRICS.intermediate_hits())
}

/// libvips' choice of JPEG scale, as the module docs give it.
#[test]
fn jpeg_shrink_leaves_a_factor_of_two_to_the_resize() {
    assert_eq!(jpeg_shrink(3840, 2400, 320, 200), 4);
    assert_eq!(jpeg_shrink(3840, 2400, 480, 300), 4);
    assert_eq!(jpeg_shrink(3840, 2400, 640, 400), 2);
    assert_eq!(jpeg_shrink(3840, 2400, 960, 600), 2);
    assert_eq!(jpeg_shrink(3840, 2400, 1024, 640), 1);
    assert_eq!(jpeg_shrink(3840, 2400, 200, 125), 8);
    // The smaller factor decides.
    assert_eq!(jpeg_shrink(3840, 2400, 240, 600), 2);
}

/// The first render of an original keeps nothing, the second keeps its
/// decode, the third (a width at the same scale) resizes that decode
/// without decoding, and gives the very bytes of a fresh render.
#[test]
fn a_second_width_of_the_same_original_reuses_its_decode() {
    let original = test_images::jpeg(1600, 1000);
    let intermediates = cache(SRCSET_INTERMEDIATE_BYTES);
    let (decodes, hits) = counts();
    // 1600 / 200 = 8, 1600 / 180 ≈ 8.9, 1600 / 160 = 10: all at 1/4.
    render_with(&original, "w=200", Some(&intermediates));
    assert!(intermediates.is_empty(), "the first decode is not kept");
    render_with(&original, "w=180", Some(&intermediates));
    assert_eq!(intermediates.len(), 1, "the second decode is kept");
    assert_eq!(intermediates.bytes(), 400 * 250 * 3, "at 1/4 scale");
    let reused = render_with(&original, "w=160", Some(&intermediates));
    assert_eq!(counts(), (decodes + 2, hits + 1), "(decodes, hits)");

    let fresh = render_with(&original, "w=160", None);
    assert_eq!((reused.width, reused.height), (160, 100));
    assert!(
        reused.data == fresh.data,
        "a reused render differs from a fresh one"
    );
}

/// Only a decode of the render's own JPEG scale serves it: a finer one
/// (here full scale) does not serve a 1/8-scale width, which decodes and
/// keeps its own; a width at the kept scale (here with `orient`) is served,
/// with the very bytes of a fresh render.
#[test]
fn only_the_renders_own_scale_serves_it() {
    let original = test_images::jpeg(1600, 1000);
    let intermediates = cache(SRCSET_INTERMEDIATE_BYTES);
    // 1600 / 500 = 3.2: full scale, kept on the second render.
    render_with(&original, "w=500", Some(&intermediates));
    render_with(&original, "w=520", Some(&intermediates));
    assert_eq!(intermediates.bytes(), 1600 * 1000 * 3);
    let (decodes, hits) = counts();
    // 1600 / 90 ≈ 17.8 and 1000 / 56 ≈ 17.9: 1/8 scale.
    render_with(&original, "w=90", Some(&intermediates));
    assert_eq!(counts(), (decodes + 1, hits), "(decodes, hits)");
    assert_eq!(intermediates.len(), 2, "both scales kept");
    assert_eq!(intermediates.bytes(), 1600 * 1000 * 3 + 200 * 125 * 3);

    let query = "w=400&fm=png&orient=6";
    let reused = render_with(&original, query, Some(&intermediates));
    let fresh = render_with(&original, query, None);
    assert_eq!((reused.width, reused.height), (400, 640));
    assert!(
        reused.data == fresh.data,
        "{query}: differs from a fresh render"
    );
    assert_eq!(counts(), (decodes + 2, hits + 1), "(decodes, hits)");
}

/// Another original (a changed file: another ETag, other bytes), a plan
/// that cuts the original, JSON and a non-JPEG never reuse.
#[test]
fn other_bytes_crops_and_other_formats_do_not_reuse() {
    let original = test_images::jpeg(800, 600);
    let intermediates = cache(SRCSET_INTERMEDIATE_BYTES);
    render_with(&original, "w=100", Some(&intermediates));
    render_with(&original, "w=110", Some(&intermediates));
    assert_eq!(intermediates.len(), 1);
    let (decodes, hits) = counts();

    let changed = test_images::jpeg(800, 600);
    assert_ne!(changed, original, "the noise differs");
    render_with(&changed, "w=100", Some(&intermediates));
    for query in [
        "w=100&h=100&fit=crop",
        "rect=0,0,400,300&w=100",
        "w=100&trim=color&trim-color=000",
        "fm=json",
    ] {
        render_with(&original, query, Some(&intermediates));
    }
    render_with(&test_images::png(800, 600), "w=100", Some(&intermediates));
    assert_eq!(counts().1, hits, "no reuse");
    // The changed file, the crops and the PNG each decoded; JSON did not.
    assert_eq!(counts().0, decodes + 5);
    assert_eq!(intermediates.len(), 1, "nothing else kept");
}

/// The byte budget holds: a new decode evicts the least recently used,
/// one larger than the budget is not kept, and the evictions are counted.
#[test]
fn the_budget_evicts_the_least_recently_used() {
    // Room for one 1/4-scale decode of 800 × 600 (200 × 150 × 3).
    let intermediates = cache(100_000);
    let first = test_images::jpeg(800, 600);
    let second = test_images::jpeg(800, 600);
    for original in [&first, &second] {
        render_with(original, "w=100", Some(&intermediates));
        render_with(original, "w=90", Some(&intermediates));
    }
    assert_eq!(intermediates.len(), 1);
    assert_eq!(intermediates.bytes(), 200 * 150 * 3);
    let metrics = imgmesh_metrics::encode();
    assert!(
        metrics.contains("imgmesh_render_intermediate_evictions_total{reason=\"lru\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imgmesh_render_intermediate_bytes 90000"),
        "{metrics}"
    );
    let (_, hits) = counts();
    render_with(&second, "w=80", Some(&intermediates));
    render_with(&first, "w=80", Some(&intermediates));
    assert_eq!(counts().1, hits + 1, "only the newer original is kept");

    // Full scale (800 × 600 × 3) is over the budget: decoded, not kept.
    let large = test_images::jpeg(800, 600);
    render_with(&large, "w=700", Some(&intermediates));
    render_with(&large, "w=690", Some(&intermediates));
    assert!(intermediates.bytes() <= 100_000);
    assert!(
        intermediates
            .lock()
            .entries
            .iter()
            .all(|entry| entry.shrink == 4)
    );
}

/// Kept decodes and remembered digests go after their time to live; a
/// budget of 0 keeps nothing.
#[test]
fn decodes_expire_and_a_zero_budget_keeps_nothing() {
    let original = test_images::jpeg(800, 600);
    // Long enough that the second render comes within it on a loaded
    // machine: at 50 ms the first render's digest sometimes expired before
    // the second render asked, and nothing was kept.
    let ttl = Duration::from_secs(1);
    let intermediates = Intermediates::new(1 << 20, ttl, None);
    render_with(&original, "w=100", Some(&intermediates));
    render_with(&original, "w=110", Some(&intermediates));
    assert_eq!(intermediates.len(), 1);
    std::thread::sleep(ttl + Duration::from_millis(10));
    intermediates.expire();
    assert_eq!((intermediates.len(), intermediates.bytes()), (0, 0));
    // The digest expired too: the next render is a first decode again.
    render_with(&original, "w=100", Some(&intermediates));
    assert!(intermediates.is_empty());

    let off = cache(0);
    let (decodes, hits) = counts();
    for width in [100, 110, 120] {
        render_with(&original, &format!("w={width}"), Some(&off));
    }
    assert_eq!(counts(), (decodes + 3, hits));
    assert!(off.is_empty());
}

/// Kept decodes hold their size from the running memory, give it back
/// when a render needs it, and are not kept when it is all taken.
#[test]
fn kept_decodes_hold_and_yield_running_memory() {
    let running = Arc::new(Semaphore::new(1024));
    let intermediates = Intermediates::new(
        SRCSET_INTERMEDIATE_BYTES,
        Duration::from_secs(60),
        Some(Arc::clone(&running)),
    );
    let original = test_images::jpeg(800, 600);
    // 800 / 100 = 8 and 800 / 90 ≈ 8.9: both at 1/4 scale.
    render_with(&original, "w=100", Some(&intermediates));
    render_with(&original, "w=90", Some(&intermediates));
    // 200 × 150 × 3 bytes = 88 KiB.
    assert_eq!(running.available_permits(), 1024 - 88);
    intermediates.make_room(1000);
    assert!(intermediates.is_empty());
    assert_eq!(running.available_permits(), 1024);

    let held = Arc::clone(&running).try_acquire_many_owned(1000).unwrap();
    render_with(&original, "w=120", Some(&intermediates));
    assert!(
        intermediates.is_empty(),
        "no running memory left to keep it"
    );
    drop(held);
}

/// Renders of one original at once: one decodes (and keeps), the others it
/// serves wait for it instead of decoding beside it, and each gets its own
/// size.
#[test]
fn concurrent_widths_wait_for_one_decode() {
    let original = Arc::new(test_images::jpeg(1600, 1000));
    let intermediates = Arc::new(cache(SRCSET_INTERMEDIATE_BYTES));
    render_with(&original, "w=200", Some(&intermediates));
    let (decodes, hits) = counts();
    // 1600 / 190 … 1600 / 110: all at 1/4 scale.
    let widths = [190_u32, 170, 150, 130, 110];
    let threads: Vec<_> = widths
        .iter()
        .map(|&width| {
            let (original, intermediates) = (Arc::clone(&original), Arc::clone(&intermediates));
            std::thread::spawn(move || {
                render_with(&original, &format!("w={width}"), Some(&intermediates)).width
            })
        })
        .collect();
    let rendered: Vec<u32> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(rendered, widths);
    assert_eq!(counts(), (decodes + 1, hits + 4), "(decodes, hits)");
    assert!(intermediates.lock().pending.is_empty());
}

/// A kept decode of a JPEG with large XMP is made without it, and what it
/// serves is the very bytes of a fresh render of the same JPEG without the
/// XMP.
#[test]
fn a_kept_decode_leaves_unused_metadata_out() {
    let base = test_images::jpeg_with_orientation_and_profile(1600, 1000);
    let with_xmp = test_images::jpeg_with_unused_metadata(&base, 4, 60_000);
    let intermediates = cache(SRCSET_INTERMEDIATE_BYTES);
    let (decodes, hits) = counts();
    render_with(&with_xmp, "w=200", Some(&intermediates));
    render_with(&with_xmp, "w=180", Some(&intermediates));
    assert_eq!(intermediates.len(), 1, "the second decode is kept");
    let reused = render_with(&with_xmp, "w=160", Some(&intermediates));
    assert_eq!(counts(), (decodes + 2, hits + 1), "(decodes, hits)");
    let kept_xmp = intermediates.lock().entries.iter().any(|entry| {
        entry
            .image
            .get_typeof("xmp-data")
            .is_ok_and(|gtype| gtype != 0)
    });
    assert!(!kept_xmp, "the kept decode holds no XMP");
    let fresh = render_with(&base, "w=160", None);
    assert!(
        reused.data == fresh.data,
        "a reused render differs from a fresh one"
    );
}
