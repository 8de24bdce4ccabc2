//! What can go wrong while rendering, and how each failure crosses the wire.
//!
//! Every message here is safe to show a public caller: libvips' own error
//! text is logged at debug where it happens and never stored in an error.

use imgmesh_errors::ErrorCode;

/// A failed render.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    /// A request field is missing or out of range.
    #[error("{field}: {problem}")]
    InvalidRequest {
        /// The field, e.g. `plan.fit`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },

    /// The original is larger than the byte limit.
    #[error("object is larger than the limit of {limit} bytes")]
    ObjectTooLarge {
        /// The limit in bytes.
        limit: u64,
    },

    /// The original's header declares more pixels (width × height × pages)
    /// than the pixel limit.
    #[error("image has {pixels} pixels, more than the limit of {limit}")]
    TooManyPixels {
        /// What the header declares.
        pixels: u64,
        /// The limit.
        limit: u64,
    },

    /// The bytes are not one of the formats imgmesh reads.
    #[error("input is not a supported image format (jpeg, png, webp, gif, heif or avif)")]
    UnsupportedInput,

    /// The bytes look like a supported format but cannot be decoded.
    #[error("image could not be decoded")]
    CorruptInput,

    /// The fetcher could not deliver the original; `message` is already safe
    /// for a public caller.
    #[error("{message}")]
    Fetch {
        /// The code the fetcher (or the transport) reported.
        code: ErrorCode,
        /// The public message.
        message: String,
    },

    /// The derivative cache could not do what was asked (a purge).
    #[error("the derivative cache is unavailable")]
    CacheUnavailable,

    /// A bug or an unexpected failure inside the renderer.
    #[error("internal error while {context}")]
    Internal {
        /// What the renderer was doing.
        context: &'static str,
    },
}

// === impl RenderError ===

impl RenderError {
    /// The code this error travels as.
    pub fn code(&self) -> ErrorCode {
        match self {
            RenderError::InvalidRequest { .. } => ErrorCode::InvalidArgument,
            RenderError::ObjectTooLarge { .. } | RenderError::TooManyPixels { .. } => {
                ErrorCode::InputTooLarge
            }
            RenderError::UnsupportedInput => ErrorCode::UnsupportedInput,
            RenderError::CorruptInput => ErrorCode::CorruptInput,
            RenderError::Fetch { code, .. } => *code,
            RenderError::CacheUnavailable => ErrorCode::Unavailable,
            RenderError::Internal { .. } => ErrorCode::Internal,
        }
    }
}

impl From<RenderError> for tonic::Status {
    fn from(error: RenderError) -> tonic::Status {
        error.code().status(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error becomes the status its ErrorCode prescribes, with its message.
    #[test]
    fn errors_map_to_their_codes() {
        let cases = [
            (
                RenderError::InvalidRequest {
                    field: "path",
                    problem: "must not be empty".into(),
                },
                ErrorCode::InvalidArgument,
                "path: must not be empty",
            ),
            (
                RenderError::ObjectTooLarge { limit: 10 },
                ErrorCode::InputTooLarge,
                "object is larger than the limit of 10 bytes",
            ),
            (
                RenderError::TooManyPixels {
                    pixels: 100,
                    limit: 10,
                },
                ErrorCode::InputTooLarge,
                "image has 100 pixels, more than the limit of 10",
            ),
            (
                RenderError::UnsupportedInput,
                ErrorCode::UnsupportedInput,
                "input is not a supported image format (jpeg, png, webp, gif, heif or avif)",
            ),
            (
                RenderError::CorruptInput,
                ErrorCode::CorruptInput,
                "image could not be decoded",
            ),
            (
                RenderError::Fetch {
                    code: ErrorCode::ObjectNotFound,
                    message: "object not found".into(),
                },
                ErrorCode::ObjectNotFound,
                "object not found",
            ),
            (
                RenderError::Internal {
                    context: "rendering",
                },
                ErrorCode::Internal,
                "internal error while rendering",
            ),
        ];
        for (error, code, message) in cases {
            let status = tonic::Status::from(error);
            assert_eq!(ErrorCode::of_status(&status), code);
            assert_eq!(status.message(), message);
        }
    }
}
