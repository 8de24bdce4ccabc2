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

    /// The render would decode more frames than the frame limit
    /// (`--max-frames`), as the header says; refused before decoding.
    #[error("image has {frames} frames, more than the limit of {limit}")]
    TooManyFrames {
        /// Frames the header declares.
        frames: u32,
        /// The limit.
        limit: u32,
    },

    /// A JPEG has more scans than the renderer decodes (each scan is
    /// another pass over every block); refused before decoding.
    #[error("image has more scans than the limit of {limit}")]
    TooManyScans {
        /// The limit.
        limit: usize,
    },

    /// The render ran past its time budget (`--max-render-ms`) and was
    /// stopped: the input is too expensive to render here.
    #[error("image took longer than the limit of {limit_ms} ms to render")]
    RenderTooSlow {
        /// The budget in milliseconds.
        limit_ms: u64,
    },

    /// The bytes are not one of the formats imgmesh reads.
    #[error("input is not a supported image format (jpeg, png, webp, gif, heif or avif)")]
    UnsupportedInput,

    /// Decoding the original would need more memory than the renderer's
    /// whole render memory budget, so it can never be rendered here.
    #[error("image needs about {estimated} bytes to decode, more than the budget of {budget}")]
    DecodeTooLarge {
        /// The estimated bytes (see `render_pool::estimate_render_bytes`).
        estimated: u64,
        /// The whole budget.
        budget: u64,
    },

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

    /// The renderer has no room to run the request right now (every render
    /// slot or queue place taken); the caller may retry soon.
    #[error("the renderer is overloaded ({reason}), retry shortly")]
    Overloaded {
        /// What ran out, e.g. `render queue full`.
        reason: &'static str,
    },

    /// The render needs more of the memory budget than is left now (other
    /// large renders hold it); the caller may retry soon. Unlike
    /// [`RenderError::Overloaded`] it says nothing of how many renders the
    /// renderer takes ([`imgmesh_errors::SHORTAGE_KEY`]).
    #[error("the renderer is overloaded (render memory budget spent), retry shortly")]
    MemorySpent,

    /// The request's deadline passed, or was too close to finish in
    /// (`render_pool::MIN_REMAINING`), before its render could start.
    #[error("the deadline left no time to start the render")]
    DeadlineExceeded,

    /// Every caller of a shared run went away before its render started,
    /// so it was not started. No caller is left to see this error.
    #[error("every caller left before the render started")]
    Abandoned,

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
            RenderError::ObjectTooLarge { .. }
            | RenderError::TooManyPixels { .. }
            | RenderError::DecodeTooLarge { .. } => ErrorCode::InputTooLarge,
            RenderError::UnsupportedInput => ErrorCode::UnsupportedInput,
            RenderError::CorruptInput => ErrorCode::CorruptInput,
            RenderError::Fetch { code, .. } => *code,
            RenderError::CacheUnavailable => ErrorCode::Unavailable,
            RenderError::Overloaded { .. } | RenderError::MemorySpent => ErrorCode::Overloaded,
            // Callers leave when their own deadline passes.
            RenderError::DeadlineExceeded | RenderError::Abandoned => ErrorCode::OriginTimeout,
            // Both say "this input is too expensive to render", like the
            // pixel limit: a retry of the same input fails the same way.
            RenderError::TooManyFrames { .. }
            | RenderError::TooManyScans { .. }
            | RenderError::RenderTooSlow { .. } => ErrorCode::InputTooLarge,
            RenderError::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// The dynamic values the message shows, as `ErrorInfo` metadata.
    fn dynamic_values(&self) -> Vec<(&'static str, String)> {
        match self {
            RenderError::ObjectTooLarge { limit } => vec![("limit_bytes", limit.to_string())],
            RenderError::TooManyPixels { pixels, limit } => vec![
                ("pixels", pixels.to_string()),
                ("limit_pixels", limit.to_string()),
            ],
            RenderError::TooManyFrames { frames, limit } => vec![
                ("frames", frames.to_string()),
                ("limit_frames", limit.to_string()),
            ],
            RenderError::TooManyScans { limit } => vec![("limit_scans", limit.to_string())],
            RenderError::RenderTooSlow { limit_ms } => vec![("limit_ms", limit_ms.to_string())],
            RenderError::DecodeTooLarge { estimated, budget } => vec![
                ("estimated_bytes", estimated.to_string()),
                ("budget_bytes", budget.to_string()),
            ],
            RenderError::Overloaded { reason } => vec![("cause", (*reason).to_owned())],
            RenderError::MemorySpent => vec![
                ("cause", "render memory budget spent".to_owned()),
                (
                    imgmesh_errors::SHORTAGE_KEY,
                    imgmesh_errors::MEMORY_SHORTAGE.to_owned(),
                ),
            ],
            RenderError::Internal { context } => vec![("context", (*context).to_owned())],
            RenderError::InvalidRequest { .. }
            | RenderError::UnsupportedInput
            | RenderError::CorruptInput
            | RenderError::Fetch { .. }
            | RenderError::CacheUnavailable
            | RenderError::DeadlineExceeded
            | RenderError::Abandoned => Vec::new(),
        }
    }
}

/// How long an overloaded renderer asks callers to wait before retrying,
/// in seconds (the `retry-after` gRPC metadata of an OVERLOADED status).
pub const OVERLOADED_RETRY_AFTER_SECONDS: u32 = 1;

impl From<RenderError> for tonic::Status {
    fn from(error: RenderError) -> tonic::Status {
        let mut status = match &error {
            RenderError::InvalidRequest { field, problem } => {
                imgmesh_errors::invalid_field(field, problem)
            }
            _ => error
                .code()
                .status_with(error.to_string(), error.dynamic_values()),
        };
        if matches!(
            error,
            RenderError::Overloaded { .. } | RenderError::MemorySpent
        ) {
            status.metadata_mut().insert(
                "retry-after",
                tonic::metadata::MetadataValue::from(OVERLOADED_RETRY_AFTER_SECONDS),
            );
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt as _;

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
                RenderError::DecodeTooLarge {
                    estimated: 200,
                    budget: 100,
                },
                ErrorCode::InputTooLarge,
                "image needs about 200 bytes to decode, more than the budget of 100",
            ),
            (
                RenderError::Overloaded {
                    reason: "render queue full",
                },
                ErrorCode::Overloaded,
                "the renderer is overloaded (render queue full), retry shortly",
            ),
            (
                RenderError::DeadlineExceeded,
                ErrorCode::OriginTimeout,
                "the deadline left no time to start the render",
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

    /// An OVERLOADED status tells the caller when to retry; other errors do not.
    #[test]
    fn overloaded_carries_retry_after() {
        for error in [
            RenderError::Overloaded {
                reason: "render queue full",
            },
            RenderError::MemorySpent,
        ] {
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            let retry_after = status.metadata().get("retry-after").unwrap();
            assert_eq!(retry_after.to_str().unwrap(), "1");
        }
        let status = tonic::Status::from(RenderError::CorruptInput);
        assert!(status.metadata().get("retry-after").is_none());
    }

    /// A render refused for memory says so in its metadata, so that a
    /// caller's concurrency limit does not learn from it; a refusal for
    /// room to run does not.
    #[test]
    fn memory_refusals_name_their_shortage() {
        let shortage = |error: RenderError| {
            let status = tonic::Status::from(error);
            let info = status.get_details_error_info().unwrap();
            assert_eq!(info.reason, "OVERLOADED");
            info.metadata.get(imgmesh_errors::SHORTAGE_KEY).cloned()
        };
        assert_eq!(
            shortage(RenderError::MemorySpent).as_deref(),
            Some(imgmesh_errors::MEMORY_SHORTAGE)
        );
        let queue_full = RenderError::Overloaded {
            reason: "render queue full",
        };
        assert_eq!(shortage(queue_full), None);
    }

    /// The values a message shows travel as `ErrorInfo` metadata, and a
    /// refused request field as a field violation.
    #[test]
    fn dynamic_values_are_metadata() {
        let status = tonic::Status::from(RenderError::TooManyPixels {
            pixels: 100,
            limit: 10,
        });
        let public = imgmesh_errors::PublicError::of("renderer", &status);
        assert_eq!(public.metadata("pixels"), Some("100"));
        assert_eq!(public.metadata("limit_pixels"), Some("10"));
        let status = tonic::Status::from(RenderError::InvalidRequest {
            field: "plan.fit",
            problem: "unknown value 9".into(),
        });
        assert_eq!(status.message(), "plan.fit: unknown value 9");
        let public = imgmesh_errors::PublicError::of("renderer", &status);
        assert_eq!(public.field(), Some("plan.fit"));
    }

    /// The frame and time limits travel as INPUT_TOO_LARGE with their limits.
    #[test]
    fn expensive_inputs_are_input_too_large() {
        let cases = [
            (
                RenderError::TooManyFrames {
                    frames: 3000,
                    limit: 500,
                },
                "image has 3000 frames, more than the limit of 500",
            ),
            (
                RenderError::RenderTooSlow { limit_ms: 10_000 },
                "image took longer than the limit of 10000 ms to render",
            ),
        ];
        for (error, message) in cases {
            let status = tonic::Status::from(error);
            assert_eq!(ErrorCode::of_status(&status), ErrorCode::InputTooLarge);
            assert_eq!(status.message(), message);
        }
    }
}
