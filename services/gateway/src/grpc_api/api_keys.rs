//! API keys on the public render API: the caller's `authorization: Bearer
//! <key>` metadata, checked by the registry (`AuthenticateApiKey`) and
//! remembered briefly.
//!
//! Answers (a live key, or none) are cached for [`CACHE_TTL`] under the
//! SHA-256 of the key, never the key itself, in at most [`CACHE_ENTRIES`]
//! entries; so a revoked key keeps working on a gateway for at most
//! [`CACHE_TTL`] after its revocation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use imgmesh_errors::ErrorCode;
use imgmesh_proto::registry::v1::ApiKey;
use sha2::{Digest as _, Sha256};

use crate::GatewayState;

/// How long an answer of the registry is reused.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(5);

/// Most answers remembered; past it the cache is emptied.
const CACHE_ENTRIES: usize = 10_000;

/// What a key may be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `Render`.
    Render,
    /// `Describe`.
    Describe,
}

/// The registry's answer for a key (`None`: unknown or revoked) and when
/// it came.
type Answer = (Option<ApiKey>, Instant);

/// Recent answers of the registry, by the SHA-256 of the key.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], Answer>>,
}

// === impl Operation ===

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Render => "render",
            Operation::Describe => "describe",
        }
    }
}

// === impl KeyCache ===

impl KeyCache {
    fn get(&self, digest: &[u8; 32], now: Instant) -> Option<Option<ApiKey>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(digest)
            .filter(|(_, at)| now.duration_since(*at) < CACHE_TTL)
            .map(|(key, _)| key.clone())
    }

    fn insert(&self, digest: [u8; 32], key: Option<ApiKey>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (key, now));
    }
}

/// The key presented in `metadata`, checked: `API_KEY_INVALID`
/// (UNAUTHENTICATED) when there is none or it is unknown or revoked.
pub(crate) async fn authenticate(
    state: &GatewayState,
    cache: &KeyCache,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<ApiKey, tonic::Status> {
    let secret = metadata
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| {
            ErrorCode::ApiKeyInvalid.status("an api key is required (authorization: Bearer <key>)")
        })?;
    let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let key = match cache.get(&digest, Instant::now()) {
        Some(known) => known,
        None => {
            let key = state.upstream().authenticate_api_key(secret).await?;
            cache.insert(digest, key.clone(), Instant::now());
            key
        }
    };
    key.ok_or_else(|| ErrorCode::ApiKeyInvalid.status("the api key is unknown or revoked"))
}

/// Whether `key` may perform `operation` on Source `source_id`:
/// `API_KEY_FORBIDDEN` (PERMISSION_DENIED) when not.
pub(crate) fn authorize(
    key: &ApiKey,
    operation: Operation,
    source_id: &str,
) -> Result<(), tonic::Status> {
    if !key.operations.iter().any(|op| op == operation.name()) {
        return Err(ErrorCode::ApiKeyForbidden.status_with(
            format!("the api key may not {}", operation.name()),
            [("operation", operation.name().to_owned())],
        ));
    }
    if !key.all_sources && !key.source_ids.iter().any(|id| id == source_id) {
        return Err(ErrorCode::ApiKeyForbidden.status("the api key may not use this source"));
    }
    Ok(())
}

/// Whether `key` may perform `operation` on bytes the caller streams
/// itself (`RenderBytes`): no Source is involved, so only a key for every
/// Source may, lest a key scoped to a few Sources buy unlimited rendering.
pub(crate) fn authorize_unscoped(key: &ApiKey, operation: Operation) -> Result<(), tonic::Status> {
    if !key.all_sources {
        return Err(ErrorCode::ApiKeyForbidden.status(
            "the api key is scoped to sources; streamed originals need a key for every source",
        ));
    }
    authorize(key, operation, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(operations: &[&str], all_sources: bool, source_ids: &[&str]) -> ApiKey {
        ApiKey {
            id: "key_1".into(),
            name: "k".into(),
            operations: operations.iter().map(|op| (*op).to_owned()).collect(),
            all_sources,
            source_ids: source_ids.iter().map(|id| (*id).to_owned()).collect(),
            created_at_unix: 1,
            revoked_at_unix: 0,
        }
    }

    /// A key needs both the operation and the Source (or every Source).
    #[test]
    fn scope_needs_operation_and_source() {
        let only_a = key(&["render"], false, &["src_a"]);
        assert!(authorize(&only_a, Operation::Render, "src_a").is_ok());
        let denied = authorize(&only_a, Operation::Render, "src_b").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(ErrorCode::of_status(&denied), ErrorCode::ApiKeyForbidden);
        let denied = authorize(&only_a, Operation::Describe, "src_a").unwrap_err();
        assert_eq!(ErrorCode::of_status(&denied), ErrorCode::ApiKeyForbidden);
        let every = key(&["describe"], true, &[]);
        assert!(authorize(&every, Operation::Describe, "src_z").is_ok());
    }

    /// Streamed originals need the operation and a key for every Source.
    #[test]
    fn unscoped_use_needs_every_source() {
        let every = key(&["render"], true, &[]);
        assert!(authorize_unscoped(&every, Operation::Render).is_ok());
        let only_a = key(&["render"], false, &["src_a"]);
        let denied = authorize_unscoped(&only_a, Operation::Render).unwrap_err();
        assert_eq!(ErrorCode::of_status(&denied), ErrorCode::ApiKeyForbidden);
        let describe_only = key(&["describe"], true, &[]);
        let denied = authorize_unscoped(&describe_only, Operation::Render).unwrap_err();
        assert_eq!(ErrorCode::of_status(&denied), ErrorCode::ApiKeyForbidden);
    }

    /// Answers are reused for the TTL only, and the cache stays bounded.
    #[test]
    fn cache_expires_and_stays_bounded() {
        let cache = KeyCache::default();
        let start = Instant::now();
        cache.insert([1; 32], Some(key(&["render"], true, &[])), start);
        assert!(matches!(cache.get(&[1; 32], start), Some(Some(_))));
        assert!(cache.get(&[1; 32], start + CACHE_TTL).is_none());
        for i in 0..(CACHE_ENTRIES + 5) {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(digest, None, start);
        }
        assert!(cache.entries.lock().unwrap().len() <= CACHE_ENTRIES);
    }
}
