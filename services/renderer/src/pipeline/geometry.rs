//! Where the output's pixels come from: the plan's sizing parameters
//! (`rect`, `w`, `h`, `ar`, `dpr`, `fit`, `crop`, `fp-*`, `min-*`, `max-*`,
//! `pad`) turned into a [`Layout`] for an upright source of a given size.
//!
//! A layout names the **region** of the source that is kept (all of it, a
//! `rect`, or a crop window), the size that region is **resized** to, an
//! optional content-aware **smart crop** of the resized image
//! (`crop=entropy`, `edges`, `faces`), an optional **canvas** the image is
//! centred on (`fit=fill`, `fillmax`, `clamp`), and the **padding** around
//! it. Crops by edge or focal point are done as a region of the source, so
//! they cost nothing beyond the resize.
//!
//! imgix's fit modes, for a source region of `W × H` and a box `w × h`
//! (after `dpr`, minus padding):
//!
//! | fit | both w and h | one of them |
//! |---|---|---|
//! | `clip` (default) | fit inside, keep aspect, may upscale | scale to it |
//! | `max` | like clip, never upscale | like clip, never upscale |
//! | `scale` | exactly `w × h` | scale to it |
//! | `crop` | cover `w × h`, crop the excess | scale to it (`ar` gives the other side) |
//! | `min` | the box's aspect, never larger than the source | like max |
//! | `fill` | clip, then a `w × h` canvas | scale to it (`ar` gives the canvas's other side) |
//! | `fillmax` | max, then a `w × h` canvas | like max |
//! | `clamp` | clip, then a `w × h` canvas of extended edges | scale to it |
//!
//! Without `w` and `h` the region keeps its size (`dpr` needs one of them,
//! as imgix documents). No output
//! side ever exceeds [`MAX_OUTPUT_SIDE`].

use imgmesh_proto::renderer::v1::{
    Anchor, CropStrategy, Fit, Length, RenderPlan, length, rect_offset,
};

pub use imgmesh_imgix_params::MAX_OUTPUT_SIDE;

use crate::pipeline::plan::ResolvedPlan;

/// A rectangle in source pixels (fractional).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Region {
    /// Left edge.
    pub(crate) x: f64,
    /// Top edge.
    pub(crate) y: f64,
    /// Width.
    pub(crate) width: f64,
    /// Height.
    pub(crate) height: f64,
}

/// Which content-aware crop libvips' `smartcrop` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// The region with the most entropy.
    Entropy,
    /// The most salient region (edges, skin tones, saturation).
    Attention,
}

/// A content-aware crop of the resized image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SmartCrop {
    /// Width kept.
    pub(crate) width: u32,
    /// Height kept.
    pub(crate) height: u32,
    /// How the kept region is chosen.
    pub(crate) interest: Interest,
}

/// Padding in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Padding {
    /// Top.
    pub(crate) top: u32,
    /// Right.
    pub(crate) right: u32,
    /// Bottom.
    pub(crate) bottom: u32,
    /// Left.
    pub(crate) left: u32,
}

/// How a source becomes the output's image area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    /// The part of the upright source that is used.
    pub(crate) region: Region,
    /// The size the region is resized to.
    pub(crate) resize: (u32, u32),
    /// A content-aware crop of the resized region.
    pub(crate) smart_crop: Option<SmartCrop>,
    /// The canvas the image is centred on.
    pub(crate) canvas: Option<(u32, u32)>,
    /// Padding around the image (or canvas).
    pub(crate) padding: Padding,
}

// === impl Region ===

impl Region {
    /// All of a `width × height` source (at least one pixel a side).
    pub(crate) fn whole(width: u32, height: u32) -> Region {
        Region {
            x: 0.0,
            y: 0.0,
            width: f64::from(width.max(1)),
            height: f64::from(height.max(1)),
        }
    }
}

// === impl Layout ===

impl Layout {
    /// The layout for an upright source of `source_width × source_height`.
    #[cfg(test)]
    pub(crate) fn compute(source_width: u32, source_height: u32, plan: &ResolvedPlan) -> Layout {
        Layout::compute_in(Region::whole(source_width, source_height), plan)
    }

    /// The layout for `base`, the part of the upright source that counts
    /// as the whole image (all of it, or what `trim` kept).
    pub(crate) fn compute_in(base: Region, resolved: &ResolvedPlan) -> Layout {
        let (plan, dpr) = (resolved.canonical(), resolved.dpr());
        let region = source_rect(base, plan);
        let padding = padding(plan);
        let (pad_x, pad_y) = (
            f64::from(padding.left + padding.right),
            f64::from(padding.top + padding.bottom),
        );
        let fit = resolved.fit();
        let side = |pixels: u32, fraction_ppm: u32, reference: f64| -> Option<f64> {
            match (pixels, fraction_ppm) {
                (0, 0) => None,
                (0, fraction) => Some(reference * f64::from(fraction) / 1e6),
                (pixels, _) => Some(f64::from(pixels)),
            }
        };
        let max = f64::from(MAX_OUTPUT_SIDE);
        let clamp_side = |v: f64| v.clamp(1.0, max);
        let mut width =
            side(plan.width, plan.width_fraction_ppm, region.width).map(|w| clamp_side(w * dpr));
        let mut height =
            side(plan.height, plan.height_fraction_ppm, region.height).map(|h| clamp_side(h * dpr));

        // imgix: `ar` "will work only when either fit=crop or fit=fill is
        // set"; with `fit=fill` the frame it gives is the canvas.
        let ratio = (matches!(fit, Fit::Crop | Fit::Fill) && plan.aspect_ratio_ppm > 0)
            .then(|| plan.aspect_ratio_ppm as f64 / 1e6);
        if let Some(ratio) = ratio {
            match (width, height) {
                (Some(w), None) => height = Some(clamp_side(w / ratio)),
                (None, Some(h)) => width = Some(clamp_side(h * ratio)),
                (None, None) => {
                    // The largest region of that aspect ratio; no `dpr`,
                    // which needs a `w` or `h` (see below).
                    let (w, h) = if region.width / region.height > ratio {
                        (region.height * ratio, region.height)
                    } else {
                        (region.width, region.width / ratio)
                    };
                    width = Some(clamp_side(w));
                    height = Some(clamp_side(h));
                }
                (Some(_), Some(_)) => {}
            }
        }
        if fit == Fit::Crop
            && let Some(bounds) = &plan.size_bounds
        {
            // imgix: `min-*` / `max-*` bound the output's sides and "only
            // work if fit=crop is present"; a side the URL leaves out takes
            // the region's aspect ratio first, and a bound that moves it
            // expands or cuts the crop box (`fit=crop&h=200&min-w=300` is
            // 300 × 200, `fit=crop&h=200&max-w=200` is 200 × 200).
            let aspect = region.width / region.height;
            let (derived_width, derived_height) = match (width, height) {
                (Some(w), Some(h)) => (w, h),
                (Some(w), None) => (w, w / aspect),
                (None, Some(h)) => (h * aspect, h),
                (None, None) => (region.width, region.height),
            };
            let bound = |v: f64, min: u32, max: u32| {
                let v = if min > 0 { v.max(f64::from(min)) } else { v };
                clamp_side(if max > 0 { v.min(f64::from(max)) } else { v })
            };
            let bounded_width = bound(derived_width, bounds.min_width, bounds.max_width);
            let bounded_height = bound(derived_height, bounds.min_height, bounds.max_height);
            let moved = (bounded_width - derived_width).abs() >= 0.5
                || (bounded_height - derived_height).abs() >= 0.5;
            if moved || (width.is_some() && height.is_some()) {
                width = Some(bounded_width);
                height = Some(bounded_height);
            }
        }

        // Padding comes out of a requested box, and is added to the
        // source's own size otherwise.
        let inner = |v: Option<f64>, pad: f64| v.map(|v| (v - pad).max(1.0));
        let (box_width, box_height) = (inner(width, pad_x), inner(height, pad_y));
        let mut layout = Layout {
            region,
            resize: (0, 0),
            smart_crop: None,
            canvas: None,
            padding,
        };
        let never_up = matches!(fit, Fit::Max | Fit::Fillmax | Fit::Min);
        match (box_width, box_height) {
            (None, None) => {
                // imgix: for `dpr` "you must specify a width, a height, or
                // both for this parameter to work", so without them the
                // region keeps its own size.
                let scale = 1.0_f64
                    .min((max - pad_x).max(1.0) / region.width)
                    .min((max - pad_y).max(1.0) / region.height);
                layout.resize = scaled(region, scale, scale);
            }
            (Some(w), None) => {
                let scale = cap(w / region.width, never_up);
                layout.resize = scaled(region, scale, scale);
            }
            (None, Some(h)) => {
                let scale = cap(h / region.height, never_up);
                layout.resize = scaled(region, scale, scale);
            }
            (Some(w), Some(h)) => layout.fit_box(w, h, fit, plan),
        }
        layout.limit();
        layout
    }

    /// Fills in the resize, crop and canvas for a `w × h` box.
    fn fit_box(&mut self, w: f64, h: f64, fit: Fit, plan: &RenderPlan) {
        let region = self.region;
        let contain = (w / region.width).min(h / region.height);
        match fit {
            Fit::Scale => self.resize = (round(w), round(h)),
            Fit::Max | Fit::Fillmax => {
                let scale = contain.min(1.0);
                self.resize = scaled(region, scale, scale);
            }
            Fit::Crop => self.crop_to(w, h, plan),
            Fit::Min => {
                let shrink = (region.width / w).min(region.height / h);
                if shrink >= 1.0 {
                    self.crop_to(w, h, plan);
                } else {
                    // The box's aspect ratio at the source's own scale.
                    self.crop_to(w * shrink, h * shrink, plan);
                }
            }
            Fit::Unspecified | Fit::Clip | Fit::Fill | Fit::Clamp => {
                self.resize = scaled(region, contain, contain);
            }
        }
        if matches!(fit, Fit::Fill | Fit::Fillmax | Fit::Clamp) {
            self.canvas = Some((round(w), round(h)));
        }
    }

    /// Covers a `w × h` box and crops the excess: by edges or focal point
    /// as a source region, or by content after the resize.
    fn crop_to(&mut self, w: f64, h: f64, plan: &RenderPlan) {
        let region = self.region;
        let crop = plan.crop.unwrap_or_default();
        let cover = (w / region.width).max(h / region.height);
        let interest = match crop.strategy() {
            CropStrategy::Entropy => Some(Interest::Entropy),
            CropStrategy::Attention => Some(Interest::Attention),
            CropStrategy::Unspecified | CropStrategy::Focalpoint => None,
        };
        if let Some(interest) = interest {
            self.resize = scaled(region, cover, cover);
            let (width, height) = (round(w), round(h));
            self.resize = (self.resize.0.max(width), self.resize.1.max(height));
            self.smart_crop = Some(SmartCrop {
                width,
                height,
                interest,
            });
            return;
        }
        let zoom = if crop.strategy() == CropStrategy::Focalpoint {
            (f64::from(crop.focal_zoom_milli) / 1000.0).max(1.0)
        } else {
            1.0
        };
        let scale = cover * zoom;
        let (window_width, window_height) = (
            (w / scale).min(region.width),
            (h / scale).min(region.height),
        );
        let place = |start: bool, end: bool, focus: Option<u32>, size: f64, window: f64| -> f64 {
            let slack = size - window;
            match focus {
                Some(ppm) => (size * f64::from(ppm) / 1e6 - window / 2.0).clamp(0.0, slack),
                None if start => 0.0,
                None if end => slack,
                None => slack / 2.0,
            }
        };
        let focal = crop.strategy() == CropStrategy::Focalpoint;
        let x = place(
            crop.left,
            crop.right,
            crop.focal_x_ppm.filter(|_| focal),
            region.width,
            window_width,
        );
        let y = place(
            crop.top,
            crop.bottom,
            crop.focal_y_ppm.filter(|_| focal),
            region.height,
            window_height,
        );
        self.region = Region {
            x: region.x + x,
            y: region.y + y,
            width: window_width,
            height: window_height,
        };
        self.resize = (round(w), round(h));
    }

    /// Keeps every output side within [`MAX_OUTPUT_SIDE`], padding included.
    fn limit(&mut self) {
        let max = f64::from(MAX_OUTPUT_SIDE);
        let pad_x = f64::from(self.padding.left + self.padding.right).min(max - 1.0);
        let pad_y = f64::from(self.padding.top + self.padding.bottom).min(max - 1.0);
        if pad_x >= max - 1.0 || pad_y >= max - 1.0 {
            self.padding = Padding::default();
            return self.limit();
        }
        let (limit_x, limit_y) = (max - pad_x, max - pad_y);
        let (w, h) = (f64::from(self.resize.0), f64::from(self.resize.1));
        let shrink = (limit_x / w).min(limit_y / h).min(1.0);
        if shrink < 1.0 {
            self.resize = (round(w * shrink), round(h * shrink));
            if let Some(crop) = &mut self.smart_crop {
                crop.width = round(f64::from(crop.width) * shrink).min(self.resize.0);
                crop.height = round(f64::from(crop.height) * shrink).min(self.resize.1);
            }
        }
        if let Some((w, h)) = self.canvas {
            self.canvas = Some((w.min(limit_x as u32), h.min(limit_y as u32)));
        }
    }

    /// The image's size before padding and canvas: the resize or the smart crop.
    pub(crate) fn image_size(&self) -> (u32, u32) {
        match self.smart_crop {
            Some(crop) => (crop.width, crop.height),
            None => self.resize,
        }
    }

    /// The output's size: image, canvas and padding.
    pub(crate) fn output_size(&self) -> (u32, u32) {
        let (w, h) = self.canvas.unwrap_or_else(|| self.image_size());
        (
            w + self.padding.left + self.padding.right,
            h + self.padding.top + self.padding.bottom,
        )
    }

    /// Whether the region is the whole `width × height` source.
    pub(crate) fn uses_whole_source(&self, width: u32, height: u32) -> bool {
        self.region.x == 0.0
            && self.region.y == 0.0
            && self.region.width == f64::from(width.max(1))
            && self.region.height == f64::from(height.max(1))
    }
}

/// Never upscaling when `never_up`.
fn cap(scale: f64, never_up: bool) -> f64 {
    if never_up { scale.min(1.0) } else { scale }
}

/// The region scaled, rounded, at least one pixel a side.
fn scaled(region: Region, x: f64, y: f64) -> (u32, u32) {
    (round(region.width * x), round(region.height * y))
}

/// A positive pixel count.
fn round(v: f64) -> u32 {
    // `as` saturates, so absurd values land on the limit, not wrap.
    (v.round() as u32).max(1)
}

/// The padding a plan asks for.
fn padding(plan: &RenderPlan) -> Padding {
    let sides = plan.canvas.and_then(|c| c.padding).unwrap_or_default();
    Padding {
        top: sides.top,
        right: sides.right,
        bottom: sides.bottom,
        left: sides.left,
    }
}

/// The `rect` region inside `base`, or `base` itself.
fn source_rect(base: Region, plan: &RenderPlan) -> Region {
    let (width, height) = (base.width, base.height);
    let Some(rect) = &plan.rect else {
        return base;
    };
    let size = |length: Option<&Length>, reference: f64| -> f64 {
        match length.and_then(|l| l.value) {
            Some(length::Value::Pixels(p)) => f64::from(p),
            Some(length::Value::FractionPpm(f)) => reference * f64::from(f) / 1e6,
            None => reference,
        }
        .clamp(1.0, reference)
    };
    let (w, h) = (
        size(rect.width.as_ref(), width),
        size(rect.height.as_ref(), height),
    );
    let offset = |value: Option<rect_offset::Value>, reference: f64, size: f64| -> f64 {
        let slack = reference - size;
        let at = match value {
            Some(rect_offset::Value::Pixels(p)) => f64::from(p),
            Some(rect_offset::Value::FractionPpm(f)) => reference * f64::from(f) / 1e6,
            Some(rect_offset::Value::Anchor(a)) => match Anchor::try_from(a) {
                Ok(Anchor::Center) => slack / 2.0,
                Ok(Anchor::End) => slack,
                _ => 0.0,
            },
            None => 0.0,
        };
        at.clamp(0.0, slack)
    };
    Region {
        x: base.x + offset(rect.x.and_then(|o| o.value), width, w),
        y: base.y + offset(rect.y.and_then(|o| o.value), height, h),
        width: w,
        height: h,
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_imgix_params::parse_render_plan;

    use super::*;

    fn layout(width: u32, height: u32, query: &str) -> Layout {
        let plan = parse_render_plan("", query, None).unwrap().plan;
        Layout::compute(width, height, &ResolvedPlan::resolve(&plan).unwrap())
    }

    /// Output sizes for every fit mode, from imgix's documentation and worked examples.
    #[test]
    fn fit_mode_dimension_table() {
        /// (source size, query, output size)
        type Case = ((u32, u32), &'static str, (u32, u32));
        let cases: &[Case] = &[
            // imgix's own examples on a 300×200 original.
            ((300, 200), "fit=clip&w=100&h=100", (100, 67)),
            ((300, 200), "fit=crop&w=300&h=100", (300, 100)),
            ((300, 200), "fit=crop&w=200&h=200", (200, 200)),
            ((300, 200), "", (300, 200)),
            // clip (the default).
            ((400, 300), "w=200", (200, 150)),
            ((400, 300), "h=150", (200, 150)),
            ((400, 300), "w=200&h=200", (200, 150)),
            ((400, 300), "w=800", (800, 600)),
            ((400, 300), "w=0.5", (200, 150)),
            ((400, 300), "h=0.5&w=0.25", (100, 75)),
            ((400, 300), "w=100&dpr=2", (200, 150)),
            // https://docs.imgix.com/apis/rendering/pixel-density: "You must
            // specify a width, a height, or both for this parameter to work."
            ((400, 300), "dpr=2", (400, 300)),
            ((400, 300), "dpr=2&fm=png", (400, 300)),
            ((400, 300), "h=100&dpr=3", (400, 300)),
            ((1200, 800), "w=200&dpr=2", (400, 267)),
            // max: never upscale.
            ((400, 300), "fit=max&w=800", (400, 300)),
            ((400, 300), "fit=max&w=800&h=800", (400, 300)),
            ((400, 300), "fit=max&w=200&h=200", (200, 150)),
            // scale: exact box, aspect ignored.
            ((400, 300), "fit=scale&w=100&h=300", (100, 300)),
            ((400, 300), "fit=scale&w=100", (100, 75)),
            // crop: cover and crop; ar gives the missing side.
            ((400, 300), "fit=crop&w=100&h=100", (100, 100)),
            ((400, 300), "fit=crop&w=1000&h=100", (1000, 100)),
            ((400, 300), "fit=crop&w=200", (200, 150)),
            ((400, 300), "fit=crop&w=320&ar=16:9", (320, 180)),
            ((400, 300), "fit=crop&h=90&ar=16:9", (160, 90)),
            ((400, 300), "fit=crop&ar=1:1", (300, 300)),
            ((400, 300), "fit=crop&w=320&h=100&ar=1:1", (320, 100)),
            (
                (400, 300),
                "fit=crop&w=500&h=500&max-w=300&max-h=200",
                (300, 200),
            ),
            ((400, 300), "fit=crop&w=50&h=50&min-w=100", (100, 50)),
            // https://docs.imgix.com/apis/url/size/min-w: "fit=crop&h=200&min-w=50
            // Min width 50px, not expanded", "fit=crop&h=200&min-w=300 Min
            // width 300px, expanded". A 100 × 400 original at h=200 is 50 wide.
            ((100, 400), "fit=crop&h=200&min-w=50", (50, 200)),
            ((100, 400), "fit=crop&h=200&min-w=300", (300, 200)),
            // https://docs.imgix.com/apis/url/size/max-w: "fit=crop&h=200&max-w=1200
            // Max width 1200px, not cropped", "fit=crop&h=200&max-w=200 Max
            // width 200px, cropped". A 1600 × 400 panorama at h=200 is 800 wide.
            ((1600, 400), "fit=crop&h=200&max-w=1200", (800, 200)),
            ((1600, 400), "fit=crop&h=200&max-w=200", (200, 200)),
            // min-h and max-h do the same for heights (their pages mirror
            // min-w and max-w): a 400 × 100 original at w=200 is 50 high.
            ((400, 100), "fit=crop&w=200&min-h=150", (200, 150)),
            ((100, 400), "fit=crop&w=50&max-h=100", (50, 100)),
            // "This parameter will only work if fit=crop is present."
            ((100, 400), "h=200&min-w=300", (50, 200)),
            ((1600, 400), "fit=clip&h=200&max-w=200", (800, 200)),
            // min: the box's aspect ratio, never larger than the source.
            ((300, 200), "fit=min&w=400&h=400", (200, 200)),
            ((300, 200), "fit=min&w=100&h=50", (100, 50)),
            ((300, 200), "fit=min&w=600&h=200", (300, 100)),
            ((300, 200), "fit=min&w=600", (300, 200)),
            // fill, fillmax, clamp: the canvas is the box.
            ((400, 300), "fit=fill&w=200&h=200", (200, 200)),
            ((400, 300), "fit=fill&w=1000&h=200", (1000, 200)),
            ((400, 300), "fit=fillmax&w=1000&h=1000", (1000, 1000)),
            ((400, 300), "fit=clamp&w=200&h=300", (200, 300)),
            ((400, 300), "fit=fill&w=200", (200, 150)),
            // padding: added without a box, taken from it with one.
            ((400, 300), "pad=10", (420, 320)),
            ((400, 300), "w=220&h=220&pad=10", (220, 170)),
            ((400, 300), "fit=fill&w=220&h=220&pad=10", (220, 220)),
            ((400, 300), "w=200&pad-left=20", (200, 135)),
            // rect picks a region first.
            ((400, 300), "rect=0,0,200,100", (200, 100)),
            ((400, 300), "rect=0,0,200,100&w=100", (100, 50)),
            ((400, 300), "rect=center,middle,0.5,0.5", (200, 150)),
            // never above 8192 a side.
            ((400, 300), "w=9000", (8192, 6144)),
            ((400, 300), "w=8000&dpr=5", (8192, 6144)),
            ((400, 300), "fit=scale&w=8192&h=8192&dpr=2", (8192, 8192)),
            ((20_000, 3_000), "", (8192, 1229)),
            ((400, 300), "w=8192&pad=100", (8192, 6194)),
        ];
        for ((width, height), query, expected) in cases {
            let layout = layout(*width, *height, query);
            assert_eq!(
                layout.output_size(),
                *expected,
                "{width}×{height} {query}: {layout:?}"
            );
        }
    }

    /// Edge and focal-point crops pick the matching region of the source.
    #[test]
    fn crops_choose_the_source_region() {
        let region = |query: &str| layout(400, 300, query).region;
        let r = region("fit=crop&w=100&h=100");
        assert_eq!((r.x, r.y, r.width, r.height), (50.0, 0.0, 300.0, 300.0));
        let r = region("fit=crop&w=100&h=100&crop=left");
        assert_eq!((r.x, r.width), (0.0, 300.0));
        let r = region("fit=crop&w=100&h=100&crop=right");
        assert_eq!(r.x, 100.0);
        let r = region("fit=crop&w=400&h=100&crop=bottom");
        assert_eq!((r.y, r.height), (200.0, 100.0));
        let r = region("fit=crop&w=400&h=100&crop=top");
        assert_eq!(r.y, 0.0);
        // Focal point: centred on it, clamped inside, zoom shrinks the window.
        let r = region("fit=crop&w=100&h=100&crop=focalpoint&fp-x=0.75&fp-y=0.5");
        assert_eq!((r.x, r.y, r.width), (100.0, 0.0, 300.0));
        let r = region("fit=crop&w=100&h=100&crop=focalpoint&fp-x=0.25&fp-y=0.25&fp-z=3");
        assert_eq!((r.x, r.y, r.width, r.height), (50.0, 25.0, 100.0, 100.0));
        // Content-aware crops resize to cover, then crop by content.
        let smart = layout(400, 300, "fit=crop&w=100&h=100&crop=entropy");
        assert_eq!(smart.resize, (133, 100));
        assert_eq!(
            smart.smart_crop,
            Some(SmartCrop {
                width: 100,
                height: 100,
                interest: Interest::Entropy
            })
        );
        assert_eq!(
            layout(400, 300, "fit=crop&w=100&h=100&crop=faces")
                .smart_crop
                .unwrap()
                .interest,
            Interest::Attention
        );
    }

    /// rect accepts pixels, fractions and anchors, clamped inside the source.
    #[test]
    fn rect_regions() {
        let region = |query: &str| layout(400, 300, query).region;
        assert_eq!(
            region("rect=10,20,100,50"),
            Region {
                x: 10.0,
                y: 20.0,
                width: 100.0,
                height: 50.0
            }
        );
        assert_eq!(
            region("rect=right,bottom,100,50"),
            Region {
                x: 300.0,
                y: 250.0,
                width: 100.0,
                height: 50.0
            }
        );
        assert_eq!(
            region("rect=0.5,0.5,1000,1000"),
            Region {
                x: 0.0,
                y: 0.0,
                width: 400.0,
                height: 300.0
            }
        );
        assert_eq!(
            region("rect=390,290,100,100"),
            Region {
                x: 300.0,
                y: 200.0,
                width: 100.0,
                height: 100.0
            }
        );
        assert!(layout(400, 300, "w=10").uses_whole_source(400, 300));
        assert!(!layout(400, 300, "rect=0,0,10,10").uses_whole_source(400, 300));
    }
}
