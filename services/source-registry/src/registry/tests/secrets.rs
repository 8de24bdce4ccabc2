//! Secrets at rest and in use: never in a public view or a database
//! dump, decrypted only for read access, re-wrapped by a master-key
//! rotation, converted from before envelope encryption.

use super::*;

/// Get, list and resolve never carry the secret anywhere in the Source.
async fn public_views_never_show_the_secret(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let views = [
        created.clone(),
        registry.get_source("demo").await.unwrap(),
        registry
            .resolve_host("demo.localhost", false)
            .await
            .unwrap()
            .source,
    ];
    let listed = registry.list_sources().await.unwrap();
    for source in views.iter().chain(&listed) {
        let shown = format!("{source:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("AKIAIOSFODNN7EXAMPLE"), "{shown}");
        assert_eq!(source.access_key().id_hint, "…MPLE");
    }
}

/// A dump of the database (SQLite files with WAL, or pg_dump) holds no
/// plaintext read secret, upload secret or secure URL token.
async fn database_dump_holds_no_plaintext_secret(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&{
            let mut request = create_request("demo");
            request.upload_access_key.get_or_insert_default().id = "AKIAUPLOADEXAMPLE".into();
            request.upload_access_key.get_or_insert_default().secret = UPLOAD_SECRET.into();
            request.secure_url_enabled = true;
            request
        })
        .await
        .unwrap();
    registry
        .update_source(&test_update(
            &created.id,
            &[("access_key.secret", Text(format!("{SECRET}-rotated")))],
        ))
        .await
        .unwrap();
    let (first, _) = registry.rotate_secure_token("demo", 60).await.unwrap();
    let (second, _) = registry.rotate_secure_token("demo", 60).await.unwrap();

    let dump = db.dump().await;
    assert!(dump.len() > 1000, "the dump is suspiciously small");
    let secrets = [
        SECRET.to_owned(),
        format!("{SECRET}-rotated"),
        UPLOAD_SECRET.to_owned(),
        first.expose_secret().to_owned(),
        second.expose_secret().to_owned(),
    ];
    for secret in &secrets {
        for form in [secret.clone(), BASE64.encode(secret)] {
            assert!(
                !dump.windows(form.len()).any(|w| w == form.as_bytes()),
                "a plaintext secret is in the database dump"
            );
        }
    }
    // They are all still there, encrypted.
    let access = registry.read_access(&created.id).await.unwrap();
    assert_eq!(
        access.bucket.key.secret.expose_secret(),
        format!("{SECRET}-rotated")
    );
    let resolved = registry.resolve_host("demo.x", false).await.unwrap();
    assert_eq!(resolved.secure_url_tokens.len(), 2);
}

/// Read access decrypts the secret and carries the current settings.
async fn read_access_decrypts_the_secret(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let access = registry.read_access(&created.id).await.unwrap();
    assert_eq!(access.bucket.key.secret.expose_secret(), SECRET);
    assert_eq!(access.bucket.key.id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(access.bucket.location.bucket, "images");
    assert_eq!(
        access.bucket.location.endpoint.as_deref(),
        Some("http://127.0.0.1:9000")
    );
    assert_eq!(access.bucket.location.path_prefix, "photos");
    assert_eq!(access.config_version, 1);
}

/// Read access is by id only: a name or unknown id is SOURCE_NOT_FOUND.
async fn read_access_needs_an_existing_id(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    assert!(is_not_found(
        &registry.read_access("demo").await.unwrap_err()
    ));
    assert!(is_not_found(
        &registry.read_access("src_000000000000").await.unwrap_err()
    ));
}

/// Rotating the master key re-wraps every data key one record at a
/// time: interrupted after some, the rest are re-wrapped by a second
/// run, and then the new key alone opens everything.
async fn master_key_rotation_is_resumable(db: TestDb) {
    let old = || MasterKey::from_bytes([1; 32]);
    let new = || MasterKey::from_bytes([2; 32]);
    let registry = db.open_with(MasterKeys::new(old())).await;
    let mut tokens = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        registry
            .create_source(&{
                let mut request = create_request(name);
                request.upload_access_key.get_or_insert_default().id = "AKIAUPLOADEXAMPLE".into();
                request.upload_access_key.get_or_insert_default().secret =
                    format!("{UPLOAD_SECRET}-{name}");
                request.secure_url_enabled = true;
                request
            })
            .await
            .unwrap();
    }
    for name in ["alpha", "beta"] {
        let (token, _) = registry.rotate_secure_token(name, 0).await.unwrap();
        tokens.push((name, token));
    }
    registry.close().await;
    let rotating = || MasterKeys::new(new()).with_previous(old());

    let mut seen = Vec::new();
    let first = crate::rotate_master_key(db.database(), rotating(), Some(3), |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!((first.rewrapped, first.total, first.remaining), (3, 8, 5));
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.last(), Some(&first));
    // The new key alone cannot open what is left.
    let error = Registry::open(db.database(), new()).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::MasterKeyMismatch { count: 5, .. }),
        "{error:?}"
    );

    let second = crate::rotate_master_key(db.database(), rotating(), None, |_| {})
        .await
        .unwrap();
    assert_eq!(
        (second.rewrapped, second.total, second.remaining),
        (5, 5, 0)
    );
    let again = crate::rotate_master_key(db.database(), rotating(), None, |_| {})
        .await
        .unwrap();
    assert_eq!((again.rewrapped, again.total, again.remaining), (0, 0, 0));

    let error = Registry::open(db.database(), old()).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::MasterKeyMismatch { count: 8, .. }),
        "{error:?}"
    );
    let registry = Registry::open(db.database(), new()).await.unwrap();
    for name in ["alpha", "beta", "gamma"] {
        let record = registry.find(name).await.unwrap();
        let access = registry.read_access(&record.id).await.unwrap();
        assert_eq!(access.bucket.key.secret.expose_secret(), SECRET);
        let upload = registry.upload_credentials(&record).await.unwrap().unwrap();
        assert_eq!(
            upload.secret.expose_secret(),
            format!("{UPLOAD_SECRET}-{name}")
        );
    }
    for (name, token) in tokens {
        let resolved = registry
            .resolve_host(&format!("{name}.x"), false)
            .await
            .unwrap();
        assert_eq!(resolved.secure_url_tokens[0].token, token.expose_secret());
    }
}

/// A secret stored before envelope encryption (sealed directly by the
/// master key) is converted when the registry opens, and still opens.
async fn legacy_secrets_are_converted(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    registry.close().await;
    let key = MasterKey::parse(crate::credentials_crypto::tests::TEST_KEY_HEX).unwrap();
    let legacy = crate::credentials_crypto::tests::legacy_seal(
        &key,
        "legacy-secret",
        &created.id,
        SECRET_ACCESS_KEY_FIELD,
    );
    let pool = db.database().connect().await.unwrap();
    sqlx::query("DELETE FROM source_secrets WHERE source_id = $1")
        .bind(&created.id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE sources SET secret_access_key_sealed = $1, secret_key_id = $2 WHERE id = $3",
    )
    .bind(&legacy)
    .bind(key.key_id())
    .bind(&created.id)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let registry = db.open().await;
    let access = registry.read_access(&created.id).await.unwrap();
    assert_eq!(access.bucket.key.secret.expose_secret(), "legacy-secret");
    assert!(registry.store.legacy_secrets().await.unwrap().is_empty());
    let usage = registry.store.kek_usage().await.unwrap();
    assert_eq!(usage, [(test_keys().current_id().to_owned(), 1)]);
}

on_both_backends!(
    public_views_never_show_the_secret,
    database_dump_holds_no_plaintext_secret,
    read_access_decrypts_the_secret,
    read_access_needs_an_existing_id,
    master_key_rotation_is_resumable,
    legacy_secrets_are_converted,
);
