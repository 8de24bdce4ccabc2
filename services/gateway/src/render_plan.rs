//! Turns an imgix query string into the canonical [`RenderPlan`].
//!
//! The plan is the heart of the derivative cache key, so equal outputs must
//! give equal plans: parameter order and aliases never matter, defaults are
//! written out explicitly (`fit` is `FIT_CLIP`, `dpr_centi` is 100, quality
//! is 75 for lossy formats and 0 for PNG, which ignores it) and every number
//! is clamped to the range imgix documents in `imgix-url-params.json`.
//!
//! Parsing rules:
//!
//! - The Source's `default_params` are read first and the URL's query second,
//!   so the URL overrides the Source.
//! - Aliases (`width` → `w`, `height` → `h`, `f` → `fit`) are folded into the
//!   canonical name before anything else.
//! - A parameter given more than once keeps its **last** value, across
//!   aliases too (`w=100&width=200` means `w=200`).
//! - An empty value (`w=`) unsets the parameter, which also clears a Source
//!   default.
//! - Parameters imgmesh does not implement yet are ignored, as imgix ignores
//!   parameters it does not know.

use std::collections::HashMap;

use imgmesh_proto::renderer::v1::{Fit, OutputFormat, RenderPlan};

/// Largest output side imgix accepts (`w` and `h` strict range).
const MAX_DIMENSION: f64 = 8192.0;
/// Smallest absolute output side imgix accepts.
const MIN_DIMENSION: f64 = 2.0;
/// Quality when none is given (imgix's `q` default).
const DEFAULT_QUALITY: u32 = 75;
/// Largest device pixel ratio imgix accepts (`dpr` strict range).
const MAX_DPR: f64 = 5.0;
/// 1x, in hundredths.
const DEFAULT_DPR_CENTI: u32 = 100;
/// Longest user value echoed back in an error message.
const MAX_ECHOED_VALUE: usize = 64;

/// A query parameter the gateway cannot turn into a plan; the `Display` text
/// is the public 400 body and names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The value is not of the parameter's type or not one of its values.
    #[error("{param}: unsupported value {value:?}")]
    UnsupportedValue {
        /// Canonical parameter name.
        param: &'static str,
        /// The offending value, shortened.
        value: String,
    },
    /// A size that must be positive is zero or negative.
    #[error("{param}: must be greater than zero")]
    NotPositive {
        /// Canonical parameter name.
        param: &'static str,
    },
    /// A size between 0 and 1 (a fraction of the input) was given.
    #[error("{param}: relative sizes are not supported yet")]
    RelativeSize {
        /// Canonical parameter name.
        param: &'static str,
    },
    /// A value imgix defines but imgmesh does not implement yet.
    #[error("{param}={value} is not supported yet")]
    NotYetSupported {
        /// Canonical parameter name.
        param: &'static str,
        /// The value, one of imgix's documented ones.
        value: String,
    },
}

/// Parses `default_params` (the Source's) and then `query` (the URL's, without
/// the leading `?`) into the canonical plan.
pub fn parse_render_plan(default_params: &str, query: &str) -> Result<RenderPlan, PlanError> {
    let params = collect_params(default_params, query);
    let value = |name: &str| params.get(name).map(String::as_str);

    let width = value("w").map(|v| parse_dimension("w", v)).transpose()?;
    let height = value("h").map(|v| parse_dimension("h", v)).transpose()?;
    let fit = value("fit").map(parse_fit).transpose()?;
    let format = value("fm").map(parse_format).transpose()?;
    let quality = value("q").map(parse_quality).transpose()?;
    let dpr_centi = value("dpr").map(parse_dpr).transpose()?;

    let format = format.unwrap_or(OutputFormat::Unspecified);
    let quality = match format {
        // PNG is lossless: q changes nothing, so it must not split the cache.
        OutputFormat::Png => 0,
        OutputFormat::Unspecified
        | OutputFormat::Jpeg
        | OutputFormat::Webp
        | OutputFormat::Avif => quality.unwrap_or(DEFAULT_QUALITY),
    };
    Ok(RenderPlan {
        width: width.unwrap_or(0),
        height: height.unwrap_or(0),
        fit: fit.unwrap_or(Fit::Clip).into(),
        format: format.into(),
        quality,
        dpr_centi: dpr_centi.unwrap_or(DEFAULT_DPR_CENTI),
    })
}

/// Folds both query strings into one map of canonical name → last value;
/// empty values remove the parameter.
fn collect_params(default_params: &str, query: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let pairs = url::form_urlencoded::parse(default_params.trim_start_matches('?').as_bytes())
        .chain(url::form_urlencoded::parse(query.as_bytes()));
    for (name, value) in pairs {
        let name = canonical_name(&name);
        if !is_planned(name) {
            continue;
        }
        if value.is_empty() {
            params.remove(name);
        } else {
            params.insert(name.to_owned(), value.into_owned());
        }
    }
    params
}

/// Maps an alias from the spec's `aliases` table to its parameter's name.
fn canonical_name(name: &str) -> &str {
    match name {
        "width" => "w",
        "height" => "h",
        "f" => "fit",
        other => other,
    }
}

/// Whether the parameter is one the plan carries.
fn is_planned(name: &str) -> bool {
    matches!(name, "w" | "h" | "fit" | "fm" | "q" | "dpr")
}

/// Parses `w` or `h`: an integer 2..=8192 (clamped, decimals rounded); a unit
/// fraction means "relative to the input", which is not implemented yet.
fn parse_dimension(param: &'static str, value: &str) -> Result<u32, PlanError> {
    let number = parse_decimal(value).ok_or_else(|| unsupported(param, value))?;
    if number <= 0.0 {
        return Err(PlanError::NotPositive { param });
    }
    if number < 1.0 {
        return Err(PlanError::RelativeSize { param });
    }
    // In range after the clamp, so the cast is exact.
    Ok(number.round().clamp(MIN_DIMENSION, MAX_DIMENSION) as u32)
}

/// Parses `fit`.
fn parse_fit(value: &str) -> Result<Fit, PlanError> {
    match value {
        "clip" => Ok(Fit::Clip),
        "crop" => Ok(Fit::Crop),
        "max" => Ok(Fit::Max),
        "scale" => Ok(Fit::Scale),
        "clamp" | "facearea" | "fill" | "fillmax" | "min" => Err(PlanError::NotYetSupported {
            param: "fit",
            value: value.to_owned(),
        }),
        other => Err(unsupported("fit", other)),
    }
}

/// Parses `fm`.
fn parse_format(value: &str) -> Result<OutputFormat, PlanError> {
    match value {
        "jpg" | "jpeg" => Ok(OutputFormat::Jpeg),
        "png" => Ok(OutputFormat::Png),
        "webp" => Ok(OutputFormat::Webp),
        "avif" => Ok(OutputFormat::Avif),
        "gif" | "jp2" | "json" | "jxr" | "pjpg" | "mp4" | "png8" | "png32" | "webm"
        | "blurhash" => Err(PlanError::NotYetSupported {
            param: "fm",
            value: value.to_owned(),
        }),
        other => Err(unsupported("fm", other)),
    }
}

/// Parses `q`: an integer clamped to 1..=100 (imgix's suggested range is
/// 0..=100; 0 already means "lowest", so it becomes 1 and keeps 0 free for
/// "not applicable" in the plan).
fn parse_quality(value: &str) -> Result<u32, PlanError> {
    let number = parse_decimal(value).ok_or_else(|| unsupported("q", value))?;
    Ok(number.round().clamp(1.0, 100.0) as u32)
}

/// Parses `dpr`: a number clamped to 0..=5, stored in hundredths (at least 1).
fn parse_dpr(value: &str) -> Result<u32, PlanError> {
    let number = parse_decimal(value).ok_or_else(|| unsupported("dpr", value))?;
    let centi = (number.clamp(0.0, MAX_DPR) * 100.0).round() as u32;
    Ok(centi.max(1))
}

/// Parses a plain decimal: optional `-`, digits, optional `.` and digits.
/// Rejects what `f64::from_str` would also accept but imgix does not write
/// (`NaN`, `inf`, exponents, `+`, spaces).
fn parse_decimal(value: &str) -> Option<f64> {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let plain =
        !(whole.is_empty() && fraction.is_empty()) && digits_only(whole) && digits_only(fraction);
    if !plain {
        return None;
    }
    value.parse().ok()
}

/// The 400 for a value that is not of the parameter's type, echoing it
/// shortened.
fn unsupported(param: &'static str, value: &str) -> PlanError {
    let value = match value.char_indices().nth(MAX_ECHOED_VALUE) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    };
    PlanError::UnsupportedValue { param, value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn plan(query: &str) -> RenderPlan {
        parse_render_plan("", query).unwrap_or_else(|e| panic!("{query:?}: {e}"))
    }

    fn error(query: &str) -> String {
        match parse_render_plan("", query) {
            Ok(plan) => panic!("{query:?} parsed to {plan:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn expected(
        width: u32,
        height: u32,
        fit: Fit,
        format: OutputFormat,
        quality: u32,
        dpr_centi: u32,
    ) -> RenderPlan {
        RenderPlan {
            width,
            height,
            fit: fit.into(),
            format: format.into(),
            quality,
            dpr_centi,
        }
    }

    /// An empty query gives the plan with every default written out.
    #[test]
    fn empty_query_gives_explicit_defaults() {
        assert_eq!(
            plan(""),
            expected(0, 0, Fit::Clip, OutputFormat::Unspecified, 75, 100)
        );
    }

    /// Every supported value of every parameter, and every alias, parses to the expected plan field.
    #[test]
    fn supported_values_and_aliases() {
        use Fit::{Clip, Crop, Max, Scale};
        use OutputFormat::{Avif, Jpeg, Png, Unspecified, Webp};
        let cases: &[(&str, RenderPlan)] = &[
            ("w=400", expected(400, 0, Clip, Unspecified, 75, 100)),
            ("width=400", expected(400, 0, Clip, Unspecified, 75, 100)),
            ("h=300", expected(0, 300, Clip, Unspecified, 75, 100)),
            ("height=300", expected(0, 300, Clip, Unspecified, 75, 100)),
            ("w=400.4", expected(400, 0, Clip, Unspecified, 75, 100)),
            ("w=400.5", expected(401, 0, Clip, Unspecified, 75, 100)),
            ("w=2", expected(2, 0, Clip, Unspecified, 75, 100)),
            ("w=8192", expected(8192, 0, Clip, Unspecified, 75, 100)),
            ("fit=clip", expected(0, 0, Clip, Unspecified, 75, 100)),
            ("fit=crop", expected(0, 0, Crop, Unspecified, 75, 100)),
            ("fit=max", expected(0, 0, Max, Unspecified, 75, 100)),
            ("fit=scale", expected(0, 0, Scale, Unspecified, 75, 100)),
            ("f=crop", expected(0, 0, Crop, Unspecified, 75, 100)),
            ("fm=jpg", expected(0, 0, Clip, Jpeg, 75, 100)),
            ("fm=jpeg", expected(0, 0, Clip, Jpeg, 75, 100)),
            ("fm=png", expected(0, 0, Clip, Png, 0, 100)),
            ("fm=webp", expected(0, 0, Clip, Webp, 75, 100)),
            ("fm=avif", expected(0, 0, Clip, Avif, 75, 100)),
            ("q=50", expected(0, 0, Clip, Unspecified, 50, 100)),
            ("q=50&fm=jpg", expected(0, 0, Clip, Jpeg, 50, 100)),
            ("q=50&fm=webp", expected(0, 0, Clip, Webp, 50, 100)),
            ("q=50&fm=avif", expected(0, 0, Clip, Avif, 50, 100)),
            ("q=50&fm=png", expected(0, 0, Clip, Png, 0, 100)),
            ("q=100", expected(0, 0, Clip, Unspecified, 100, 100)),
            ("q=1", expected(0, 0, Clip, Unspecified, 1, 100)),
            ("dpr=2", expected(0, 0, Clip, Unspecified, 75, 200)),
            ("dpr=2.5", expected(0, 0, Clip, Unspecified, 75, 250)),
            ("dpr=0.75", expected(0, 0, Clip, Unspecified, 75, 75)),
            ("dpr=1.005", expected(0, 0, Clip, Unspecified, 75, 100)),
            ("dpr=.5", expected(0, 0, Clip, Unspecified, 75, 50)),
            ("dpr=3.", expected(0, 0, Clip, Unspecified, 75, 300)),
            (
                "w=640&h=480&fit=crop&fm=webp&q=60&dpr=2",
                expected(640, 480, Crop, Webp, 60, 200),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(&plan(query), want, "query {query:?}");
        }
    }

    /// Numbers outside imgix's strict or suggested ranges are clamped, not rejected.
    #[test]
    fn out_of_range_numbers_are_clamped() {
        type Field = fn(&RenderPlan) -> u32;
        let cases: &[(&str, Field, u32)] = &[
            ("w=8193", |p| p.width, 8192),
            ("w=100000000000000000000000", |p| p.width, 8192),
            ("h=9000", |p| p.height, 8192),
            ("w=1", |p| p.width, 2),
            ("h=1.2", |p| p.height, 2),
            ("q=0", |p| p.quality, 1),
            ("q=-5", |p| p.quality, 1),
            ("q=101", |p| p.quality, 100),
            ("q=99999", |p| p.quality, 100),
            ("dpr=6", |p| p.dpr_centi, 500),
            ("dpr=0", |p| p.dpr_centi, 1),
            ("dpr=-1", |p| p.dpr_centi, 1),
            ("dpr=0.001", |p| p.dpr_centi, 1),
        ];
        for (query, field, want) in cases {
            assert_eq!(field(&plan(query)), *want, "query {query:?}");
        }
    }

    /// Every rejected value gets a 400 message that names its parameter.
    #[test]
    fn invalid_values_name_the_parameter() {
        let cases: &[(&str, &str)] = &[
            ("w=abc", r#"w: unsupported value "abc""#),
            ("w=NaN", r#"w: unsupported value "NaN""#),
            ("w=inf", r#"w: unsupported value "inf""#),
            ("w=1e3", r#"w: unsupported value "1e3""#),
            ("w=%2B5", r#"w: unsupported value "+5""#),
            ("w=.", r#"w: unsupported value ".""#),
            ("w=-", r#"w: unsupported value "-""#),
            ("w=1.2.3", r#"w: unsupported value "1.2.3""#),
            ("w=%205", r#"w: unsupported value " 5""#),
            ("width=x", r#"w: unsupported value "x""#),
            ("w=0", "w: must be greater than zero"),
            ("w=-10", "w: must be greater than zero"),
            ("w=-0.5", "w: must be greater than zero"),
            ("w=0.5", "w: relative sizes are not supported yet"),
            ("w=0.999", "w: relative sizes are not supported yet"),
            ("h=nope", r#"h: unsupported value "nope""#),
            ("height=0", "h: must be greater than zero"),
            ("h=0.25", "h: relative sizes are not supported yet"),
            ("fit=clamp", "fit=clamp is not supported yet"),
            ("fit=facearea", "fit=facearea is not supported yet"),
            ("fit=fill", "fit=fill is not supported yet"),
            ("fit=fillmax", "fit=fillmax is not supported yet"),
            ("fit=min", "fit=min is not supported yet"),
            ("f=min", "fit=min is not supported yet"),
            ("fit=cover", r#"fit: unsupported value "cover""#),
            ("fit=CROP", r#"fit: unsupported value "CROP""#),
            ("fm=bmp", r#"fm: unsupported value "bmp""#),
            ("fm=JPG", r#"fm: unsupported value "JPG""#),
            ("fm=gif", "fm=gif is not supported yet"),
            ("fm=jp2", "fm=jp2 is not supported yet"),
            ("fm=json", "fm=json is not supported yet"),
            ("fm=jxr", "fm=jxr is not supported yet"),
            ("fm=pjpg", "fm=pjpg is not supported yet"),
            ("fm=mp4", "fm=mp4 is not supported yet"),
            ("fm=png8", "fm=png8 is not supported yet"),
            ("fm=png32", "fm=png32 is not supported yet"),
            ("fm=webm", "fm=webm is not supported yet"),
            ("fm=blurhash", "fm=blurhash is not supported yet"),
            ("q=high", r#"q: unsupported value "high""#),
            ("q=NaN", r#"q: unsupported value "NaN""#),
            ("dpr=two", r#"dpr: unsupported value "two""#),
            ("dpr=NaN", r#"dpr: unsupported value "NaN""#),
            ("dpr=inf", r#"dpr: unsupported value "inf""#),
            ("fm=%0A", r#"fm: unsupported value "\n""#),
        ];
        for (query, want) in cases {
            assert_eq!(error(query), *want, "query {query:?}");
        }
    }

    /// A long bad value is shortened in the message so error bodies stay small.
    #[test]
    fn long_bad_values_are_shortened() {
        let query = format!("fm={}", "x".repeat(1000));
        let want = format!(
            "fm: unsupported value \"{}…\"",
            "x".repeat(MAX_ECHOED_VALUE)
        );
        assert_eq!(error(&query), want);
    }

    /// Equal parameters in any order (and through aliases) encode to identical bytes.
    #[test]
    fn order_and_aliases_do_not_change_the_encoding() {
        let spellings = [
            "w=640&h=480&fit=crop&fm=webp&q=60&dpr=2",
            "dpr=2&q=60&fm=webp&fit=crop&h=480&w=640",
            "fm=webp&width=640&f=crop&height=480&dpr=2.0&q=60",
            "h=480&dpr=2.00&w=640.0&q=60&fit=crop&fm=webp&unknown=1",
        ];
        let encoded: Vec<Vec<u8>> = spellings.iter().map(|q| plan(q).encode_to_vec()).collect();
        for (spelling, bytes) in spellings.iter().zip(&encoded) {
            assert_eq!(bytes, &encoded[0], "query {spelling:?}");
        }
    }

    /// Spelling out a default gives the same bytes as leaving it out.
    #[test]
    fn explicit_defaults_do_not_change_the_encoding() {
        let pairs = [
            ("w=10", "w=10&fit=clip&dpr=1&q=75"),
            ("fm=png", "fm=png&q=30"),
            ("fm=jpg", "fm=jpeg&q=75"),
            ("", "f=clip"),
        ];
        for (short, long) in pairs {
            assert_eq!(
                plan(short).encode_to_vec(),
                plan(long).encode_to_vec(),
                "{short:?} vs {long:?}"
            );
        }
    }

    /// A repeated parameter keeps its last value, across aliases too.
    #[test]
    fn last_duplicate_wins() {
        assert_eq!(plan("w=100&w=200").width, 200);
        assert_eq!(plan("w=100&width=300").width, 300);
        assert_eq!(plan("width=300&w=100").width, 100);
        assert_eq!(plan("fm=png&fm=webp").format, i32::from(OutputFormat::Webp));
        // A bad early value is overridden, so it is never looked at.
        assert_eq!(plan("fm=bmp&fm=jpg").format, i32::from(OutputFormat::Jpeg));
    }

    /// The Source's default params apply, and the URL's params override them.
    #[test]
    fn url_params_override_source_defaults() {
        let parse = |defaults: &str, query: &str| parse_render_plan(defaults, query).unwrap();
        assert_eq!(
            parse("fm=webp&q=60&w=500", ""),
            expected(500, 0, Fit::Clip, OutputFormat::Webp, 60, 100)
        );
        assert_eq!(
            parse("fm=webp&q=60&w=500", "w=200&fm=png"),
            expected(200, 0, Fit::Clip, OutputFormat::Png, 0, 100)
        );
        assert_eq!(parse("?fit=crop", "").fit, i32::from(Fit::Crop));
        assert_eq!(parse("width=500", "w=100").width, 100);
        // An empty value in the URL clears the default.
        assert_eq!(parse("w=500", "w=").width, 0);
        // A bad default is overridden by a good URL value...
        assert_eq!(
            parse("fm=bmp", "fm=png").format,
            i32::from(OutputFormat::Png)
        );
        // ...but a bad default that is not overridden is reported.
        assert_eq!(
            parse_render_plan("fm=bmp", "w=10").unwrap_err().to_string(),
            r#"fm: unsupported value "bmp""#
        );
    }

    /// Parameters the plan does not carry (and empty values) are ignored.
    #[test]
    fn unknown_and_empty_parameters_are_ignored() {
        assert_eq!(plan("blur=20&txt=hello&s=abc&w64=NDAw&&=&w="), plan(""));
        assert_eq!(plan("W=abc"), plan(""));
    }

    /// Percent-encoding and `+` in values are decoded before parsing.
    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(plan("w=%34%30%30").width, 400);
        assert_eq!(plan("%77=400").width, 400);
        assert_eq!(error("fm=b+m%70"), r#"fm: unsupported value "b mp""#);
    }
}
