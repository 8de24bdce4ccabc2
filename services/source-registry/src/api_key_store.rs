//! API keys for the public gRPC render API, in the registry's database
//! (`migrations/0004_api_keys.sql`, SQLite or PostgreSQL alike).
//!
//! A key is `imk_` followed by 64 hex digits (32 random bytes): far too
//! many to guess, so one SHA-256 of it is a safe thing to store and to look
//! it up by (no salt or slow hash is needed for a random secret; that is
//! for passwords). The key is returned once, at creation. Each key has a
//! name, the operations it may perform and the Sources it may use (a list
//! of ids, or every Source).
//!
//! Operations are a list of names rather than fixed columns so that the
//! admin tokens of issue 15 (read-only, Source admin, full admin) can be
//! the same credential with more operation names.

use sha2::{Digest as _, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row as _};

use crate::error::RegistryError;

/// What an API key may be allowed to do.
pub(crate) const OPERATIONS: &[&str] = &["render", "describe"];

/// The prefix of every key, so a leaked key is recognisable in a scan.
const KEY_PREFIX: &str = "imk_";

/// Longest key name.
const MAX_NAME_CHARS: usize = 100;

/// The Sources a key may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceScope {
    /// Every Source, present and future.
    All,
    /// Only these Source ids.
    Only(Vec<String>),
}

/// An API key as stored: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiKey {
    /// Stable identifier, e.g. `key_4f0c2a9d1b7e`.
    pub(crate) id: String,
    /// What the key is for, chosen by its creator.
    pub(crate) name: String,
    /// Operations it may perform (names from [`OPERATIONS`]).
    pub(crate) operations: Vec<String>,
    /// Sources it may use.
    pub(crate) sources: SourceScope,
    /// Creation time, Unix seconds.
    pub(crate) created_at: i64,
    /// Revocation time, Unix seconds; 0 while the key works.
    pub(crate) revoked_at: i64,
}

/// The `api_keys` table.
#[derive(Debug, Clone)]
pub(crate) struct ApiKeyStore {
    pool: AnyPool,
}

// === impl ApiKey ===

impl ApiKey {
    /// Whether the key, not revoked, may perform `operation` on Source `source_id`.
    /// (The gateway decides the same from the wire form of the key.)
    #[cfg(test)]
    pub(crate) fn allows(&self, operation: &str, source_id: &str) -> bool {
        self.revoked_at == 0
            && self.operations.iter().any(|allowed| allowed == operation)
            && match &self.sources {
                SourceScope::All => true,
                SourceScope::Only(ids) => ids.iter().any(|id| id == source_id),
            }
    }
}

// === impl ApiKeyStore ===

impl ApiKeyStore {
    /// The store over the registry's (migrated) pool.
    pub(crate) fn new(pool: AnyPool) -> ApiKeyStore {
        ApiKeyStore { pool }
    }

    /// Creates a key named `name` for `operations` on `sources` at `now`;
    /// returns it as stored and the key itself, which is never shown again.
    pub(crate) async fn create(
        &self,
        name: &str,
        operations: &[String],
        sources: SourceScope,
        now: i64,
    ) -> Result<(ApiKey, String), RegistryError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(RegistryError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if operations.is_empty() {
            return Err(RegistryError::invalid(
                "operations",
                "must name at least one",
            ));
        }
        if let Some(unknown) = operations
            .iter()
            .find(|op| !OPERATIONS.contains(&op.as_str()))
        {
            return Err(RegistryError::invalid(
                "operations",
                format!(
                    "unknown operation {unknown:?} (known: {})",
                    OPERATIONS.join(", ")
                ),
            ));
        }
        if let SourceScope::Only(ids) = &sources
            && (ids.is_empty() || ids.iter().any(|id| id.is_empty() || id.contains(' ')))
        {
            return Err(RegistryError::invalid(
                "sources",
                "must list Source ids, or be every Source",
            ));
        }
        let mut operations = operations.to_vec();
        operations.sort();
        operations.dedup();
        let secret = format!("{KEY_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let key = ApiKey {
            id: format!("key_{}", hex::encode(rand::random::<[u8; 6]>())),
            name: name.to_owned(),
            operations,
            sources,
            created_at: now,
            revoked_at: 0,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, secret_sha256, operations, source_ids, created_at, \
             revoked_at) VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(secret_sha256(&secret))
        .bind(key.operations.join(" "))
        .bind(source_ids_text(&key.sources))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((key, secret))
    }

    /// Every key, revoked ones included, oldest first.
    pub(crate) async fn list(&self) -> Result<Vec<ApiKey>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, name, operations, source_ids, created_at, revoked_at FROM api_keys \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes key `id` at `now`; the key as stored, `None` when there is
    /// no such key. Revoking a revoked key keeps its first revocation time.
    pub(crate) async fn revoke(&self, id: &str, now: i64) -> Result<Option<ApiKey>, RegistryError> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query(
            "SELECT id, name, operations, source_ids, created_at, revoked_at FROM api_keys \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    /// The live key whose secret is `secret`; `None` for an unknown or
    /// revoked one (the two are not told apart).
    pub(crate) async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, RegistryError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, name, operations, source_ids, created_at, revoked_at FROM api_keys \
             WHERE secret_sha256 = $1 AND revoked_at = 0",
        )
        .bind(secret_sha256(secret))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }
}

/// Lowercase hex SHA-256 of a key (or an admin token: `store::admin_tokens`).
pub(crate) fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The `source_ids` column for a scope.
fn source_ids_text(sources: &SourceScope) -> String {
    match sources {
        SourceScope::All => "*".to_owned(),
        SourceScope::Only(ids) => ids.join(" "),
    }
}

fn key_from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let operations: String = row.try_get("operations")?;
    let source_ids: String = row.try_get("source_ids")?;
    let sources = if source_ids == "*" {
        SourceScope::All
    } else {
        SourceScope::Only(source_ids.split(' ').map(str::to_owned).collect())
    };
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        operations: operations.split(' ').map(str::to_owned).collect(),
        sources,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SourceStore;
    use crate::test_db::TestDb;

    async fn store(db: &TestDb) -> ApiKeyStore {
        let sources = SourceStore::open(&db.database()).await.unwrap();
        ApiKeyStore::new(sources.pool().clone())
    }

    fn ops(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Create shows the key once and stores only its hash; authenticate finds it, list shows it, revoke stops it.
    async fn lifecycle(db: TestDb) {
        let keys = store(&db).await;
        let (created, secret) = keys
            .create(
                " uploader ",
                &ops(&["render", "describe", "render"]),
                SourceScope::Only(vec!["src_a".to_owned()]),
                1_000,
            )
            .await
            .unwrap();
        assert!(
            secret.starts_with("imk_") && secret.len() == 4 + 64,
            "{secret}"
        );
        assert_eq!(created.name, "uploader");
        assert_eq!(created.operations, ops(&["describe", "render"]));
        assert!(!String::from_utf8_lossy(&db.dump().await).contains(&secret[4..]));

        let found = keys
            .authenticate(&secret)
            .await
            .unwrap()
            .expect("the key works");
        assert_eq!(found, created);
        assert!(found.allows("render", "src_a"));
        assert!(!found.allows("render", "src_b"));
        let mut wrong = secret.clone();
        wrong.replace_range(10..11, if &secret[10..11] == "0" { "1" } else { "0" });
        assert_eq!(keys.authenticate(&wrong).await.unwrap(), None);
        assert_eq!(keys.authenticate("").await.unwrap(), None);

        let (all, _) = keys
            .create("mailer", &ops(&["render"]), SourceScope::All, 1_001)
            .await
            .unwrap();
        assert!(all.allows("render", "src_anything"));
        assert!(!all.allows("describe", "src_anything"));
        assert_eq!(keys.list().await.unwrap(), vec![created.clone(), all]);

        let revoked = keys.revoke(&created.id, 2_000).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, 2_000);
        assert!(!revoked.allows("render", "src_a"));
        assert_eq!(keys.authenticate(&secret).await.unwrap(), None);
        let again = keys.revoke(&created.id, 3_000).await.unwrap().unwrap();
        assert_eq!(again.revoked_at, 2_000);
        assert_eq!(keys.revoke("key_missing", 3_000).await.unwrap(), None);
    }

    /// The key lifecycle on SQLite.
    #[tokio::test]
    async fn lifecycle_on_sqlite() {
        lifecycle(TestDb::sqlite()).await;
    }

    /// The key lifecycle on PostgreSQL.
    #[tokio::test]
    async fn lifecycle_on_postgres() {
        lifecycle(TestDb::postgres().await).await;
    }

    /// Names, operations and Source lists are checked before anything is stored.
    #[tokio::test]
    async fn bad_keys_are_refused() {
        let db = TestDb::sqlite();
        let keys = store(&db).await;
        let cases = [
            ("", ops(&["render"]), SourceScope::All),
            (&*"x".repeat(101), ops(&["render"]), SourceScope::All),
            ("k", ops(&[]), SourceScope::All),
            ("k", ops(&["render", "purge"]), SourceScope::All),
            ("k", ops(&["render"]), SourceScope::Only(vec![])),
            (
                "k",
                ops(&["render"]),
                SourceScope::Only(vec!["a b".to_owned()]),
            ),
        ];
        for (name, operations, sources) in cases {
            let refused = keys.create(name, &operations, sources, 1).await;
            assert!(
                matches!(refused, Err(RegistryError::InvalidField { .. })),
                "{name:?} {operations:?}: {refused:?}"
            );
        }
        assert!(keys.list().await.unwrap().is_empty());
    }
}
