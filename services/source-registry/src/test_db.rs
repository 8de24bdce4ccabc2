//! Databases for the registry's tests: a temporary SQLite file, or a fresh
//! PostgreSQL database created for one test and dropped after it
//! ([`PostgresDatabase`], from `imgmesh-test-support`, which says where the
//! server is and fails a test that cannot reach it: the PostgreSQL half of
//! the suite is never skipped silently). What stays here is what only the
//! registry knows: its `Database` and `Registry` on them.

use imgmesh_test_support::PostgresDatabase;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::credentials_crypto::tests::TEST_KEY_HEX;
use crate::credentials_crypto::{MasterKey, MasterKeys};
use crate::database::Database;
use crate::registry::Registry;

/// One test's database, removed when dropped.
#[derive(Debug)]
pub(crate) enum TestDb {
    /// A SQLite file in a temporary directory.
    Sqlite(tempfile::TempDir),
    /// A database of its own on the tests' PostgreSQL server.
    Postgres(PostgresDatabase),
}

impl TestDb {
    /// A fresh SQLite database.
    pub(crate) fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh PostgreSQL database `imgmesh_test_<unique suffix>`.
    pub(crate) async fn postgres() -> TestDb {
        TestDb::Postgres(
            PostgresDatabase::create("imgmesh_test").unwrap_or_else(|error| {
                panic!("the registry's PostgreSQL tests need PostgreSQL: {error:#}")
            }),
        )
    }

    /// The database as the registry takes it.
    pub(crate) fn database(&self) -> Database {
        match self {
            TestDb::Sqlite(dir) => Database::Sqlite(dir.path().join("registry.db")),
            TestDb::Postgres(database) => {
                Database::Postgres(url::Url::parse(&database.url).unwrap())
            }
        }
    }

    /// Everything the database holds on disk, as an attacker with a backup
    /// would see it: the SQLite file with its WAL and shared memory, or
    /// `pg_dump`'s output (a row-by-row text dump when pg_dump is missing).
    pub(crate) async fn dump(&self) -> Vec<u8> {
        match self {
            TestDb::Sqlite(dir) => {
                let mut bytes = Vec::new();
                for entry in std::fs::read_dir(dir.path()).unwrap() {
                    bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                bytes
            }
            TestDb::Postgres(_) => {
                let Database::Postgres(url) = self.database() else {
                    unreachable!("a PostgreSQL test database has a PostgreSQL url");
                };
                match tokio::process::Command::new("pg_dump")
                    .arg("--dbname")
                    .arg(url.as_str())
                    .output()
                    .await
                {
                    Ok(output) => {
                        assert!(
                            output.status.success(),
                            "pg_dump failed: {}",
                            String::from_utf8_lossy(&output.stderr)
                        );
                        output.stdout
                    }
                    Err(_) => self.text_dump(url.as_str()).await,
                }
            }
        }
    }

    /// Every row of every table as PostgreSQL's text form.
    async fn text_dump(&self, url: &str) -> Vec<u8> {
        let mut connection = PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        let mut bytes = Vec::new();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM \"{table}\" t"
            )))
            .fetch_all(&mut connection)
            .await
            .unwrap();
            for row in rows {
                bytes.extend(row.into_bytes());
            }
        }
        bytes
    }

    /// A registry on this database with the test master key.
    pub(crate) async fn open(&self) -> Registry {
        self.open_with(test_keys()).await
    }

    /// A registry on this database with `keys`.
    pub(crate) async fn open_with(&self, keys: MasterKeys) -> Registry {
        Registry::open(self.database(), keys).await.unwrap()
    }
}

/// The master keys every test registry uses unless it says otherwise.
pub(crate) fn test_keys() -> MasterKeys {
    MasterKeys::new(MasterKey::parse(TEST_KEY_HEX).unwrap())
}

/// Generates, for each named `async fn(TestDb)`, one test on SQLite and one
/// on PostgreSQL, in modules `sqlite` and `postgres`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[doc = concat!("`", stringify!($test), "` on SQLite.")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::test_db::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[doc = concat!("`", stringify!($test), "` on PostgreSQL.")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::test_db::TestDb::postgres().await).await;
                }
            )*
        }
    };
}

pub(crate) use on_both_backends;
