//! Sealed secrets (`source_secrets`, and the legacy columns of `sources`
//! from before envelope encryption), and the master-key rotation's view of
//! every sealed value, secure URL tokens included.

use sqlx::any::AnyRow;
use sqlx::{Any, Row as _, Transaction};

use super::SourceStore;
use crate::credentials_crypto::SealedSecret;
use crate::error::RegistryError;

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

// === impl SourceStore: secrets ===

impl SourceStore {
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
}

/// Inserts sealed secret `field` of Source `source_id`.
pub(super) async fn insert_secret(
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

/// Reads the sealed-value columns of a `source_secrets` or `secure_tokens` row.
pub(super) fn sealed_from_row(row: &AnyRow) -> Result<SealedSecret, sqlx::Error> {
    Ok(SealedSecret {
        kek_id: row.try_get("kek_id")?,
        wrapped_dek: row.try_get("wrapped_dek")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}
