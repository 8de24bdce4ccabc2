//! The rules for the Source fields that belong to no group (its name and
//! default params), and the table the groups' rule tests share.
//!
//! Every field rule, here and in the groups of [`crate::source`], takes the
//! value as a caller sent it and returns the value to store (sometimes
//! normalised, e.g. the path prefix or the endpoint) or
//! [`RegistryError::InvalidField`] naming the field. Messages describe the
//! rule and never repeat the value, so no secret can leak through them.

use imgmesh_imgix_params::ParamError;

use crate::error::RegistryError;

/// Prefix of every Source id; names may not start with it, so an id or name
/// argument is never ambiguous.
pub(crate) const SOURCE_ID_PREFIX: &str = "src_";

const MAX_NAME_LEN: usize = 64;
const MAX_DEFAULT_PARAMS_LEN: usize = 2048;

/// `name`: 1 to 64 of `a-z 0-9 - _`, not starting with `src_`.
pub(crate) fn name(value: &str) -> Result<String, RegistryError> {
    let field = "name";
    if value.is_empty() || value.len() > MAX_NAME_LEN {
        return Err(RegistryError::invalid(field, "must be 1 to 64 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(RegistryError::invalid(
            field,
            "may contain only lowercase letters, digits, '-' and '_'",
        ));
    }
    if value.starts_with(SOURCE_ID_PREFIX) {
        return Err(RegistryError::invalid(
            field,
            "must not start with 'src_', which is reserved for source ids",
        ));
    }
    Ok(value.to_owned())
}

/// `default_params`: empty, or up to 2048 characters of `key=value` pairs
/// joined by `&` (a leading `?` is dropped), printable ASCII without `#`,
/// every key an imgix parameter (name, alias or base64 form) with a value
/// the parameter spec allows (checked by `imgmesh-imgix-params`).
pub(crate) fn default_params(value: &str) -> Result<String, RegistryError> {
    let value = value.strip_prefix('?').unwrap_or(value);
    if value.is_empty() {
        return Ok(String::new());
    }
    let invalid = |problem: &str| Err(RegistryError::invalid("default_params", problem));
    if value.len() > MAX_DEFAULT_PARAMS_LEN {
        return invalid("must be at most 2048 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return invalid("must be printable ascii without spaces or '#'");
    }
    for pair in value.split('&') {
        match pair.split_once('=') {
            Some((key, val)) if !key.is_empty() && !val.is_empty() => {}
            _ => return invalid("must be key=value pairs joined by '&', e.g. auto=format&q=75"),
        }
    }
    imgmesh_imgix_params::validate_default_params(value).map_err(|error| {
        let problem = match error {
            ParamError::UnknownParameter { name } => format!("unknown parameter {name:?}"),
            other => other.to_string(),
        };
        RegistryError::invalid("default_params", problem)
    })?;
    Ok(value.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A rule under test.
    pub(crate) type Check = fn(&str) -> Result<String, RegistryError>;

    /// Asserts `check` accepts every `good` value unchanged and refuses every
    /// `bad` one with an error naming `field`.
    pub(crate) fn table(field: &str, check: Check, good: &[&str], bad: &[&str]) {
        for value in good {
            assert_eq!(
                check(value).as_deref().ok(),
                Some(*value),
                "{field}: {value:?}"
            );
        }
        for value in bad {
            match check(value) {
                Err(RegistryError::InvalidField { field: f, .. }) => {
                    assert_eq!(f, field, "{value:?}");
                }
                other => panic!("{field}: {value:?} accepted as {other:?}"),
            }
        }
    }

    /// Names are 1..64 of [a-z0-9-_] and never look like ids.
    #[test]
    fn name_rules() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        table(
            "name",
            name,
            &[
                "demo",
                "a",
                "shop-eu_2",
                "0",
                long.as_str(),
                "src-x",
                "source_1",
            ],
            &[
                "",
                too_long.as_str(),
                "Demo",
                "de mo",
                "dé",
                "a.b",
                "a/b",
                "src_0123456789ab",
            ],
        );
    }

    /// Default params are k=v pairs of printable ASCII, at most 2048 long.
    #[test]
    fn default_params_rules() {
        let long = format!("q={}", "7".repeat(2046));
        let too_long = format!("q={}", "7".repeat(2047));
        table(
            "default_params",
            default_params,
            &[
                "",
                "auto=format",
                "auto=format&q=75",
                "fit=crop&crop=faces,edges",
                long.as_str(),
            ],
            &[
                "auto",
                "=format",
                "q=",
                "a=1&&b=2",
                "a=1&",
                "q=7 5",
                "q=7#x",
                "txt=é",
                "a=1\n",
                too_long.as_str(),
            ],
        );
        assert_eq!(default_params("?auto=format").unwrap(), "auto=format");
    }

    /// Default params may only name imgix parameters (names, aliases,
    /// base64 forms) with values the spec allows; the error names the
    /// unknown parameter or the bad value.
    #[test]
    fn default_params_know_the_imgix_spec() {
        for good in [
            "w=100&f=crop",
            "txt64=aGVsbG8",
            "or=90&width=3",
            "bm=normal",
        ] {
            assert_eq!(default_params(good).unwrap(), good);
        }
        for (bad, unknown) in [
            ("x=1", "x"),
            ("w=100&frobnicate=2", "frobnicate"),
            ("auto64=Zm9ybWF0", "auto64"),
        ] {
            match default_params(bad) {
                Err(RegistryError::InvalidField {
                    field: "default_params",
                    problem,
                }) => assert_eq!(problem, format!("unknown parameter \"{unknown}\"")),
                other => panic!("{bad}: {other:?}"),
            }
        }
        for (bad, problem) in [
            ("fit=sideways", "fit: unsupported value \"sideways\""),
            ("w=abc", "w: unsupported value \"abc\""),
        ] {
            match default_params(bad) {
                Err(RegistryError::InvalidField {
                    field: "default_params",
                    problem: p,
                }) => assert_eq!(p, problem),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
