//! Why a command failed, and how a failed gRPC call is told apart: a
//! transport that reached nobody (the operator's own connection, so its
//! words are shown) or an answer, read by [`PublicError`] like every other
//! caller of an imgmesh tier reads one.

use imgmesh_errors::{Answer, PublicError};

use crate::url_signing::SignError;

/// Why a command failed; its `Display` is the one line printed after
/// `error: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--registry-url` is not a usable URL.
    #[error("invalid --registry-url {url:?}: {reason}")]
    RegistryUrl {
        /// The URL as given.
        url: String,
        /// Why it is unusable.
        reason: String,
    },

    /// The TLS flags are missing (and `--insecure-plaintext` was not
    /// given), incomplete, or name unusable files.
    #[error("{0}")]
    Transport(String),

    /// The registry could not be reached at all.
    #[error("cannot reach the registry at {url}: {message}")]
    Unreachable {
        /// The registry URL.
        url: String,
        /// The transport's description of the failure.
        message: String,
    },

    /// The registry answered with an error, shown as [`PublicError`] reads
    /// it: an imgmesh message as is (e.g. `subdomain: must be a dns
    /// label…`), anything else as a generic one.
    #[error("{0}")]
    Registry(PublicError),

    /// `--renderer-url` is not a usable URL, or the renderer cannot be reached.
    #[error("cannot reach the renderer at {url}: {message}")]
    RendererUnreachable {
        /// The renderer URL.
        url: String,
        /// Why.
        message: String,
    },

    /// The renderer answered with an error, shown as [`PublicError`] reads
    /// it.
    #[error("{0}")]
    Renderer(PublicError),

    /// `imgmesh purge --path` names no asset.
    #[error("--path {0:?} names no asset")]
    PurgePath(String),

    /// The registry answered without the Source the call returns.
    #[error("the registry answered without a source")]
    EmptyResponse,

    /// `imgmesh sign` could not sign the URL.
    #[error("{0}")]
    Sign(#[from] SignError),

    /// `imgmesh upload` could not read the file.
    #[error("cannot read {path}: {reason}")]
    File {
        /// The file as given.
        path: String,
        /// Why it could not be read.
        reason: String,
    },

    /// `imgmesh dev-certs` could not write its files.
    #[error("cannot write certificates: {0}")]
    DevCerts(String),

    /// `sources deploy --wait` saw the deploy fail.
    #[error("deploy of {name} failed: {reason}")]
    DeployFailed {
        /// The Source's name.
        name: String,
        /// The registry's reason, e.g. `missing s3:ListBucket`.
        reason: String,
    },

    /// `sources deploy --wait` saw the deploy superseded by an edit.
    #[error("deploy of {name} was superseded by an edit: deploy again")]
    DeploySuperseded {
        /// The Source's name.
        name: String,
    },

    /// `sources deploy --wait` gave up waiting.
    #[error("deploy of {name} still running after {seconds} s")]
    DeployTimeout {
        /// The Source's name.
        name: String,
        /// How long it waited.
        seconds: u64,
    },
}

// === impl CliError ===

impl CliError {
    /// Classifies a failed registry call at `url`.
    pub(crate) fn from_status(url: &str, status: tonic::Status) -> CliError {
        match PublicError::of("registry", &status) {
            public if public.answer() == Answer::Unreachable => CliError::Unreachable {
                url: url.to_owned(),
                message: transport_message(&status),
            },
            public => CliError::Registry(public),
        }
    }

    /// Classifies a failed renderer call at `url`.
    pub(crate) fn from_renderer_status(url: &str, status: tonic::Status) -> CliError {
        match PublicError::of("renderer", &status) {
            public if public.answer() == Answer::Unreachable => CliError::RendererUnreachable {
                url: url.to_owned(),
                message: transport_message(&status),
            },
            public => CliError::Renderer(public),
        }
    }
}

/// What the transport said about a connection that reached nobody, or its
/// code's description when it said nothing.
fn transport_message(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        status.code().description().to_owned()
    } else {
        status.message().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use imgmesh_errors::ErrorCode;

    use super::*;

    /// A transport failure is "cannot reach" the URL, in the transport's
    /// words, or its code's description when it has none.
    #[test]
    fn transport_failures_are_unreachable() {
        let error = CliError::from_status(
            "http://127.0.0.1:1",
            tonic::Status::unavailable("tcp connect error"),
        );
        assert!(matches!(error, CliError::Unreachable { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "cannot reach the registry at http://127.0.0.1:1: tcp connect error"
        );
        let error = CliError::from_renderer_status("http://r", tonic::Status::unavailable(""));
        assert_eq!(
            error.to_string(),
            "cannot reach the renderer at http://r: The service is currently unavailable"
        );
    }

    /// An imgmesh answer is shown as it is; a foreign one by a generic
    /// message naming the tier, never its own text.
    #[test]
    fn answers_are_read_as_public_errors() {
        let refused = imgmesh_errors::invalid_field("subdomain", "must be a dns label");
        let error = CliError::from_status("http://x", refused);
        assert!(
            matches!(&error, CliError::Registry(public) if public.field() == Some("subdomain"))
        );
        assert_eq!(error.to_string(), "subdomain: must be a dns label");
        let error = CliError::from_renderer_status(
            "http://r",
            ErrorCode::Unavailable.status("redis is down"),
        );
        assert!(matches!(error, CliError::Renderer(_)), "{error:?}");
        assert_eq!(error.to_string(), "redis is down");
        let error =
            CliError::from_status("http://x", tonic::Status::internal("panicked at /src/x.rs"));
        assert_eq!(error.to_string(), "registry: internal");
    }
}
