//! Building the [`RenderPlan`] from collected parameters.
//!
//! Each supported parameter is parsed with [`crate::value`] (so names,
//! types, ranges and keywords are the spec's) and written to its plan field;
//! a value that matches none of its types is ignored, leaving the imgix
//! default, as imgix does. The result then goes through
//! [`crate::normalize::normalize_plan`], which writes defaults out and drops
//! what cannot affect the output, so equal renders get equal plans.
//!
//! Special cases, beyond the spec's types:
//! - `fit` may carry a fallback list (`fit=facearea,fill`): `facearea` is
//!   not implemented, so the fallback (or `clip`) is used.
//! - `rot` and `hue` are angles: taken modulo 360 before their ranges.
//! - `crop=faces` is served by a saliency crop; a list like
//!   `crop=faces,entropy` uses the first strategy imgmesh implements.
//! - `rect`'s width and height also accept fractions and `full`, as imgix's
//!   documentation (not the spec) describes.
//! - `mark` and `blend` accept paths on the same Source; absolute URLs are
//!   ignored, and a query on the path is dropped.
//! - `fm=jp2`, `jxr`, `mp4` and `webm` are valid imgix values imgmesh does
//!   not encode: ignored, so the input's family is served.

use imgmesh_proto::renderer::v1 as pb;
use pb::{
    Anchor, BlendMode, ChromaSubsampling, ColorSpace, CropStrategy, FillMode, Fit, HorizontalAlign,
    OutputFormat, OverlayFit, RenderPlan, RotationType, TextClip, TrimMode, VerticalAlign,
};

use crate::asset_key::check_asset_key;
use crate::color::Color;
use crate::query::RawParams;
use crate::spec::Spec;
use crate::value::{Value, parse_value, plain_decimal};

/// Millionths in one.
pub(crate) const PPM: f64 = 1_000_000.0;

/// Longest `txt` kept, in characters; longer text is cut. Keeps a 10 000
/// character value from turning into a 10 000 character layout job.
pub const MAX_TEXT_CHARS: usize = 500;

/// Longest font name kept, in characters.
const MAX_FONT_CHARS: usize = 100;

/// Builds the plan's fields from `params`; the caller normalises it.
pub(crate) fn build(params: &RawParams, negotiated: Option<OutputFormat>) -> RenderPlan {
    let reader = Reader { params };
    let mut plan = RenderPlan::default();
    reader.size(&mut plan);
    reader.output(&mut plan, negotiated);
    reader.orientation(&mut plan);
    reader.adjustments(&mut plan);
    reader.stylize(&mut plan);
    reader.canvas(&mut plan);
    reader.trim(&mut plan);
    reader.watermark(&mut plan);
    reader.text_overlay(&mut plan);
    reader.blend(&mut plan);
    if let Some(frame) = reader.integer("frame") {
        plan.animation = Some(pb::Animation {
            frame: to_u32(frame),
        });
    }
    plan
}

/// Typed access to the collected parameters.
struct Reader<'a> {
    params: &'a RawParams,
}

// === impl Reader ===

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// The parsed value of `name`; `None` when absent or not of its types.
    fn value(&self, name: &str) -> Option<Value> {
        let raw = self.raw(name)?;
        let spec = Spec::get().param(name)?;
        parse_value(spec, raw)
    }

    fn integer(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            Value::Integer(n) => Some(n),
            Value::Number(n) => Some(n.round() as i64),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Option<f64> {
        match self.value(name)? {
            Value::Integer(n) => Some(n as f64),
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    fn unit(&self, name: &str) -> Option<f64> {
        match self.value(name)? {
            Value::UnitScalar(n) => Some(n),
            _ => None,
        }
    }

    fn boolean(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            Value::Boolean(b) => Some(b),
            _ => None,
        }
    }

    fn keyword(&self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::Keyword(k) => Some(k),
            Value::Keywords(mut k) => Some(k.remove(0)),
            _ => None,
        }
    }

    fn keywords(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::Keywords(k)) => k,
            Some(Value::Keyword(k)) => vec![k],
            _ => Vec::new(),
        }
    }

    fn color(&self, name: &str) -> Option<pb::Color> {
        match self.value(name)? {
            Value::Color(c) => Some(color(c)),
            _ => None,
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// A size that is pixels or a unit fraction (`mark-w`, `blend-h`, ...).
    fn length(&self, name: &str) -> Option<pb::Length> {
        match self.value(name)? {
            Value::Integer(n) => Some(pixels(n)),
            Value::UnitScalar(f) if f > 0.0 => Some(fraction(f)),
            _ => None,
        }
    }

    /// An angle in degrees, taken modulo 360.
    fn angle(&self, name: &str) -> Option<f64> {
        let degrees = plain_decimal(self.raw(name)?)?;
        Some(degrees.rem_euclid(360.0))
    }

    fn size(&self, plan: &mut RenderPlan) {
        for (name, pixels, fraction) in [
            ("w", &mut plan.width, &mut plan.width_fraction_ppm),
            ("h", &mut plan.height, &mut plan.height_fraction_ppm),
        ] {
            match self.value(name) {
                Some(Value::Integer(n)) => *pixels = to_u32(n),
                Some(Value::UnitScalar(f)) => *fraction = ppm(f),
                _ => {}
            }
        }
        plan.fit = self.fit().into();
        if let Some(Value::Ratio(ratio)) = self.value("ar") {
            plan.aspect_ratio_ppm = (ratio * PPM).round().min(u64::MAX as f64) as u64;
        }
        if let Some(dpr) = self.number("dpr") {
            plan.dpr_centi = (dpr * 100.0).round() as u32;
        }
        plan.crop = self.crop();
        plan.rect = self.rect();
        let bounds = pb::SizeBounds {
            min_width: self.integer("min-w").map_or(0, to_u32),
            min_height: self.integer("min-h").map_or(0, to_u32),
            max_width: self.integer("max-w").map_or(0, to_u32),
            max_height: self.integer("max-h").map_or(0, to_u32),
        };
        plan.size_bounds = Some(bounds);
    }

    fn fit(&self) -> Fit {
        let Some(raw) = self.raw("fit") else {
            return Fit::Unspecified;
        };
        // `facearea` needs face detection; imgix's own fallback list (or
        // clip) is used instead.
        raw.split(',')
            .map(|item| item.trim().to_ascii_lowercase())
            .find_map(|item| match item.as_str() {
                "clip" => Some(Fit::Clip),
                "crop" => Some(Fit::Crop),
                "max" => Some(Fit::Max),
                "scale" => Some(Fit::Scale),
                "clamp" => Some(Fit::Clamp),
                "fill" => Some(Fit::Fill),
                "fillmax" => Some(Fit::Fillmax),
                "min" => Some(Fit::Min),
                _ => None,
            })
            .unwrap_or(Fit::Unspecified)
    }

    fn crop(&self) -> Option<pb::Crop> {
        let keywords = self.keywords("crop");
        if keywords.is_empty() {
            return None;
        }
        let has = |word: &str| keywords.iter().any(|k| k == word);
        let strategy = keywords
            .iter()
            .find_map(|k| match k.as_str() {
                "focalpoint" => Some(CropStrategy::Focalpoint),
                "entropy" => Some(CropStrategy::Entropy),
                "edges" | "faces" => Some(CropStrategy::Attention),
                _ => None,
            })
            .unwrap_or(CropStrategy::Unspecified);
        let mut crop = pb::Crop {
            top: has("top"),
            bottom: has("bottom"),
            left: has("left"),
            right: has("right"),
            strategy: strategy.into(),
            ..pb::Crop::default()
        };
        if strategy == CropStrategy::Focalpoint {
            crop.focal_x_ppm = self.unit("fp-x").map(ppm);
            crop.focal_y_ppm = self.unit("fp-y").map(ppm);
            crop.focal_zoom_milli = self
                .number("fp-z")
                .map_or(0, |z| (z * 1000.0).round() as u32);
        }
        Some(crop)
    }

    fn rect(&self) -> Option<pb::SourceRect> {
        let raw = self.raw("rect")?;
        let spec = Spec::get().param("rect")?;
        let positions = &spec.expects.first()?.positions;
        let items: Vec<&str> = raw.split(',').map(str::trim).collect();
        let [x, y, width, height] = items.as_slice() else {
            return None;
        };
        let offset = |item: &str, position: usize| -> Option<pb::RectOffset> {
            let value = crate::value::parse_with(positions.get(position)?, item)?;
            let offset = match value {
                Value::Integer(n) => pb::rect_offset::Value::Pixels(to_u32(n)),
                Value::UnitScalar(f) => pb::rect_offset::Value::FractionPpm(ppm(f)),
                Value::Keyword(k) => pb::rect_offset::Value::Anchor(
                    match k.as_str() {
                        "center" | "middle" => Anchor::Center,
                        "right" | "bottom" => Anchor::End,
                        _ => Anchor::Start,
                    }
                    .into(),
                ),
                _ => return None,
            };
            Some(pb::RectOffset {
                value: Some(offset),
            })
        };
        let side = |item: &str, position: usize| -> Option<pb::Length> {
            if item.eq_ignore_ascii_case("full") {
                return Some(fraction(1.0));
            }
            if item.contains('.')
                && let Some(f) = plain_decimal(item).filter(|f| (0.0..=1.0).contains(f) && *f > 0.0)
            {
                return Some(fraction(f));
            }
            match crate::value::parse_with(positions.get(position)?, item)? {
                Value::Integer(n) => Some(pixels(n)),
                _ => None,
            }
        };
        Some(pb::SourceRect {
            x: Some(offset(x, 0)?),
            y: Some(offset(y, 1)?),
            width: Some(side(width, 2)?),
            height: Some(side(height, 3)?),
        })
    }

    fn output(&self, plan: &mut RenderPlan, negotiated: Option<OutputFormat>) {
        let mut encoding = pb::Encoding::default();
        let requested = self.keyword("fm").and_then(|fm| match fm.as_str() {
            "jpg" => Some(OutputFormat::Jpeg),
            "pjpg" => {
                encoding.progressive = true;
                Some(OutputFormat::Jpeg)
            }
            "png" => Some(OutputFormat::Png),
            "png8" => Some(OutputFormat::Png8),
            "png32" => Some(OutputFormat::Png32),
            "webp" => Some(OutputFormat::Webp),
            "avif" => Some(OutputFormat::Avif),
            "gif" => Some(OutputFormat::Gif),
            "json" => Some(OutputFormat::Json),
            "blurhash" => Some(OutputFormat::Blurhash),
            // jp2, jxr, mp4, webm: not encoded by imgmesh.
            _ => None,
        });
        let format = match (requested, negotiated) {
            // Metadata and hashes are not images: content negotiation does
            // not apply to them.
            (Some(fm @ (OutputFormat::Json | OutputFormat::Blurhash)), _) => fm,
            (_, Some(negotiated)) => negotiated,
            (Some(fm), None) => fm,
            (None, None) => OutputFormat::Unspecified,
        };
        plan.format = format.into();
        let auto = self.keywords("auto");
        encoding.compress = auto.iter().any(|a| a == "compress");
        if let Some(q) = self.integer("q") {
            plan.quality = to_u32(q).max(1);
        }
        // imgix: "The default value is true when not specified if the
        // output format is a JPEG" (`fm=pjpg` is progressive whatever
        // `jpg-progressive` says).
        if self.boolean("jpg-progressive").unwrap_or(true) {
            encoding.progressive = true;
        }
        encoding.lossless = self.boolean("lossless").unwrap_or(false);
        encoding.chroma_subsampling = match self.integer("chromasub") {
            Some(444) => ChromaSubsampling::ChromaSubsampling444,
            Some(422) => ChromaSubsampling::ChromaSubsampling422,
            _ => ChromaSubsampling::Unspecified,
        }
        .into();
        encoding.color_space = match self.keyword("cs").as_deref() {
            Some("srgb" | "tinysrgb" | "adobergb1998") => ColorSpace::Srgb,
            Some("origin") => ColorSpace::Origin,
            Some("strip") => ColorSpace::Unspecified,
            // imgix: `origin` "is the default value when cs is not
            // specified", and `auto=compress` strips the profile with the
            // rest of the metadata.
            _ if encoding.compress => ColorSpace::Unspecified,
            _ => ColorSpace::Origin,
        }
        .into();
        plan.encoding = Some(encoding);
    }

    fn orientation(&self, plan: &mut RenderPlan) {
        let exif_orientation = match self.integer("orient") {
            // 0 ignores the file's orientation: the same as "upright as stored".
            Some(0) => 1,
            Some(90) => 6,
            Some(180) => 3,
            Some(270) => 8,
            Some(n @ 1..=8) => n as u32,
            _ => 0,
        };
        let (flip_horizontal, flip_vertical) = match self.keyword("flip").as_deref() {
            Some("h") => (true, false),
            Some("v") => (false, true),
            Some("hv") => (true, true),
            _ => (false, false),
        };
        plan.orientation = Some(pb::Orientation {
            exif_orientation,
            rotation_centi_degrees: self
                .angle("rot")
                .map_or(0, |degrees| (degrees * 100.0).round() as u32 % 36_000),
            rotation_type: match self.keyword("rot-type").as_deref() {
                Some("pivot") => RotationType::Pivot,
                Some("straighten") => RotationType::Straighten,
                _ => RotationType::Unspecified,
            }
            .into(),
            flip_horizontal,
            flip_vertical,
        });
    }

    fn adjustments(&self, plan: &mut RenderPlan) {
        let signed = |name: &str| self.integer(name).map_or(0, |n| n as i32);
        let unsigned = |name: &str| self.number(name).map_or(0, |n| n.round() as u32);
        plan.adjustments = Some(pb::Adjustments {
            brightness: signed("bri"),
            contrast: signed("con"),
            exposure: signed("exp"),
            gamma: signed("gam"),
            highlights: signed("high"),
            shadows: unsigned("shad"),
            hue: self.angle("hue").map_or(0, |h| h.round() as u32 % 360),
            saturation: signed("sat"),
            vibrance: signed("vib"),
            sharpen: unsigned("sharp"),
            unsharp_mask: signed("usm"),
            unsharp_radius_centi: self
                .number("usmrad")
                .map_or(0, |r| (r * 100.0).round().min(f64::from(u32::MAX)) as u32),
            invert: self.boolean("invert").unwrap_or(false),
        });
    }

    fn stylize(&self, plan: &mut RenderPlan) {
        let duotone = match self.value("duotone") {
            Some(Value::Items(items)) => match items.as_slice() {
                [Value::Color(shadows), Value::Color(highlights)] => Some(pb::Duotone {
                    shadows: Some(color(*shadows)),
                    highlights: Some(color(*highlights)),
                    alpha: self.integer("duotone-alpha").map(to_u32),
                }),
                _ => None,
            },
            _ => None,
        };
        plan.stylize = Some(pb::Stylize {
            blur: self.integer("blur").map_or(0, to_u32),
            pixelate: self.integer("px").map_or(0, to_u32),
            sepia: self.integer("sepia").map_or(0, to_u32),
            monochrome: self.color("monochrome"),
            duotone,
        });
    }

    fn canvas(&self, plan: &mut RenderPlan) {
        let pad = self.integer("pad").map_or(0, to_u32);
        let side = |name: &str| self.integer(name).map_or(pad, to_u32);
        let padding = pb::Sides {
            top: side("pad-top"),
            right: side("pad-right"),
            bottom: side("pad-bottom"),
            left: side("pad-left"),
        };
        let border = match self.value("border") {
            Some(Value::Items(items)) => match items.as_slice() {
                [Value::Integer(width), Value::Color(c)] => {
                    let width = to_u32(*width);
                    let side = |name: &str| self.integer(name).map_or(width, to_u32);
                    Some(pb::Border {
                        widths: Some(pb::Sides {
                            top: side("border-top"),
                            right: side("border-right"),
                            bottom: side("border-bottom"),
                            left: side("border-left"),
                        }),
                        color: Some(color(*c)),
                    })
                }
                _ => None,
            },
            _ => None,
        };
        plan.canvas = Some(pb::Canvas {
            background: self.color("bg"),
            padding: Some(padding),
            border,
            border_radius: self.corners("border-radius"),
            border_radius_inner: self.corners("border-radius-inner"),
            fill: match self.keyword("fill").as_deref() {
                Some("blur") => FillMode::Blur,
                _ => FillMode::Unspecified,
            }
            .into(),
            fill_color: self.color("fill-color"),
        });
    }

    fn corners(&self, name: &str) -> Option<pb::Corners> {
        match self.value(name)? {
            Value::Integer(r) => {
                let r = to_u32(r);
                Some(pb::Corners {
                    top_left: r,
                    top_right: r,
                    bottom_right: r,
                    bottom_left: r,
                })
            }
            Value::Items(items) => {
                let radii: Vec<u32> = items
                    .iter()
                    .map(|item| match item {
                        Value::Integer(r) => Some(to_u32(*r)),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                let [top_left, top_right, bottom_right, bottom_left] = radii.as_slice() else {
                    return None;
                };
                Some(pb::Corners {
                    top_left: *top_left,
                    top_right: *top_right,
                    bottom_right: *bottom_right,
                    bottom_left: *bottom_left,
                })
            }
            _ => None,
        }
    }

    fn trim(&self, plan: &mut RenderPlan) {
        let mode = match self.keyword("trim").as_deref() {
            Some("auto") => TrimMode::Auto,
            Some("color") => TrimMode::Color,
            Some("alpha") => TrimMode::Alpha,
            Some("colorunlessalpha") => TrimMode::ColorUnlessAlpha,
            _ => return,
        };
        let centi = |name: &str| {
            self.number(name)
                .map(|n| (n * 100.0).round().min(f64::from(u32::MAX)) as u32)
        };
        plan.trim = Some(pb::Trim {
            mode: mode.into(),
            color: self.color("trim-color"),
            mean_difference_centi: centi("trim-md"),
            standard_deviation_centi: centi("trim-sd"),
            tolerance_centi: centi("trim-tol").unwrap_or(0),
            pad: self.integer("trim-pad").map_or(0, |p| p as i32),
            alpha_threshold_centi: centi("trim-alpha").unwrap_or(0),
        });
    }

    /// Vertical and horizontal placement from an `*-align` list.
    fn align(&self, name: &str) -> (VerticalAlign, HorizontalAlign) {
        let mut vertical = VerticalAlign::Unspecified;
        let mut horizontal = HorizontalAlign::Unspecified;
        for keyword in self.keywords(name) {
            match keyword.as_str() {
                "top" => vertical = VerticalAlign::Top,
                "middle" => vertical = VerticalAlign::Middle,
                "bottom" => vertical = VerticalAlign::Bottom,
                "left" => horizontal = HorizontalAlign::Left,
                "center" => horizontal = HorizontalAlign::Center,
                "right" => horizontal = HorizontalAlign::Right,
                _ => {}
            }
        }
        (vertical, horizontal)
    }

    fn watermark(&self, plan: &mut RenderPlan) {
        let Some(path) = self.text("mark").and_then(|m| same_source_path(&m)) else {
            return;
        };
        let (vertical, horizontal) = self.align("mark-align");
        plan.watermark = Some(pb::Watermark {
            path,
            vertical: vertical.into(),
            horizontal: horizontal.into(),
            alpha: self.integer("mark-alpha").map(to_u32),
            scale: self.integer("mark-scale").map_or(0, to_u32),
            pad: self.integer("mark-pad").map(to_u32),
            x: self.integer("mark-x").map(to_u32),
            y: self.integer("mark-y").map(to_u32),
            width: self.length("mark-w"),
            height: self.length("mark-h"),
            fit: overlay_fit(self.keyword("mark-fit").as_deref()).into(),
            tile: self.keyword("mark-tile").as_deref() == Some("grid"),
        });
    }

    fn text_overlay(&self, plan: &mut RenderPlan) {
        let Some(text) = self.text("txt") else {
            return;
        };
        let (vertical, horizontal) = self.align("txt-align");
        let clip = self.keywords("txt-clip");
        let has = |word: &str| clip.iter().any(|c| c == word);
        plan.text = Some(pb::TextOverlay {
            text: text.chars().take(MAX_TEXT_CHARS).collect(),
            font: self
                .text("txt-font")
                .map(|f| f.chars().take(MAX_FONT_CHARS).collect())
                .unwrap_or_default(),
            size: self.integer("txt-size").map_or(0, to_u32),
            color: self.color("txt-color"),
            vertical: vertical.into(),
            horizontal: horizontal.into(),
            pad: self.integer("txt-pad").map(to_u32),
            shadow_deci: self
                .number("txt-shad")
                .map_or(0, |s| (s * 10.0).round() as u32),
            width: self.integer("txt-width").map_or(0, to_u32),
            clip: if has("ellipsis") {
                TextClip::Ellipsis
            } else if has("start") {
                TextClip::Start
            } else if has("middle") {
                TextClip::Middle
            } else {
                TextClip::Unspecified
            }
            .into(),
            fit_max: self.keyword("txt-fit").as_deref() == Some("max"),
        });
    }

    fn blend(&self, plan: &mut RenderPlan) {
        let source = match self.value("blend") {
            Some(Value::Color(c)) => pb::blend::Source::Color(color(c)),
            Some(Value::Text(t)) => match same_source_path(&t) {
                Some(path) => pb::blend::Source::Path(path),
                None => return,
            },
            _ => return,
        };
        let (vertical, horizontal) = self.align("blend-align");
        plan.blend = Some(pb::Blend {
            source: Some(source),
            mode: match self.keyword("blend-mode").as_deref() {
                Some("normal") => BlendMode::Normal,
                Some("overlay") => BlendMode::Overlay,
                Some("multiply") => BlendMode::Multiply,
                Some("screen") => BlendMode::Screen,
                Some("darken") => BlendMode::Darken,
                Some("lighten") => BlendMode::Lighten,
                Some("dodge") => BlendMode::Dodge,
                Some("burn") => BlendMode::Burn,
                Some("hardlight") => BlendMode::Hardlight,
                Some("softlight") => BlendMode::Softlight,
                Some("difference") => BlendMode::Difference,
                Some("exclusion") => BlendMode::Exclusion,
                Some("hue") => BlendMode::Hue,
                Some("saturation") => BlendMode::Saturation,
                Some("color") => BlendMode::Color,
                Some("luminosity") => BlendMode::Luminosity,
                _ => BlendMode::Unspecified,
            }
            .into(),
            alpha: self.integer("blend-alpha").map(to_u32),
            vertical: vertical.into(),
            horizontal: horizontal.into(),
            x: self.integer("blend-x").map_or(0, to_u32),
            y: self.integer("blend-y").map_or(0, to_u32),
            width: self.length("blend-w"),
            height: self.length("blend-h"),
            fit: overlay_fit(self.keyword("blend-fit").as_deref()).into(),
            pad: self.integer("blend-pad").map_or(0, to_u32),
        });
    }
}

fn overlay_fit(keyword: Option<&str>) -> OverlayFit {
    match keyword {
        Some("clip") => OverlayFit::Clip,
        Some("crop") => OverlayFit::Crop,
        Some("scale" | "fill") => OverlayFit::Scale,
        Some("max") => OverlayFit::Max,
        _ => OverlayFit::Unspecified,
    }
}

/// The asset path a `mark` or `blend` value names on the same Source, or
/// `None` for absolute URLs and paths that could escape the Source's prefix
/// ([`check_asset_key`], the rule for every object key). Empty and `.`
/// segments and backslashes are parts of keys S3 stores, and pass.
pub(crate) fn same_source_path(value: &str) -> Option<String> {
    if value.contains("://") || value.starts_with("//") {
        return None;
    }
    let path = value.split(['?', '#']).next().unwrap_or_default();
    // The value was percent-decoded once with the query; the path inside it
    // is itself URL-encoded.
    let decoded: String =
        url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
    let path = decoded.trim_start_matches('/');
    check_asset_key(path).ok().map(|()| path.to_owned())
}

fn color(c: Color) -> pb::Color {
    pb::Color { argb: c.argb() }
}

fn pixels(n: i64) -> pb::Length {
    pb::Length {
        value: Some(pb::length::Value::Pixels(to_u32(n))),
    }
}

fn fraction(f: f64) -> pb::Length {
    pb::Length {
        value: Some(pb::length::Value::FractionPpm(ppm(f))),
    }
}

/// A fraction in millionths.
fn ppm(f: f64) -> u32 {
    (f.clamp(0.0, 1.0) * PPM).round() as u32
}

/// A non-negative integer as `u32`, saturating.
fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mark and blend paths stay on the Source: leading slash and query dropped, URLs and escapes refused, other keys kept as given.
    #[test]
    fn same_source_paths() {
        let cases = [
            ("/logo.png", Some("logo.png")),
            ("logos/mark.png?w=100", Some("logos/mark.png")),
            ("/logo%20dark.png", Some("logo dark.png")),
            ("/a+b.png", Some("a+b.png")),
            ("https://other.example/logo.png", None),
            ("//other.example/logo.png", None),
            ("/../secret.png", None),
            ("/a/..\\..\\secret.png", None),
            ("/\\secret.png", None),
            ("/", None),
            ("/a%00.png", None),
            // Keys S3 stores as given.
            ("/a//b.png", Some("a//b.png")),
            ("/a/./b.png", Some("a/./b.png")),
            ("/a\\b.png", Some("a\\b.png")),
            ("/a%5Cb.png", Some("a\\b.png")),
        ];
        for (value, expected) in cases {
            assert_eq!(same_source_path(value).as_deref(), expected, "{value}");
        }
    }
}
