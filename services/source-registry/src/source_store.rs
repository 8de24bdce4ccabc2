//! Persistence of Sources, their custom domains, sealed secrets and secure
//! URL tokens, on SQLite or PostgreSQL through sqlx's Any driver.
//!
//! The schema lives in `migrations/` and is embedded in the binary, so the
//! registry can start from any working directory. Queries are bound at
//! runtime with `$N` placeholders, which SQLite and PostgreSQL both accept,
//! and uniqueness of names, subdomains and custom domains is enforced by the
//! database's unique constraints, so two concurrent creates (even from two
//! registries sharing one PostgreSQL) cannot both win.

use sqlx::any::AnyRow;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Row as _, SqlSafeStr as _, Transaction};

use imgmesh_proto::registry::v1::{CacheTtlBehavior, SourceStatus};

use crate::credentials_crypto::SealedSecret;
use crate::database::Database;
use crate::error::RegistryError;
use crate::source::SourceRecord;

/// `SELECT <every column> FROM sources <tail>`, built at compile time.
macro_rules! select_sources {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, subdomain, bucket, region, endpoint, path_prefix, ",
            "access_key_id, default_params, ",
            "cache_ttl_seconds, cache_ttl_behavior, cache_ttl_error_seconds, ",
            "image_missing, image_missing_append_params, image_error, ",
            "image_error_append_params, secure_url_enabled, enabled, status, ",
            "status_message, last_deployed_at, upload_access_key_id, ",
            "config_version, created_at, updated_at FROM sources ",
            $tail
        )
    };
}

/// The schema migrations, embedded: `(version, description, sql)`, named
/// after their files `migrations/<version>_<description>.sql`.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "create sources",
        include_str!("../migrations/0001_create_sources.sql"),
    ),
    (
        2,
        "source settings and status",
        include_str!("../migrations/0002_source_settings_and_status.sql"),
    ),
    (
        3,
        "envelope secrets and tokens",
        include_str!("../migrations/0003_envelope_secrets_and_tokens.sql"),
    ),
    (
        4,
        "api keys",
        include_str!("../migrations/0004_api_keys.sql"),
    ),
];

/// What an insert did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The row is stored.
    Yes,
    /// The randomly drawn id is already taken; draw another.
    IdTaken,
}

/// What an update writes besides the `sources` row.
#[derive(Debug, Default)]
pub(crate) struct UpdateWrites {
    /// Rewrite the custom domains from the record.
    pub(crate) domains: bool,
    /// Secrets to store (`Some`) or remove (`None`), by field.
    pub(crate) secrets: Vec<(&'static str, Option<SealedSecret>)>,
}

/// Which table a sealed value lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealedTable {
    /// `source_secrets`, keyed by Source id and field.
    SourceSecrets,
    /// `secure_tokens`, keyed by Source id and token id.
    SecureTokens,
}

/// One sealed value whose data key a master-key rotation must re-wrap.
#[derive(Debug, Clone)]
pub(crate) struct StaleSecret {
    /// Where it lives.
    pub(crate) table: SealedTable,
    /// Its Source.
    pub(crate) source_id: String,
    /// Field (`source_secrets`) or token id (`secure_tokens`).
    pub(crate) key: String,
    /// The sealed value as stored.
    pub(crate) sealed: SealedSecret,
}

/// A stored secure URL token.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    /// Token id, unique within its Source.
    pub(crate) id: String,
    /// The sealed token.
    pub(crate) sealed: SealedSecret,
    /// When it was created, Unix seconds.
    pub(crate) created_at: i64,
    /// When it stops being accepted, Unix seconds; 0 for no end.
    pub(crate) expires_at: i64,
}

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
        migrator().run(&pool).await?;
        Ok(SourceStore { pool })
    }

    /// The connection pool, for the other tables' stores (`api_key_store`).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Stores a new Source with its custom domains and sealed secrets; a
    /// taken name, subdomain or domain is [`RegistryError::AlreadyExists`].
    pub(crate) async fn insert(
        &self,
        record: &SourceRecord,
        secrets: &[(&str, &SealedSecret)],
    ) -> Result<Inserted, RegistryError> {
        let sql = "INSERT INTO sources (id, name, subdomain, bucket, region, endpoint, \
             path_prefix, access_key_id, secret_access_key_sealed, secret_key_id, \
             default_params, cache_ttl_seconds, cache_ttl_behavior, cache_ttl_error_seconds, \
             image_missing, image_missing_append_params, image_error, \
             image_error_append_params, secure_url_enabled, enabled, status, status_message, \
             last_deployed_at, upload_access_key_id, config_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', '', $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)";
        let result = async {
            let mut tx = self.pool.begin().await?;
            let query = sqlx::query(sql).bind(&record.id).bind(&record.name);
            bind_settings(query, record)
                .bind(record.last_deployed_at)
                .bind(&record.upload_access_key_id)
                .bind(version_to_db(record.config_version)?)
                .bind(record.created_at)
                .bind(record.updated_at)
                .execute(&mut *tx)
                .await?;
            insert_domains(&mut tx, &record.id, &record.custom_domains).await?;
            for (field, sealed) in secrets {
                insert_secret(&mut tx, &record.id, field, sealed).await?;
            }
            tx.commit().await?;
            Ok::<_, RegistryError>(())
        }
        .await;
        match result {
            Ok(()) => Ok(Inserted::Yes),
            Err(RegistryError::Database(error)) => match unique_violation(&error) {
                Some("id") => Ok(Inserted::IdTaken),
                Some(field) => Err(RegistryError::AlreadyExists { field }),
                None => Err(error.into()),
            },
            Err(error) => Err(error),
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

    /// The Source one of whose custom domains is `domain`.
    pub(crate) async fn find_by_custom_domain(
        &self,
        domain: &str,
    ) -> Result<Option<SourceRecord>, RegistryError> {
        self.fetch_optional(
            select_sources!("WHERE id = (SELECT source_id FROM source_domains WHERE domain = $1)"),
            domain,
        )
        .await
    }

    /// Every Source, ordered by name.
    pub(crate) async fn list(&self, now: i64) -> Result<Vec<SourceRecord>, RegistryError> {
        let rows = sqlx::query(select_sources!("ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let domains: Vec<(String, String)> =
            sqlx::query_as("SELECT source_id, domain FROM source_domains ORDER BY domain")
                .fetch_all(&self.pool)
                .await?;
        for (source_id, domain) in domains {
            if let Some(record) = records.iter_mut().find(|r| r.id == source_id) {
                record.custom_domains.push(domain);
            }
        }
        let tokens: Vec<(String, i64)> = sqlx::query_as(
            "SELECT source_id, COUNT(*) FROM secure_tokens \
             WHERE expires_at = 0 OR expires_at > $1 GROUP BY source_id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for (source_id, count) in tokens {
            if let Some(record) = records.iter_mut().find(|r| r.id == source_id) {
                record.active_secure_tokens = u32::try_from(count).unwrap_or(u32::MAX);
            }
        }
        Ok(records)
    }

    /// Writes `record` if the stored row still has `expected_version`
    /// (optimistic concurrency); `Ok(false)` when it was changed or deleted
    /// meanwhile. `writes` says what else to write in the same transaction.
    /// A taken subdomain or domain is [`RegistryError::AlreadyExists`].
    pub(crate) async fn update(
        &self,
        record: &SourceRecord,
        expected_version: u64,
        writes: &UpdateWrites,
    ) -> Result<bool, RegistryError> {
        let sql = "UPDATE sources SET subdomain = $1, bucket = $2, region = $3, endpoint = $4, \
             path_prefix = $5, access_key_id = $6, default_params = $7, \
             cache_ttl_seconds = $8, cache_ttl_behavior = $9, cache_ttl_error_seconds = $10, \
             image_missing = $11, image_missing_append_params = $12, image_error = $13, \
             image_error_append_params = $14, secure_url_enabled = $15, enabled = $16, \
             status = $17, status_message = $18, upload_access_key_id = $19, \
             config_version = $20, updated_at = $21 \
             WHERE id = $22 AND config_version = $23";
        let result = async {
            let mut tx = self.pool.begin().await?;
            let done = bind_settings(sqlx::query(sql), record)
                .bind(&record.upload_access_key_id)
                .bind(version_to_db(record.config_version)?)
                .bind(record.updated_at)
                .bind(&record.id)
                .bind(version_to_db(expected_version)?)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            if writes.domains {
                sqlx::query("DELETE FROM source_domains WHERE source_id = $1")
                    .bind(&record.id)
                    .execute(&mut *tx)
                    .await?;
                insert_domains(&mut tx, &record.id, &record.custom_domains).await?;
            }
            for (field, sealed) in &writes.secrets {
                sqlx::query("DELETE FROM source_secrets WHERE source_id = $1 AND field = $2")
                    .bind(&record.id)
                    .bind(*field)
                    .execute(&mut *tx)
                    .await?;
                if let Some(sealed) = sealed {
                    insert_secret(&mut tx, &record.id, field, sealed).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, RegistryError>(true)
        }
        .await;
        match result {
            Err(RegistryError::Database(error)) => match unique_violation(&error) {
                Some(field) => Err(RegistryError::AlreadyExists { field }),
                None => Err(error.into()),
            },
            other => other,
        }
    }

    /// Deletes the Source whose id or name is `id_or_name` with its custom
    /// domains, secrets and tokens; `Ok(None)` when there is none,
    /// otherwise the deleted id.
    pub(crate) async fn delete(&self, id_or_name: &str) -> Result<Option<String>, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM sources WHERE id = $1 OR name = $1")
                .bind(id_or_name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        for sql in [
            "DELETE FROM source_domains WHERE source_id = $1",
            "DELETE FROM source_secrets WHERE source_id = $1",
            "DELETE FROM secure_tokens WHERE source_id = $1",
            "DELETE FROM sources WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The sealed secret `field` of Source `source_id`, if stored.
    pub(crate) async fn secret(
        &self,
        source_id: &str,
        field: &str,
    ) -> Result<Option<SealedSecret>, RegistryError> {
        let row = sqlx::query(
            "SELECT kek_id, wrapped_dek, nonce, ciphertext FROM source_secrets \
             WHERE source_id = $1 AND field = $2",
        )
        .bind(source_id)
        .bind(field)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(sealed_from_row).transpose()?)
    }

    /// Starts a deploy of the Source whose id or name is `id_or_name`:
    /// status `deploying` under the new `deploy_id`, which supersedes any
    /// deploy in flight. `Ok(None)` when there is no such Source.
    pub(crate) async fn start_deploy(
        &self,
        id_or_name: &str,
        deploy_id: &str,
        now: i64,
    ) -> Result<Option<SourceRecord>, RegistryError> {
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE sources SET status = 'deploying', status_message = '', deploy_id = $1, \
             config_version = config_version + 1, updated_at = $2 \
             WHERE id = $3 OR name = $3 RETURNING id",
        )
        .bind(deploy_id)
        .bind(now)
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.find_by_id(&id).await,
            None => Ok(None),
        }
    }

    /// Records how deploy `deploy_id` of Source `id` ended, if it is still
    /// the Source's current deploy (an edit that needs a new deploy, or a
    /// newer deploy, supersedes it); `Ok(false)` when it was superseded.
    pub(crate) async fn finish_deploy(
        &self,
        id: &str,
        deploy_id: &str,
        status: SourceStatus,
        message: &str,
        now: i64,
    ) -> Result<bool, RegistryError> {
        let done = sqlx::query(
            "UPDATE sources SET status = $1, status_message = $2, last_deployed_at = $3, \
             config_version = config_version + 1, updated_at = $3 \
             WHERE id = $4 AND deploy_id = $5 AND status = 'deploying'",
        )
        .bind(status_to_db(status))
        .bind(message)
        .bind(now)
        .bind(id)
        .bind(deploy_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `(source id, deploy id)` of every deploy left in flight.
    pub(crate) async fn deploys_in_flight(&self) -> Result<Vec<(String, String)>, RegistryError> {
        Ok(
            sqlx::query_as("SELECT id, deploy_id FROM sources WHERE status = 'deploying'")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Adds token `token` to Source `source_id` and makes every other token
    /// still accepted at `retire_at` expire then (in one transaction, so two
    /// rotations never leave three tokens open-ended). Tokens expired
    /// before `now` are deleted on the way. `Ok(false)` when the Source is
    /// gone.
    pub(crate) async fn rotate_token(
        &self,
        source_id: &str,
        token: &TokenRow,
        retire_at: i64,
        now: i64,
    ) -> Result<bool, RegistryError> {
        let mut tx = self.pool.begin().await?;
        // Locks the Source row (PostgreSQL) or the database (SQLite) first,
        // so concurrent rotations of one Source run one after the other.
        let touched = sqlx::query("UPDATE sources SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(source_id)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM secure_tokens WHERE source_id = $1 AND expires_at <> 0 \
             AND expires_at <= $2",
        )
        .bind(source_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE secure_tokens SET expires_at = $1 WHERE source_id = $2 \
             AND (expires_at = 0 OR expires_at > $1)",
        )
        .bind(retire_at)
        .bind(source_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO secure_tokens (source_id, id, kek_id, wrapped_dek, nonce, ciphertext, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(source_id)
        .bind(&token.id)
        .bind(&token.sealed.kek_id)
        .bind(&token.sealed.wrapped_dek)
        .bind(&token.sealed.nonce)
        .bind(&token.sealed.ciphertext)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Source `source_id`'s tokens still accepted at `now`, newest first.
    pub(crate) async fn active_tokens(
        &self,
        source_id: &str,
        now: i64,
    ) -> Result<Vec<TokenRow>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, kek_id, wrapped_dek, nonce, ciphertext, created_at, expires_at \
             FROM secure_tokens WHERE source_id = $1 AND (expires_at = 0 OR expires_at > $2) \
             ORDER BY created_at DESC, id",
        )
        .bind(source_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenRow {
                    id: row.try_get("id")?,
                    sealed: sealed_from_row(row)?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(RegistryError::from)
    }

    /// Every master key id in use, with how many sealed values it wraps
    /// (legacy secrets sealed directly by a master key included).
    pub(crate) async fn kek_usage(&self) -> Result<Vec<(String, i64)>, RegistryError> {
        Ok(sqlx::query_as(
            "SELECT kek_id, COUNT(*) FROM (\
               SELECT kek_id FROM source_secrets \
               UNION ALL SELECT kek_id FROM secure_tokens \
               UNION ALL SELECT secret_key_id AS kek_id FROM sources \
                 WHERE secret_access_key_sealed <> ''\
             ) AS sealed GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// `(source id, sealed, key id)` of every secret still stored the way
    /// registries before envelope encryption did.
    pub(crate) async fn legacy_secrets(
        &self,
    ) -> Result<Vec<(String, String, String)>, RegistryError> {
        Ok(sqlx::query_as(
            "SELECT id, secret_access_key_sealed, secret_key_id FROM sources \
             WHERE secret_access_key_sealed <> ''",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores the converted read secret of Source `source_id` and empties
    /// its legacy columns, in one transaction.
    pub(crate) async fn replace_legacy_secret(
        &self,
        source_id: &str,
        field: &str,
        sealed: &SealedSecret,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM source_secrets WHERE source_id = $1 AND field = $2")
            .bind(source_id)
            .bind(field)
            .execute(&mut *tx)
            .await?;
        insert_secret(&mut tx, source_id, field, sealed).await?;
        sqlx::query(
            "UPDATE sources SET secret_access_key_sealed = '', secret_key_id = '' WHERE id = $1",
        )
        .bind(source_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many sealed values are not wrapped by `current_kek`.
    pub(crate) async fn count_stale(&self, current_kek: &str) -> Result<i64, RegistryError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM source_secrets WHERE kek_id <> $1) \
             + (SELECT COUNT(*) FROM secure_tokens WHERE kek_id <> $1)",
        )
        .bind(current_kek)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    /// One sealed value not wrapped by `current_kek`, if any is left.
    pub(crate) async fn next_stale(
        &self,
        current_kek: &str,
    ) -> Result<Option<StaleSecret>, RegistryError> {
        let secret = sqlx::query(
            "SELECT source_id, field AS key, kek_id, wrapped_dek, nonce, ciphertext \
             FROM source_secrets WHERE kek_id <> $1 ORDER BY source_id, field LIMIT 1",
        )
        .bind(current_kek)
        .fetch_optional(&self.pool)
        .await?;
        let (table, row) = match secret {
            Some(row) => (SealedTable::SourceSecrets, row),
            None => {
                let token = sqlx::query(
                    "SELECT source_id, id AS key, kek_id, wrapped_dek, nonce, ciphertext \
                     FROM secure_tokens WHERE kek_id <> $1 ORDER BY source_id, id LIMIT 1",
                )
                .bind(current_kek)
                .fetch_optional(&self.pool)
                .await?;
                match token {
                    Some(row) => (SealedTable::SecureTokens, row),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(StaleSecret {
            table,
            source_id: row.try_get("source_id")?,
            key: row.try_get("key")?,
            sealed: sealed_from_row(&row)?,
        }))
    }

    /// Replaces the wrap of `stale` by `rewrapped` if the row still holds
    /// exactly what was read (a concurrent change wins); `Ok(false)` when it
    /// did not.
    pub(crate) async fn store_rewrap(
        &self,
        stale: &StaleSecret,
        rewrapped: &SealedSecret,
    ) -> Result<bool, RegistryError> {
        let sql = match stale.table {
            SealedTable::SourceSecrets => {
                "UPDATE source_secrets SET kek_id = $1, wrapped_dek = $2 \
                 WHERE source_id = $3 AND field = $4 AND kek_id = $5 AND wrapped_dek = $6"
            }
            SealedTable::SecureTokens => {
                "UPDATE secure_tokens SET kek_id = $1, wrapped_dek = $2 \
                 WHERE source_id = $3 AND id = $4 AND kek_id = $5 AND wrapped_dek = $6"
            }
        };
        let done = sqlx::query(sql)
            .bind(&rewrapped.kek_id)
            .bind(&rewrapped.wrapped_dek)
            .bind(&stale.source_id)
            .bind(&stale.key)
            .bind(&stale.sealed.kek_id)
            .bind(&stale.sealed.wrapped_dek)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
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

    async fn fetch_optional(
        &self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<SourceRecord>, RegistryError> {
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut record) = row.as_ref().map(record_from_row).transpose()? else {
            return Ok(None);
        };
        record.custom_domains = sqlx::query_scalar(
            "SELECT domain FROM source_domains WHERE source_id = $1 ORDER BY domain",
        )
        .bind(&record.id)
        .fetch_all(&self.pool)
        .await?;
        let tokens: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM secure_tokens WHERE source_id = $1 \
             AND (expires_at = 0 OR expires_at > $2)",
        )
        .bind(&record.id)
        .bind(crate::registry::unix_now())
        .fetch_one(&self.pool)
        .await?;
        record.active_secure_tokens = u32::try_from(tokens).unwrap_or(u32::MAX);
        Ok(Some(record))
    }
}

/// Inserts the custom domains of Source `source_id`.
async fn insert_domains(
    tx: &mut Transaction<'_, Any>,
    source_id: &str,
    domains: &[String],
) -> Result<(), sqlx::Error> {
    for domain in domains {
        sqlx::query("INSERT INTO source_domains (domain, source_id) VALUES ($1, $2)")
            .bind(domain)
            .bind(source_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Inserts sealed secret `field` of Source `source_id`.
async fn insert_secret(
    tx: &mut Transaction<'_, Any>,
    source_id: &str,
    field: &str,
    sealed: &SealedSecret,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO source_secrets (source_id, field, kek_id, wrapped_dek, nonce, ciphertext) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(source_id)
    .bind(field)
    .bind(&sealed.kek_id)
    .bind(&sealed.wrapped_dek)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .execute(&mut **tx)
    .await?;
    Ok(())
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

/// Reads the sealed-value columns of a `source_secrets` or `secure_tokens` row.
fn sealed_from_row(row: &AnyRow) -> Result<SealedSecret, sqlx::Error> {
    Ok(SealedSecret {
        kek_id: row.try_get("kek_id")?,
        wrapped_dek: row.try_get("wrapped_dek")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

/// Reads a `sources` row (custom domains and token counts are read
/// separately).
fn record_from_row(row: &AnyRow) -> Result<SourceRecord, sqlx::Error> {
    Ok(SourceRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        subdomain: row.try_get("subdomain")?,
        custom_domains: Vec::new(),
        bucket: row.try_get("bucket")?,
        region: row.try_get("region")?,
        endpoint: row.try_get("endpoint")?,
        path_prefix: row.try_get("path_prefix")?,
        access_key_id: row.try_get("access_key_id")?,
        default_params: row.try_get("default_params")?,
        cache_ttl_seconds: unsigned_column(row, "cache_ttl_seconds")?,
        cache_ttl_behavior: behavior_from_db(&row.try_get::<String, _>("cache_ttl_behavior")?)?,
        cache_ttl_error_seconds: unsigned_column(row, "cache_ttl_error_seconds")?,
        image_missing: row.try_get("image_missing")?,
        image_missing_append_params: bool_column(row, "image_missing_append_params")?,
        image_error: row.try_get("image_error")?,
        image_error_append_params: bool_column(row, "image_error_append_params")?,
        secure_url_enabled: bool_column(row, "secure_url_enabled")?,
        enabled: bool_column(row, "enabled")?,
        status: status_from_db(&row.try_get::<String, _>("status")?)?,
        status_message: row.try_get("status_message")?,
        last_deployed_at: row.try_get("last_deployed_at")?,
        upload_access_key_id: row.try_get("upload_access_key_id")?,
        active_secure_tokens: 0,
        config_version: unsigned_column(row, "config_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Reads a BIGINT column into an unsigned type, refusing out-of-range values.
fn unsigned_column<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| decode_error(column, format!("{value} is out of range")))
}

/// Reads a 0/1 BIGINT column as a bool.
fn bool_column(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(decode_error(column, format!("{other} is not 0 or 1"))),
    }
}

fn decode_error(column: &str, problem: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: problem.into(),
    }
}

/// Binds the settings columns `INSERT` and `UPDATE` share, in the order both
/// statements list them: subdomain through status_message.
fn bind_settings<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    record: &'q SourceRecord,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    query
        .bind(&record.subdomain)
        .bind(&record.bucket)
        .bind(&record.region)
        .bind(&record.endpoint)
        .bind(&record.path_prefix)
        .bind(&record.access_key_id)
        .bind(&record.default_params)
        .bind(i64::from(record.cache_ttl_seconds))
        .bind(behavior_to_db(record.cache_ttl_behavior))
        .bind(i64::from(record.cache_ttl_error_seconds))
        .bind(&record.image_missing)
        .bind(i64::from(record.image_missing_append_params))
        .bind(&record.image_error)
        .bind(i64::from(record.image_error_append_params))
        .bind(i64::from(record.secure_url_enabled))
        .bind(i64::from(record.enabled))
        .bind(status_to_db(record.status))
        .bind(&record.status_message)
}

/// The stored name of a cache TTL behaviour.
pub(crate) fn behavior_to_db(behavior: CacheTtlBehavior) -> &'static str {
    match behavior {
        CacheTtlBehavior::Unspecified | CacheTtlBehavior::RespectOrigin => "respect_origin",
        CacheTtlBehavior::OverrideOrigin => "override_origin",
        CacheTtlBehavior::EnforceMinimum => "enforce_minimum",
    }
}

fn behavior_from_db(text: &str) -> Result<CacheTtlBehavior, sqlx::Error> {
    match text {
        "respect_origin" => Ok(CacheTtlBehavior::RespectOrigin),
        "override_origin" => Ok(CacheTtlBehavior::OverrideOrigin),
        "enforce_minimum" => Ok(CacheTtlBehavior::EnforceMinimum),
        other => Err(decode_error(
            "cache_ttl_behavior",
            format!("unknown behaviour {other:?}"),
        )),
    }
}

/// The stored name of a status.
pub(crate) fn status_to_db(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Unspecified | SourceStatus::Pending => "pending",
        SourceStatus::Deploying => "deploying",
        SourceStatus::Deployed => "deployed",
        SourceStatus::Failed => "failed",
    }
}

fn status_from_db(text: &str) -> Result<SourceStatus, sqlx::Error> {
    match text {
        "pending" => Ok(SourceStatus::Pending),
        "deploying" => Ok(SourceStatus::Deploying),
        "deployed" => Ok(SourceStatus::Deployed),
        "failed" => Ok(SourceStatus::Failed),
        other => Err(decode_error("status", format!("unknown status {other:?}"))),
    }
}

/// A config version as the BIGINT column stores it.
fn version_to_db(version: u64) -> Result<i64, RegistryError> {
    i64::try_from(version).map_err(|_| RegistryError::ConfigVersionOutOfRange)
}

/// The field whose unique constraint `error` violated, if it is such an
/// error. PostgreSQL names the constraint; SQLite only says
/// `UNIQUE constraint failed: <table>.<column>`.
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
        (
            "custom_domains",
            "source_domains_pkey",
            "source_domains.domain",
        ),
    ]
    .into_iter()
    .find(|(_, index, column)| constraint == *index || message.contains(column))
    .map(|(field, _, _)| field)
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
