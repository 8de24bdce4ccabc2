//! A fresh PostgreSQL database per test, on the tests' server, dropped
//! after it.
//!
//! The server is reached at `IMGMESH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth; `make test`
//! starts one with `scripts/ensure-postgres.sh`). A test that needs it and
//! cannot reach it fails saying so: it is never skipped silently.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::tools::find_tool;

/// Where the tests' PostgreSQL server is when `IMGMESH_TEST_POSTGRES_URL`
/// does not say.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test on the tests' PostgreSQL server; dropped
/// (with any connection still open to it) when this value is.
#[derive(Debug)]
pub struct PostgresDatabase {
    admin_url: String,
    /// The database's name, `<prefix>_<unique suffix>`.
    pub name: String,
    /// Its connection URL.
    pub url: String,
}

// === impl PostgresDatabase ===

impl PostgresDatabase {
    /// Creates a database named `<prefix>_<unique suffix>` (a prefix of
    /// lowercase letters, digits and `_`).
    pub fn create(prefix: &str) -> anyhow::Result<PostgresDatabase> {
        static CREATED: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var("IMGMESH_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let name = format!(
            "{prefix}_{}_{}_{nanos}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin_url, &format!("CREATE DATABASE {name}")).with_context(|| {
            format!(
                "PostgreSQL must answer at {admin_url} for this test: run `make test` \
                 (scripts/ensure-postgres.sh starts it) or set IMGMESH_TEST_POSTGRES_URL"
            )
        })?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(PostgresDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// Runs one SQL statement as the server's administrator (e.g. to stop
    /// this database from accepting connections, and to let it again).
    pub fn admin_sql(&self, sql: &str) -> anyhow::Result<()> {
        psql(&self.admin_url, sql)
    }

    /// The server's administrator URL.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let dropped = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        if let Err(error) = dropped
            && !std::thread::panicking()
        {
            panic!("could not drop the test database {}: {error:#}", self.name);
        }
    }
}

/// Runs one SQL statement with `psql` against `url`.
fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let output = std::process::Command::new(find_tool("psql")?)
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .context("running psql")?;
    anyhow::ensure!(
        output.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
