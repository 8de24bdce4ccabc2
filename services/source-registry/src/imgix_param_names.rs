//! The names imgix's Rendering API accepts, read from the vendored
//! parameter spec (`shared/imgix-params/imgix-url-params.json`), so a
//! Source's default params can be checked before they reach a render.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The spec as vendored in the repository (imgix-url-params).
const SPEC_JSON: &str = include_str!("../../../shared/imgix-params/imgix-url-params.json");

/// Parameters that have no base64 (`<name>64`) form.
const WITHOUT_BASE64_FORM: [&str; 2] = ["auto", "ch"];

/// Every parameter name and alias in the spec.
static NAMES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let spec: serde_json::Value =
        serde_json::from_str(SPEC_JSON).expect("the vendored imgix parameter spec is valid json");
    let mut names = HashSet::new();
    for section in ["parameters", "aliases"] {
        if let Some(entries) = spec[section].as_object() {
            names.extend(entries.keys().cloned());
        }
    }
    names
});

/// Whether `key` is an imgix parameter: a name, an alias, or the base64
/// form `<name>64` of one (which `auto` and `ch` do not have).
pub(crate) fn is_known(key: &str) -> bool {
    if NAMES.contains(key) {
        return true;
    }
    key.strip_suffix("64")
        .is_some_and(|base| NAMES.contains(base) && !WITHOUT_BASE64_FORM.contains(&base))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec lists imgix's 179 parameters, and aliases are loaded too.
    #[test]
    fn spec_is_loaded() {
        assert!(NAMES.len() > 179, "{}", NAMES.len());
    }

    /// Names, aliases and base64 forms are known; anything else is not.
    #[test]
    fn known_names() {
        for key in [
            "w",
            "h",
            "fit",
            "f",
            "or",
            "auto",
            "txt64",
            "w64",
            "blend-mode",
            "bm",
        ] {
            assert!(is_known(key), "{key}");
        }
        for key in ["", "x", "width2", "auto64", "ch64", "64", "W", "fit "] {
            assert!(!is_known(key), "{key}");
        }
    }
}
