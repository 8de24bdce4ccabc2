//! Secure URL tokens: rotation (add one, retire the others) and the ones
//! still accepted.

use sqlx::Row as _;

use super::SourceStore;
use super::secrets::sealed_from_row;
use crate::credentials_crypto::SealedSecret;
use crate::error::RegistryError;

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

// === impl SourceStore: tokens ===

impl SourceStore {
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
}
