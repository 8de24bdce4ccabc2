//! imgix's parameter specification, loaded once from the vendored
//! `imgix-url-params.json` (imgix-url-params v11.35.0).
//!
//! The JSON is compiled into the binary with `include_str!` and parsed on
//! first use into a [`Spec`]: every parameter's canonical name, aliases,
//! accepted value types with their strict or suggested ranges, possible
//! values and default, plus the colour keywords and font names. Parsing
//! ([`crate::value`]) and plan building read names, ranges and defaults from
//! here rather than repeating them.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value as Json;

/// The vendored specification.
const SPEC_JSON: &str = include_str!("../imgix-url-params.json");

/// The parsed specification.
#[derive(Debug)]
pub struct Spec {
    /// The spec's version, e.g. `11.35.0`.
    pub version: String,
    params: HashMap<String, ParamSpec>,
    aliases: HashMap<String, String>,
    color_keywords: Vec<String>,
    fonts: Vec<String>,
}

/// One parameter of the specification.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Canonical name, e.g. `fit`.
    pub name: String,
    /// The spec's category, e.g. `size`.
    pub category: String,
    /// Alternative names, e.g. `f` for `fit`.
    pub aliases: Vec<String>,
    /// The value types accepted, in the spec's order of preference.
    pub expects: Vec<Expectation>,
    /// The documented default, as the spec writes it.
    pub default: Option<Json>,
    /// Parameters (or `name=value` conditions) this one only matters with.
    pub depends: Vec<String>,
    /// Whether `<name>64` (base64url) is accepted; false for `auto` and `ch`.
    pub base64_allowed: bool,
}

/// One accepted value type of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The value type.
    pub kind: ValueKind,
    /// Hard bounds: values outside are clamped into them.
    pub strict_range: Option<Range>,
    /// Advisory bounds, used where there is no strict range.
    pub suggested_range: Option<Range>,
    /// The allowed values of a `string`, `list` or `integer`, as strings.
    pub possible_values: Vec<String>,
    /// A default given on the expectation itself (e.g. `fp-x`'s 0.5).
    pub default: Option<Json>,
    /// For positional lists (`rect`, `border`, ...): the accepted types of
    /// each position.
    pub positions: Vec<Vec<Expectation>>,
}

/// The value types of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A whole number.
    Integer,
    /// Any finite number.
    Number,
    /// A number from 0 to 1 meaning a fraction of something.
    UnitScalar,
    /// An aspect ratio `W:H`.
    Ratio,
    /// `true` or `false`.
    Boolean,
    /// A string, possibly limited to `possible_values`.
    String,
    /// Comma-separated values: keywords, or positional items.
    List,
    /// A 3, 4, 6 or 8 digit hex colour.
    HexColor,
    /// A CSS colour keyword.
    ColorKeyword,
    /// A font name.
    Font,
    /// An absolute URL.
    Url,
    /// A path.
    Path,
    /// A Unix timestamp.
    Timestamp,
    /// `lower-upper`, either side optional.
    Interval,
}

/// A numeric range; either bound may be open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound, inclusive.
    pub min: Option<f64>,
    /// Upper bound, inclusive.
    pub max: Option<f64>,
}

static SPEC: OnceLock<Spec> = OnceLock::new();

// === impl Spec ===

impl Spec {
    /// The specification, parsed on first use.
    pub fn get() -> &'static Spec {
        SPEC.get_or_init(|| {
            // The JSON is vendored and covered by tests, so a parse failure
            // is a build defect, not a runtime condition.
            Spec::parse(SPEC_JSON).expect("the vendored imgix-url-params.json is valid")
        })
    }

    fn parse(text: &str) -> Result<Spec, String> {
        let root: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let version = root["version"].as_str().unwrap_or_default().to_owned();
        let mut params = HashMap::new();
        for (name, body) in root["parameters"]
            .as_object()
            .ok_or("no parameters object")?
        {
            params.insert(name.clone(), ParamSpec::parse(name, body)?);
        }
        let mut aliases: HashMap<String, String> = HashMap::new();
        for (alias, target) in root["aliases"].as_object().ok_or("no aliases object")? {
            let target = target.as_str().ok_or("alias target is not a string")?;
            aliases.insert(alias.clone(), target.to_owned());
        }
        for param in params.values() {
            for alias in &param.aliases {
                aliases.insert(alias.clone(), param.name.clone());
            }
        }
        let strings = |key: &str| -> Vec<String> {
            root[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Spec {
            version,
            params,
            aliases,
            color_keywords: strings("colorKeywordValues"),
            fonts: strings("fontValues"),
        })
    }

    /// The parameter called `name` (its canonical name).
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.get(name)
    }

    /// Every parameter.
    pub fn params(&self) -> impl Iterator<Item = &ParamSpec> {
        self.params.values()
    }

    /// The canonical name for `name`, which may be an alias; `None` when the
    /// spec does not know it.
    pub fn canonical_name<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if let Some((canonical, _)) = self.params.get_key_value(name) {
            return Some(canonical.as_str());
        }
        self.aliases.get(name).map(String::as_str)
    }

    /// The CSS colour keywords imgix accepts, lowercase.
    pub fn color_keywords(&self) -> &[String] {
        &self.color_keywords
    }

    /// The font names imgix lists for `txt-font`.
    pub fn fonts(&self) -> &[String] {
        &self.fonts
    }
}

// === impl ParamSpec ===

impl ParamSpec {
    fn parse(name: &str, body: &Json) -> Result<ParamSpec, String> {
        let expects = body["expects"]
            .as_array()
            .ok_or_else(|| format!("{name}: no expects"))?
            .iter()
            .map(|e| Expectation::parse(name, e))
            .collect::<Result<_, _>>()?;
        let strings = |key: &str| -> Vec<String> {
            body[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(ParamSpec {
            name: name.to_owned(),
            category: body["category"].as_str().unwrap_or_default().to_owned(),
            aliases: strings("aliases"),
            expects,
            default: body.get("default").cloned().filter(|d| !d.is_null()),
            depends: strings("depends"),
            base64_allowed: !body["disallow_base64"].as_bool().unwrap_or(false),
        })
    }

    /// The first expectation of `kind`.
    pub fn expectation(&self, kind: ValueKind) -> Option<&Expectation> {
        self.expects.iter().find(|e| e.kind == kind)
    }

    /// The bounds values of `kind` are held to: the strict range, or the
    /// suggested one where there is no strict range.
    pub fn range(&self, kind: ValueKind) -> Option<Range> {
        self.expectation(kind).and_then(Expectation::range)
    }

    /// The documented default as a number (the parameter's own default, or
    /// its first expectation's).
    pub fn default_number(&self) -> Option<f64> {
        let from_expectation = || self.expects.iter().find_map(|e| e.default.as_ref());
        let default = self.default.as_ref().or_else(from_expectation)?;
        match default {
            Json::Number(n) => n.as_f64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The documented default as a string.
    pub fn default_string(&self) -> Option<String> {
        match self.default.as_ref()? {
            Json::String(s) => Some(s.clone()),
            Json::Bool(b) => Some(b.to_string()),
            Json::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

// === impl Expectation ===

impl Expectation {
    fn parse(param: &str, body: &Json) -> Result<Expectation, String> {
        let kind = match body["type"].as_str() {
            Some("integer") => ValueKind::Integer,
            Some("number") => ValueKind::Number,
            Some("unit_scalar") => ValueKind::UnitScalar,
            Some("ratio") => ValueKind::Ratio,
            Some("boolean") => ValueKind::Boolean,
            Some("string") => ValueKind::String,
            Some("list") => ValueKind::List,
            Some("hex_color") => ValueKind::HexColor,
            Some("color_keyword") => ValueKind::ColorKeyword,
            Some("font") => ValueKind::Font,
            Some("url") => ValueKind::Url,
            Some("path") => ValueKind::Path,
            Some("timestamp") => ValueKind::Timestamp,
            Some("interval") => ValueKind::Interval,
            other => return Err(format!("{param}: unknown value type {other:?}")),
        };
        // A few entries write their bounds inline (`"min": 0, "max": 1`).
        let inline = Range::parse(body).filter(|_| body.get("strict_range").is_none());
        let strict_range = body.get("strict_range").and_then(Range::parse).or(inline);
        let mut positions = Vec::new();
        while let Some(items) = body.get(positions.len().to_string()) {
            let items = items
                .as_array()
                .ok_or_else(|| format!("{param}: list position is not an array"))?
                .iter()
                .map(|e| Expectation::parse(param, e))
                .collect::<Result<_, _>>()?;
            positions.push(items);
        }
        let possible_values = body["possible_values"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(|v| match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Expectation {
            kind,
            strict_range,
            suggested_range: body.get("suggested_range").and_then(Range::parse),
            possible_values,
            default: body.get("default").cloned(),
            positions,
        })
    }

    /// The strict range, or the suggested one where there is no strict range.
    pub fn range(&self) -> Option<Range> {
        self.strict_range.or(self.suggested_range)
    }
}

// === impl Range ===

impl Range {
    fn parse(body: &Json) -> Option<Range> {
        let min = body.get("min").and_then(Json::as_f64);
        let max = body.get("max").and_then(Json::as_f64);
        (min.is_some() || max.is_some()).then_some(Range { min, max })
    }

    /// `value` moved into the range.
    pub fn clamp(&self, value: f64) -> f64 {
        let value = self.min.map_or(value, |min| value.max(min));
        self.max.map_or(value, |max| value.min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored spec parses: 179 parameters, its version, keywords and fonts.
    #[test]
    fn vendored_spec_parses() {
        let spec = Spec::get();
        assert_eq!(spec.version, "11.35.0");
        assert_eq!(spec.params().count(), 179);
        assert!(spec.color_keywords().iter().any(|k| k == "rebeccapurple"));
        assert!(spec.fonts().iter().any(|f| f == "Verdana-Bold"));
    }

    /// Aliases from the global table and from each parameter resolve to the canonical name.
    #[test]
    fn aliases_resolve() {
        let spec = Spec::get();
        for (alias, name) in [
            ("f", "fit"),
            ("or", "orient"),
            ("width", "w"),
            ("mono", "monochrome"),
            ("inv", "invert"),
            ("txtclr", "txt-color"),
            ("m", "mark"),
            ("fit", "fit"),
        ] {
            assert_eq!(spec.canonical_name(alias), Some(name), "{alias}");
        }
        assert_eq!(spec.canonical_name("nope"), None);
    }

    /// Ranges, defaults and base64 permission come from the spec.
    #[test]
    fn ranges_defaults_and_base64() {
        let spec = Spec::get();
        let w = spec.param("w").unwrap();
        assert_eq!(
            w.range(ValueKind::Integer),
            Some(Range {
                min: Some(2.0),
                max: Some(8192.0)
            })
        );
        // dpr has both: the strict range wins.
        assert_eq!(
            spec.param("dpr").unwrap().range(ValueKind::Number),
            Some(Range {
                min: Some(0.0),
                max: Some(5.0)
            })
        );
        assert_eq!(spec.param("q").unwrap().default_number(), Some(75.0));
        assert_eq!(spec.param("fp-x").unwrap().default_number(), Some(0.5));
        assert_eq!(
            spec.param("fit").unwrap().default_string().as_deref(),
            Some("clip")
        );
        assert!(!spec.param("auto").unwrap().base64_allowed);
        assert!(!spec.param("ch").unwrap().base64_allowed);
        assert!(spec.param("txt").unwrap().base64_allowed);
        let rect = spec.param("rect").unwrap();
        assert_eq!(rect.expects[0].positions.len(), 4);
        let threshold = spec.param("bg-remove-transparency-threshold").unwrap();
        assert_eq!(
            threshold.range(ValueKind::UnitScalar),
            Some(Range {
                min: Some(0.0),
                max: Some(1.0)
            })
        );
    }

    /// Clamping respects open bounds.
    #[test]
    fn range_clamps() {
        let both = Range {
            min: Some(2.0),
            max: Some(10.0),
        };
        assert_eq!(both.clamp(1.0), 2.0);
        assert_eq!(both.clamp(11.0), 10.0);
        assert_eq!(both.clamp(5.0), 5.0);
        let lower = Range {
            min: Some(0.0),
            max: None,
        };
        assert_eq!(lower.clamp(-3.0), 0.0);
        assert_eq!(lower.clamp(1e9), 1e9);
    }
}
