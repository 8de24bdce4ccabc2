//! Why a query cannot become a plan.
//!
//! At request time imgmesh answers like imgix: a value it cannot use is
//! ignored (the parameter's default applies) and only an undecodable
//! `<name>64` value is refused, with 400. [`crate::validate_default_params`]
//! is stricter, so an operator learns about a typo when saving a Source
//! rather than from renders that silently ignore it.

/// A query (or plan) that cannot be used; the `Display` text is the public
/// 400 body and names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A `<name>64` value is not base64url (RFC 4648 §5) of UTF-8 text.
    #[error("{param}: value is not valid base64url")]
    InvalidBase64 {
        /// The parameter as written, e.g. `txt64`.
        param: String,
    },
    /// A value matches none of the parameter's types (strict validation only).
    #[error("{param}: unsupported value {value:?}")]
    InvalidValue {
        /// Canonical parameter name.
        param: String,
        /// The value, shortened.
        value: String,
    },
    /// A parameter the spec does not know (strict validation only).
    #[error("{name}: unknown parameter")]
    UnknownParameter {
        /// The name as written, shortened.
        name: String,
    },
    /// A plan field holds a value no plan can (an unknown enum number).
    #[error("plan.{field}: {problem}")]
    InvalidPlan {
        /// The field, e.g. `fit`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Longest user text echoed back in an error message.
const MAX_ECHOED: usize = 64;

/// `text` cut to [`MAX_ECHOED`] characters, marked with `…` when cut.
pub(crate) fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHOED) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages name the parameter and shorten long values.
    #[test]
    fn messages_name_the_parameter() {
        assert_eq!(
            ParamError::InvalidBase64 {
                param: "txt64".into()
            }
            .to_string(),
            "txt64: value is not valid base64url"
        );
        assert_eq!(
            ParamError::InvalidValue {
                param: "fit".into(),
                value: "cover".into()
            }
            .to_string(),
            r#"fit: unsupported value "cover""#
        );
        assert_eq!(shortened(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
        assert_eq!(shortened("short"), "short");
    }
}
