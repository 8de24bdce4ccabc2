//! The limits every render enforces before it decodes anything: bytes,
//! pixels, frames and time.

use std::time::Duration;

/// The default pixel limit: 50 megapixels, pages counted.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// The default byte limit for originals: 32 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 32 * 1024 * 1024;

/// The default frame limit: 500 frames a render may decode. Real animated
/// GIFs and WebPs rarely exceed a few hundred frames (500 frames is 20 s at
/// 25 fps); past that, render time grows faster than the frame count.
pub const DEFAULT_MAX_FRAMES: u32 = 500;

/// The default time budget of one render: 10 seconds, far above a normal
/// render (milliseconds) and under the 15 s other replicas wait for a
/// render lease (`--lease-wait-ms`).
pub const DEFAULT_MAX_RENDER: Duration = Duration::from_secs(10);

/// Limits every render enforces before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Largest width × height × pages an original may declare.
    pub max_pixels: u64,
    /// Largest original, in bytes.
    pub max_object_bytes: u64,
    /// Most frames a render may decode (every frame of an animated output,
    /// or frames up to the one `frame` selects).
    pub max_frames: u32,
    /// Longest a render may run before it is stopped.
    pub max_render: Duration,
}

impl Default for RenderLimits {
    fn default() -> RenderLimits {
        RenderLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_frames: DEFAULT_MAX_FRAMES,
            max_render: DEFAULT_MAX_RENDER,
        }
    }
}
