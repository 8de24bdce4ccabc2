//! What can go wrong inside the source registry, and how each failure looks
//! to a gRPC caller.
//!
//! [`RegistryError`] is the one error type of the library; its single
//! `From<RegistryError> for tonic::Status` is the only place that decides
//! which [`ErrorCode`] and message a caller sees, and which structure comes
//! with it: a refused field is a `BadRequest` field violation, and every
//! value a message shows is `ErrorInfo` metadata too (`source`, `field`,
//! `limit_bytes`), so no caller parses a message. Database and crypto
//! details are logged here and replaced by a generic message on the wire.

use imgmesh_errors::{ErrorCode, FIELD_KEY};

use crate::credentials_crypto::CryptoError;

/// Everything that can go wrong in the source registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A request field breaks its rule; `problem` never contains a secret.
    #[error("{field}: {problem}")]
    InvalidField {
        /// The field's name as the API spells it, e.g. `subdomain`.
        field: &'static str,
        /// What is wrong with it, lowercase, e.g. `must be a dns label`.
        problem: String,
    },

    /// No Source has that id, name or host.
    #[error("source {0:?} not found")]
    NotFound(String),

    /// Another Source already uses this unique field.
    #[error("{field}: a source with this {field} already exists")]
    AlreadyExists {
        /// `name` or `subdomain`.
        field: &'static str,
    },

    /// An upload the Source cannot take (not deployed, no upload
    /// credentials); the message says which.
    #[error("{0}")]
    UploadRefused(&'static str),

    /// An upload larger than the registry's cap.
    #[error("object is larger than the {cap} byte limit")]
    UploadTooLarge {
        /// The cap, in bytes.
        cap: u64,
    },

    /// S3 refused a request the registry made for a caller (an upload);
    /// `message` is built from fixed phrases, never from SDK text.
    #[error("{message}")]
    Origin {
        /// How the caller should see it.
        code: ErrorCode,
        /// What went wrong, naming the setting at fault.
        message: String,
    },

    /// Concurrent updates kept changing the Source under this one.
    #[error("source is being changed concurrently, retry")]
    UpdateConflict,

    /// Stored secrets are wrapped by master keys the registry was not
    /// given.
    #[error(
        "{count} stored secret(s) are wrapped by master key(s) {unknown_ids}, which are not \
         loaded (loaded: {loaded_ids}); pass the key with --master-key-file or \
         --previous-master-key-file"
    )]
    MasterKeyMismatch {
        /// How many stored secrets no loaded key opens.
        count: i64,
        /// Ids of the missing keys, comma-separated.
        unknown_ids: String,
        /// Ids of the loaded keys, comma-separated.
        loaded_ids: String,
    },

    /// A Source's secret row is missing (a bug or a hand-edited database).
    #[error("source {source_id}: no stored {field}")]
    SecretMissing {
        /// The Source.
        source_id: String,
        /// The missing field.
        field: String,
    },

    /// Every randomly drawn Source id was taken (practically impossible with
    /// 48 random bits; reported rather than looping forever).
    #[error("could not draw an unused source id")]
    NoUnusedId,

    /// A config version does not fit the database column (it never reaches
    /// 2^63 in practice).
    #[error("config version out of range")]
    ConfigVersionOutOfRange,

    /// Encrypting or decrypting a secret failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),

    /// The database failed (its message never contains bound values).
    #[error("database error")]
    Database(#[from] sqlx::Error),

    /// Applying the embedded schema migrations failed.
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

// === impl RegistryError ===

impl RegistryError {
    /// A field error; `problem` is lowercase and names no secret.
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        RegistryError::InvalidField {
            field,
            problem: problem.into(),
        }
    }
}

impl From<RegistryError> for tonic::Status {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::InvalidField { field, problem } => {
                imgmesh_errors::invalid_field(field, problem)
            }
            RegistryError::NotFound(ref id_or_name) => ErrorCode::SourceNotFound
                .status_with(error.to_string(), [("source", id_or_name.clone())]),
            RegistryError::AlreadyExists { field } => ErrorCode::AlreadyExists
                .status_with(error.to_string(), [(FIELD_KEY, field.to_owned())]),
            RegistryError::UploadRefused(reason) => ErrorCode::InvalidArgument.status(reason),
            RegistryError::UploadTooLarge { cap } => ErrorCode::InputTooLarge
                .status_with(error.to_string(), [("limit_bytes", cap.to_string())]),
            RegistryError::Origin { code, message } => code.status(message),
            RegistryError::UpdateConflict => ErrorCode::Unavailable.status(error.to_string()),
            RegistryError::Database(ref database) if database_unavailable(database) => {
                // Down, refusing connections or restarting: the caller may
                // try again shortly (and the gateway serves what it knows).
                tracing::warn!(error = %error_chain(&error), "registry database unavailable");
                ErrorCode::Unavailable.status("the source registry's database is unavailable")
            }
            RegistryError::MasterKeyMismatch { .. }
            | RegistryError::SecretMissing { .. }
            | RegistryError::NoUnusedId
            | RegistryError::ConfigVersionOutOfRange
            | RegistryError::Crypto(_)
            | RegistryError::Database(_)
            | RegistryError::Migration(_) => {
                // The detail is for operators, never for callers.
                tracing::error!(error = %error_chain(&error), "registry internal error");
                ErrorCode::Internal.status("internal error in the source registry")
            }
        }
    }
}

/// Whether `error` says the database cannot be reached right now rather
/// than that a statement failed: the connection broke or was refused, the
/// pool found no connection in time, or PostgreSQL refused the session
/// (SQLSTATE class 08 connection exceptions; 53300 too many connections;
/// 55000, which is what a database not accepting connections answers at
/// login; 57P01–57P03 shutting down, crashed or starting up).
fn database_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(&*code, "53300" | "55000" | "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// `error` and its sources joined by `: `, for the operator's log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use imgmesh_errors::PublicError;

    use super::*;

    /// A field error becomes INVALID_ARGUMENT whose message names the
    /// field, and whose structure names it too.
    #[test]
    fn invalid_field_names_the_field() {
        let status = tonic::Status::from(RegistryError::invalid("bucket", "is too short"));
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::InvalidArgument);
        assert_eq!(status.message(), "bucket: is too short");
        let public = PublicError::of("registry", &status);
        assert_eq!(public.field(), Some("bucket"));
    }

    /// An unknown Source becomes SOURCE_NOT_FOUND saying "not found", with
    /// the id or name asked for as metadata.
    #[test]
    fn not_found_maps_to_source_not_found() {
        let status = tonic::Status::from(RegistryError::NotFound("shop".into()));
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::SourceNotFound);
        assert_eq!(status.message(), "source \"shop\" not found");
        let public = PublicError::of("registry", &status);
        assert_eq!(public.metadata("source"), Some("shop"));
        assert_eq!(public.field(), None);
    }

    /// A taken unique field becomes ALREADY_EXISTS naming the field, in
    /// the message and in the metadata.
    #[test]
    fn already_exists_names_the_field() {
        let status = tonic::Status::from(RegistryError::AlreadyExists { field: "subdomain" });
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::AlreadyExists);
        assert!(status.message().starts_with("subdomain: "));
        assert!(status.message().contains("already exists"));
        assert_eq!(
            PublicError::of("registry", &status).field(),
            Some("subdomain")
        );
    }

    /// Upload refusals keep their exact message; a too-large upload is
    /// INPUT_TOO_LARGE; an origin failure keeps its code.
    #[test]
    fn upload_errors_map_to_their_codes() {
        let status = tonic::Status::from(RegistryError::UploadRefused(
            "the source has no upload credentials",
        ));
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::InvalidArgument);
        assert_eq!(status.message(), "the source has no upload credentials");
        let status = tonic::Status::from(RegistryError::UploadTooLarge { cap: 10 });
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::InputTooLarge);
        assert_eq!(status.message(), "object is larger than the 10 byte limit");
        assert_eq!(
            PublicError::of("registry", &status).metadata("limit_bytes"),
            Some("10")
        );
        let status = tonic::Status::from(RegistryError::Origin {
            code: ErrorCode::OriginAccessDenied,
            message: "the upload credentials were rejected".into(),
        });
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::OriginAccessDenied);
        assert_eq!(status.message(), "the upload credentials were rejected");
    }

    /// An update that keeps losing races is retryable (UNAVAILABLE).
    #[test]
    fn update_conflict_is_retryable() {
        let status = tonic::Status::from(RegistryError::UpdateConflict);
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::Unavailable);
    }

    /// Database failures reach the caller only as a generic INTERNAL error.
    #[test]
    fn database_errors_are_not_echoed() {
        let error = RegistryError::Database(sqlx::Error::Protocol(
            "UNIQUE constraint failed: sources.secret".into(),
        ));
        let status = tonic::Status::from(error);
        assert_eq!(ErrorCode::of_status(&status), ErrorCode::Internal);
        assert!(!status.message().contains("sources"));
    }

    /// A PostgreSQL error with only a SQLSTATE, as the server sends it.
    #[derive(Debug)]
    struct SqlState(&'static str);

    impl std::fmt::Display for SqlState {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "sqlstate {}", self.0)
        }
    }

    impl std::error::Error for SqlState {}

    impl sqlx::error::DatabaseError for SqlState {
        fn message(&self) -> &str {
            self.0
        }

        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }

        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }

        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    /// A database that cannot be reached (connection refused or broken,
    /// pool exhausted, a session refused at login or ended by a shutdown)
    /// is UNAVAILABLE, so callers retry; a statement that fails (a
    /// constraint, bad data) stays INTERNAL.
    #[test]
    fn unreachable_database_is_unavailable() {
        let unreachable = [
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::Database(Box::new(SqlState("55000"))),
            sqlx::Error::Database(Box::new(SqlState("57P01"))),
            sqlx::Error::Database(Box::new(SqlState("08006"))),
        ];
        for error in unreachable {
            let status = tonic::Status::from(RegistryError::Database(error));
            assert_eq!(ErrorCode::of_status(&status), ErrorCode::Unavailable);
            assert_eq!(
                status.message(),
                "the source registry's database is unavailable"
            );
        }
        let failed = RegistryError::Database(sqlx::Error::Database(Box::new(SqlState("23505"))));
        assert_eq!(
            ErrorCode::of_status(&tonic::Status::from(failed)),
            ErrorCode::Internal
        );
    }

    /// The logged chain includes the database's own message.
    #[test]
    fn error_chain_includes_sources() {
        let error = RegistryError::Database(sqlx::Error::Protocol("disk on fire".into()));
        assert_eq!(
            error_chain(&error),
            "database error: encountered unexpected or invalid data: disk on fire"
        );
    }

    /// Crypto, key and bookkeeping failures reach the caller only as a
    /// generic INTERNAL error.
    #[test]
    fn internal_errors_are_generic() {
        let errors = [
            RegistryError::Crypto(CryptoError::Decrypt),
            RegistryError::MasterKeyMismatch {
                count: 2,
                unknown_ids: "0123456789abcdef".into(),
                loaded_ids: "fedcba9876543210".into(),
            },
            RegistryError::SecretMissing {
                source_id: "src_000000000001".into(),
                field: "secret_access_key".into(),
            },
            RegistryError::NoUnusedId,
            RegistryError::ConfigVersionOutOfRange,
            RegistryError::Migration(sqlx::migrate::MigrateError::VersionMissing(7)),
        ];
        for error in errors {
            let status = tonic::Status::from(error);
            assert_eq!(ErrorCode::of_status(&status), ErrorCode::Internal);
            assert_eq!(status.message(), "internal error in the source registry");
        }
    }
}
