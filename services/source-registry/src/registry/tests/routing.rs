//! ResolveHost: by subdomain, by custom domain, whatever the status.

use super::*;

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

/// A custom domain belongs to one Source at a time: taken on create or
/// update is ALREADY_EXISTS naming custom_domains; freed on change or
/// delete.
async fn custom_domains_are_unique_across_sources(db: TestDb) {
    let registry = db.open().await;
    let with_domain = |name: &str, domain: &str| {
        let mut request = create_request(name);
        request.routing.get_or_insert_default().custom_domains = vec![domain.to_owned()];
        request
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
        .update_source(&test_update(
            "shop",
            &[(
                "routing.custom_domains",
                List(vec!["shop.example.com".into(), "img.example.com".into()]),
            )],
        ))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RegistryError::AlreadyExists {
            field: "custom_domains"
        }
    ));
    let shop = registry.get_source("shop").await.unwrap();
    assert_eq!(shop.routing().custom_domains, ["shop.example.com"]);
    assert_eq!(shop.config_version, 1);

    // Moving a domain: free it on one Source, then take it on the other.
    registry
        .update_source(&test_update(
            "demo",
            &[("routing.custom_domains", List(vec![]))],
        ))
        .await
        .unwrap();
    registry
        .update_source(&test_update(
            "shop",
            &[(
                "routing.custom_domains",
                List(vec!["img.example.com".into()]),
            )],
        ))
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
        .create_source(&{
            let mut request = create_request("demo");
            request.routing.get_or_insert_default().custom_domains = vec!["img.example.com".into()];
            request
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
    let request = {
        let mut request = create_request("demo");
        request.disabled = true;
        request
    };
    let demo = registry.create_source(&request).await.unwrap();
    let resolved = registry
        .resolve_host("demo.localhost", false)
        .await
        .unwrap();
    assert_eq!(resolved.source, demo);
    assert!(!resolved.source.enabled);
    assert_eq!(
        resolved.source.deploy_state().status(),
        proto::SourceStatus::Pending
    );
}

on_both_backends!(
    resolve_host_uses_the_first_label,
    custom_domains_are_unique_across_sources,
    resolve_host_by_custom_domain,
    resolve_host_ignores_status,
);
