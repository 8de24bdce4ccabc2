//! Creating, reading, listing, updating and deleting Sources, and the
//! uniqueness rules the database enforces under concurrency.

use super::*;

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
    assert_eq!(created.access_key().id_hint, "…MPLE");
    assert_eq!(created.cache_policy().ttl_seconds, 3600);
    assert_eq!(created.created_at, created.updated_at);
    assert!(created.created_at > 1_700_000_000);

    assert_eq!(registry.get_source(&created.id).await.unwrap(), created);
    assert_eq!(registry.get_source("demo").await.unwrap(), created);
}

/// A second Source with a taken subdomain is ALREADY_EXISTS naming it.
async fn duplicate_subdomain_already_exists(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let request = {
        let mut request = create_request("demo");
        request.name = "other".into();
        request
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
    let request = {
        let mut request = create_request("demo");
        request.routing.get_or_insert_default().subdomain = "other".into();
        request
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
            let request = {
                let mut request = create_request("contested");
                request.name = format!("racer-{i}");
                request
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

/// An update changes only the present fields and bumps the version.
async fn update_changes_fields_and_bumps_version(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&create_request("demo"))
        .await
        .unwrap();
    let updated = registry
        .update_source(&test_update(
            "demo",
            &[
                ("routing.subdomain", Text("renamed".into())),
                ("location.endpoint", Text("".into())),
                ("location.path_prefix", Text("/a//b/".into())),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(updated.config_version, 2);
    assert_eq!(updated.routing().subdomain, "renamed");
    assert_eq!(updated.location().endpoint, "");
    assert_eq!(updated.location().path_prefix, "a/b");
    assert_eq!(updated.location().bucket, created.location().bucket);
    assert_eq!(updated.default_params, created.default_params);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(registry.get_source(&created.id).await.unwrap(), updated);

    let again = registry
        .update_source(&test_update(&created.id, &[]))
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
            let request = test_update("demo", &[("cache_policy.ttl_seconds", Number(100 + i))]);
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
        .update_source(&test_update(
            "shop",
            &[("routing.subdomain", Text("demo".into()))],
        ))
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
        .update_source(&test_update(
            "demo",
            &[("location.bucket", Text("x".into()))],
        ))
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
        .update_source(&test_update("nobody", &[]))
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

/// A new Source is pending and enabled (unless created disabled), with
/// imgix's defaults for the cache policy and every field returned.
async fn create_stores_every_field(db: TestDb) {
    let registry = db.open().await;
    let plain = registry
        .create_source(&create_request("plain"))
        .await
        .unwrap();
    assert_eq!(plain.deploy_state().status(), proto::SourceStatus::Pending);
    assert!(plain.enabled);
    assert_eq!(
        plain.cache_policy().behavior(),
        proto::CacheTtlBehavior::RespectOrigin
    );
    assert_eq!(plain.cache_policy().error_ttl_seconds, 300);
    assert!(plain.routing().custom_domains.is_empty());
    assert_eq!(plain.upload_access_key().id_hint, "");
    assert_eq!(plain.deploy_state().last_deployed_at, 0);

    let request = {
        let mut request = create_request("full");
        request.routing.get_or_insert_default().custom_domains =
            vec!["IMG.example.com".into(), "cdn.example.com.".into()];
        request.cache_policy.get_or_insert_default().behavior =
            proto::CacheTtlBehavior::EnforceMinimum.into();
        request
            .cache_policy
            .get_or_insert_default()
            .error_ttl_seconds = 60;
        request
            .fallback_images
            .get_or_insert_default()
            .missing
            .get_or_insert_default()
            .path = "missing.png".into();
        request
            .fallback_images
            .get_or_insert_default()
            .missing
            .get_or_insert_default()
            .append_params = true;
        request
            .fallback_images
            .get_or_insert_default()
            .error
            .get_or_insert_default()
            .path = "/errors/broken.png".into();
        request
            .fallback_images
            .get_or_insert_default()
            .error
            .get_or_insert_default()
            .append_params = true;
        request.secure_url_enabled = true;
        request.disabled = true;
        request
    };
    let full = registry.create_source(&request).await.unwrap();
    assert_eq!(
        full.routing().custom_domains,
        ["cdn.example.com", "img.example.com"]
    );
    assert_eq!(
        full.cache_policy().behavior(),
        proto::CacheTtlBehavior::EnforceMinimum
    );
    assert_eq!(full.cache_policy().error_ttl_seconds, 60);
    assert_eq!(full.fallback_images().missing().path, "/missing.png");
    assert!(full.fallback_images().missing().append_params);
    assert_eq!(full.fallback_images().error().path, "/errors/broken.png");
    assert!(full.fallback_images().error().append_params);
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
        .update_source(&test_update(
            "demo",
            &[
                (
                    "routing.custom_domains",
                    List(vec!["img.example.com".into()]),
                ),
                (
                    "cache_policy.behavior",
                    Number(proto::CacheTtlBehavior::OverrideOrigin as u32),
                ),
                ("cache_policy.error_ttl_seconds", Number(0)),
                ("fallback_images.missing.path", Text("/m.png".into())),
                ("fallback_images.missing.append_params", Flag(true)),
                ("fallback_images.error.path", Text("/e.png".into())),
                ("fallback_images.error.append_params", Flag(true)),
                ("secure_url_enabled", Flag(true)),
                ("enabled", Flag(false)),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(updated.config_version, 2);
    assert_eq!(updated.routing().custom_domains, ["img.example.com"]);
    assert_eq!(
        updated.cache_policy().behavior(),
        proto::CacheTtlBehavior::OverrideOrigin
    );
    assert_eq!(updated.cache_policy().error_ttl_seconds, 300);
    assert_eq!(updated.fallback_images().missing().path, "/m.png");
    assert_eq!(updated.fallback_images().error().path, "/e.png");
    assert!(
        updated.fallback_images().missing().append_params
            && updated.fallback_images().error().append_params
    );
    assert!(updated.secure_url_enabled && !updated.enabled);
    assert_eq!(registry.get_source("demo").await.unwrap(), updated);

    let cleared = registry
        .update_source(&test_update(
            "demo",
            &[
                ("routing.custom_domains", List(vec![])),
                ("fallback_images.missing.path", Text("".into())),
                ("enabled", Flag(true)),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(cleared.config_version, 3);
    assert!(cleared.routing().custom_domains.is_empty());
    assert_eq!(cleared.fallback_images().missing().path, "");
    assert_eq!(cleared.fallback_images().error().path, "/e.png");
    assert!(cleared.enabled);
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
            let request = {
                let mut request = create_request("unused");
                request.name = format!("racer-{round}-{i}");
                request.routing.get_or_insert_default().subdomain =
                    domain.map_or(subdomain.to_owned(), |_| format!("racer-{round}-{i}"));
                request.routing.get_or_insert_default().custom_domains =
                    domain.map(str::to_owned).into_iter().collect();
                request
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
    create_stores_every_field,
    update_changes_new_fields,
    two_registries_keep_uniqueness,
);
