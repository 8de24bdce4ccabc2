//! The `sources` table and its custom domains: create, read, update and
//! delete a Source, and record where its deploy stands.

use sqlx::{Any, Transaction};

use imgmesh_proto::registry::v1::SourceStatus;

use super::SourceStore;
use super::row_codec::{bind_settings, record_from_row, select_sources, version_to_db};
use super::secrets::insert_secret;
use crate::clock::unix_now;
use crate::credentials_crypto::SealedSecret;
use crate::error::RegistryError;
use crate::source::SourceRecord;
use crate::source::deploy_state::status_to_db;

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

// === impl SourceStore: sources ===

impl SourceStore {
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
                .bind(record.deploy.last_deployed_at)
                .bind(&record.upload_access_key_id)
                .bind(version_to_db(record.config_version)?)
                .bind(record.created_at)
                .bind(record.updated_at)
                .execute(&mut *tx)
                .await?;
            insert_domains(&mut tx, &record.id, &record.routing.custom_domains).await?;
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
                record.routing.custom_domains.push(domain);
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
                insert_domains(&mut tx, &record.id, &record.routing.custom_domains).await?;
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
        record.routing.custom_domains = sqlx::query_scalar(
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
        .bind(unix_now())
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
