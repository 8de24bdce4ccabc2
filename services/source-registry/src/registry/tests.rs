//! Tests of the registry's operations, most of them on both SQLite and
//! PostgreSQL (see [`crate::test_db`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt as _;
use secrecy::ExposeSecret;

use super::*;
use crate::credentials_crypto::MasterKey;
use crate::test_db::{TestDb, on_both_backends, test_keys};
use crate::test_s3::{Policy, PolicyFront, S3_ACCESS_KEY, S3_SECRET_KEY, S3Operation, S3sFs};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzSECRET";
const UPLOAD_SECRET: &str = "upload-secret-9f8e7d6c5b4a";

fn create_request(name: &str) -> proto::CreateSourceRequest {
    proto::CreateSourceRequest {
        name: name.into(),
        subdomain: name.into(),
        bucket: "images".into(),
        region: "us-east-1".into(),
        endpoint: "http://127.0.0.1:9000".into(),
        path_prefix: "photos".into(),
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: SECRET.into(),
        default_params: "auto=format".into(),
        cache_ttl_seconds: 3600,
        ..Default::default()
    }
}

fn is_not_found(error: &RegistryError) -> bool {
    matches!(error, RegistryError::NotFound(_))
}

/// A created Source reads back by id and by name, with version 1 and a hint.
async fn create_then_get_by_id_and_name(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    assert!(created.id.starts_with("src_") && created.id.len() == 16);
    assert!(created.id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.config_version, 1);
    assert_eq!(created.access_key_id_hint, "…MPLE");
    assert_eq!(created.cache_ttl_seconds, 3600);
    assert_eq!(created.created_at, created.updated_at);
    assert!(created.created_at > 1_700_000_000);

    assert_eq!(registry.get_source(&created.id).await.unwrap(), created);
    assert_eq!(registry.get_source("demo").await.unwrap(), created);
}

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
        assert_eq!(source.access_key_id_hint, "…MPLE");
    }
}

/// A dump of the database (SQLite files with WAL, or pg_dump) holds no
/// plaintext read secret, upload secret or secure URL token.
async fn database_dump_holds_no_plaintext_secret(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&proto::CreateSourceRequest {
            upload_access_key_id: "AKIAUPLOADEXAMPLE".into(),
            upload_secret_access_key: UPLOAD_SECRET.into(),
            secure_url_enabled: true,
            ..create_request("demo")
        })
        .await
        .unwrap();
    registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: created.id.clone(),
            secret_access_key: Some(format!("{SECRET}-rotated")),
            ..Default::default()
        })
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
        access.secret_access_key.expose_secret(),
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
    assert_eq!(access.secret_access_key.expose_secret(), SECRET);
    assert_eq!(access.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(access.bucket, "images");
    assert_eq!(access.endpoint, "http://127.0.0.1:9000");
    assert_eq!(access.path_prefix, "photos");
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

/// A second Source with a taken subdomain is ALREADY_EXISTS naming it.
async fn duplicate_subdomain_already_exists(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let request = proto::CreateSourceRequest {
        name: "other".into(),
        ..create_request("demo")
    };
    let error = registry.create_source(&request).await.unwrap_err();
    assert!(matches!(
        error,
        RegistryError::AlreadyExists { field: "subdomain" }
    ));
}

/// A second Source with a taken name is ALREADY_EXISTS naming it.
async fn duplicate_name_already_exists(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let request = proto::CreateSourceRequest {
        subdomain: "other".into(),
        ..create_request("demo")
    };
    let error = registry.create_source(&request).await.unwrap_err();
    assert!(matches!(
        error,
        RegistryError::AlreadyExists { field: "name" }
    ));
}

/// Concurrent creates of one subdomain: exactly one wins, the rest are
/// ALREADY_EXISTS (the unique index decides, not a read-then-write).
async fn concurrent_creates_are_race_safe(db: TestDb) {
    let registry = db.open().await;
    let attempts = (0..8).map(|i| {
        let registry = registry.clone();
        tokio::spawn(async move {
            let request = proto::CreateSourceRequest {
                name: format!("racer-{i}"),
                ..create_request("contested")
            };
            registry.create_source(&request).await
        })
    });
    let results = join_handles(attempts).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1);
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(
            result,
            Err(RegistryError::AlreadyExists { field: "subdomain" })
        ));
    }
}

async fn join_handles<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}

/// An update changes only the present fields and bumps the version.
async fn update_changes_fields_and_bumps_version(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let updated = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            subdomain: Some("renamed".into()),
            endpoint: Some(String::new()),
            path_prefix: Some("/a//b/".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.config_version, 2);
    assert_eq!(updated.subdomain, "renamed");
    assert_eq!(updated.endpoint, "");
    assert_eq!(updated.path_prefix, "a/b");
    assert_eq!(updated.bucket, created.bucket);
    assert_eq!(updated.default_params, created.default_params);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(registry.get_source(&created.id).await.unwrap(), updated);

    let again = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(again.config_version, 3);
    assert!(is_not_found(
        &registry.resolve_host("demo", false).await.unwrap_err()
    ));
    assert_eq!(
        registry
            .resolve_host("renamed.x", false)
            .await
            .unwrap()
            .source
            .id,
        created.id
    );
}

/// Concurrent updates of one Source each bump the version exactly once.
async fn concurrent_updates_lose_no_version(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let updates = (0..4).map(|i| {
        let registry = registry.clone();
        tokio::spawn(async move {
            let request = proto::UpdateSourceRequest {
                id_or_name: "demo".into(),
                cache_ttl_seconds: Some(100 + i),
                ..Default::default()
            };
            registry.update_source(&request).await
        })
    });
    for result in join_handles(updates).await {
        result.unwrap();
    }
    assert_eq!(registry.get_source("demo").await.unwrap().config_version, 5);
}

/// Updating to a subdomain another Source uses is ALREADY_EXISTS.
async fn update_to_taken_subdomain_already_exists(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    registry
        .create_source(&create_request("shop"))
        .await
        .unwrap();
    let error = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "shop".into(),
            subdomain: Some("demo".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RegistryError::AlreadyExists { field: "subdomain" }
    ));
    assert_eq!(registry.get_source("shop").await.unwrap().config_version, 1);
}

/// Updating a bad field or an unknown Source fails without changing anything.
async fn update_errors(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let error = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            bucket: Some("x".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RegistryError::InvalidField {
            field: "bucket",
            ..
        }
    ));
    let error = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(is_not_found(&error));
    assert_eq!(registry.get_source("demo").await.unwrap().config_version, 1);
}

/// Lists are ordered by name.
async fn list_is_ordered_by_name(db: TestDb) {
    let registry = db.open().await;
    assert!(registry.list_sources().await.unwrap().is_empty());
    for name in ["zeta", "alpha", "mid"] {
        registry.create_source(&create_request(name)).await.unwrap();
    }
    let names: Vec<String> = registry
        .list_sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["alpha", "mid", "zeta"]);
}

/// Delete by name or id removes the Source; deleting again is not found.
async fn delete_removes_the_source(db: TestDb) {
    let registry = db.open().await;
    let demo = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let shop = registry
        .create_source(&create_request("shop"))
        .await
        .unwrap();
    assert_eq!(registry.delete_source("demo").await.unwrap(), demo.id);
    assert_eq!(registry.delete_source(&shop.id).await.unwrap(), shop.id);
    assert!(is_not_found(
        &registry.get_source("demo").await.unwrap_err()
    ));
    assert!(is_not_found(
        &registry.delete_source("demo").await.unwrap_err()
    ));
    // The name and subdomain are free again.
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
}

/// Unknown ids and names are SOURCE_NOT_FOUND.
async fn get_unknown_is_not_found(db: TestDb) {
    let registry = db.open().await;
    assert!(is_not_found(
        &registry.get_source("nobody").await.unwrap_err()
    ));
    assert!(is_not_found(
        &registry.get_source("src_0123456789ab").await.unwrap_err()
    ));
}

/// ResolveHost routes by the host's first DNS label, case-insensitively.
async fn resolve_host_uses_the_first_label(db: TestDb) {
    let registry = db.open().await;
    let demo = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    for host in [
        "demo.localhost",
        "demo",
        "DEMO.Example.COM",
        "demo.img.example.com.",
    ] {
        assert_eq!(
            registry.resolve_host(host, false).await.unwrap().source.id,
            demo.id,
            "{host}"
        );
    }
    for host in [
        "other.localhost",
        "localhost",
        "x.demo.localhost",
        "-bad.localhost",
        ".demo",
    ] {
        let error = registry.resolve_host(host, false).await.unwrap_err();
        assert!(is_not_found(&error), "{host}: {error:?}");
    }
    let error = registry.resolve_host("", false).await.unwrap_err();
    assert!(matches!(
        error,
        RegistryError::InvalidField { field: "host", .. }
    ));
}

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
    assert_eq!(access.secret_access_key.expose_secret(), SECRET);
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let database = Database::postgres(&format!("postgres://postgres@127.0.0.1:{port}/x")).unwrap();
    let error = Registry::open(database, test_keys()).await.unwrap_err();
    assert!(matches!(error, RegistryError::Database(_)), "{error:?}");
}

/// A new Source is pending and enabled (unless created disabled), with
/// imgix's defaults for the cache policy and every field returned.
async fn create_stores_every_field(db: TestDb) {
    let registry = db.open().await;
    let plain = registry
        .create_source(&create_request("plain"))
        .await
        .unwrap();
    assert_eq!(plain.status(), proto::SourceStatus::Pending);
    assert!(plain.enabled);
    assert_eq!(
        plain.cache_ttl_behavior(),
        proto::CacheTtlBehavior::RespectOrigin
    );
    assert_eq!(plain.cache_ttl_error_seconds, 300);
    assert!(plain.custom_domains.is_empty());
    assert_eq!(plain.upload_access_key_id_hint, "");
    assert_eq!(plain.last_deployed_at, 0);

    let request = proto::CreateSourceRequest {
        custom_domains: vec!["IMG.example.com".into(), "cdn.example.com.".into()],
        cache_ttl_behavior: proto::CacheTtlBehavior::EnforceMinimum.into(),
        cache_ttl_error_seconds: 60,
        image_missing: "missing.png".into(),
        image_missing_append_params: true,
        image_error: "/errors/broken.png".into(),
        image_error_append_params: true,
        secure_url_enabled: true,
        disabled: true,
        ..create_request("full")
    };
    let full = registry.create_source(&request).await.unwrap();
    assert_eq!(full.custom_domains, ["cdn.example.com", "img.example.com"]);
    assert_eq!(
        full.cache_ttl_behavior(),
        proto::CacheTtlBehavior::EnforceMinimum
    );
    assert_eq!(full.cache_ttl_error_seconds, 60);
    assert_eq!(full.image_missing, "/missing.png");
    assert!(full.image_missing_append_params);
    assert_eq!(full.image_error, "/errors/broken.png");
    assert!(full.image_error_append_params);
    assert!(full.secure_url_enabled);
    assert!(!full.enabled);
    assert_eq!(registry.get_source("full").await.unwrap(), full);
    let listed = registry.list_sources().await.unwrap();
    assert_eq!(listed, [full, plain]);
}

/// Every new field can be changed by an update, and each update bumps
/// the config version.
async fn update_changes_new_fields(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let updated = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            custom_domains: Some(proto::CustomDomains {
                domains: vec!["img.example.com".into()],
            }),
            cache_ttl_behavior: Some(proto::CacheTtlBehavior::OverrideOrigin.into()),
            cache_ttl_error_seconds: Some(0),
            image_missing: Some("/m.png".into()),
            image_missing_append_params: Some(true),
            image_error: Some("/e.png".into()),
            image_error_append_params: Some(true),
            secure_url_enabled: Some(true),
            enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.config_version, 2);
    assert_eq!(updated.custom_domains, ["img.example.com"]);
    assert_eq!(
        updated.cache_ttl_behavior(),
        proto::CacheTtlBehavior::OverrideOrigin
    );
    assert_eq!(updated.cache_ttl_error_seconds, 300);
    assert_eq!(updated.image_missing, "/m.png");
    assert_eq!(updated.image_error, "/e.png");
    assert!(updated.image_missing_append_params && updated.image_error_append_params);
    assert!(updated.secure_url_enabled && !updated.enabled);
    assert_eq!(registry.get_source("demo").await.unwrap(), updated);

    let cleared = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            custom_domains: Some(proto::CustomDomains::default()),
            image_missing: Some(String::new()),
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cleared.config_version, 3);
    assert!(cleared.custom_domains.is_empty());
    assert_eq!(cleared.image_missing, "");
    assert_eq!(cleared.image_error, "/e.png");
    assert!(cleared.enabled);
}

/// A custom domain belongs to one Source at a time: taken on create or
/// update is ALREADY_EXISTS naming custom_domains; freed on change or
/// delete.
async fn custom_domains_are_unique_across_sources(db: TestDb) {
    let registry = db.open().await;
    let with_domain = |name: &str, domain: &str| proto::CreateSourceRequest {
        custom_domains: vec![domain.to_owned()],
        ..create_request(name)
    };
    registry
        .create_source(&with_domain("demo", "img.example.com"))
        .await
        .unwrap();
    let error = registry
        .create_source(&with_domain("shop", "IMG.example.com"))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RegistryError::AlreadyExists {
            field: "custom_domains"
        }
    ));
    // The failed create left nothing behind.
    assert!(is_not_found(
        &registry.get_source("shop").await.unwrap_err()
    ));
    registry
        .create_source(&with_domain("shop", "shop.example.com"))
        .await
        .unwrap();
    let error = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "shop".into(),
            custom_domains: Some(proto::CustomDomains {
                domains: vec!["shop.example.com".into(), "img.example.com".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RegistryError::AlreadyExists {
            field: "custom_domains"
        }
    ));
    let shop = registry.get_source("shop").await.unwrap();
    assert_eq!(shop.custom_domains, ["shop.example.com"]);
    assert_eq!(shop.config_version, 1);

    // Moving a domain: free it on one Source, then take it on the other.
    registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            custom_domains: Some(proto::CustomDomains::default()),
            ..Default::default()
        })
        .await
        .unwrap();
    registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "shop".into(),
            custom_domains: Some(proto::CustomDomains {
                domains: vec!["img.example.com".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    registry.delete_source("shop").await.unwrap();
    registry
        .create_source(&with_domain("third", "img.example.com"))
        .await
        .unwrap();
}

/// ResolveHost with custom_domain matches a whole custom domain exactly
/// (case and trailing dot aside), and never by first label.
async fn resolve_host_by_custom_domain(db: TestDb) {
    let registry = db.open().await;
    let demo = registry
        .create_source(&proto::CreateSourceRequest {
            custom_domains: vec!["img.example.com".into()],
            ..create_request("demo")
        })
        .await
        .unwrap();
    for host in ["img.example.com", "IMG.Example.com."] {
        let resolved = registry.resolve_host(host, true).await.unwrap();
        assert_eq!(resolved.source.id, demo.id, "{host}");
        assert!(resolved.secure_url_tokens.is_empty());
    }
    for host in ["demo.localhost", "x.img.example.com", "example.com", "img"] {
        assert!(
            is_not_found(&registry.resolve_host(host, true).await.unwrap_err()),
            "{host}"
        );
    }
    // A custom domain is not a subdomain route: its first label is "img".
    assert!(is_not_found(
        &registry
            .resolve_host("img.example.com", false)
            .await
            .unwrap_err()
    ));
}

/// ResolveHost answers for disabled and undeployed Sources too: the
/// gateway decides between 410 and 404.
async fn resolve_host_ignores_status(db: TestDb) {
    let registry = db.open().await;
    let request = proto::CreateSourceRequest {
        disabled: true,
        ..create_request("demo")
    };
    let demo = registry.create_source(&request).await.unwrap();
    let resolved = registry
        .resolve_host("demo.localhost", false)
        .await
        .unwrap();
    assert_eq!(resolved.source, demo);
    assert!(!resolved.source.enabled);
    assert_eq!(resolved.source.status(), proto::SourceStatus::Pending);
}

/// A Source that is not deployed does not serve.
async fn undeployed_source_does_not_serve(db: TestDb) {
    let registry = db.open().await;
    let demo = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    assert!(!registry.read_access(&demo.id).await.unwrap().serving);
}

/// A create request for a Source on `s3`'s bucket `images`.
fn s3_request(name: &str, s3: &S3sFs, secret: &str) -> proto::CreateSourceRequest {
    proto::CreateSourceRequest {
        endpoint: s3.endpoint.clone(),
        access_key_id: S3_ACCESS_KEY.into(),
        secret_access_key: secret.into(),
        ..create_request(name)
    }
}

/// Polls until the Source's deploy is no longer in flight.
async fn deployed(registry: &Registry, name: &str) -> proto::Source {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let source = registry.get_source(name).await.unwrap();
        if source.status() != proto::SourceStatus::Deploying {
            return source;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deploy of {name} still running after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Deploy queues (DEPLOYING, new version), verifies the bucket in the
/// background and records DEPLOYED with its time; then the Source serves.
async fn deploy_succeeds_and_the_source_serves(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3sFs::start(&["images"]).await;
    s3.put("images", "photos/cat.jpg", b"jpeg");
    let created = registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();
    let queued = registry.deploy_source("demo").await.unwrap();
    assert_eq!(queued.status(), proto::SourceStatus::Deploying);
    assert_eq!(queued.config_version, created.config_version + 1);
    let done = deployed(&registry, "demo").await;
    assert_eq!(
        done.status(),
        proto::SourceStatus::Deployed,
        "{}",
        done.status_message
    );
    assert!(done.last_deployed_at >= created.created_at);
    assert_eq!(done.config_version, queued.config_version + 1);
    assert!(registry.read_access(&created.id).await.unwrap().serving);
}

/// A failed deploy records FAILED with the reason; the Source does not
/// serve, and the reason never holds the secret.
async fn deploy_failure_records_the_reason(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3sFs::start(&["images"]).await;
    let created = registry
        .create_source(&s3_request("demo", &s3, "wrong-secret-canary"))
        .await
        .unwrap();
    registry.deploy_source(&created.id).await.unwrap();
    let done = deployed(&registry, "demo").await;
    assert_eq!(done.status(), proto::SourceStatus::Failed);
    assert_eq!(done.status_message, "the credentials were rejected");
    assert!(done.last_deployed_at > 0);
    assert!(!registry.read_access(&created.id).await.unwrap().serving);
    assert!(is_not_found(
        &registry.deploy_source("nobody").await.unwrap_err()
    ));
}

/// Editing what a deploy verifies makes the Source pending (not
/// serving); other edits keep it deployed; every edit bumps the version;
/// a disabled Source does not serve.
async fn edits_that_need_a_deploy_make_the_source_pending(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3sFs::start(&["images"]).await;
    let created = registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();
    registry.deploy_source("demo").await.unwrap();
    let live = deployed(&registry, "demo").await;
    assert_eq!(live.status(), proto::SourceStatus::Deployed);

    let update = |request: proto::UpdateSourceRequest| {
        let registry = registry.clone();
        async move { registry.update_source(&request).await.unwrap() }
    };
    let base = || proto::UpdateSourceRequest {
        id_or_name: "demo".into(),
        ..Default::default()
    };
    let kept = update(proto::UpdateSourceRequest {
        default_params: Some("w=100".into()),
        ..base()
    })
    .await;
    assert_eq!(kept.status(), proto::SourceStatus::Deployed);
    assert_eq!(kept.config_version, live.config_version + 1);

    let disabled = update(proto::UpdateSourceRequest {
        enabled: Some(false),
        ..base()
    })
    .await;
    assert_eq!(disabled.status(), proto::SourceStatus::Deployed);
    assert!(!registry.read_access(&created.id).await.unwrap().serving);
    update(proto::UpdateSourceRequest {
        enabled: Some(true),
        ..base()
    })
    .await;
    assert!(registry.read_access(&created.id).await.unwrap().serving);

    let pending = update(proto::UpdateSourceRequest {
        path_prefix: Some("other".into()),
        ..base()
    })
    .await;
    assert_eq!(pending.status(), proto::SourceStatus::Pending);
    assert!(
        pending.status_message.contains("deploy"),
        "{}",
        pending.status_message
    );
    assert_eq!(pending.last_deployed_at, live.last_deployed_at);
    assert!(!registry.read_access(&created.id).await.unwrap().serving);
}

/// A deploy superseded by an edit that needs a new deploy, or by a newer
/// deploy, records nothing.
async fn superseded_deploys_record_nothing(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let store = &registry.store;
    store
        .start_deploy("demo", "first", 10)
        .await
        .unwrap()
        .unwrap();
    store
        .start_deploy("demo", "second", 11)
        .await
        .unwrap()
        .unwrap();
    let first = store
        .finish_deploy(&created.id, "first", proto::SourceStatus::Deployed, "", 12)
        .await
        .unwrap();
    assert!(!first, "a newer deploy supersedes the first");
    registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            bucket: Some("other-bucket".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let second = store
        .finish_deploy(&created.id, "second", proto::SourceStatus::Deployed, "", 12)
        .await
        .unwrap();
    assert!(!second, "an edit of the bucket supersedes the second");
    let source = registry.get_source("demo").await.unwrap();
    assert_eq!(source.status(), proto::SourceStatus::Pending);
    assert_eq!(source.last_deployed_at, 0);
}

/// A deploy left in flight by a stopped registry runs when it reopens.
async fn interrupted_deploys_resume_at_open(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3sFs::start(&["images"]).await;
    registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();
    // Queued in the database, but never run by this instance.
    registry
        .store
        .start_deploy("demo", "interrupted", unix_now())
        .await
        .unwrap();
    registry.close().await;
    let reopened = db.open().await;
    let done = deployed(&reopened, "demo").await;
    assert_eq!(
        done.status(),
        proto::SourceStatus::Deployed,
        "{}",
        done.status_message
    );
}

/// Marks Source `name` deployed without touching S3 (for tests of what
/// only a deployed Source may do).
async fn mark_deployed(registry: &Registry, name: &str) {
    let record = registry
        .store
        .start_deploy(name, "test", unix_now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        registry
            .store
            .finish_deploy(
                &record.id,
                "test",
                proto::SourceStatus::Deployed,
                "",
                unix_now()
            )
            .await
            .unwrap()
    );
}

/// Rotation adds a token and retires the others after the grace period:
/// both are handed out during it, only the new one after a 0 grace.
async fn secure_token_rotation_window(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&proto::CreateSourceRequest {
            secure_url_enabled: true,
            ..create_request("demo")
        })
        .await
        .unwrap();
    let (first, source) = registry.rotate_secure_token("demo", 0).await.unwrap();
    assert_eq!(first.expose_secret().len(), 32);
    assert!(first.expose_secret().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(source.active_secure_tokens, 1);
    let tokens = registry
        .resolve_host("demo.x", false)
        .await
        .unwrap()
        .secure_url_tokens;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].token, first.expose_secret());
    assert_eq!(tokens[0].expires_at, 0);

    let before = unix_now();
    let (second, source) = registry.rotate_secure_token("demo", 3600).await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(source.active_secure_tokens, 2);
    assert_eq!(
        registry
            .get_source("demo")
            .await
            .unwrap()
            .active_secure_tokens,
        2
    );
    let tokens = registry
        .resolve_host("demo.x", false)
        .await
        .unwrap()
        .secure_url_tokens;
    assert_eq!(tokens.len(), 2);
    let old = tokens
        .iter()
        .find(|t| t.token == first.expose_secret())
        .expect("the old token is still accepted");
    assert!(old.expires_at >= before + 3600 && old.expires_at <= unix_now() + 3601);
    let new = tokens
        .iter()
        .find(|t| t.token == second.expose_secret())
        .unwrap();
    assert_eq!(new.expires_at, 0);

    let (third, source) = registry.rotate_secure_token("demo", 0).await.unwrap();
    assert_eq!(source.active_secure_tokens, 1);
    let tokens = registry
        .resolve_host("demo.x", false)
        .await
        .unwrap()
        .secure_url_tokens;
    let accepted: Vec<&str> = tokens.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(accepted, [third.expose_secret()]);
    // Public views never carry a token.
    let shown = format!(
        "{:?}{:?}",
        registry.get_source("demo").await.unwrap(),
        registry.list_sources().await.unwrap()
    );
    assert!(!shown.contains(third.expose_secret()));
    assert!(is_not_found(
        &registry.rotate_secure_token("nobody", 0).await.unwrap_err()
    ));
}

/// Tokens are handed to the gateway only while secure URLs are on.
async fn tokens_resolve_only_when_secure_urls_are_on(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    registry.rotate_secure_token("demo", 0).await.unwrap();
    let resolved = registry.resolve_host("demo.x", false).await.unwrap();
    assert!(resolved.secure_url_tokens.is_empty());
    assert_eq!(resolved.source.active_secure_tokens, 1);
    registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            secure_url_enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let resolved = registry.resolve_host("demo.x", false).await.unwrap();
    assert_eq!(resolved.secure_url_tokens.len(), 1);
}

/// Upload credentials are stored apart: only their hint is shown, read
/// access never carries them, and an update can remove them.
async fn upload_credentials_stay_apart(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&proto::CreateSourceRequest {
            upload_access_key_id: "AKIAUPLOADEXAMPLE".into(),
            upload_secret_access_key: UPLOAD_SECRET.into(),
            ..create_request("demo")
        })
        .await
        .unwrap();
    assert_eq!(created.upload_access_key_id_hint, "…MPLE");
    assert!(!format!("{created:?}").contains(UPLOAD_SECRET));
    let access = registry.read_access(&created.id).await.unwrap();
    assert_eq!(access.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(access.secret_access_key.expose_secret(), SECRET);
    assert!(!format!("{access:?}").contains(UPLOAD_SECRET));
    let record = registry.find("demo").await.unwrap();
    let upload = registry.upload_credentials(&record).await.unwrap().unwrap();
    assert_eq!(upload.access_key_id, "AKIAUPLOADEXAMPLE");
    assert_eq!(upload.secret_access_key.expose_secret(), UPLOAD_SECRET);

    let removed = registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            upload_access_key_id: Some(String::new()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed.upload_access_key_id_hint, "");
    let record = registry.find("demo").await.unwrap();
    assert!(
        registry
            .upload_credentials(&record)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        registry
            .store
            .secret(&created.id, UPLOAD_SECRET_ACCESS_KEY_FIELD)
            .await
            .unwrap(),
        None
    );
}

/// The upload stream `header` then `chunks`, as the gRPC service gets it.
fn upload_stream(
    header: Option<proto::UploadObjectHeader>,
    chunks: &[&[u8]],
) -> futures::stream::Iter<std::vec::IntoIter<Result<proto::UploadObjectRequest, tonic::Status>>> {
    use proto::upload_object_request::Part;
    let messages: Vec<Result<proto::UploadObjectRequest, tonic::Status>> = header
        .map(Part::Header)
        .into_iter()
        .chain(
            chunks
                .iter()
                .map(|chunk| Part::Chunk(chunk.to_vec().into())),
        )
        .map(|part| Ok(proto::UploadObjectRequest { part: Some(part) }))
        .collect();
    futures::stream::iter(messages)
}

fn header(id_or_name: &str, key: &str) -> proto::UploadObjectHeader {
    proto::UploadObjectHeader {
        id_or_name: id_or_name.into(),
        key: key.into(),
        ..Default::default()
    }
}

/// Uploads are refused, with a clear message, for a Source that is not
/// deployed or has no upload credentials, and for bad keys, sizes and
/// streams.
async fn upload_refusals(db: TestDb) {
    let registry = db.open().await.with_max_upload_bytes(10);
    registry
        .create_source(&proto::CreateSourceRequest {
            upload_access_key_id: "AKIAUPLOADEXAMPLE".into(),
            upload_secret_access_key: UPLOAD_SECRET.into(),
            ..create_request("up")
        })
        .await
        .unwrap();
    registry
        .create_source(&create_request("plain"))
        .await
        .unwrap();
    let upload = |header: Option<proto::UploadObjectHeader>, chunks: &[&[u8]]| {
        let registry = registry.clone();
        let stream = upload_stream(header, chunks);
        async move { crate::object_upload::upload_object(&registry, stream).await }
    };

    let error = upload(Some(header("up", "a.jpg")), &[b"x"])
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the source is not deployed");
    mark_deployed(&registry, "up").await;
    mark_deployed(&registry, "plain").await;
    let error = upload(Some(header("plain", "a.jpg")), &[b"x"])
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the source has no upload credentials");
    assert!(is_not_found(
        &upload(Some(header("nobody", "a.jpg")), &[b"x"])
            .await
            .unwrap_err()
    ));

    let field_of = |error: RegistryError| match error {
        RegistryError::InvalidField { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let error = upload(None, &[b"x"]).await.unwrap_err();
    assert_eq!(field_of(error), "header");
    for key in [
        "",
        "../x.jpg",
        "//host/x.jpg",
        "a/../../b.jpg",
        "a\\..\\b.jpg",
    ] {
        let error = upload(Some(header("up", key)), &[b"x"]).await.unwrap_err();
        assert_eq!(field_of(error), "key", "{key:?}");
    }
    let typed = proto::UploadObjectHeader {
        content_type: "not a type".into(),
        ..header("up", "a.jpg")
    };
    assert_eq!(
        field_of(upload(Some(typed), &[b"x"]).await.unwrap_err()),
        "content_type"
    );
    let sized = proto::UploadObjectHeader {
        size: 11,
        ..header("up", "a.jpg")
    };
    assert!(matches!(
        upload(Some(sized), &[b"x"]).await.unwrap_err(),
        RegistryError::UploadTooLarge { cap: 10 }
    ));
    assert!(matches!(
        upload(Some(header("up", "a.jpg")), &[b"123456", b"78901"])
            .await
            .unwrap_err(),
        RegistryError::UploadTooLarge { cap: 10 }
    ));
    let mismatched = proto::UploadObjectHeader {
        size: 5,
        ..header("up", "a.jpg")
    };
    assert_eq!(
        field_of(upload(Some(mismatched), &[b"123"]).await.unwrap_err()),
        "size"
    );
    assert_eq!(
        field_of(upload(Some(header("up", "a.jpg")), &[]).await.unwrap_err()),
        "chunk"
    );
    let twice = upload_stream(Some(header("up", "a.jpg")), &[b"1"])
        .chain(upload_stream(Some(header("up", "b.jpg")), &[]));
    let error = crate::object_upload::upload_object(&registry, Box::pin(twice))
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "header");
}

/// An upload lands under the Source's prefix with the upload
/// credentials; a rejected upload secret is named.
async fn upload_writes_under_the_prefix(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3sFs::start(&["images"]).await;
    registry
        .create_source(&proto::CreateSourceRequest {
            upload_access_key_id: S3_ACCESS_KEY.into(),
            upload_secret_access_key: S3_SECRET_KEY.into(),
            ..s3_request("demo", &s3, S3_SECRET_KEY)
        })
        .await
        .unwrap();
    registry.deploy_source("demo").await.unwrap();
    assert_eq!(
        deployed(&registry, "demo").await.status(),
        proto::SourceStatus::Deployed
    );
    let png = b"\x89PNG\r\n\x1a\nnot really a png";
    let stored = crate::object_upload::upload_object(
        &registry,
        upload_stream(Some(header("demo", "new/dog.png")), &[&png[..8], &png[8..]]),
    )
    .await
    .unwrap();
    assert_eq!(stored.key, "photos/new/dog.png");
    assert_eq!(stored.size, png.len() as u64);
    assert!(!stored.etag.is_empty());
    assert_eq!(
        s3.read("images", "photos/new/dog.png").as_deref(),
        Some(&png[..])
    );

    registry
        .update_source(&proto::UpdateSourceRequest {
            id_or_name: "demo".into(),
            upload_access_key_id: Some(S3_ACCESS_KEY.into()),
            upload_secret_access_key: Some("wrong-upload-secret".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let error = crate::object_upload::upload_object(
        &registry,
        upload_stream(Some(header("demo", "other.png")), &[png]),
    )
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "the upload credentials were rejected");
    assert!(!error.to_string().contains("wrong-upload-secret"));
    assert!(s3.read("images", "photos/other.png").is_none());
}

/// Upload credentials without s3:PutObject are named as such.
async fn upload_without_put_permission_is_named(db: TestDb) {
    let registry = db.open().await;
    let front = PolicyFront::start(Policy {
        denied: Some(S3Operation::PutObject),
        location: "",
        listed_key: Some("photos/cat.jpg"),
    })
    .await;
    registry
        .create_source(&proto::CreateSourceRequest {
            endpoint: front.endpoint.clone(),
            upload_access_key_id: "AKIAUPLOADEXAMPLE".into(),
            upload_secret_access_key: UPLOAD_SECRET.into(),
            ..create_request("demo")
        })
        .await
        .unwrap();
    registry.deploy_source("demo").await.unwrap();
    assert_eq!(
        deployed(&registry, "demo").await.status(),
        proto::SourceStatus::Deployed
    );
    let error = crate::object_upload::upload_object(
        &registry,
        upload_stream(Some(header("demo", "x.jpg")), &[b"jpeg"]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the upload credentials lack s3:PutObject"
    );
    let status = tonic::Status::from(error);
    assert_eq!(
        imgmesh_errors::ErrorCode::of_status(&status),
        imgmesh_errors::ErrorCode::OriginAccessDenied
    );
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
            .create_source(&proto::CreateSourceRequest {
                upload_access_key_id: "AKIAUPLOADEXAMPLE".into(),
                upload_secret_access_key: format!("{UPLOAD_SECRET}-{name}"),
                secure_url_enabled: true,
                ..create_request(name)
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
        assert_eq!(access.secret_access_key.expose_secret(), SECRET);
        let upload = registry.upload_credentials(&record).await.unwrap().unwrap();
        assert_eq!(
            upload.secret_access_key.expose_secret(),
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
    assert_eq!(access.secret_access_key.expose_secret(), "legacy-secret");
    assert!(registry.store.legacy_secrets().await.unwrap().is_empty());
    let usage = registry.store.kek_usage().await.unwrap();
    assert_eq!(usage, [(test_keys().current_id().to_owned(), 1)]);
}

/// Two registries on one database (two replicas): concurrent creates of
/// one subdomain or one custom domain leave exactly one winner.
async fn two_registries_keep_uniqueness(db: TestDb) {
    let replicas = [db.open().await, db.open().await];
    for (round, (subdomain, domain)) in [("contested", None), ("free", Some("img.example.com"))]
        .into_iter()
        .enumerate()
    {
        let attempts = (0..8).map(|i| {
            let registry = replicas[i % 2].clone();
            let request = proto::CreateSourceRequest {
                name: format!("racer-{round}-{i}"),
                subdomain: domain.map_or(subdomain.to_owned(), |_| format!("racer-{round}-{i}")),
                custom_domains: domain.map(str::to_owned).into_iter().collect(),
                ..create_request("unused")
            };
            tokio::spawn(async move { registry.create_source(&request).await })
        });
        let results = join_handles(attempts).await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        let field = if domain.is_some() {
            "custom_domains"
        } else {
            "subdomain"
        };
        for result in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(result, Err(RegistryError::AlreadyExists { field: f }) if *f == field),
                "{result:?}"
            );
        }
    }
    assert_eq!(replicas[0].list_sources().await.unwrap().len(), 2);
    assert_eq!(replicas[1].list_sources().await.unwrap().len(), 2);
}

on_both_backends!(
    create_then_get_by_id_and_name,
    public_views_never_show_the_secret,
    database_dump_holds_no_plaintext_secret,
    read_access_decrypts_the_secret,
    read_access_needs_an_existing_id,
    duplicate_subdomain_already_exists,
    duplicate_name_already_exists,
    concurrent_creates_are_race_safe,
    update_changes_fields_and_bumps_version,
    concurrent_updates_lose_no_version,
    update_to_taken_subdomain_already_exists,
    update_errors,
    list_is_ordered_by_name,
    delete_removes_the_source,
    get_unknown_is_not_found,
    resolve_host_uses_the_first_label,
    sources_persist_across_reopen,
    reopen_with_wrong_key_is_refused,
    empty_database_accepts_any_key,
    create_stores_every_field,
    update_changes_new_fields,
    custom_domains_are_unique_across_sources,
    resolve_host_by_custom_domain,
    resolve_host_ignores_status,
    undeployed_source_does_not_serve,
    deploy_succeeds_and_the_source_serves,
    deploy_failure_records_the_reason,
    edits_that_need_a_deploy_make_the_source_pending,
    superseded_deploys_record_nothing,
    interrupted_deploys_resume_at_open,
    secure_token_rotation_window,
    tokens_resolve_only_when_secure_urls_are_on,
    upload_credentials_stay_apart,
    upload_refusals,
    upload_writes_under_the_prefix,
    upload_without_put_permission_is_named,
    master_key_rotation_is_resumable,
    legacy_secrets_are_converted,
    two_registries_keep_uniqueness,
);
