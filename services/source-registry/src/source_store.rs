//! Persistence of Sources in SQLite through sqlx.
//!
//! The schema lives in `migrations/` and is embedded in the binary, so the
//! registry can start from any working directory. Queries are bound at
//! runtime with `$N` placeholders, which SQLite and PostgreSQL both accept,
//! and uniqueness of names and subdomains is enforced by the database's
//! unique indexes, so two concurrent creates cannot both win.

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteRow};
use sqlx::{Row as _, SqlSafeStr as _};

use crate::credentials_crypto::SealedSecret;
use crate::error::RegistryError;
use crate::source::SourceRecord;

/// How long a connection waits for a lock held by another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `SELECT <every column> FROM sources <tail>`, built at compile time.
macro_rules! select_sources {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, subdomain, bucket, region, endpoint, path_prefix, ",
            "access_key_id, secret_access_key_sealed, secret_key_id, default_params, ",
            "cache_ttl_seconds, config_version, created_at, updated_at FROM sources ",
            $tail
        )
    };
}

/// The schema migrations, embedded: `(version, description, sql)`, named
/// after their files `migrations/<version>_<description>.sql`.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "create sources",
    include_str!("../migrations/0001_create_sources.sql"),
)];

/// What an insert did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The row is stored.
    Yes,
    /// The randomly drawn id is already taken; draw another.
    IdTaken,
}

/// The Sources table.
#[derive(Debug, Clone)]
pub(crate) struct SourceStore {
    pool: SqlitePool,
}

// === impl SourceStore ===

impl SourceStore {
    /// Opens (creating if missing) the SQLite file at `path` in WAL mode and
    /// applies pending migrations.
    pub(crate) async fn open(path: &Path) -> Result<SourceStore, RegistryError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePool::connect_with(options).await?;
        migrator().run(&pool).await?;
        Ok(SourceStore { pool })
    }

    /// Stores a new Source; a taken name or subdomain is
    /// [`RegistryError::AlreadyExists`].
    pub(crate) async fn insert(&self, record: &SourceRecord) -> Result<Inserted, RegistryError> {
        let sql = "INSERT INTO sources (id, name, subdomain, bucket, region, endpoint, \
             path_prefix, access_key_id, secret_access_key_sealed, secret_key_id, \
             default_params, cache_ttl_seconds, config_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
        let result = sqlx::query(sql)
            .bind(&record.id)
            .bind(&record.name)
            .bind(&record.subdomain)
            .bind(&record.bucket)
            .bind(&record.region)
            .bind(&record.endpoint)
            .bind(&record.path_prefix)
            .bind(&record.access_key_id)
            .bind(&record.secret_access_key.sealed)
            .bind(&record.secret_access_key.key_id)
            .bind(&record.default_params)
            .bind(i64::from(record.cache_ttl_seconds))
            .bind(version_to_db(record.config_version)?)
            .bind(record.created_at)
            .bind(record.updated_at)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(Inserted::Yes),
            Err(error) => match unique_violation(&error) {
                Some("id") => Ok(Inserted::IdTaken),
                Some(field) => Err(RegistryError::AlreadyExists { field }),
                None => Err(error.into()),
            },
        }
    }

    /// The Source whose id or name is `id_or_name`.
    pub(crate) async fn find(
        &self,
        id_or_name: &str,
    ) -> Result<Option<SourceRecord>, RegistryError> {
        self.fetch_optional(select_sources!("WHERE id = $1 OR name = $1"), id_or_name)
            .await
    }

    /// The Source with id `id`.
    pub(crate) async fn find_by_id(&self, id: &str) -> Result<Option<SourceRecord>, RegistryError> {
        self.fetch_optional(select_sources!("WHERE id = $1"), id)
            .await
    }

    /// The Source routed by `subdomain`.
    pub(crate) async fn find_by_subdomain(
        &self,
        subdomain: &str,
    ) -> Result<Option<SourceRecord>, RegistryError> {
        self.fetch_optional(select_sources!("WHERE subdomain = $1"), subdomain)
            .await
    }

    /// Every Source, ordered by name.
    pub(crate) async fn list(&self) -> Result<Vec<SourceRecord>, RegistryError> {
        let rows = sqlx::query(select_sources!("ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| record_from_row(row).map_err(RegistryError::from))
            .collect()
    }

    /// Writes `record` if the stored row still has `expected_version`
    /// (optimistic concurrency); `Ok(false)` when it was changed or deleted
    /// meanwhile. A taken subdomain is [`RegistryError::AlreadyExists`].
    pub(crate) async fn update(
        &self,
        record: &SourceRecord,
        expected_version: u64,
    ) -> Result<bool, RegistryError> {
        let sql = "UPDATE sources SET subdomain = $1, bucket = $2, region = $3, endpoint = $4, \
             path_prefix = $5, access_key_id = $6, secret_access_key_sealed = $7, \
             secret_key_id = $8, default_params = $9, cache_ttl_seconds = $10, \
             config_version = $11, updated_at = $12 \
             WHERE id = $13 AND config_version = $14";
        let result = sqlx::query(sql)
            .bind(&record.subdomain)
            .bind(&record.bucket)
            .bind(&record.region)
            .bind(&record.endpoint)
            .bind(&record.path_prefix)
            .bind(&record.access_key_id)
            .bind(&record.secret_access_key.sealed)
            .bind(&record.secret_access_key.key_id)
            .bind(&record.default_params)
            .bind(i64::from(record.cache_ttl_seconds))
            .bind(version_to_db(record.config_version)?)
            .bind(record.updated_at)
            .bind(&record.id)
            .bind(version_to_db(expected_version)?)
            .execute(&self.pool)
            .await;
        match result {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(error) => match unique_violation(&error) {
                Some(field) => Err(RegistryError::AlreadyExists { field }),
                None => Err(error.into()),
            },
        }
    }

    /// Deletes the Source whose id or name is `id_or_name`; `Ok(None)` when
    /// there is none, otherwise the id of the deleted Source.
    pub(crate) async fn delete(&self, id_or_name: &str) -> Result<Option<String>, RegistryError> {
        let id: Option<String> =
            sqlx::query_scalar("DELETE FROM sources WHERE id = $1 OR name = $1 RETURNING id")
                .bind(id_or_name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id)
    }

    /// How many stored secrets were sealed by a key other than `key_id`.
    pub(crate) async fn count_sealed_by_other_keys(
        &self,
        key_id: &str,
    ) -> Result<i64, RegistryError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sources WHERE secret_key_id <> $1")
                .bind(key_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// Closes every connection, checkpointing the WAL.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn fetch_optional(
        &self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<SourceRecord>, RegistryError> {
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }
}

/// The embedded migrations as a sqlx [`Migrator`].
fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Reads a `sources` row.
fn record_from_row(row: &SqliteRow) -> Result<SourceRecord, sqlx::Error> {
    Ok(SourceRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        subdomain: row.try_get("subdomain")?,
        bucket: row.try_get("bucket")?,
        region: row.try_get("region")?,
        endpoint: row.try_get("endpoint")?,
        path_prefix: row.try_get("path_prefix")?,
        access_key_id: row.try_get("access_key_id")?,
        secret_access_key: SealedSecret {
            sealed: row.try_get("secret_access_key_sealed")?,
            key_id: row.try_get("secret_key_id")?,
        },
        default_params: row.try_get("default_params")?,
        cache_ttl_seconds: unsigned_column(row, "cache_ttl_seconds")?,
        config_version: unsigned_column(row, "config_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Reads a BIGINT column into an unsigned type, refusing out-of-range values.
fn unsigned_column<T: TryFrom<i64>>(row: &SqliteRow, column: &str) -> Result<T, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("{value} is out of range").into(),
    })
}

/// A config version as the BIGINT column stores it.
fn version_to_db(version: u64) -> Result<i64, RegistryError> {
    i64::try_from(version).map_err(|_| RegistryError::ConfigVersionOutOfRange)
}

/// The field whose unique index `error` violated, if it is such an error.
/// PostgreSQL names the constraint; SQLite only says
/// `UNIQUE constraint failed: sources.<column>`.
fn unique_violation(error: &sqlx::Error) -> Option<&'static str> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    let constraint = db.constraint().unwrap_or_default();
    let message = db.message();
    [
        ("name", "sources_name_key", "sources.name"),
        ("subdomain", "sources_subdomain_key", "sources.subdomain"),
        ("id", "sources_pkey", "sources.id"),
    ]
    .into_iter()
    .find(|(_, index, column)| constraint == *index || message.contains(column))
    .map(|(field, _, _)| field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations/` is embedded, with the version and
    /// description its name gives (the layout `sqlx migrate` expects).
    #[test]
    fn embedded_migrations_match_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<(i64, String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
                let (version, description) = stem.split_once('_').unwrap();
                let sql = std::fs::read_to_string(&path).unwrap();
                (version.parse().unwrap(), description.replace('_', " "), sql)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(i64, String, String)> = MIGRATIONS
            .iter()
            .map(|&(v, d, s)| (v, d.to_owned(), s.to_owned()))
            .collect();
        assert_eq!(embedded, on_disk);
    }

    /// The schema statements use no SQLite-only syntax, so PostgreSQL can
    /// run them too.
    #[test]
    fn migrations_avoid_sqlite_only_syntax() {
        for (_, _, sql) in MIGRATIONS {
            let sql: String = sql
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .to_ascii_uppercase();
            for sqlite_only in [
                "AUTOINCREMENT",
                "BLOB",
                "WITHOUT ROWID",
                "PRAGMA",
                "DATETIME",
            ] {
                assert!(!sql.contains(sqlite_only), "{sqlite_only}");
            }
        }
    }
}
