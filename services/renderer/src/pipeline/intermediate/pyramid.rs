//! A batch's kept decode: the whole original loaded at full scale (upright,
//! its colours handled as the batch's renders load it) and its box-filtered
//! halvings, from which every width of a srcset is resized.
//!
//! The levels stand in for the JPEG scales libvips' `thumbnail` decodes at
//! (1, 1/2, 1/4, 1/8): a width is resized from the level [`jpeg_shrink`]
//! picks for it, so its resize is by the same factor (two to four, more
//! below 1/8) as inside a fresh `thumbnail_buffer`, and costs what that
//! resize costs. A level is the 2 × 2 mean of the one above it, as libjpeg's
//! scaled decode is a low-pass of the full-scale block, so the pixels are
//! close to a fresh render's but not the same (the quality section of
//! docs/benchmarks.md scores them against a full-decode reference).
//! Resizing the full-scale decode itself by four or more is what must be
//! avoided: `thumbnail_image` from a 3840 × 2400 decode to 960 wide took
//! 0.8 s of CPU (vips 8.14 CLI, one thread) where it took 0.06 s from the
//! 1920 × 1200 level.

use rs_vips::VipsImage;

use crate::error::RenderError;
use crate::pipeline::libvips::RenderBudget;
use crate::pipeline::load::source_image::{self, Header};

use super::{decoded_bytes, image_bytes, jpeg_shrink};

/// The halvings below the full-scale decode: down to 1/8, the coarsest
/// JPEG scale.
const HALVINGS: usize = 3;

/// The whole original at full scale and its halvings (see the module docs).
#[derive(Debug)]
pub(crate) struct Pyramid {
    /// `levels[i]` is the original at 1/2^i, in memory.
    levels: Vec<VipsImage>,
}

// === impl Pyramid ===

impl Pyramid {
    /// The pyramid of `full`, the whole upright original at full scale:
    /// copied into memory, then halved [`HALVINGS`] times (while both
    /// sides have two pixels or more).
    pub(crate) fn build(full: &VipsImage, budget: &RenderBudget) -> Result<Pyramid, RenderError> {
        let failed = budget.failure("thumbnail");
        let mut levels = vec![full.copy_memory().map_err(&failed)?];
        budget.check()?;
        while levels.len() <= HALVINGS {
            let last = &levels[levels.len() - 1];
            if last.get_width() < 2 || last.get_height() < 2 {
                break;
            }
            let half = last.shrink(2.0, 2.0).map_err(&failed)?;
            levels.push(half.copy_memory().map_err(&failed)?);
            budget.check()?;
        }
        Ok(Pyramid { levels })
    }

    /// The size of the full-scale level (upright).
    pub(crate) fn size(&self) -> (u32, u32) {
        let full = &self.levels[0];
        (
            source_image::dimension(full.get_width()),
            source_image::dimension(full.get_height()),
        )
    }

    /// The level a derivative resized to `target` (upright) is made from:
    /// the one at the scale libvips would decode a JPEG at for it.
    pub(crate) fn source_for(&self, target: (u32, u32)) -> &VipsImage {
        let (width, height) = self.size();
        let shrink = jpeg_shrink(width, height, target.0, target.1);
        let level = (shrink.trailing_zeros() as usize).min(self.levels.len() - 1);
        &self.levels[level]
    }

    /// The bytes its levels hold.
    pub(crate) fn bytes(&self) -> u64 {
        self.levels.iter().map(image_bytes).sum()
    }

    /// At least the bytes the pyramid of a JPEG with `header` holds (its
    /// halvings add a third at most), before it is built.
    pub(crate) fn estimated_bytes(header: &Header) -> u64 {
        let full = decoded_bytes(header, 1);
        full + full.div_ceil(3)
    }
}
