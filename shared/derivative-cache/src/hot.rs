//! A small in-process copy of hot entries, for readers that serve the same
//! derivatives over and over (the gateway).
//!
//! It never decides on its own: a copy is used only while it is fresh and
//! only after Redis has confirmed, in the same round trip as always, that
//! the path's purge counters still have the values in the copy's key. A
//! purge or a Source edit changes the key, so a copy can never outlive
//! either; what the copy saves is moving the image out of Redis again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::entry::CachedDerivative;
use crate::metrics::HOT;

/// Entries by key, within a byte budget.
#[derive(Debug)]
pub(crate) struct HotEntries {
    capacity_bytes: usize,
    entries: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    by_key: HashMap<String, Arc<CachedDerivative>>,
    bytes: usize,
}

// === impl HotEntries ===

impl HotEntries {
    /// At most `capacity_bytes` of entries; 0 keeps nothing.
    pub(crate) fn new(capacity_bytes: usize) -> HotEntries {
        if capacity_bytes > 0 {
            HOT.set(0, 0, capacity_bytes);
        }
        HotEntries {
            capacity_bytes,
            entries: Mutex::new(Held::default()),
        }
    }

    /// The copy under `key`, if one is held.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<CachedDerivative>> {
        if self.capacity_bytes == 0 {
            return None;
        }
        self.lock().by_key.get(key).cloned()
    }

    /// Keeps a copy of `entry` under `key`, making room by dropping others
    /// (in no particular order: hot entries come straight back).
    pub(crate) fn insert(&self, key: &str, entry: &CachedDerivative) {
        let size = entry.data.len() + key.len();
        // One entry may not take more than a quarter of the budget.
        if size > self.capacity_bytes / 4 {
            return;
        }
        let mut held = self.lock();
        if let Some(previous) = held.by_key.remove(key) {
            held.bytes -= previous.data.len() + key.len();
        }
        while held.bytes + size > self.capacity_bytes {
            let Some(victim) = held.by_key.keys().next().cloned() else {
                break;
            };
            if let Some(dropped) = held.by_key.remove(&victim) {
                held.bytes -= dropped.data.len() + victim.len();
            }
        }
        held.bytes += size;
        held.by_key.insert(key.to_owned(), Arc::new(entry.clone()));
        self.report(&held);
    }

    /// Drops the copy under `key`.
    pub(crate) fn remove(&self, key: &str) {
        let mut held = self.lock();
        if let Some(dropped) = held.by_key.remove(key) {
            held.bytes -= dropped.data.len() + key.len();
            self.report(&held);
        }
    }

    /// Sets the hot cache gauges to what `held` holds.
    fn report(&self, held: &Held) {
        HOT.set(held.bytes, held.by_key.len(), self.capacity_bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::entry::tests::sample;

    fn sized(bytes: usize) -> CachedDerivative {
        CachedDerivative {
            data: Bytes::from(vec![1u8; bytes]),
            ..sample()
        }
    }

    /// Entries come back until the budget forces others out; oversized ones
    /// are never kept; a zero budget keeps nothing.
    #[test]
    fn held_within_the_budget() {
        let hot = HotEntries::new(10_000);
        hot.insert("a", &sized(2_000));
        hot.insert("b", &sized(2_000));
        assert!(hot.get("a").is_some() && hot.get("b").is_some());
        for key in ["c", "d", "e", "f"] {
            hot.insert(key, &sized(2_000));
        }
        assert!(hot.lock().bytes <= 10_000);
        assert_eq!(hot.lock().by_key.len(), 4);
        hot.insert("huge", &sized(3_000));
        assert!(hot.get("huge").is_none());
        hot.insert("c", &sized(100));
        assert_eq!(hot.get("c").unwrap().data.len(), 100);
        hot.remove("c");
        assert!(hot.get("c").is_none());

        let off = HotEntries::new(0);
        off.insert("a", &sized(1));
        assert!(off.get("a").is_none());
    }
}
