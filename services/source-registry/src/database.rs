//! Where the registry keeps its data: a SQLite file (the default) or a
//! PostgreSQL database, both through sqlx's Any driver with one set of
//! migrations and one set of queries.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

use crate::error::RegistryError;

/// How many connections one registry keeps to PostgreSQL.
const MAX_POSTGRES_CONNECTIONS: u32 = 10;

/// How long getting a PostgreSQL connection may take (connecting, or
/// waiting for a free one) before the call fails.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A registry database.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created if missing, in WAL mode.
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://user[:password]@host[:port]/db`.
    Postgres(url::Url),
}

// === impl Database ===

impl Database {
    /// Parses a `postgres://` or `postgresql://` URL.
    pub fn postgres(url: &str) -> Result<Database, RegistryError> {
        let invalid = || {
            RegistryError::invalid(
                "database_url",
                "must be a postgres://user[:password]@host[:port]/database url",
            )
        };
        let parsed = url::Url::parse(url).map_err(|_| invalid())?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") || parsed.host_str().is_none() {
            return Err(invalid());
        }
        Ok(Database::Postgres(parsed))
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }

    /// Connects a pool to the database (creating a SQLite file if missing).
    pub(crate) async fn connect(&self) -> Result<AnyPool, RegistryError> {
        sqlx::any::install_default_drivers();
        match self {
            Database::Sqlite(path) => {
                let options: AnyConnectOptions = sqlite_url(path)?.parse()?;
                let pool = AnyPoolOptions::new()
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            // WAL lets readers work while one connection
                            // writes; the busy timeout (sqlx's default, 5 s)
                            // makes writers wait for each other.
                            connection.execute("PRAGMA journal_mode = WAL").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Ok(pool)
            }
            Database::Postgres(url) => Ok(AnyPoolOptions::new()
                .max_connections(MAX_POSTGRES_CONNECTIONS)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .connect(url.as_str())
                .await?),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Self {
        Database::Sqlite(path.clone())
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_owned())
    }
}

impl fmt::Display for Database {
    /// The file path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    // Only fails for URLs that cannot have a password.
                    let _ = shown.set_password(Some("REDACTED"));
                }
                write!(f, "{shown}")
            }
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(_) => write!(f, "Sqlite({self})"),
            Database::Postgres(_) => write!(f, "Postgres({self})"),
        }
    }
}

/// The sqlx URL of the SQLite file `path`: absolute, percent-encoded,
/// created if missing.
fn sqlite_url(path: &Path) -> Result<String, RegistryError> {
    let absolute = std::path::absolute(path)
        .map_err(|_| RegistryError::invalid("database", "must be a usable file path"))?;
    let file_url = url::Url::from_file_path(&absolute)
        .map_err(|()| RegistryError::invalid("database", "must be a usable file path"))?;
    Ok(format!("sqlite://{}?mode=rwc", file_url.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite paths become absolute, percent-encoded sqlx URLs.
    #[test]
    fn sqlite_urls_are_encoded() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/a b/r#1.db")).unwrap(),
            "sqlite:///tmp/a%20b/r%231.db?mode=rwc"
        );
        let relative = sqlite_url(Path::new("registry.db")).unwrap();
        assert!(relative.starts_with("sqlite:///"), "{relative}");
        assert!(relative.ends_with("/registry.db?mode=rwc"), "{relative}");
    }

    /// PostgreSQL URLs are checked, and never shown with their password.
    #[test]
    fn postgres_urls_hide_the_password() {
        let database =
            Database::postgres("postgres://app:hunter2@db.internal:5432/imgmesh").unwrap();
        assert!(database.is_postgres());
        let shown = format!("{database} {database:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://app:REDACTED@db.internal:5432/imgmesh"),
            "{shown}"
        );
        for bad in ["", "mysql://x/y", "postgres://", "not a url", "/var/lib/db"] {
            assert!(Database::postgres(bad).is_err(), "{bad}");
        }
        assert!(Database::postgres("postgresql://localhost/imgmesh").is_ok());
    }
}
