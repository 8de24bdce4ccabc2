//! Re-wrapping every stored data key with the current master key.
//!
//! The rotation walks the sealed values not yet wrapped by the current key
//! one at a time; each re-wrap is a single conditional update (it only
//! lands if the row still holds what was read), so the rotation can be
//! interrupted at any point and run again: values already under the current
//! key are never touched twice. Only the wrap changes; the sealed secret and
//! its nonce stay as they are.

use crate::credentials_crypto::MasterKeys;
use crate::database::Database;
use crate::error::RegistryError;
use crate::registry::Registry;
use crate::source::secure_token_field;
use crate::store::SealedTable;

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    /// Values re-wrapped by this run so far.
    pub rewrapped: u64,
    /// Values not under the current key when this run started.
    pub total: u64,
    /// Values still not under the current key.
    pub remaining: u64,
}

/// Re-wraps every data key in `database` not wrapped by `keys`' current key,
/// calling `progress` after each one. Stops after `limit` values when given
/// (the rest stay for the next run).
pub async fn rotate_master_key(
    database: impl Into<Database>,
    keys: impl Into<MasterKeys>,
    limit: Option<u64>,
    mut progress: impl FnMut(RotationProgress),
) -> Result<RotationProgress, RegistryError> {
    let registry = Registry::open_for_maintenance(database.into(), keys.into()).await?;
    let result = rewrap_all(&registry, limit, &mut progress).await;
    registry.close().await;
    result
}

async fn rewrap_all(
    registry: &Registry,
    limit: Option<u64>,
    progress: &mut impl FnMut(RotationProgress),
) -> Result<RotationProgress, RegistryError> {
    let keys = registry.keys();
    let store = registry.store();
    let current = keys.current_id().to_owned();
    let total = u64::try_from(store.count_stale(&current).await?).unwrap_or_default();
    let mut done = RotationProgress {
        rewrapped: 0,
        total,
        remaining: total,
    };
    while limit.is_none_or(|limit| done.rewrapped < limit) {
        let Some(stale) = store.next_stale(&current).await? else {
            break;
        };
        let field = match stale.table {
            SealedTable::SourceSecrets => stale.key.clone(),
            SealedTable::SecureTokens => secure_token_field(&stale.key),
        };
        let rewrapped = keys.rewrap(&stale.sealed, &stale.source_id, &field)?;
        if store.store_rewrap(&stale, &rewrapped).await? {
            done.rewrapped += 1;
        }
        // A value changed meanwhile was sealed again by a registry, with
        // the current key if it runs with it; either way, count afresh.
        done.remaining = u64::try_from(store.count_stale(&current).await?).unwrap_or_default();
        progress(done);
    }
    Ok(done)
}
