//! imgix's URL parameters, as the spec defines them, turned into imgmesh's
//! canonical [`RenderPlan`].
//!
//! The spec (`imgix-url-params.json`, imgix-url-params v11.35.0) is vendored
//! in this crate and loaded once ([`spec`]). A query goes through three
//! steps:
//!
//! 1. [`query`](crate::query): names folded (aliases, `<name>64` base64url
//!    variants), Source defaults under the URL, last value wins;
//! 2. [`value`]: each value parsed against the spec's types, ranges and
//!    keywords; values that fit none are ignored, as imgix ignores them;
//! 3. plan building and [`normalize_plan`]: defaults written out and
//!    anything that cannot change the output dropped, so equal renders get
//!    byte-identical plans, which is what the derivative cache keys on.
//!
//! The only request-time error is an undecodable base64 value (400, as at
//! imgix). [`validate_default_params`] is stricter, for Sources.

#![warn(missing_docs)]

pub mod asset_key;
pub mod color;
pub mod error;
pub mod negotiation;
pub mod normalize;
mod plan;
mod query;
pub mod signature;
pub mod spec;
pub mod value;

use imgmesh_proto::renderer::v1::RenderPlan;

pub use crate::asset_key::{KeyRefusal, check_asset_key, decode_url_path};
pub use crate::color::Color;
pub use crate::error::ParamError;
pub use crate::negotiation::negotiate_format;
pub use crate::normalize::{COMPRESS_QUALITY, MAX_OUTPUT_SIDE, normalize_plan};
pub use crate::plan::MAX_TEXT_CHARS;
use crate::query::{RawParams, Strictness};
pub use crate::spec::Spec;

/// A request's plan and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPlan {
    /// The canonical plan.
    pub plan: RenderPlan,
    /// Whether `auto=format` made the output depend on `Accept` (the
    /// response must then say `Vary: Accept`).
    pub varies_on_accept: bool,
}

/// Parses the Source's `default_params` and then the URL's `query` (without
/// its leading `?`) into the canonical plan; `accept` is the request's
/// `Accept` header, consulted only for `auto=format`.
pub fn parse_render_plan(
    default_params: &str,
    query: &str,
    accept: Option<&str>,
) -> Result<ParsedPlan, ParamError> {
    let params = RawParams::collect(default_params, query, Strictness::Lenient)?;
    let auto_format = params.get("auto").is_some_and(|auto| {
        auto.split(',')
            .any(|a| a.trim().eq_ignore_ascii_case("format"))
    });
    let negotiated = if auto_format {
        negotiate_format(accept)
    } else {
        None
    };
    let plan = normalize_plan(&plan::build(&params, negotiated))?;
    Ok(ParsedPlan {
        plan,
        varies_on_accept: auto_format,
    })
}

/// Whether `plan` (canonical, as [`normalize_plan`] returns it) asks for
/// nothing: no URL or Source parameter changed it from the plan of a
/// request without parameters. imgix serves such a request as a
/// passthrough, the original file unchanged. Parameters that are not
/// rendering parameters (`s`, `ixlib`, `expires`, unknown names) and
/// values that equal the defaults (`q=75`, `fit=clip`, `dpr=1`) leave the
/// plan empty, as does `auto=format` when `Accept` names no better format.
///
/// Two plans ask for nothing: the one a query without parameters parses
/// to (imgix's URL defaults written out, e.g. progressive JPEG), and the
/// normalised default [`RenderPlan`] an internal caller sends.
pub fn is_empty_plan(plan: &RenderPlan) -> bool {
    static EMPTY: std::sync::OnceLock<[Option<RenderPlan>; 2]> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| {
            [
                parse_render_plan("", "", None)
                    .ok()
                    .map(|parsed| parsed.plan),
                normalize_plan(&RenderPlan::default()).ok(),
            ]
        })
        .iter()
        .flatten()
        .any(|empty| plan == empty)
}

/// Checks a Source's default params strictly: every name must be an imgix
/// parameter (or alias, or base64 variant) and every value must be one the
/// spec allows. Returns the first problem.
pub fn validate_default_params(default_params: &str) -> Result<(), ParamError> {
    let params = RawParams::collect(default_params, "", Strictness::Strict)?;
    let spec = Spec::get();
    for (name, raw) in params.iter() {
        let param = spec.param(name).expect("collected names are canonical");
        if value::parse_value(param, raw).is_none() {
            return Err(ParamError::InvalidValue {
                param: name.to_owned(),
                value: error::shortened(raw),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1 as pb;
    use pb::{
        BlendMode, ChromaSubsampling, ColorSpace, CropStrategy, FillMode, Fit, HorizontalAlign,
        OutputFormat, OverlayFit, RotationType, TextClip, TrimMode, VerticalAlign,
    };
    use prost::Message as _;

    use super::*;

    fn plan(query: &str) -> RenderPlan {
        parse_render_plan("", query, None)
            .unwrap_or_else(|e| panic!("{query:?}: {e}"))
            .plan
    }

    fn px(n: u32) -> Option<pb::Length> {
        Some(pb::Length {
            value: Some(pb::length::Value::Pixels(n)),
        })
    }

    fn frac(ppm: u32) -> Option<pb::Length> {
        Some(pb::Length {
            value: Some(pb::length::Value::FractionPpm(ppm)),
        })
    }

    fn argb(argb: u32) -> Option<pb::Color> {
        Some(pb::Color { argb })
    }

    /// The plan of a query without parameters: defaults written out,
    /// including imgix's progressive JPEG and `cs=origin`.
    fn defaults() -> RenderPlan {
        RenderPlan {
            fit: Fit::Clip.into(),
            quality: 75,
            dpr_centi: 100,
            encoding: Some(pb::Encoding {
                progressive: true,
                color_space: ColorSpace::Origin.into(),
                ..Default::default()
            }),
            ..RenderPlan::default()
        }
    }

    /// An empty query gives the plan with every default written out.
    #[test]
    fn empty_query_gives_explicit_defaults() {
        assert_eq!(plan(""), defaults());
    }

    /// Sizes: pixels, fractions of the source, dpr, fit modes and their fallbacks.
    #[test]
    fn size_parameters() {
        let cases: Vec<(&str, RenderPlan)> = vec![
            (
                "w=400",
                RenderPlan {
                    width: 400,
                    ..defaults()
                },
            ),
            (
                "width=400&height=300",
                RenderPlan {
                    width: 400,
                    height: 300,
                    ..defaults()
                },
            ),
            (
                "w=0.5",
                RenderPlan {
                    width_fraction_ppm: 500_000,
                    ..defaults()
                },
            ),
            (
                "h=.25",
                RenderPlan {
                    height_fraction_ppm: 250_000,
                    ..defaults()
                },
            ),
            (
                "w=1.0",
                RenderPlan {
                    width_fraction_ppm: 1_000_000,
                    ..defaults()
                },
            ),
            (
                "w=1",
                RenderPlan {
                    width: 2,
                    ..defaults()
                },
            ),
            (
                "w=9000",
                RenderPlan {
                    width: 8192,
                    ..defaults()
                },
            ),
            (
                "w=400.5",
                RenderPlan {
                    width: 401,
                    ..defaults()
                },
            ),
            (
                "dpr=2.5",
                RenderPlan {
                    dpr_centi: 250,
                    ..defaults()
                },
            ),
            (
                "dpr=9",
                RenderPlan {
                    dpr_centi: 500,
                    ..defaults()
                },
            ),
            (
                "f=crop",
                RenderPlan {
                    fit: Fit::Crop.into(),
                    ..defaults()
                },
            ),
            (
                "fit=clamp",
                RenderPlan {
                    fit: Fit::Clamp.into(),
                    ..defaults()
                },
            ),
            (
                "fit=fill",
                RenderPlan {
                    fit: Fit::Fill.into(),
                    ..defaults()
                },
            ),
            (
                "fit=fillmax",
                RenderPlan {
                    fit: Fit::Fillmax.into(),
                    ..defaults()
                },
            ),
            (
                "fit=min",
                RenderPlan {
                    fit: Fit::Min.into(),
                    ..defaults()
                },
            ),
            (
                "fit=max",
                RenderPlan {
                    fit: Fit::Max.into(),
                    ..defaults()
                },
            ),
            (
                "fit=scale",
                RenderPlan {
                    fit: Fit::Scale.into(),
                    ..defaults()
                },
            ),
            ("fit=facearea", defaults()),
            (
                "fit=facearea,fill",
                RenderPlan {
                    fit: Fit::Fill.into(),
                    ..defaults()
                },
            ),
            (
                "fit=crop&ar=16:9",
                RenderPlan {
                    fit: Fit::Crop.into(),
                    aspect_ratio_ppm: 1_777_778,
                    ..defaults()
                },
            ),
            // ar needs fit=crop.
            ("ar=16:9", defaults()),
            (
                "fit=crop&min-w=100&max-h=300",
                RenderPlan {
                    fit: Fit::Crop.into(),
                    size_bounds: Some(pb::SizeBounds {
                        min_width: 100,
                        max_height: 300,
                        ..Default::default()
                    }),
                    ..defaults()
                },
            ),
            ("min-w=100", defaults()),
        ];
        for (query, expected) in cases {
            assert_eq!(plan(query), expected, "{query}");
        }
    }

    /// Crop modes: edges, strategies, focal point with its defaults; dropped without fit=crop.
    #[test]
    fn crop_parameters() {
        let crop = |query: &str| plan(&format!("fit=crop&{query}")).crop;
        assert_eq!(
            crop("crop=top,left"),
            Some(pb::Crop {
                top: true,
                left: true,
                ..Default::default()
            })
        );
        assert_eq!(
            crop("crop=bottom,right"),
            Some(pb::Crop {
                bottom: true,
                right: true,
                ..Default::default()
            })
        );
        assert_eq!(crop("crop=top,bottom"), None);
        assert_eq!(
            crop("crop=entropy"),
            Some(pb::Crop {
                strategy: CropStrategy::Entropy.into(),
                ..Default::default()
            })
        );
        for strategy in ["edges", "faces", "faces,top"] {
            assert_eq!(
                crop(&format!("crop={strategy}")).map(|c| c.strategy),
                Some(CropStrategy::Attention.into()),
                "{strategy}"
            );
        }
        assert_eq!(
            crop("crop=focalpoint"),
            Some(pb::Crop {
                strategy: CropStrategy::Focalpoint.into(),
                focal_x_ppm: Some(500_000),
                focal_y_ppm: Some(500_000),
                focal_zoom_milli: 1000,
                ..Default::default()
            })
        );
        assert_eq!(
            crop("crop=focalpoint&fp-x=0&fp-y=1&fp-z=2.5"),
            Some(pb::Crop {
                strategy: CropStrategy::Focalpoint.into(),
                focal_x_ppm: Some(0),
                focal_y_ppm: Some(1_000_000),
                focal_zoom_milli: 2500,
                ..Default::default()
            })
        );
        // Out of range fp values are refused (x, y) or clamped (z).
        assert_eq!(
            crop("crop=focalpoint&fp-x=2&fp-z=1000").map(|c| (c.focal_x_ppm, c.focal_zoom_milli)),
            Some((Some(500_000), 100_000))
        );
        assert_eq!(plan("crop=top").crop, None);
        assert_eq!(
            plan("fit=min&crop=top").crop,
            Some(pb::Crop {
                top: true,
                ..Default::default()
            })
        );
    }

    /// `rect` takes pixels, fractions and keywords for its offsets, and pixels, fractions or `full` for its size.
    #[test]
    fn rect_parameter() {
        let offset = |v: pb::rect_offset::Value| Some(pb::RectOffset { value: Some(v) });
        use pb::rect_offset::Value::{Anchor as At, FractionPpm, Pixels};
        assert_eq!(
            plan("rect=10,20,300,200").rect,
            Some(pb::SourceRect {
                x: offset(Pixels(10)),
                y: offset(Pixels(20)),
                width: px(300),
                height: px(200)
            })
        );
        assert_eq!(
            plan("rect=center,bottom,0.5,full").rect,
            Some(pb::SourceRect {
                x: offset(At(pb::Anchor::Center.into())),
                y: offset(At(pb::Anchor::End.into())),
                width: frac(500_000),
                height: frac(1_000_000),
            })
        );
        assert_eq!(
            plan("rect=0.25,left,10,10").rect,
            None,
            "left is not a vertical keyword"
        );
        assert_eq!(
            plan("rect=0.25,top,10,10").rect.unwrap().x,
            offset(FractionPpm(250_000))
        );
        for bad in [
            "rect=1,2,3",
            "rect=a,b,c,d",
            "rect=0,0,0,10",
            "rect=0,0,-5,10",
            "rect=",
        ] {
            assert_eq!(plan(bad).rect, None, "{bad}");
        }
    }

    /// Formats, quality, auto=compress, lossless, chroma subsampling, progressive and colour space.
    #[test]
    fn output_parameters() {
        let cases: Vec<(&str, OutputFormat, u32)> = vec![
            ("fm=jpg", OutputFormat::Jpeg, 75),
            ("fm=JPG", OutputFormat::Jpeg, 75),
            ("fm=png", OutputFormat::Png, 0),
            ("fm=png8", OutputFormat::Png8, 0),
            ("fm=png32", OutputFormat::Png32, 0),
            ("fm=webp&q=50", OutputFormat::Webp, 50),
            ("fm=avif&q=101", OutputFormat::Avif, 100),
            ("fm=gif&q=50", OutputFormat::Gif, 0),
            ("fm=json&w=100&q=50", OutputFormat::Json, 0),
            ("fm=blurhash&w=100", OutputFormat::Blurhash, 0),
            ("fm=mp4", OutputFormat::Unspecified, 75),
            ("fm=bmp", OutputFormat::Unspecified, 75),
            ("q=0", OutputFormat::Unspecified, 1),
            ("q=abc", OutputFormat::Unspecified, 75),
            ("auto=compress", OutputFormat::Unspecified, 45),
            ("auto=compress&q=80", OutputFormat::Unspecified, 80),
            ("fm=webp&lossless=true&q=50", OutputFormat::Webp, 0),
        ];
        for (query, format, quality) in cases {
            let plan = plan(query);
            assert_eq!((plan.format(), plan.quality), (format, quality), "{query}");
        }
        assert_eq!(
            plan("fm=json&w=100&blur=5"),
            RenderPlan {
                format: OutputFormat::Json.into(),
                ..Default::default()
            }
        );
        let encoding = |query: &str| plan(query).encoding.unwrap_or_default();
        assert!(encoding("fm=pjpg").progressive);
        assert!(encoding("fm=jpg&jpg-progressive=true").progressive);
        assert!(encoding("jpeg-progressive=true").progressive);
        assert!(!encoding("fm=jpg&jpg-progressive=false").progressive);
        assert!(!encoding("fm=png&jpg-progressive=true").progressive);
        assert!(encoding("fm=webp&lossless=1").lossless);
        assert!(!encoding("fm=avif&lossless=true").lossless);
        assert_eq!(
            encoding("chromasub=444").chroma_subsampling(),
            ChromaSubsampling::ChromaSubsampling444
        );
        assert_eq!(
            encoding("chromasub=420").chroma_subsampling(),
            ChromaSubsampling::Unspecified
        );
        assert_eq!(
            encoding("fm=webp&chromasub=444").chroma_subsampling(),
            ChromaSubsampling::Unspecified
        );
        assert_eq!(encoding("cs=srgb").color_space(), ColorSpace::Srgb);
        assert_eq!(encoding("cs=tinysrgb").color_space(), ColorSpace::Srgb);
        assert_eq!(encoding("cs=origin").color_space(), ColorSpace::Origin);
        assert_eq!(encoding("cs=strip").color_space(), ColorSpace::Unspecified);
        assert_eq!(encoding("").color_space(), ColorSpace::Origin);
        assert_eq!(
            encoding("auto=compress").color_space(),
            ColorSpace::Unspecified
        );
        assert!(encoding("auto=compress").compress);
        assert!(!encoding("auto=compress&fm=jpg").compress);
        assert!(encoding("fm=jpg&q=80").progressive);
    }

    /// auto=format picks AVIF, then WebP, from Accept; the plan never holds the header itself.
    #[test]
    fn auto_format_negotiates() {
        let parse =
            |query: &str, accept: Option<&str>| parse_render_plan("", query, accept).unwrap();
        let avif = parse("auto=format&w=10", Some("image/avif,image/webp,*/*"));
        assert_eq!(
            (avif.plan.format(), avif.varies_on_accept),
            (OutputFormat::Avif, true)
        );
        let webp = parse("auto=format,compress&fm=png", Some("image/webp"));
        assert_eq!(
            (webp.plan.format(), webp.plan.quality),
            (OutputFormat::Webp, 45)
        );
        let fallback = parse("auto=format&fm=png", Some("image/png,*/*"));
        assert_eq!(
            (fallback.plan.format(), fallback.varies_on_accept),
            (OutputFormat::Png, true)
        );
        let none = parse("auto=format", None);
        assert_eq!(
            (none.plan.format(), none.varies_on_accept),
            (OutputFormat::Unspecified, true)
        );
        let json = parse("auto=format&fm=json", Some("image/avif"));
        assert_eq!(json.plan.format(), OutputFormat::Json);
        let plain = parse("fm=png", Some("image/avif"));
        assert_eq!(
            (plain.plan.format(), plain.varies_on_accept),
            (OutputFormat::Png, false)
        );
        // Two Accept spellings that negotiate alike give identical plans.
        assert_eq!(
            parse("auto=format", Some("image/avif"))
                .plan
                .encode_to_vec(),
            parse("auto=format", Some("text/html,image/avif;q=0.9,*/*"))
                .plan
                .encode_to_vec()
        );
    }

    /// orient (with degree aliases), rot (modulo 360), rot-type and flip.
    #[test]
    fn orientation_parameters() {
        let orientation = |query: &str| plan(query).orientation.unwrap_or_default();
        for (query, exif) in [
            ("orient=6", 6),
            ("or=90", 6),
            ("or=180", 3),
            ("or=270", 8),
            ("or=0", 1),
            ("or=45", 0),
            ("or=9", 0),
        ] {
            assert_eq!(orientation(query).exif_orientation, exif, "{query}");
        }
        assert_eq!(
            orientation("rot=45.5"),
            pb::Orientation {
                rotation_centi_degrees: 4550,
                rotation_type: RotationType::Straighten.into(),
                ..Default::default()
            }
        );
        assert_eq!(orientation("rot=-90").rotation_centi_degrees, 27_000);
        assert_eq!(orientation("rot=720").rotation_centi_degrees, 0);
        assert_eq!(
            orientation("rot=90"),
            orientation("rot=90&rot-type=straighten"),
            "straighten is the default at right angles too"
        );
        assert_eq!(
            orientation("rot=270").rotation_type(),
            RotationType::Straighten
        );
        assert_eq!(
            orientation("rot=90&rot-type=pivot").rotation_type(),
            RotationType::Pivot
        );
        assert_eq!(plan("rot-type=pivot").orientation, None);
        assert_eq!(
            (
                orientation("flip=h").flip_horizontal,
                orientation("flip=h").flip_vertical
            ),
            (true, false)
        );
        assert_eq!(
            (
                orientation("flip=v").flip_horizontal,
                orientation("flip=v").flip_vertical
            ),
            (false, true)
        );
        assert_eq!(
            (
                orientation("flip=hv").flip_horizontal,
                orientation("flip=hv").flip_vertical
            ),
            (true, true)
        );
        assert_eq!(plan("flip=x").orientation, None);
    }

    /// Every adjustment reads its value, clamped to its range; neutral values leave no trace.
    #[test]
    fn adjustment_parameters() {
        let adjust = |query: &str| plan(query).adjustments.unwrap_or_default();
        assert_eq!(
            adjust(
                "bri=10&con=-20&exp=30&gam=-40&high=-50&shad=60&hue=70&sat=-80&vib=90&sharp=15&usm=25&usmrad=4.5&invert=true"
            ),
            pb::Adjustments {
                brightness: 10,
                contrast: -20,
                exposure: 30,
                gamma: -40,
                highlights: -50,
                shadows: 60,
                hue: 70,
                saturation: -80,
                vibrance: 90,
                sharpen: 15,
                unsharp_mask: 25,
                unsharp_radius_centi: 450,
                invert: true,
            }
        );
        assert_eq!(adjust("bri=500").brightness, 100);
        assert_eq!(adjust("high=50").highlights, 0);
        assert_eq!(adjust("hue=-30").hue, 330);
        assert_eq!(adjust("usm=10").unsharp_radius_centi, 250);
        assert_eq!(plan("usmrad=5").adjustments, None);
        assert!(adjust("inv=true").invert);
        assert_eq!(plan("bri=0&con=0&invert=false").adjustments, None);
        assert_eq!(plan("bri=NaN&con=inf&exp=1e2").adjustments, None);
    }

    /// Stylize effects, colours for mono and duotone.
    #[test]
    fn stylize_parameters() {
        let stylize = |query: &str| plan(query).stylize.unwrap_or_default();
        assert_eq!(stylize("blur=50").blur, 50);
        assert_eq!(stylize("blur=100000").blur, 2000);
        assert_eq!(stylize("px=10").pixelate, 10);
        assert_eq!(stylize("sepia=80").sepia, 80);
        assert_eq!(stylize("mono=000").monochrome, argb(0xFF00_0000));
        assert_eq!(stylize("monochrome=80ff0000").monochrome, argb(0x80FF_0000));
        assert_eq!(
            plan("mono=00ff0000").stylize,
            None,
            "a transparent tint is no tint"
        );
        assert_eq!(
            stylize("duotone=000080,fa8072").duotone,
            Some(pb::Duotone {
                shadows: argb(0xFF00_0080),
                highlights: argb(0xFFFA_8072),
                alpha: Some(100)
            })
        );
        assert_eq!(
            stylize("duotone=navy,salmon&duotone-alpha=40")
                .duotone
                .unwrap()
                .alpha,
            Some(40)
        );
        assert_eq!(plan("duotone=000").stylize, None);
    }

    /// Canvas: bg, padding per side, borders, radii and the fill of fill fit modes.
    #[test]
    fn canvas_parameters() {
        let canvas = |query: &str| plan(query).canvas.unwrap_or_default();
        assert_eq!(canvas("bg=f00").background, argb(0xFFFF_0000));
        assert_eq!(canvas("bg=80ff0000").background, argb(0x80FF_0000));
        assert_eq!(
            plan("bg=0fff").canvas,
            None,
            "transparent bg is the default"
        );
        assert_eq!(
            canvas("pad=10&pad-left=30").padding,
            Some(pb::Sides {
                top: 10,
                right: 10,
                bottom: 10,
                left: 30
            })
        );
        assert_eq!(
            canvas("pad-top=5").padding,
            Some(pb::Sides {
                top: 5,
                ..Default::default()
            })
        );
        assert_eq!(
            canvas("border=4,red&border-bottom=8").border,
            Some(pb::Border {
                widths: Some(pb::Sides {
                    top: 4,
                    right: 4,
                    bottom: 8,
                    left: 4
                }),
                color: argb(0xFFFF_0000)
            })
        );
        assert_eq!(
            canvas("border=400,red").border.unwrap().widths.unwrap().top,
            100
        );
        assert_eq!(plan("border-top=5").canvas, None);
        assert_eq!(
            canvas("border=1,red&border-radius=1,2,3,4").border_radius,
            Some(pb::Corners {
                top_left: 1,
                top_right: 2,
                bottom_right: 3,
                bottom_left: 4
            })
        );
        assert_eq!(
            canvas("border=2,red&border-radius=9")
                .border_radius
                .unwrap()
                .bottom_left,
            9
        );
        assert_eq!(plan("border-radius=9").canvas, None);
        let fill = canvas("fit=fill&fill=blur&fill-color=red");
        assert_eq!((fill.fill(), fill.fill_color), (FillMode::Blur, None));
        assert_eq!(
            canvas("fit=fill&fill-color=red").fill_color,
            argb(0xFFFF_0000)
        );
        assert_eq!(plan("fit=crop&fill=blur").canvas, None);
    }

    /// Trim modes with their defaults and dependent parameters.
    #[test]
    fn trim_parameters() {
        assert_eq!(
            plan("trim=auto").trim,
            Some(pb::Trim {
                mode: TrimMode::Auto.into(),
                mean_difference_centi: Some(1100),
                standard_deviation_centi: Some(1000),
                ..Default::default()
            })
        );
        assert_eq!(
            plan("trim=color&trim-color=fff&trim-tol=12.5&trim-pad=4&trim-md=3").trim,
            Some(pb::Trim {
                mode: TrimMode::Color.into(),
                color: argb(0xFFFF_FFFF),
                tolerance_centi: 1250,
                pad: 4,
                ..Default::default()
            })
        );
        assert_eq!(
            plan("trim=alpha&trim-alpha=10")
                .trim
                .unwrap()
                .alpha_threshold_centi,
            1000
        );
        assert_eq!(plan("trim=sideways").trim, None);
        assert_eq!(plan("trim-color=fff").trim, None);
    }

    /// Watermark parameters with their defaults, aliases and path rules.
    #[test]
    fn watermark_parameters() {
        assert_eq!(
            plan("mark=/logo.png").watermark,
            Some(pb::Watermark {
                path: "logo.png".into(),
                vertical: VerticalAlign::Bottom.into(),
                horizontal: HorizontalAlign::Right.into(),
                alpha: Some(100),
                pad: Some(5),
                fit: OverlayFit::Clip.into(),
                ..Default::default()
            })
        );
        assert_eq!(
            plan("m=/logo.png&ma=top,left&malph=50&ms=25&mp=0&mx=3&my=4&mw=0.5&mh=80&mf=crop&mtile=grid").watermark,
            Some(pb::Watermark {
                path: "logo.png".into(),
                vertical: VerticalAlign::Top.into(),
                horizontal: HorizontalAlign::Left.into(),
                alpha: Some(50),
                scale: 25,
                pad: Some(0),
                x: Some(3),
                y: Some(4),
                width: frac(500_000),
                height: px(80),
                fit: OverlayFit::Crop.into(),
                tile: true,
            })
        );
        assert_eq!(
            plan("mark64=L2xvZ28ucG5n").watermark.unwrap().path,
            "logo.png"
        );
        assert_eq!(
            plan("mark=https://elsewhere.example/logo.png").watermark,
            None
        );
        assert_eq!(plan("mark=/../etc/passwd").watermark, None);
    }

    /// Text parameters with imgix's documented defaults.
    #[test]
    fn text_parameters() {
        assert_eq!(
            plan("txt=Hello").text,
            Some(pb::TextOverlay {
                text: "Hello".into(),
                size: 12,
                color: argb(0xFF00_0000),
                vertical: VerticalAlign::Bottom.into(),
                horizontal: HorizontalAlign::Right.into(),
                pad: Some(10),
                ..Default::default()
            })
        );
        assert_eq!(
            plan("txt64=SGVsbG8sIFdvcmxkIQ&txt-font=DejaVu+Sans+Bold&txt-size=40&txt-color=ff0000&txt-align=middle,center&txt-pad=0&txt-shad=2.5&txt-width=200&txt-clip=ellipsis&txt-fit=max").text,
            Some(pb::TextOverlay {
                text: "Hello, World!".into(),
                font: "DejaVu Sans Bold".into(),
                size: 40,
                color: argb(0xFFFF_0000),
                vertical: VerticalAlign::Middle.into(),
                horizontal: HorizontalAlign::Center.into(),
                pad: Some(0),
                shadow_deci: 25,
                width: 200,
                clip: TextClip::Ellipsis.into(),
                fit_max: true,
            })
        );
        let long = plan(&format!("txt={}", "a".repeat(10_000))).text.unwrap();
        assert_eq!(long.text.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(plan("txt=").text, None);
        assert_eq!(plan("txt-size=40").text, None);
    }

    /// Blend with a colour or an image path, mode, alpha and placement.
    #[test]
    fn blend_parameters() {
        assert_eq!(
            plan("blend=ff0000&bm=multiply&balph=50").blend,
            Some(pb::Blend {
                source: Some(pb::blend::Source::Color(pb::Color { argb: 0xFFFF_0000 })),
                mode: BlendMode::Multiply.into(),
                alpha: Some(50),
                ..Default::default()
            })
        );
        assert_eq!(plan("blend=red").blend.unwrap().mode(), BlendMode::Overlay);
        assert_eq!(
            plan("b=/tex.png&ba=bottom,right&bw=0.5&bp=4&bf=scale").blend,
            Some(pb::Blend {
                source: Some(pb::blend::Source::Path("tex.png".into())),
                mode: BlendMode::Overlay.into(),
                alpha: Some(100),
                vertical: VerticalAlign::Bottom.into(),
                horizontal: HorizontalAlign::Right.into(),
                width: frac(500_000),
                fit: OverlayFit::Scale.into(),
                pad: 4,
                ..Default::default()
            })
        );
        assert_eq!(plan("blend=https://x.example/a.png").blend, None);
    }

    /// frame picks one frame; nonsense is ignored.
    #[test]
    fn animation_parameters() {
        assert_eq!(plan("frame=3").animation, Some(pb::Animation { frame: 3 }));
        assert_eq!(plan("frame=0").animation, Some(pb::Animation { frame: 1 }));
        assert_eq!(plan("frame=abc").animation, None);
        assert_eq!(plan("frame=2-5").animation, None);
    }

    /// Equal parameters in any order, through aliases, base64 and spelled-out defaults, encode to identical bytes.
    #[test]
    fn equal_plans_encode_equally() {
        let spellings = [
            "w=640&h=480&fit=crop&fm=webp&q=60&dpr=2&crop=top&bri=10",
            "bri=10&crop=top&dpr=2&q=60&fm=webp&fit=crop&h=480&w=640",
            "fm=webp&width=640&f=crop&height=480&dpr=2.0&q=60&crop=top&bri=10&bg=0fff&pad=0",
            "h=480&dpr=2.00&w64=NjQw&q=60&fit=crop&fm=webp&unknown=1&crop64=dG9w&bri=10.0&usmrad=9",
        ];
        let encoded: Vec<Vec<u8>> = spellings.iter().map(|q| plan(q).encode_to_vec()).collect();
        for (spelling, bytes) in spellings.iter().zip(&encoded) {
            assert_eq!(bytes, &encoded[0], "{spelling}");
        }
        assert_ne!(plan("w=640").encode_to_vec(), plan("w=641").encode_to_vec());
    }

    /// Normalising a parsed plan changes nothing.
    #[test]
    fn parsed_plans_are_normal() {
        for query in [
            "",
            "w=0.5&fit=crop&crop=focalpoint&fp-x=0.2&ar=4:3&min-w=10",
            "txt=hi&mark=/a.png&blend=/b.png&trim=auto&border=2,red&pad=3&rot=10&mono=000&duotone=000,fff",
            "fm=webp&lossless=true&auto=compress&cs=origin&chromasub=444",
        ] {
            let parsed = plan(query);
            assert_eq!(normalize_plan(&parsed).unwrap(), parsed, "{query}");
        }
    }

    /// The Source's default params apply under the URL's.
    #[test]
    fn source_defaults_apply_under_the_url() {
        let parse =
            |defaults: &str, query: &str| parse_render_plan(defaults, query, None).unwrap().plan;
        assert_eq!(parse("fm=webp&q=60&w=500", "").width, 500);
        assert_eq!(parse("fm=webp&q=60&w=500", "w=200").width, 200);
        assert_eq!(parse("w=500", "w=").width, 0);
        assert_eq!(parse("fm=bmp", "").format(), OutputFormat::Unspecified);
    }

    /// Undecodable base64 is the one request-time error.
    #[test]
    fn bad_base64_is_the_only_error() {
        assert_eq!(
            parse_render_plan("", "w=abc&fm=bmp&fit=cover&txt64=%%%", None),
            Err(ParamError::InvalidBase64 {
                param: "txt64".into()
            })
        );
        assert_eq!(
            parse_render_plan("txt64=!!", "", None),
            Err(ParamError::InvalidBase64 {
                param: "txt64".into()
            })
        );
        assert!(parse_render_plan("", "w=abc&fm=bmp&fit=cover&bri=NaN", None).is_ok());
    }

    /// Source default params are validated strictly: unknown names and bad values are reported.
    #[test]
    fn validates_default_params_strictly() {
        for good in [
            "",
            "w=400&fm=webp&auto=format,compress",
            "f=crop&txt64=SGk&bg=red&rect=0,0,10,10",
        ] {
            assert_eq!(validate_default_params(good), Ok(()), "{good}");
        }
        let cases = [
            (
                "wdth=5",
                ParamError::UnknownParameter {
                    name: "wdth".into(),
                },
            ),
            (
                "fit=cover",
                ParamError::InvalidValue {
                    param: "fit".into(),
                    value: "cover".into(),
                },
            ),
            (
                "w=abc",
                ParamError::InvalidValue {
                    param: "w".into(),
                    value: "abc".into(),
                },
            ),
            (
                "bg=nocolour",
                ParamError::InvalidValue {
                    param: "bg".into(),
                    value: "nocolour".into(),
                },
            ),
            (
                "txt64=@",
                ParamError::InvalidBase64 {
                    param: "txt64".into(),
                },
            ),
        ];
        for (defaults, error) in cases {
            assert_eq!(validate_default_params(defaults), Err(error), "{defaults}");
        }
    }

    /// Garbage never panics: every spec parameter fed edge and junk values parses or is ignored.
    #[test]
    fn garbage_values_never_fail() {
        let long = "9".repeat(10_000);
        let junk = [
            "",
            "-1",
            "0",
            "1e309",
            "NaN",
            "-0",
            "99999999999999999999",
            "%00",
            ",,,",
            "a,b,c,d",
            "::",
            "-",
            long.as_str(),
        ];
        for param in Spec::get().params() {
            for value in junk {
                let query = format!("{}={}", param.name, value.replace('%', "%25"));
                let parsed = parse_render_plan("", &query, Some("image/avif"));
                assert!(parsed.is_ok(), "{query}: {parsed:?}");
            }
        }
    }

    /// Fit precedence: the spec's default matches the plan's default.
    #[test]
    fn spec_defaults_match_plan_defaults() {
        let spec = Spec::get();
        assert_eq!(
            spec.param("fit").unwrap().default_string().as_deref(),
            Some("clip")
        );
        assert_eq!(
            spec.param("q").unwrap().default_number(),
            Some(f64::from(defaults().quality))
        );
        assert_eq!(
            spec.param("dpr").unwrap().default_number(),
            Some(f64::from(defaults().dpr_centi) / 100.0)
        );
    }

    /// Only a request that asks for nothing has an empty plan: no
    /// parameters, or only the signature, `ixlib`, `expires` and unknown
    /// names ("you can serve an image without any parameters to serve it as
    /// a passthrough", https://docs.imgix.com/apis/url/format/cs); any
    /// rendering parameter, a Source default or a negotiated format makes
    /// it a render.
    #[test]
    fn empty_plans_are_requests_without_rendering_parameters() {
        let empty = |defaults: &str, query: &str, accept: Option<&str>| {
            is_empty_plan(&parse_render_plan(defaults, query, accept).unwrap().plan)
        };
        assert!(empty("", "", None));
        assert!(is_empty_plan(
            &normalize_plan(&RenderPlan::default()).unwrap()
        ));
        assert!(empty(
            "",
            "ixlib=js-3.8.0&expires=4102444800&s=0123abcd",
            None
        ));
        assert!(empty("", "not-an-imgix-param=1", None));
        assert!(empty("", "auto=format", Some("image/jpeg,image/*")));
        for query in [
            "w=100",
            "fm=json",
            "fm=blurhash",
            "fm=jpg",
            "cs=strip",
            "q=40",
            "auto=compress",
        ] {
            assert!(!empty("", query, None), "{query}");
        }
        assert!(!empty("", "auto=format", Some("image/avif,image/webp")));
        assert!(!empty("w=100", "", None));
    }
}
