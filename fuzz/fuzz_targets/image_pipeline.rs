//! The renderer's image pipeline on arbitrary bytes: format sniffing, the
//! header checks (pixels, frames) and the libvips loaders, resize and
//! encoders, exactly as a render of an untrusted original runs them.
//!
//! AFL++ runs every input in a forked child of its fork server, so a crash
//! inside libvips (a signal, an abort) is caught and saved as a crash like
//! a Rust panic. Any `Err` is a refusal and fine; a panic is a bug.

use std::time::Duration;

use imgmesh_renderer::{RenderInput, RenderLimits, render_image};

/// A few plans touching different paths: shrink-on-load, crop and
/// re-encode, animation-preserving WebP, one frame of an animation.
const PLANS: [&str; 4] = [
    "w=64&fm=png",
    "w=40&h=40&fit=crop&fm=jpg&q=60",
    "w=48&fm=webp",
    "frame=2&h=32&fm=gif&blur=4",
];

fn main() {
    let plans: Vec<_> = PLANS
        .iter()
        .map(|query| {
            imgmesh_imgix_params::parse_render_plan("", query, None)
                .expect("a fixed plan parses")
                .plan
        })
        .collect();
    // Small limits keep every execution fast; the checks are the same.
    let limits = RenderLimits {
        max_pixels: 4_000_000,
        max_object_bytes: 1 << 20,
        max_frames: 50,
        max_render: Duration::from_secs(2),
    };
    afl::fuzz!(|data: &[u8]| {
        let input = RenderInput {
            original: data,
            ..RenderInput::default()
        };
        // The first byte picks the plan, so each input exercises one.
        let plan = &plans[usize::from(data.first().copied().unwrap_or(0)) % plans.len()];
        let _ = render_image(&input, plan, &limits);
    });
}
