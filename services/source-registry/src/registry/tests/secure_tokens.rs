//! Secure URL tokens: rotation with a grace period, handed out only
//! while secure URLs are on.

use super::*;

/// Rotation adds a token and retires the others after the grace period:
/// both are handed out during it, only the new one after a 0 grace.
async fn secure_token_rotation_window(db: TestDb) {
    let registry = db.open().await;
    registry
        .create_source(&{
            let mut request = create_request("demo");
            request.secure_url_enabled = true;
            request
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
        .update_source(&test_update("demo", &[("secure_url_enabled", Flag(true))]))
        .await
        .unwrap();
    let resolved = registry.resolve_host("demo.x", false).await.unwrap();
    assert_eq!(resolved.secure_url_tokens.len(), 1);
}

on_both_backends!(
    secure_token_rotation_window,
    tokens_resolve_only_when_secure_urls_are_on,
);
