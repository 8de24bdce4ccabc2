//! The names of the derivative cache's Redis keys.
//!
//! A derivative's entry key is
//!
//! ```text
//! imgmesh:{<source id>.<asset>}:d:v4:<digest>:<generations>
//! ```
//!
//! `<digest>` is hex(sha256(source id, source config version, path,
//! canonical plan encoding)). Each part is written with its length in
//! front, so no two different tuples hash the same bytes (`("ab", "c")` vs
//! `("a", "bc")`). The plan is hashed in its canonical form (defaults
//! written out: `imgmesh_imgix_params::normalize_plan`), and the config version is
//! part of it so a Source edit takes effect at once. `<asset>` is the
//! first 16 hex digits of sha256(path): it names the asset's hash tag.
//!
//! `<generations>` are the current values of the purge counters that cover
//! the path, broadest first, joined with `.`: the Source's, one per parent
//! directory, and the asset's own (a missing counter is `0`). A purge bumps
//! one counter (`INCR`, O(1)); every derivative under it then has a new key,
//! on every replica at once, and the old entries age out on their TTL. The
//! counters are read in the same round trip as the entry (see
//! `derivative_cache`).
//!
//! Two hash tags decide where keys live on a Redis Cluster:
//!
//! - `{<source id>}`: the Source's counter and its directories' counters,
//!   small keys every lookup of the Source reads;
//! - `{<source id>.<asset>}`: one asset's entries, their render leases and
//!   the asset's own counter, so one busy Source's images spread over
//!   every shard while an entry and its lease stay on one slot (the lease
//!   scripts need that).
//!
//! A lookup therefore touches at most two slots: one `MGET` on the
//! Source's, one `GET` of counter and entry on the asset's, sent at once.
//!
//! Each Source also has an **epoch** (`imgmesh:{<source id>}:epoch`, a
//! random number set by the first lookup that finds none). It is read with
//! the Source's counters but is not part of the entry key: it tells a
//! process that Redis lost its data (a `FLUSHALL`, a restart without
//! persistence), after which the counters start again from 0 and could
//! name a purged derivative's key once more. A process's in-memory copies
//! remember the epoch they were read under and are never used under
//! another (see `hot`), and the generation a renderer sends the fetcher
//! with each read of an original is the epoch and the counters together
//! ([`Lookup::generation`](crate::Lookup::generation)), so an original
//! cached before a purge is not used again once the counters restart.
//!
//! Every purge also announces the counter it bumped on [`PURGE_CHANNEL`]
//! (in the same script as the `INCR`), for processes that keep copies in
//! memory (see `feed`).

use std::fmt::Write as _;

use prost::Message as _;
use sha2::{Digest as _, Sha256};

use imgmesh_proto::renderer::v1::RenderPlan;

/// The version of the entry key and value format; bump it when either (or
/// rendering) changes incompatibly.
pub const KEY_VERSION: &str = "v4";

/// The Redis keys one derivative depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheNames {
    /// The purge counters covering the derivative, broadest first: all
    /// but the last share the Source's hash tag, the last (the asset's) the
    /// entry's.
    pub generations: Vec<String>,
    /// The entry key without its generations.
    pub base: String,
    /// The Source's epoch key (see [`epoch_key`]).
    pub epoch: String,
}

/// What a purge covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeScope<'a> {
    /// Every derivative of the Source.
    Source,
    /// Every derivative of every asset under a directory; the prefix ends
    /// with `/` (see [`directory_prefix`]).
    Prefix(&'a str),
    /// Every derivative of one asset.
    Asset(&'a str),
}

// === impl CacheNames ===

impl CacheNames {
    /// The keys of the derivative of `path` on Source `source_id` (at
    /// `source_config_version`) rendered with `plan`, which must be
    /// canonical (`imgmesh_imgix_params::normalize_plan`) so that equal
    /// renderings share a key.
    pub fn new(
        source_id: &str,
        source_config_version: u64,
        path: &str,
        plan: &RenderPlan,
    ) -> CacheNames {
        let mut hasher = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        part(source_id.as_bytes());
        part(&source_config_version.to_be_bytes());
        part(path.as_bytes());
        part(&plan.encode_to_vec());
        let digest = hex::encode(hasher.finalize());
        let mut generations = vec![generation_key(source_id, PurgeScope::Source)];
        generations.extend(
            path.match_indices('/')
                .map(|(end, _)| generation_key(source_id, PurgeScope::Prefix(&path[..=end]))),
        );
        generations.push(generation_key(source_id, PurgeScope::Asset(path)));
        CacheNames {
            generations,
            base: format!(
                "imgmesh:{{{}}}:d:{KEY_VERSION}:{digest}",
                asset_tag(source_id, path)
            ),
            epoch: epoch_key(source_id),
        }
    }

    /// The entry key for the counters' current values, in the order of
    /// [`CacheNames::generations`].
    pub fn entry_key(&self, generations: &[u64]) -> String {
        // One allocation, sized for the usual small counters: every lookup
        // builds this key (a hit served from memory included).
        let mut key = String::with_capacity(self.base.len() + 1 + 4 * generations.len());
        key.push_str(&self.base);
        key.push(':');
        for (i, &value) in generations.iter().enumerate() {
            if i > 0 {
                key.push('.');
            }
            // Into the key itself: writing to a String cannot fail.
            let _ = write!(key, "{value}");
        }
        key
    }
}

/// The Pub/Sub channel every purge announces the bumped counter's key on.
pub const PURGE_CHANNEL: &str = "imgmesh:purges";

/// The key of Source `source_id`'s epoch: a random number, set when missing,
/// that changes when Redis loses its data (it shares the Source's counters'
/// hash tag, so it is read in the same `MGET`).
pub fn epoch_key(source_id: &str) -> String {
    format!("imgmesh:{{{source_id}}}:epoch")
}

/// The key of the render lease for the entry `entry_key` (see
/// [`DerivativeCache::try_lease`](crate::DerivativeCache::try_lease)).
pub fn lease_key(entry_key: &str) -> String {
    format!("{entry_key}:lease")
}

/// The purge counter for `scope` on Source `source_id`.
pub fn generation_key(source_id: &str, scope: PurgeScope<'_>) -> String {
    match scope {
        PurgeScope::Source => format!("imgmesh:{{{source_id}}}:g"),
        PurgeScope::Prefix(prefix) => format!("imgmesh:{{{source_id}}}:g:p:{prefix}"),
        PurgeScope::Asset(path) => format!("imgmesh:{{{}}}:g:a", asset_tag(source_id, path)),
    }
}

/// The hash tag of one asset's keys: the Source id and the first 16 hex
/// digits of sha256(path) (64 bits: distinct assets share a tag, and so a
/// slot, only by chance).
fn asset_tag(source_id: &str, path: &str) -> String {
    let digest = Sha256::digest(path.as_bytes());
    format!("{source_id}.{}", hex::encode(&digest[..8]))
}

/// The hash tag of `key`, as Redis Cluster reads it: what lies between the
/// first `{` and the next `}`, when that is not empty; else the whole key.
pub fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key)
}

/// `prefix` as the directory prefix purges use: without a leading `/` and
/// with a trailing one; `None` when nothing is left (that is the whole
/// Source, which is purged as such).
pub fn directory_prefix(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_start_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    Some(if trimmed.ends_with('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/")
    })
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::{Fit, OutputFormat};

    use super::*;

    fn resolved(plan: RenderPlan) -> RenderPlan {
        imgmesh_imgix_params::normalize_plan(&plan).unwrap()
    }

    fn webp_320() -> RenderPlan {
        resolved(RenderPlan {
            width: 320,
            format: OutputFormat::Webp.into(),
            quality: 60,
            ..RenderPlan::default()
        })
    }

    fn key(source_id: &str, version: u64, path: &str, plan: &RenderPlan) -> String {
        CacheNames::new(source_id, version, path, plan).base
    }

    /// Equal inputs give the same key, tagged with the Source and ending in a sha256 in hex.
    #[test]
    fn key_is_stable() {
        let base = key("src_1", 3, "photos/cat.jpg", &webp_320());
        assert_eq!(base, key("src_1", 3, "photos/cat.jpg", &webp_320()));
        let digest = base
            .strip_prefix(&format!(
                "imgmesh:{{src_1.{}}}:d:v4:",
                &hex::encode(Sha256::digest(b"photos/cat.jpg"))[..16]
            ))
            .unwrap();
        assert_eq!(digest.len(), 64);
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    }

    /// The counters cover the Source, each parent directory and the asset,
    /// broadest first, and their values end the entry key.
    #[test]
    fn generations_cover_source_directories_and_asset() {
        let names = CacheNames::new("src_1", 3, "a/b/cat.jpg", &webp_320());
        let asset = &hex::encode(Sha256::digest(b"a/b/cat.jpg"))[..16];
        assert_eq!(
            names.generations,
            [
                "imgmesh:{src_1}:g".to_owned(),
                "imgmesh:{src_1}:g:p:a/".to_owned(),
                "imgmesh:{src_1}:g:p:a/b/".to_owned(),
                format!("imgmesh:{{src_1.{asset}}}:g:a"),
            ]
        );
        assert_eq!(
            names.entry_key(&[0, 2, 0, 1]),
            format!("{}:0.2.0.1", names.base)
        );
        assert_ne!(
            names.entry_key(&[0, 0, 0, 0]),
            names.entry_key(&[1, 0, 0, 0])
        );
        let flat = CacheNames::new("src_1", 3, "cat.jpg", &webp_320());
        assert_eq!(flat.generations.len(), 2);
        assert_eq!(flat.generations[0], "imgmesh:{src_1}:g");
        assert_eq!(
            lease_key("imgmesh:{s}:d:v4:ab:0.0"),
            "imgmesh:{s}:d:v4:ab:0.0:lease"
        );
    }

    /// The entry key spells its counters as `u64::to_string` does, joined
    /// with `.`, whatever their size (the keys of entries stored before
    /// must stay the same).
    #[test]
    fn entry_key_spells_counters_in_decimal() {
        let names = CacheNames::new("src_1", 3, "a/b/cat.jpg", &webp_320());
        let cases: &[&[u64]] = &[
            &[],
            &[0],
            &[9, 10, 99, 100],
            &[1_234_567, 0, u64::MAX, 42],
            &[u64::MAX / 10, 10_000_000_000_000_000_000],
        ];
        for &values in cases {
            let spelled: Vec<String> = values.iter().map(u64::to_string).collect();
            assert_eq!(
                names.entry_key(values),
                format!("{}:{}", names.base, spelled.join(".")),
                "{values:?}"
            );
        }
    }

    /// On a Redis Cluster an asset's entry, lease and own counter share one
    /// slot; the Source's and directories' counters share another; two
    /// assets of one Source have different tags, so they spread over shards.
    #[test]
    fn hash_tags_keep_an_asset_together_and_spread_a_source() {
        let names = CacheNames::new("src_1", 3, "a/b/cat.jpg", &webp_320());
        let entry = names.entry_key(&[0, 0, 0, 0]);
        let (asset_counter, shared) = names.generations.split_last().unwrap();
        assert_eq!(hash_tag(&entry), hash_tag(asset_counter));
        assert_eq!(hash_tag(&lease_key(&entry)), hash_tag(&entry));
        assert!(shared.iter().all(|key| hash_tag(key) == "src_1"));
        assert_eq!(
            hash_tag(&names.epoch),
            "src_1",
            "read with the Source's counters"
        );
        assert!(!names.generations.contains(&names.epoch));
        assert_ne!(hash_tag(&entry), "src_1");
        let other = CacheNames::new("src_1", 3, "a/b/dog.jpg", &webp_320());
        assert_ne!(hash_tag(&other.base), hash_tag(&names.base));
        assert_eq!(
            generation_key("src_1", PurgeScope::Asset("a/b/cat.jpg")),
            *asset_counter
        );
        // A path with braces cannot move the tag: the tag holds its hash.
        let braces = CacheNames::new("src_1", 3, "x}{y.jpg", &webp_320());
        assert!(hash_tag(&braces.base).starts_with("src_1."));
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("a{}b"), "a{}b");
    }

    /// Purge prefixes are directories: leading slashes go, a trailing one is added.
    #[test]
    fn prefixes_are_directories() {
        assert_eq!(directory_prefix("a/b").as_deref(), Some("a/b/"));
        assert_eq!(directory_prefix("/a/b/").as_deref(), Some("a/b/"));
        assert_eq!(directory_prefix("/"), None);
        assert_eq!(directory_prefix(""), None);
        assert_eq!(
            generation_key("s", PurgeScope::Prefix("a/b/")),
            CacheNames::new("s", 1, "a/b/c.jpg", &webp_320()).generations[2]
        );
    }

    /// A plan with defaults left out shares the key of one spelling them out.
    #[test]
    fn defaults_share_a_key() {
        let implicit = resolved(RenderPlan {
            width: 320,
            ..RenderPlan::default()
        });
        let explicit = resolved(RenderPlan {
            width: 320,
            fit: Fit::Clip.into(),
            quality: 75,
            dpr_centi: 100,
            ..RenderPlan::default()
        });
        assert_eq!(
            key("s", 1, "a.jpg", &implicit),
            key("s", 1, "a.jpg", &explicit)
        );
    }

    /// Changing the config version, path, Source or any plan field changes the key.
    #[test]
    fn every_part_changes_the_key() {
        let base = key("src_1", 3, "photos/cat.jpg", &webp_320());
        let variant = |change: fn(&mut RenderPlan)| {
            let mut plan = RenderPlan {
                width: 320,
                format: OutputFormat::Webp.into(),
                quality: 60,
                ..RenderPlan::default()
            };
            change(&mut plan);
            key("src_1", 3, "photos/cat.jpg", &resolved(plan))
        };
        let variants = [
            key("src_1", 4, "photos/cat.jpg", &webp_320()),
            key("src_1", 3, "photos/dog.jpg", &webp_320()),
            key("src_2", 3, "photos/cat.jpg", &webp_320()),
            variant(|p| p.width = 321),
            variant(|p| p.format = OutputFormat::Png.into()),
            variant(|p| p.quality = 61),
            variant(|p| {
                p.adjustments = Some(imgmesh_proto::renderer::v1::Adjustments {
                    brightness: 1,
                    ..Default::default()
                })
            }),
        ];
        for variant in &variants {
            assert_ne!(&base, variant);
        }
    }

    /// Moving bytes between the Source id and the path cannot collide.
    #[test]
    fn parts_cannot_run_into_each_other() {
        let plan = webp_320();
        assert_ne!(key("ab", 1, "c", &plan), key("a", 1, "bc", &plan));
    }
}
