//! The derivative cache's key builder (`imgmesh-derivative-cache`'s
//! `keys`) on arbitrary Source ids, config versions, asset paths and plans.
//!
//! Input: 8 bytes of config version, then text split at NULs into the
//! Source id's bytes (written as `src_<hex>`, the registry's id alphabet),
//! the asset path and an imgix query whose canonical plan is rendered.
//! What must hold, whatever the parts:
//!
//! - the names are a pure function of the parts (built twice: equal), and
//!   a plan and its normalisation share them;
//! - the entry key is `imgmesh:{<id>.<16 hex>}:d:v4:<64 hex>`, then the
//!   counters' values joined with `.`;
//! - the purge counters are the Source's, one per parent directory (the
//!   same key a prefix purge of that directory bumps) and the asset's;
//! - on a Redis Cluster the entry, its lease and the asset's counter share
//!   one hash tag, and the Source's and directories' counters the Source id;
//! - another config version or Source id gives another key;
//! - `directory_prefix` gives a directory (trailing `/`, no leading `/`)
//!   and is a fixed point; `hash_tag` answers a part of any key.

use imgmesh_derivative_cache::keys::{
    CacheNames, KEY_VERSION, PurgeScope, directory_prefix, generation_key, hash_tag, lease_key,
};
use imgmesh_imgix_params::{normalize_plan, parse_render_plan};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (version, rest) = data.split_at(data.len().min(8));
        let mut version_bytes = [0u8; 8];
        version_bytes[..version.len()].copy_from_slice(version);
        let version = u64::from_be_bytes(version_bytes);
        let text = String::from_utf8_lossy(rest);
        let mut parts = text.splitn(3, '\0');
        let id_bytes = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("a.jpg");
        let query = parts.next().unwrap_or("");
        let hex: String = id_bytes
            .bytes()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let source_id = format!("src_{hex}");
        let Ok(parsed) = parse_render_plan("", query, None) else {
            return;
        };
        let plan = parsed.plan;

        let names = CacheNames::new(&source_id, version, path, &plan);
        assert_eq!(names, CacheNames::new(&source_id, version, path, &plan));
        let normal = normalize_plan(&plan).expect("a canonical plan normalises");
        assert_eq!(names, CacheNames::new(&source_id, version, path, &normal));

        // imgmesh:{<id>.<16 hex>}:d:v4:<64 hex>
        let tag = hash_tag(&names.base);
        let asset_hex = tag
            .strip_prefix(&format!("{source_id}."))
            .expect("the entry's tag is the Source id and the asset");
        assert_eq!(asset_hex.len(), 16);
        assert!(asset_hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let digest = names
            .base
            .strip_prefix(&format!("imgmesh:{{{tag}}}:d:{KEY_VERSION}:"))
            .expect("the entry key's layout");
        assert_eq!(digest.len(), 64);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));

        // Source, each parent directory, the asset; broadest first.
        let directories: Vec<&str> = path
            .match_indices('/')
            .map(|(end, _)| &path[..=end])
            .collect();
        assert_eq!(names.generations.len(), directories.len() + 2);
        assert_eq!(
            names.generations[0],
            generation_key(&source_id, PurgeScope::Source)
        );
        for (key, directory) in names.generations[1..].iter().zip(&directories) {
            assert_eq!(
                *key,
                generation_key(&source_id, PurgeScope::Prefix(directory))
            );
        }
        let (asset_counter, shared) = names.generations.split_last().unwrap();
        assert_eq!(
            *asset_counter,
            generation_key(&source_id, PurgeScope::Asset(path))
        );

        // Hash tags: entry, lease and asset counter together; the rest on the Source's.
        let values: Vec<u64> = (0..names.generations.len() as u64).collect();
        let entry = names.entry_key(&values);
        let joined: Vec<String> = values.iter().map(u64::to_string).collect();
        assert_eq!(entry, format!("{}:{}", names.base, joined.join(".")));
        assert_eq!(hash_tag(&entry), tag);
        assert_eq!(hash_tag(&lease_key(&entry)), tag);
        assert_eq!(hash_tag(asset_counter), tag);
        for key in shared {
            assert_eq!(hash_tag(key), source_id, "{key:?}");
        }

        // Another version or Source: another key.
        let other_version = CacheNames::new(&source_id, version.wrapping_add(1), path, &plan);
        assert_ne!(other_version.base, names.base);
        let other_source = CacheNames::new(&format!("{source_id}0"), version, path, &plan);
        assert_ne!(other_source.base, names.base);

        if let Some(directory) = directory_prefix(path) {
            assert!(
                directory.ends_with('/') && !directory.starts_with('/'),
                "{directory:?}"
            );
            assert_eq!(
                directory_prefix(&directory).as_deref(),
                Some(directory.as_str())
            );
        }
        let any = hash_tag(&text);
        assert!(text.contains(any));
    });
}
