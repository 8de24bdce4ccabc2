//! Opening a database: persistence across reopen, the master-key check,
//! and databases that cannot be opened.

use super::*;

/// Data survives reopening the database file.
async fn sources_persist_across_reopen(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    registry.close().await;
    let reopened = db.open().await;
    assert_eq!(reopened.get_source("demo").await.unwrap(), created);
    let access = reopened.read_access(&created.id).await.unwrap();
    assert_eq!(access.bucket.key.secret.expose_secret(), SECRET);
}

/// Reopening with a different master key refuses to start.
async fn reopen_with_wrong_key_is_refused(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    registry.close().await;
    let other = MasterKey::from_bytes([9; 32]);
    let error = Registry::open(db.database(), other).await.unwrap_err();
    assert!(matches!(
        error,
        RegistryError::MasterKeyMismatch { count: 1, .. }
    ));
    let message = error.to_string();
    assert!(message.contains(test_keys().current_id()), "{message}");
    assert!(message.contains("--previous-master-key-file"), "{message}");
}

/// An empty database accepts any master key.
async fn empty_database_accepts_any_key(db: TestDb) {
    db.open().await.close().await;
    let other = MasterKey::from_bytes([9; 32]);
    Registry::open(db.database(), other).await.unwrap();
}

/// A database path in a missing directory fails with a database error.
#[tokio::test]
async fn unopenable_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("registry.db");
    let error = Registry::open(path, test_keys()).await.unwrap_err();
    assert!(matches!(error, RegistryError::Database(_)), "{error:?}");
}

/// A PostgreSQL server nobody listens on fails with a database error.
#[tokio::test]
async fn unreachable_postgres_is_an_error() {
    let port = imgmesh_test_support::unused_port();
    let database = Database::postgres(&format!("postgres://postgres@127.0.0.1:{port}/x")).unwrap();
    let error = Registry::open(database, test_keys()).await.unwrap_err();
    assert!(matches!(error, RegistryError::Database(_)), "{error:?}");
}

on_both_backends!(
    sources_persist_across_reopen,
    reopen_with_wrong_key_is_refused,
    empty_database_accepts_any_key,
);
