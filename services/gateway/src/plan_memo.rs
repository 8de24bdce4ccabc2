//! A small, bounded memo of the work a repeated URL needs before its
//! derivative can be looked up: the parsed render plan and its cache names.
//!
//! Parsing a query into the canonical plan and hashing it into
//! [`CacheNames`] cost more than serving a hot copy itself, and a popular
//! image is asked for with the same URL over and over. The plan is a pure
//! function of the Source's `default_params`, the query and — only with
//! `auto=format` — the `Accept` header; the names add the Source's id,
//! config version and the asset path. So the memo is keyed by exactly
//! those: the Source's id and config version (every Source edit bumps the
//! version, so an edited Source never meets an old entry), the path, the
//! query and, for a plan that varies on it, `Accept`.
//!
//! Nothing that decides whether a request may be served lives here: the
//! signature and `expires` checks run on every request before the memo is
//! asked. Purges are unaffected too: [`CacheNames`] only names the purge
//! counters, whose current values the derivative cache reads on each lookup.
//!
//! Each entry also remembers the header values of the last `200` it
//! answered ([`MemoizedPlan::response_headers`]), its `Content-Length` and
//! `Age` included, so a hot copy answered again reuses them instead of
//! parsing and formatting them anew (the `Age` changes once a second).
//!
//! The memo holds at most [`MEMO_CAPACITY`] URLs; when it is full an
//! arbitrary one makes room. Keys longer than [`MAX_MEMO_KEY_BYTES`] are
//! parsed every time instead of being kept.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash as _, Hasher as _, RandomState};
use std::sync::{Arc, Mutex};

use http::HeaderValue;
use imgmesh_derivative_cache::CacheNames;
use imgmesh_proto::registry::v1::Source;

use crate::render_plan::{ParsedPlan, PlanError, parse_render_plan};

/// Most URLs (Source, path, query) remembered at once.
pub(crate) const MEMO_CAPACITY: usize = 4_096;

/// Most `Accept` variants remembered for one `auto=format` URL.
pub(crate) const MAX_ACCEPT_VARIANTS: usize = 8;

/// Longest path, query and `Accept` (together) worth remembering.
pub(crate) const MAX_MEMO_KEY_BYTES: usize = 2_048;

/// A URL's parsed plan and the cache names it has on its Source.
#[derive(Debug)]
pub(crate) struct MemoizedPlan {
    /// The canonical plan and whether it varies on `Accept`.
    pub(crate) parsed: ParsedPlan,
    /// The derivative's names in the derivative cache.
    pub(crate) names: CacheNames,
    /// The header values of the last `200` answered for this plan.
    headers: Mutex<Option<Arc<ResponseHeaders>>>,
}

/// What a `200`'s own headers are made of: the derivative's content type,
/// validators, lifetime, age and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderInputs<'a> {
    /// The derivative's media type.
    pub(crate) content_type: &'a str,
    /// Its strong `ETag` (empty when it has none).
    pub(crate) etag: &'a str,
    /// Its original's modification time, Unix seconds (0 when unknown).
    pub(crate) last_modified: i64,
    /// Whether the derivative may be cached at all (a lifetime above 0).
    pub(crate) cacheable: bool,
    /// The `max-age` the response states.
    pub(crate) max_age: u32,
    /// The `Age` the response states, if any.
    pub(crate) age: Option<u32>,
    /// The body's length; `None` for a response without a body of its own
    /// (a `304`), which any remembered length suits, as it states none.
    pub(crate) content_length: Option<u64>,
}

/// The header values built from a [`HeaderInputs`].
#[derive(Debug)]
pub(crate) struct ResponseHeaders {
    content_type_text: String,
    etag_text: String,
    last_modified_seconds: i64,
    cacheable: bool,
    max_age: u32,
    age_seconds: Option<u32>,
    content_length_bytes: Option<u64>,
    /// `Content-Type`.
    pub(crate) content_type: HeaderValue,
    /// `ETag`, when there is a valid one.
    pub(crate) etag: Option<HeaderValue>,
    /// `Last-Modified`, when the time is known.
    pub(crate) last_modified: Option<HeaderValue>,
    /// `Cache-Control`.
    pub(crate) cache_control: HeaderValue,
    /// `Age`, when the response states one.
    pub(crate) age: Option<HeaderValue>,
    /// `Content-Length`, when the values were built for a body.
    pub(crate) content_length: Option<HeaderValue>,
}

// === impl ResponseHeaders ===

impl ResponseHeaders {
    /// The values built from `inputs`: those given, and `Age` and
    /// `Content-Length` from the numbers.
    pub(crate) fn new(
        inputs: &HeaderInputs<'_>,
        content_type: HeaderValue,
        etag: Option<HeaderValue>,
        last_modified: Option<HeaderValue>,
        cache_control: HeaderValue,
    ) -> ResponseHeaders {
        ResponseHeaders {
            content_type_text: inputs.content_type.to_owned(),
            etag_text: inputs.etag.to_owned(),
            last_modified_seconds: inputs.last_modified,
            cacheable: inputs.cacheable,
            max_age: inputs.max_age,
            age_seconds: inputs.age,
            content_length_bytes: inputs.content_length,
            content_type,
            etag,
            last_modified,
            cache_control,
            age: inputs.age.map(HeaderValue::from),
            content_length: inputs.content_length.map(HeaderValue::from),
        }
    }

    /// Whether these values were built from `inputs`.
    fn built_from(&self, inputs: &HeaderInputs<'_>) -> bool {
        self.max_age == inputs.max_age
            && self.age_seconds == inputs.age
            && inputs
                .content_length
                .is_none_or(|length| self.content_length_bytes == Some(length))
            && self.cacheable == inputs.cacheable
            && self.last_modified_seconds == inputs.last_modified
            && self.etag_text == inputs.etag
            && self.content_type_text == inputs.content_type
    }
}

// === impl MemoizedPlan ===

impl MemoizedPlan {
    /// Parses `query` under `source`'s defaults (with `accept` for
    /// `auto=format`) and names the derivative of `path`.
    pub(crate) fn parse(
        source: &Source,
        path: &str,
        query: &str,
        accept: Option<&str>,
    ) -> Result<MemoizedPlan, PlanError> {
        let parsed = parse_render_plan(&source.default_params, query, accept)?;
        let names = CacheNames::new(&source.id, source.config_version, path, &parsed.plan);
        Ok(MemoizedPlan {
            parsed,
            names,
            headers: Mutex::new(None),
        })
    }

    /// The header values for `inputs`: the remembered ones when they were
    /// built from the same inputs, else `build(inputs)`, remembered for
    /// next time when it succeeds.
    pub(crate) fn response_headers<E>(
        &self,
        inputs: &HeaderInputs<'_>,
        build: impl FnOnce(&HeaderInputs<'_>) -> Result<ResponseHeaders, E>,
    ) -> Result<Arc<ResponseHeaders>, E> {
        if let Some(remembered) = lock(&self.headers).as_ref()
            && remembered.built_from(inputs)
        {
            return Ok(Arc::clone(remembered));
        }
        let built = Arc::new(build(inputs)?);
        *lock(&self.headers) = Some(Arc::clone(&built));
        Ok(built)
    }
}

/// The memo: URL → [`MemoizedPlan`], bounded.
#[derive(Debug, Default)]
pub(crate) struct PlanMemo {
    hasher: RandomState,
    /// Slots by the hash of their URL; a slot whose URL differs from the
    /// one asked for (a hash collision) is a miss, and is replaced.
    slots: Mutex<HashMap<u64, Slot>>,
}

/// One URL's plans.
#[derive(Debug)]
struct Slot {
    source_id: String,
    config_version: u64,
    path: String,
    query: String,
    plans: Plans,
}

#[derive(Debug)]
enum Plans {
    /// The plan does not depend on `Accept`.
    Fixed(Arc<MemoizedPlan>),
    /// `auto=format`: one plan per `Accept` seen, oldest first.
    ByAccept(Vec<(Option<String>, Arc<MemoizedPlan>)>),
}

// === impl PlanMemo ===

impl PlanMemo {
    /// The plan and names of `path` with `query` on `source` for a request
    /// accepting `accept`: remembered, or parsed now (and remembered).
    /// Parse errors are returned, never remembered.
    pub(crate) fn plan(
        &self,
        source: &Source,
        path: &str,
        query: &str,
        accept: Option<&str>,
    ) -> Result<Arc<MemoizedPlan>, PlanError> {
        let key_bytes = path.len() + query.len() + accept.map_or(0, str::len);
        if key_bytes > MAX_MEMO_KEY_BYTES {
            return MemoizedPlan::parse(source, path, query, accept).map(Arc::new);
        }
        let hash = self.hash(source, path, query);
        if let Some(found) = self.find(hash, source, path, query, accept) {
            return Ok(found);
        }
        let parsed = Arc::new(MemoizedPlan::parse(source, path, query, accept)?);
        self.remember(hash, source, path, query, accept, &parsed);
        Ok(parsed)
    }

    /// How many URLs are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.slots).len()
    }

    fn hash(&self, source: &Source, path: &str, query: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        source.id.hash(&mut hasher);
        hasher.write_u64(source.config_version);
        path.hash(&mut hasher);
        query.hash(&mut hasher);
        hasher.finish()
    }

    fn find(
        &self,
        hash: u64,
        source: &Source,
        path: &str,
        query: &str,
        accept: Option<&str>,
    ) -> Option<Arc<MemoizedPlan>> {
        let slots = lock(&self.slots);
        let slot = slots
            .get(&hash)
            .filter(|slot| slot.is_for(source, path, query))?;
        match &slot.plans {
            Plans::Fixed(plan) => Some(Arc::clone(plan)),
            Plans::ByAccept(variants) => variants
                .iter()
                .find(|(seen, _)| seen.as_deref() == accept)
                .map(|(_, plan)| Arc::clone(plan)),
        }
    }

    fn remember(
        &self,
        hash: u64,
        source: &Source,
        path: &str,
        query: &str,
        accept: Option<&str>,
        plan: &Arc<MemoizedPlan>,
    ) {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get_mut(&hash)
            && slot.is_for(source, path, query)
        {
            match &mut slot.plans {
                Plans::ByAccept(variants) if plan.parsed.varies_on_accept => {
                    if variants.iter().all(|(seen, _)| seen.as_deref() != accept) {
                        if variants.len() >= MAX_ACCEPT_VARIANTS {
                            variants.remove(0);
                        }
                        variants.push((accept.map(str::to_owned), Arc::clone(plan)));
                    }
                }
                // Another request remembered the same fixed plan meanwhile.
                Plans::Fixed(_) | Plans::ByAccept(_) => {}
            }
            return;
        }
        if !slots.contains_key(&hash) && slots.len() >= MEMO_CAPACITY {
            // The map's first slot in iteration order: cheap to find, and
            // as good as random (the hasher is randomly keyed).
            if let Some(&victim) = slots.keys().next() {
                slots.remove(&victim);
            }
        }
        let plans = if plan.parsed.varies_on_accept {
            Plans::ByAccept(vec![(accept.map(str::to_owned), Arc::clone(plan))])
        } else {
            Plans::Fixed(Arc::clone(plan))
        };
        slots.insert(
            hash,
            Slot {
                source_id: source.id.clone(),
                config_version: source.config_version,
                path: path.to_owned(),
                query: query.to_owned(),
                plans,
            },
        );
    }
}

// === impl Slot ===

impl Slot {
    fn is_for(&self, source: &Source, path: &str, query: &str) -> bool {
        self.config_version == source.config_version
            && self.source_id == source.id
            && self.path == path
            && self.query == query
    }
}

/// Locks `mutex`, recovering the data if a holder panicked (every update
/// here leaves it consistent).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn source(id: &str, config_version: u64, default_params: &str) -> Source {
        Source {
            id: id.to_owned(),
            config_version,
            default_params: default_params.to_owned(),
            ..Source::default()
        }
    }

    fn fresh(
        source: &Source,
        path: &str,
        query: &str,
        accept: Option<&str>,
    ) -> (ParsedPlan, CacheNames) {
        let parsed = parse_render_plan(&source.default_params, query, accept).unwrap();
        let names = CacheNames::new(&source.id, source.config_version, path, &parsed.plan);
        (parsed, names)
    }

    fn assert_same(memoized: &MemoizedPlan, (parsed, names): &(ParsedPlan, CacheNames)) {
        assert_eq!(&memoized.parsed, parsed);
        assert_eq!(memoized.names.base, names.base);
        assert_eq!(memoized.names.generations, names.generations);
        assert_eq!(memoized.names.epoch, names.epoch);
    }

    proptest! {
        /// Asked twice (and after other URLs), the memo gives exactly what a
        /// fresh parse and hash give.
        #[test]
        fn the_memo_agrees_with_a_fresh_parse(
            queries in prop::collection::vec(
                prop::sample::select(vec![
                    "", "w=100", "w=100&h=50", "h=50&w=100", "fm=png", "auto=format",
                    "auto=format,compress&w=300", "q=60&fit=crop", "dpr=2&w=40", "blur=20",
                ]),
                1..12,
            ),
            accept in prop::sample::select(vec![None, Some("image/webp"), Some("image/avif,image/webp"), Some("text/html")]),
            version in 1u64..4,
        ) {
            let memo = PlanMemo::default();
            let source = source("src-1", version, "q=80");
            for _ in 0..2 {
                for query in &queries {
                    let memoized = memo.plan(&source, "dir/a.jpg", query, accept).unwrap();
                    assert_same(&memoized, &fresh(&source, "dir/a.jpg", query, accept));
                }
            }
        }
    }

    /// A repeated URL gets the remembered plan, not a new parse.
    #[test]
    fn a_repeated_url_is_remembered() {
        let memo = PlanMemo::default();
        let source = source("src-1", 1, "");
        let first = memo.plan(&source, "a.jpg", "w=100", None).unwrap();
        let again = memo.plan(&source, "a.jpg", "w=100", None).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other_path = memo.plan(&source, "b.jpg", "w=100", None).unwrap();
        assert!(!Arc::ptr_eq(&first, &other_path));
        assert_ne!(first.names.base, other_path.names.base);
    }

    /// An edited Source (a new config version, new defaults) never meets
    /// the plan remembered for its old version.
    #[test]
    fn a_source_edit_misses_the_old_entry() {
        let memo = PlanMemo::default();
        let old = memo
            .plan(&source("src-1", 1, "w=100"), "a.jpg", "", None)
            .unwrap();
        let edited = source("src-1", 2, "w=300");
        let new = memo.plan(&edited, "a.jpg", "", None).unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(new.parsed.plan.width, 300);
        assert_same(&new, &fresh(&edited, "a.jpg", "", None));
        let other_source = memo
            .plan(&source("src-2", 1, "w=100"), "a.jpg", "", None)
            .unwrap();
        assert!(!Arc::ptr_eq(&old, &other_source));
    }

    /// With auto=format each Accept gets its own plan; without it, Accept
    /// does not split the entry.
    #[test]
    fn auto_format_keys_on_accept() {
        let memo = PlanMemo::default();
        let source = source("src-1", 1, "");
        let webp = memo
            .plan(&source, "a.jpg", "auto=format", Some("image/webp"))
            .unwrap();
        let plain = memo
            .plan(&source, "a.jpg", "auto=format", Some("image/jpeg"))
            .unwrap();
        let none = memo.plan(&source, "a.jpg", "auto=format", None).unwrap();
        assert_same(
            &webp,
            &fresh(&source, "a.jpg", "auto=format", Some("image/webp")),
        );
        assert_same(
            &plain,
            &fresh(&source, "a.jpg", "auto=format", Some("image/jpeg")),
        );
        assert_ne!(webp.parsed.plan, plain.parsed.plan);
        assert_ne!(webp.names.base, plain.names.base);
        assert!(Arc::ptr_eq(
            &webp,
            &memo
                .plan(&source, "a.jpg", "auto=format", Some("image/webp"))
                .unwrap()
        ));
        assert!(Arc::ptr_eq(
            &none,
            &memo.plan(&source, "a.jpg", "auto=format", None).unwrap()
        ));

        let fixed = memo
            .plan(&source, "a.jpg", "w=10", Some("image/webp"))
            .unwrap();
        let other_accept = memo
            .plan(&source, "a.jpg", "w=10", Some("image/jpeg"))
            .unwrap();
        assert!(Arc::ptr_eq(&fixed, &other_accept));
    }

    /// Neither the number of URLs nor an auto=format URL's Accept variants
    /// grow past their bounds, and a long key is parsed but not kept.
    #[test]
    fn the_memo_is_bounded() {
        let memo = PlanMemo::default();
        let source = source("src-1", 1, "");
        for width in 1..=(MEMO_CAPACITY + 100) {
            memo.plan(&source, "a.jpg", &format!("w={width}"), None)
                .unwrap();
        }
        assert_eq!(memo.len(), MEMO_CAPACITY);

        let memo = PlanMemo::default();
        for variant in 0..(MAX_ACCEPT_VARIANTS + 3) {
            let accept = format!("image/webp;q=0.{variant}");
            memo.plan(&source, "a.jpg", "auto=format", Some(&accept))
                .unwrap();
        }
        let slots = lock(&memo.slots);
        let Some(Plans::ByAccept(variants)) = slots.values().next().map(|slot| &slot.plans) else {
            panic!("an auto=format URL keeps its plans by Accept");
        };
        assert_eq!(variants.len(), MAX_ACCEPT_VARIANTS);
        drop(slots);

        let memo = PlanMemo::default();
        let long = format!("txt={}", "a".repeat(MAX_MEMO_KEY_BYTES));
        let parsed = memo.plan(&source, "a.jpg", &long, None).unwrap();
        assert_same(&parsed, &fresh(&source, "a.jpg", &long, None));
        assert_eq!(memo.len(), 0);
    }

    /// A parse error is returned each time and never remembered.
    #[test]
    fn errors_are_not_remembered() {
        let memo = PlanMemo::default();
        let source = source("src-1", 1, "");
        for _ in 0..2 {
            let error = memo.plan(&source, "a.jpg", "txt64=@@@", None).unwrap_err();
            assert_eq!(error.to_string(), "txt64: value is not valid base64url");
        }
        assert_eq!(memo.len(), 0);
    }

    /// Header values are rebuilt only when what they are built from changes.
    #[test]
    fn response_headers_are_rebuilt_only_on_change() {
        let plan = MemoizedPlan::parse(&source("src-1", 1, ""), "a.jpg", "", None).unwrap();
        let inputs = HeaderInputs {
            content_type: "image/jpeg",
            etag: "\"abc\"",
            last_modified: 1_700_000_000,
            cacheable: true,
            max_age: 60,
            age: Some(5),
            content_length: Some(1_234),
        };
        let build = |inputs: &HeaderInputs<'_>| {
            Ok::<_, ()>(ResponseHeaders::new(
                inputs,
                HeaderValue::from_str(inputs.content_type).unwrap(),
                HeaderValue::from_str(inputs.etag).ok(),
                None,
                HeaderValue::from_static("no-store"),
            ))
        };
        let first = plan.response_headers(&inputs, build).unwrap();
        let again = plan
            .response_headers(&inputs, |_| Err(()))
            .expect("the same inputs reuse the built values");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.age.as_ref().unwrap(), "5");
        assert_eq!(first.content_length.as_ref().unwrap(), "1234");
        // A 304 states no length: the values built for the 200 serve it.
        let not_modified = HeaderInputs {
            content_length: None,
            ..inputs
        };
        let reused = plan.response_headers(&not_modified, |_| Err(())).unwrap();
        assert!(Arc::ptr_eq(&first, &reused));
        let changes = [
            HeaderInputs {
                etag: "\"def\"",
                ..inputs
            },
            HeaderInputs {
                content_type: "image/png",
                ..inputs
            },
            HeaderInputs {
                last_modified: 1_700_000_001,
                ..inputs
            },
            HeaderInputs {
                cacheable: false,
                ..inputs
            },
            HeaderInputs {
                max_age: 59,
                ..inputs
            },
            HeaderInputs {
                age: Some(6),
                ..inputs
            },
            HeaderInputs {
                age: None,
                ..inputs
            },
            HeaderInputs {
                content_length: Some(1_235),
                ..inputs
            },
        ];
        for changed in changes {
            assert!(plan.response_headers(&changed, |_| Err(())).is_err());
            let rebuilt = plan.response_headers(&changed, build).unwrap();
            assert!(rebuilt.built_from(&changed));
            assert!(!rebuilt.built_from(&inputs));
        }
    }
}
