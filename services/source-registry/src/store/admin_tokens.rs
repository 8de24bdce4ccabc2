//! Named, scoped credentials of the admin API (`admin_tokens`, migration
//! 0005), built like the API keys of the public render API
//! ([`crate::api_key_store`]): a token is `imat_` followed by 64 hex digits
//! (32 random bytes), only its SHA-256 is stored, and it is shown once, at
//! creation. Each has a name (which the audit log records), a scope and an
//! optional expiry.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::SourceStore;
use crate::api_key_store::secret_sha256;
use crate::error::RegistryError;

/// The prefix of every admin token, so a leaked one is recognisable in a scan.
const TOKEN_PREFIX: &str = "imat_";

/// Longest token name.
const MAX_NAME_CHARS: usize = 100;

/// The name of the gateway's `--admin-token-file` credential, which no
/// stored token may take.
pub(crate) const BOOTSTRAP_NAME: &str = "bootstrap";

/// What an admin token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminScope {
    /// Read everything, change nothing.
    ReadOnly,
    /// Read and change only these Source ids.
    SourceAdmin(Vec<String>),
    /// Everything.
    FullAdmin,
}

/// An admin token as stored: everything but the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminToken {
    /// Stable identifier, e.g. `adm_4f0c2a9d1b7e`.
    pub(crate) id: String,
    /// Who or what holds it.
    pub(crate) name: String,
    /// What it may do.
    pub(crate) scope: AdminScope,
    /// Creation time, Unix seconds.
    pub(crate) created_at: i64,
    /// When it stops working, Unix seconds; 0 for never.
    pub(crate) expires_at: i64,
    /// Revocation time, Unix seconds; 0 while it works.
    pub(crate) revoked_at: i64,
}

// === impl SourceStore: admin tokens ===

impl SourceStore {
    /// Creates a token named `name` with `scope`, expiring at `expires_at`
    /// (0: never), at `now`; returns it as stored and the token itself,
    /// which is never shown again.
    pub(crate) async fn create_admin_token(
        &self,
        name: &str,
        scope: AdminScope,
        expires_at: i64,
        now: i64,
    ) -> Result<(AdminToken, String), RegistryError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(RegistryError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if name.eq_ignore_ascii_case(BOOTSTRAP_NAME) {
            return Err(RegistryError::invalid(
                "name",
                "bootstrap names the gateway's --admin-token-file credential",
            ));
        }
        if let AdminScope::SourceAdmin(ids) = &scope
            && (ids.is_empty() || ids.iter().any(|id| id.is_empty() || id.contains(' ')))
        {
            return Err(RegistryError::invalid(
                "source_ids",
                "a Source admin token must list Source ids",
            ));
        }
        if expires_at != 0 && expires_at <= now {
            return Err(RegistryError::invalid(
                "expires_at",
                "must be in the future, or 0 for never",
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let token = AdminToken {
            id: format!("adm_{}", hex::encode(rand::random::<[u8; 6]>())),
            name: name.to_owned(),
            scope,
            created_at: now,
            expires_at,
            revoked_at: 0,
        };
        let (scope_name, source_ids) = scope_columns(&token.scope);
        sqlx::query(
            "INSERT INTO admin_tokens (id, name, secret_sha256, scope, source_ids, created_at, \
             expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(secret_sha256(&secret))
        .bind(scope_name)
        .bind(source_ids)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok((token, secret))
    }

    /// Every admin token, revoked and expired ones included, oldest first.
    pub(crate) async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, name, scope, source_ids, created_at, expires_at, revoked_at \
             FROM admin_tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(token_from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes admin token `id` at `now`; the token as stored, `None` when
    /// there is no such token. Revoking twice keeps the first time.
    pub(crate) async fn revoke_admin_token(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<AdminToken>, RegistryError> {
        sqlx::query("UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query(
            "SELECT id, name, scope, source_ids, created_at, expires_at, revoked_at \
             FROM admin_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    /// The live token whose secret is `secret` at `now`; `None` for an
    /// unknown, revoked or expired one (they are not told apart).
    pub(crate) async fn authenticate_admin_token(
        &self,
        secret: &str,
        now: i64,
    ) -> Result<Option<AdminToken>, RegistryError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, name, scope, source_ids, created_at, expires_at, revoked_at \
             FROM admin_tokens WHERE secret_sha256 = $1 AND revoked_at = 0 \
             AND (expires_at = 0 OR expires_at > $2)",
        )
        .bind(secret_sha256(secret))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }
}

/// The `scope` and `source_ids` columns of a scope.
fn scope_columns(scope: &AdminScope) -> (&'static str, String) {
    match scope {
        AdminScope::ReadOnly => ("read_only", String::new()),
        AdminScope::SourceAdmin(ids) => ("source_admin", ids.join(" ")),
        AdminScope::FullAdmin => ("full_admin", String::new()),
    }
}

fn token_from_row(row: &AnyRow) -> Result<AdminToken, sqlx::Error> {
    let scope: String = row.try_get("scope")?;
    let source_ids: String = row.try_get("source_ids")?;
    let scope = match scope.as_str() {
        "read_only" => AdminScope::ReadOnly,
        "full_admin" => AdminScope::FullAdmin,
        "source_admin" => AdminScope::SourceAdmin(
            source_ids
                .split(' ')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown admin token scope {other:?}").into(),
            ));
        }
    };
    Ok(AdminToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db::{TestDb, on_both_backends};

    on_both_backends!(lifecycle, bad_tokens_are_refused);

    /// Create shows the token once and stores only its hash; authenticate
    /// finds it until it expires or is revoked; list shows every token.
    async fn lifecycle(db: TestDb) {
        let store = SourceStore::open(&db.database()).await.unwrap();
        let scope = AdminScope::SourceAdmin(vec!["src_a".to_owned(), "src_b".to_owned()]);
        let (created, secret) = store
            .create_admin_token(" shop team ", scope.clone(), 0, 1_000)
            .await
            .unwrap();
        assert!(
            secret.starts_with("imat_") && secret.len() == 5 + 64,
            "{secret}"
        );
        assert_eq!(created.name, "shop team");
        assert_eq!(created.scope, scope);
        assert!(!String::from_utf8_lossy(&db.dump().await).contains(&secret[5..]));
        let found = store
            .authenticate_admin_token(&secret, 5_000)
            .await
            .unwrap();
        assert_eq!(found, Some(created.clone()));
        assert_eq!(
            store
                .authenticate_admin_token(&secret.replace("imat_", "imk_"), 5_000)
                .await
                .unwrap(),
            None
        );

        let (expiring, expiring_secret) = store
            .create_admin_token("auditor", AdminScope::ReadOnly, 2_000, 1_001)
            .await
            .unwrap();
        assert!(
            store
                .authenticate_admin_token(&expiring_secret, 1_999)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .authenticate_admin_token(&expiring_secret, 2_000)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.list_admin_tokens().await.unwrap(),
            vec![created.clone(), expiring]
        );

        let revoked = store
            .revoke_admin_token(&created.id, 3_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.revoked_at, 3_000);
        assert_eq!(
            store
                .authenticate_admin_token(&secret, 3_001)
                .await
                .unwrap(),
            None
        );
        let again = store
            .revoke_admin_token(&created.id, 4_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.revoked_at, 3_000);
        assert_eq!(
            store.revoke_admin_token("adm_missing", 1).await.unwrap(),
            None
        );
    }

    /// Names, Source lists and expiries are checked before anything is stored.
    async fn bad_tokens_are_refused(db: TestDb) {
        let store = SourceStore::open(&db.database()).await.unwrap();
        let cases = [
            ("", AdminScope::FullAdmin, 0),
            (&*"x".repeat(101), AdminScope::FullAdmin, 0),
            ("Bootstrap", AdminScope::FullAdmin, 0),
            ("t", AdminScope::SourceAdmin(vec![]), 0),
            ("t", AdminScope::SourceAdmin(vec!["a b".to_owned()]), 0),
            ("t", AdminScope::ReadOnly, 100),
        ];
        for (name, scope, expires_at) in cases {
            let refused = store
                .create_admin_token(name, scope.clone(), expires_at, 100)
                .await;
            assert!(
                matches!(refused, Err(RegistryError::InvalidField { .. })),
                "{name:?} {scope:?}: {refused:?}"
            );
        }
        assert!(store.list_admin_tokens().await.unwrap().is_empty());
    }
}
