//! Collecting a query string into canonical parameter names and raw values.
//!
//! - The Source's default params are read first and the URL's query second,
//!   so the URL overrides the Source.
//! - Names are folded to the spec's canonical name (`f` → `fit`,
//!   `or` → `orient`); names the spec does not know are ignored.
//! - `<name>64` carries a base64url value (RFC 4648 §5, padding optional)
//!   for every parameter except `auto` and `ch`; one that does not decode to
//!   UTF-8 text is the only request-time error (400, as at imgix).
//! - A repeated parameter keeps its last value, across aliases and base64
//!   variants (`w=100&width=200` means `w=200`), except `auto`, whose values
//!   within one query string add up (`auto=format&auto=compress`); the URL's
//!   `auto`, if any, replaces the Source's.
//! - An empty value (`w=`) unsets the parameter, clearing a Source default.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ParamError, shortened};
use crate::spec::Spec;

/// Canonical parameter name → raw (percent-decoded, base64-decoded) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawParams {
    values: BTreeMap<&'static str, String>,
}

/// How unknown parameters are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Ignored, as imgix does for a request.
    Lenient,
    /// Reported, for validating a Source's default params.
    Strict,
}

// === impl RawParams ===

impl RawParams {
    /// Collects `default_params` and then `query` (neither with a leading
    /// `?`, though one is tolerated on the defaults).
    pub(crate) fn collect(
        default_params: &str,
        query: &str,
        strictness: Strictness,
    ) -> Result<RawParams, ParamError> {
        let mut params = RawParams::default();
        params.read(default_params.trim_start_matches('?'), strictness)?;
        params.read(query, strictness)?;
        Ok(params)
    }

    fn read(&mut self, query: &str, strictness: Strictness) -> Result<(), ParamError> {
        let spec = Spec::get();
        let mut auto: Option<Vec<String>> = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (canonical, value) = if let Some(canonical) = spec.canonical_name(&name) {
                (static_name(spec, canonical), value.into_owned())
            } else if let Some(decoded) = decode_base64_variant(spec, &name, &value)? {
                decoded
            } else {
                if strictness == Strictness::Strict && !name.is_empty() {
                    return Err(ParamError::UnknownParameter {
                        name: shortened(&name),
                    });
                }
                continue;
            };
            if canonical == "auto" {
                let values = auto.get_or_insert_with(Vec::new);
                if value.is_empty() {
                    values.clear();
                } else {
                    values.push(value);
                }
                continue;
            }
            if value.is_empty() {
                self.values.remove(canonical);
            } else {
                self.values.insert(canonical, value);
            }
        }
        if let Some(values) = auto {
            if values.is_empty() {
                self.values.remove("auto");
            } else {
                self.values.insert("auto", values.join(","));
            }
        }
        Ok(())
    }

    /// The raw value of the canonical parameter `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every parameter, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
    }
}

/// The spec's own `'static` spelling of the canonical name for `name`.
fn static_name(spec: &'static Spec, name: &str) -> &'static str {
    let canonical = spec.canonical_name(name).unwrap_or(name);
    spec.param(canonical)
        .map(|param| param.name.as_str())
        .expect("canonical names come from the spec")
}

/// Decodes `<name>64=<base64url>` into the canonical name and the decoded
/// value; `None` when `name` is not such a variant of a known parameter.
fn decode_base64_variant(
    spec: &'static Spec,
    name: &str,
    value: &str,
) -> Result<Option<(&'static str, String)>, ParamError> {
    let Some(base) = name.strip_suffix("64") else {
        return Ok(None);
    };
    let Some(canonical) = spec.canonical_name(base) else {
        return Ok(None);
    };
    let canonical = static_name(spec, canonical);
    if !spec.param(canonical).is_some_and(|p| p.base64_allowed) {
        return Ok(None);
    }
    let invalid = || ParamError::InvalidBase64 {
        param: shortened(name),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    Ok(Some((canonical, text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(defaults: &str, query: &str) -> Vec<(&'static str, String)> {
        RawParams::collect(defaults, query, Strictness::Lenient)
            .unwrap()
            .iter()
            .map(|(name, value)| (name, value.to_owned()))
            .collect()
    }

    fn pairs(items: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        items.iter().map(|(n, v)| (*n, (*v).to_owned())).collect()
    }

    /// Aliases fold to canonical names and the last value wins.
    #[test]
    fn aliases_fold_and_last_wins() {
        assert_eq!(
            collect("", "f=crop&width=300&or=6"),
            pairs(&[("fit", "crop"), ("orient", "6"), ("w", "300")])
        );
        assert_eq!(collect("", "w=100&width=200"), pairs(&[("w", "200")]));
        assert_eq!(collect("", "width=200&w=100"), pairs(&[("w", "100")]));
    }

    /// `<name>64` values are base64url-decoded, with or without padding, for aliases too.
    #[test]
    fn base64_variants_decode() {
        assert_eq!(
            collect("", "txt64=SGVsbG8sIFdvcmxkIQ"),
            pairs(&[("txt", "Hello, World!")])
        );
        assert_eq!(collect("", "t64=SGk="), pairs(&[("txt", "Hi")]));
        assert_eq!(collect("", "w64=NDAw"), pairs(&[("w", "400")]));
        // URL-safe alphabet: `-` and `_`.
        assert_eq!(collect("", "txt64=Pz8-"), pairs(&[("txt", "??>")]));
        // A later plain value overrides an earlier base64 one.
        assert_eq!(collect("", "w64=NDAw&w=10"), pairs(&[("w", "10")]));
    }

    /// Undecodable base64 is a 400 naming the parameter, even via an alias.
    #[test]
    fn undecodable_base64_is_an_error() {
        for (query, param) in [
            ("txt64=@@@", "txt64"),
            ("t64=%FF", "t64"),
            ("w64=A", "w64"),
            ("txt64=Pz8%2B", "txt64"),
            // Valid base64 of invalid UTF-8.
            ("txt64=_w", "txt64"),
        ] {
            assert_eq!(
                RawParams::collect("", query, Strictness::Lenient),
                Err(ParamError::InvalidBase64 {
                    param: param.into()
                }),
                "{query}"
            );
        }
    }

    /// `auto` and `ch` have no base64 variant: `auto64` is just unknown.
    #[test]
    fn auto_and_ch_have_no_base64_variant() {
        assert_eq!(collect("", "auto64=Zm9ybWF0&ch64=@@"), pairs(&[]));
    }

    /// `auto` values add up within one query; the URL's replace the Source's.
    #[test]
    fn auto_values_accumulate() {
        assert_eq!(
            collect("", "auto=compress&auto=format,enhance"),
            pairs(&[("auto", "compress,format,enhance")])
        );
        assert_eq!(
            collect("auto=compress", "w=1"),
            pairs(&[("auto", "compress"), ("w", "1")])
        );
        assert_eq!(
            collect("auto=compress", "auto=format"),
            pairs(&[("auto", "format")])
        );
        assert_eq!(collect("auto=compress", "auto="), pairs(&[]));
    }

    /// The URL overrides the Source's defaults; an empty value clears one.
    #[test]
    fn url_overrides_defaults() {
        assert_eq!(
            collect("?w=500&fm=webp", "w=200"),
            pairs(&[("fm", "webp"), ("w", "200")])
        );
        assert_eq!(collect("w=500", "w="), pairs(&[]));
    }

    /// Unknown names are ignored leniently and reported strictly.
    #[test]
    fn unknown_names() {
        assert_eq!(collect("", "utm_source=x&W=5&s=abc&&=1"), pairs(&[]));
        assert_eq!(
            RawParams::collect("wdth=5", "", Strictness::Strict),
            Err(ParamError::UnknownParameter {
                name: "wdth".into()
            })
        );
    }

    /// Percent-encoding and `+` are decoded before anything else.
    #[test]
    fn percent_decoding() {
        assert_eq!(
            collect("", "%77=%34%30%30&txt=a+b%20c"),
            pairs(&[("txt", "a b c"), ("w", "400")])
        );
    }
}
