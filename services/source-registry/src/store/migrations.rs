//! The schema migrations, embedded in the binary from `migrations/`.

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The schema migrations, embedded: `(version, description, sql)`, named
/// after their files `migrations/<version>_<description>.sql`.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "create sources",
        include_str!("../../migrations/0001_create_sources.sql"),
    ),
    (
        2,
        "source settings and status",
        include_str!("../../migrations/0002_source_settings_and_status.sql"),
    ),
    (
        3,
        "envelope secrets and tokens",
        include_str!("../../migrations/0003_envelope_secrets_and_tokens.sql"),
    ),
    (
        4,
        "api keys",
        include_str!("../../migrations/0004_api_keys.sql"),
    ),
    (
        5,
        "admin tokens and audit",
        include_str!("../../migrations/0005_admin_tokens_and_audit.sql"),
    ),
];

/// The embedded migrations as a sqlx [`Migrator`].
pub(super) fn migrator() -> Migrator {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

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
