//! Persistence of Sources, their custom domains, sealed secrets and secure
//! URL tokens, on SQLite or PostgreSQL through sqlx's Any driver.
//!
//! The schema lives in `migrations/` and is embedded in the binary
//! ([`migrations`]), so the registry can start from any working directory.
//! Queries are bound at runtime with `$N` placeholders, which SQLite and
//! PostgreSQL both accept, and uniqueness of names, subdomains and custom
//! domains is enforced by the database's unique constraints, so two
//! concurrent creates (even from two registries sharing one PostgreSQL)
//! cannot both win.
//!
//! One [`SourceStore`] holds the pool; its operations are grouped by table:
//! [`sources`] (the `sources` row and its domains: CRUD and deploy state),
//! [`secrets`] (sealed secrets and the master-key rotation's view of them),
//! [`tokens`] (secure URL tokens), [`admin_tokens`] (the admin API's
//! named, scoped credentials), [`audit_log`] (who changed what), and
//! [`row_codec`], which turns a
//! `sources` row into a [`SourceRecord`](crate::source::SourceRecord) and
//! back.

mod admin_tokens;
mod audit_log;
mod migrations;
mod row_codec;
mod secrets;
mod sources;
mod tokens;

use sqlx::AnyPool;

use crate::database::Database;
use crate::error::RegistryError;

pub(crate) use self::admin_tokens::{AdminScope, AdminToken};
pub(crate) use self::audit_log::AuditEvent;
pub(crate) use self::secrets::SealedTable;
pub(crate) use self::sources::{Inserted, UpdateWrites};
pub(crate) use self::tokens::TokenRow;

/// The registry's tables.
#[derive(Debug, Clone)]
pub(crate) struct SourceStore {
    pool: AnyPool,
}

// === impl SourceStore ===

impl SourceStore {
    /// Connects to `database` and applies pending migrations.
    pub(crate) async fn open(database: &Database) -> Result<SourceStore, RegistryError> {
        let pool = database.connect().await?;
        migrations::migrator().run(&pool).await?;
        Ok(SourceStore { pool })
    }

    /// The connection pool, for the other tables' stores (`api_key_store`).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (checkpointing SQLite's WAL).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `SELECT 1`: whether the database answers a query now.
    pub(crate) async fn ping(&self) -> Result<(), RegistryError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
