//! imgix's documented defaults, aliases, ranges and encodings, checked on
//! parsed plans: every test quotes the docs.imgix.com page (or the vendored
//! imgix-url-params spec) it follows, and its expected values come from that
//! text. The audit table in docs/rendering-api.md names each test.

use imgmesh_imgix_params::parse_render_plan;
use imgmesh_proto::renderer::v1::{
    self as pb, BlendMode, Fit, HorizontalAlign, OutputFormat, OverlayFit, RenderPlan, TextClip,
    VerticalAlign,
};

fn plan(query: &str) -> RenderPlan {
    parse_render_plan("", query, None)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .plan
}

/// https://docs.imgix.com/apis/url/ (Base64 Variants): "All imgix parameter
/// values (with the exception of auto and ch) can be encoded using a URL-safe
/// Base64 scheme ... append 64 to the end of the parameter name"; its example:
/// "?txt=Hello%2C%20World! becomes ... ?txt64=SGVsbG8sIFdvcmxkIQ"; "any
/// padding characters (=) must be omitted".
#[test]
fn base64_variants_follow_the_rendering_api_page() {
    let text = plan("txt64=SGVsbG8sIFdvcmxkIQ").text.expect("text");
    assert_eq!(text.text, "Hello, World!");
    assert_eq!(
        plan("txt64=SGVsbG8sIFdvcmxkIQ"),
        plan("txt=Hello%2C%20World!")
    );
    // w=300: "MzAw".
    assert_eq!(plan("w64=MzAw"), plan("w=300"));
    // auto64=format ("Zm9ybWF0") is not auto=format: nothing negotiates.
    let parsed = parse_render_plan("", "auto64=Zm9ybWF0", Some("image/webp")).unwrap();
    assert!(!parsed.varies_on_accept);
    assert_eq!(parsed.plan.format(), OutputFormat::Unspecified);
}

/// https://docs.imgix.com/apis/url/auto: "auto values can be combined with
/// comma separation, e.g. auto=compress,enhance. Additionally, it is the only
/// parameter that can be combined by reiteration, e.g.
/// auto=compress&auto=enhance&auto=format."
#[test]
fn auto_values_combine_as_the_auto_page_says() {
    let reiterated = parse_render_plan(
        "",
        "auto=compress&auto=enhance&auto=format",
        Some("image/webp"),
    )
    .unwrap();
    assert!(reiterated.varies_on_accept, "format kept");
    assert_eq!(reiterated.plan.format(), OutputFormat::Webp);
    assert_eq!(reiterated.plan.quality, 45, "compress kept");
    let commas = parse_render_plan("", "auto=compress,format", Some("image/webp")).unwrap();
    assert_eq!(commas.plan, reiterated.plan);
}

/// The spec (imgix-url-params v11.35.0) and each page's default:
/// fit "The default value is clip" (https://docs.imgix.com/apis/url/size/fit),
/// dpr "The default is 1" (https://docs.imgix.com/apis/url/dpr), q "the
/// default value is 75" (https://docs.imgix.com/apis/rendering/format/output-quality),
/// and the aliases `f` → fit, `width`/`height`, `or` → orient.
#[test]
fn size_and_format_defaults_and_aliases() {
    let empty = plan("");
    assert_eq!(empty.fit(), Fit::Clip);
    assert_eq!(empty.dpr_centi, 100);
    assert_eq!(empty.quality, 75);
    assert_eq!(plan("f=crop&w=10&h=10"), plan("fit=crop&w=10&h=10"));
    assert_eq!(plan("width=10&height=20"), plan("w=10&h=20"));
    assert_eq!(plan("or=6"), plan("orient=6"));
    // "The default is 1 and the maximum value is 5."
    assert_eq!(plan("w=10&dpr=9").dpr_centi, 500);
    // w: "integer ... 2–8192" (spec strict range).
    assert_eq!(plan("w=9000").width, 8192);
    // q: 0–100.
    assert_eq!(plan("q=250").quality, 100);
}

/// https://docs.imgix.com/apis/url/watermark/mark-align: "If no value is
/// explicitly set, the default behavior is bottom,right"; "Note: There is a
/// default padding of 5px if mark-pad is not set."
/// https://docs.imgix.com/apis/url/watermark/mark-fit: "The default value is
/// clip." The spec: mark-alpha default 100, aliases m, ma, mp, mf.
#[test]
fn watermark_defaults_follow_the_mark_pages() {
    let mark = plan("mark=/logo.png").watermark.expect("mark");
    assert_eq!(mark.vertical(), VerticalAlign::Bottom);
    assert_eq!(mark.horizontal(), HorizontalAlign::Right);
    assert_eq!(mark.pad, Some(5));
    assert_eq!(mark.fit(), OverlayFit::Clip);
    assert_eq!(mark.alpha.unwrap_or(100), 100);
    // https://docs.imgix.com/apis/rendering/watermark/mark-tile: "If
    // mark-align is not set, the default top, left will be used for a tiled
    // watermark. This is different from the default bottom, right for a
    // single mark."
    let tiled = plan("mark=/logo.png&mark-tile=grid")
        .watermark
        .expect("mark");
    assert!(tiled.tile);
    assert_eq!(tiled.vertical(), VerticalAlign::Top);
    assert_eq!(tiled.horizontal(), HorizontalAlign::Left);
    let tiled_bottom = plan("mark=/logo.png&mark-tile=grid&mark-align=bottom,right")
        .watermark
        .expect("mark");
    assert_eq!(tiled_bottom.vertical(), VerticalAlign::Bottom);
    assert_eq!(tiled_bottom.horizontal(), HorizontalAlign::Right);
    // https://docs.imgix.com/apis/url/watermark/mark-w: "The maximum value is 2000."
    assert_eq!(
        plan("mark=/logo.png&mark-w=5000&mark-h=3000"),
        plan("mark=/logo.png&mark-w=2000&mark-h=2000")
    );
    assert_eq!(
        plan("m=/logo.png&ma=top,left&mp=0&mf=max"),
        plan("mark=/logo.png&mark-align=top,left&mark-pad=0&mark-fit=max")
    );
}

/// https://docs.imgix.com/apis/url/text/txt: defaults "Position: Lower right
/// corner; Font: Helvetica; Size: 12px; Color: #000 (Opaque Black); Padding:
/// 10px". https://docs.imgix.com/ja-JP/apis/rendering/text/text-clipping-mode:
/// txt-clip "If no value is set, the default value is end."
/// https://docs.imgix.com/apis/url/text/txt-fit: "The default is to not set a
/// fit mode." Spec aliases: t, tsz, txtclr, tc, ta, tp.
#[test]
fn text_defaults_follow_the_txt_pages() {
    let text = plan("txt=Hi").text.expect("text");
    assert_eq!(text.vertical(), VerticalAlign::Bottom);
    assert_eq!(text.horizontal(), HorizontalAlign::Right);
    assert_eq!(text.size, 12);
    assert_eq!(text.color, Some(pb::Color { argb: 0xFF00_0000 }));
    assert_eq!(text.pad, Some(10));
    assert_eq!(text.clip(), TextClip::Unspecified, "unspecified is end");
    assert!(!text.fit_max);
    assert_eq!(
        plan("t=Hi&tsz=20&tc=f00&ta=top,left&tp=4"),
        plan("txt=Hi&txt-size=20&txt-color=f00&txt-align=top,left&txt-pad=4")
    );
    assert_eq!(plan("txt=Hi&txtclr=f00"), plan("txt=Hi&txt-color=f00"));
}

/// https://docs.imgix.com/apis/url/blending/blend: "The default blend mode is
/// overlay." https://docs.imgix.com/apis/url/blending/blend-align: "the
/// default behavior is center,middle." https://docs.imgix.com/apis/url/blending/blend-fit:
/// "The default value is clip." Spec: blend-alpha default 100, strict 0–100;
/// aliases b, bm, ba, balph, bf.
#[test]
fn blend_defaults_follow_the_blend_pages() {
    let colour = plan("blend=ff0000").blend.expect("blend");
    assert_eq!(colour.mode(), BlendMode::Overlay);
    assert_eq!(colour.alpha, Some(100));
    let image = plan("blend=/layer.png").blend.expect("blend");
    assert_eq!(image.vertical(), VerticalAlign::Middle);
    assert_eq!(image.horizontal(), HorizontalAlign::Center);
    assert_eq!(image.fit(), OverlayFit::Clip);
    assert_eq!(
        plan("blend=red&blend-alpha=150").blend.unwrap().alpha,
        Some(100)
    );
    assert_eq!(
        plan("b=/layer.png&bm=multiply&ba=top&balph=50&bf=crop"),
        plan("blend=/layer.png&blend-mode=multiply&blend-align=top&blend-alpha=50&blend-fit=crop")
    );
}

/// https://docs.imgix.com/apis/url/trim/trim-sd: "The default value is 10";
/// spec: trim-md default 11, trim-pad suggested −200–200.
/// https://docs.imgix.com/ja-JP/apis/rendering/trim/trim-color: trim-color
/// is used with trim=color ("otherwise it is ignored").
#[test]
fn trim_defaults_follow_the_trim_pages() {
    let trim = plan("trim=auto").trim.expect("trim");
    assert_eq!(trim.standard_deviation_centi.unwrap_or(1000), 1000);
    assert_eq!(trim.mean_difference_centi.unwrap_or(1100), 1100);
    assert_eq!(plan("trim=auto&trim-pad=500").trim.unwrap().pad, 200);
    assert_eq!(plan("trim=auto&trim-pad=-500").trim.unwrap().pad, -200);
    assert_eq!(plan("trim=auto&trim-color=red").trim.unwrap().color, None);
}

/// https://docs.imgix.com/apis/rendering/focal-point-crop/focal-point-x-position
/// (ja-JP text): fp-x "must be a float between 0.0 and 1.0. The default
/// value is 0.5"; fp-z (…/focal-point-zoom): "a float between 1 and 100 ...
/// The default value is 1"; both need "fit=crop and crop=focalpoint".
#[test]
fn focal_point_defaults_and_ranges() {
    let crop = plan("fit=crop&w=10&h=10&crop=focalpoint")
        .crop
        .expect("crop");
    assert_eq!(crop.focal_x_ppm.unwrap_or(500_000), 500_000);
    assert_eq!(crop.focal_y_ppm.unwrap_or(500_000), 500_000);
    assert!(matches!(crop.focal_zoom_milli, 0 | 1000));
    let zoomed = plan("fit=crop&w=10&h=10&crop=focalpoint&fp-z=500")
        .crop
        .unwrap();
    assert_eq!(zoomed.focal_zoom_milli, 100_000, "fp-z at most 100");
    assert_eq!(plan("w=10&fp-x=0.2").crop, None, "needs fit=crop");
}

/// https://docs.imgix.com/apis/url/stylize/duotone: "The default value [of
/// duotone-alpha] is 100, which makes the duotone fully opaque."
/// https://docs.imgix.com/apis/url/border-and-padding/border-radius: "The
/// border parameter must be set for this operation to be applied."
/// https://docs.imgix.com/apis/url/size/ar: ar "will work only when either
/// fit=crop or fit=fill is set".
#[test]
fn dependencies_follow_their_pages() {
    let stylize = plan("duotone=000,fff").stylize.expect("stylize");
    let duotone = stylize.duotone.expect("duotone");
    assert_eq!(duotone.alpha.unwrap_or(100), 100);
    assert_eq!(plan("border-radius=10").canvas, None);
    assert!(
        plan("border=2,000&border-radius=10")
            .canvas
            .unwrap()
            .border_radius
            .is_some()
    );
    assert!(plan("w=100&ar=2:1&fit=crop").aspect_ratio_ppm > 0);
    assert!(plan("w=100&ar=2:1&fit=fill").aspect_ratio_ppm > 0);
    assert_eq!(plan("w=100&ar=2:1").aspect_ratio_ppm, 0);
    assert_eq!(plan("w=100&ar=2:1&fit=max").aspect_ratio_ppm, 0);
}
