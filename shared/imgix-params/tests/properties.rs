//! Properties of the query → plan path that must hold for every query, not
//! just the ones the table tests name: parsing never panics, the canonical
//! plan is a fixed point of normalisation, and the order of distinct
//! parameters never changes the plan (so the cache key cannot split).

use imgmesh_imgix_params::{Spec, normalize_plan, parse_render_plan};
use proptest::prelude::*;

/// Every name a query may use: the spec's parameters, their aliases and
/// their base64 variants, plus a few unknown names.
fn names() -> Vec<String> {
    let spec = Spec::get();
    let mut names: Vec<String> = spec
        .params()
        .flat_map(|param| {
            let mut names = vec![param.name.clone(), format!("{}64", param.name)];
            names.extend(param.aliases.iter().cloned());
            names
        })
        .collect();
    names.extend(["nope".to_owned(), "s".to_owned(), "ixlib".to_owned()]);
    names.sort();
    names.dedup();
    names
}

/// Values of every shape the parser meets: numbers (negative, fractional,
/// huge), keywords from the spec, colours, lists, base64, and garbage.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        (-10_000i64..20_000).prop_map(|n| n.to_string()),
        (0.0f64..2.0).prop_map(|f| format!("{f:.3}")),
        Just("0".to_owned()),
        Just("1.0".to_owned()),
        Just("NaN".to_owned()),
        Just("1e3".to_owned()),
        prop::sample::select(vec![
            "crop",
            "clip",
            "max",
            "fill",
            "scale",
            "min",
            "facearea",
            "fillmax",
            "clamp",
            "webp",
            "png",
            "jpg",
            "avif",
            "gif",
            "json",
            "format",
            "compress",
            "faces",
            "entropy",
            "edges",
            "focalpoint",
            "top,left",
            "bottom,right",
            "center",
            "true",
            "false",
            "FF0000",
            "80FF0000",
            "#abc",
            "red",
            "imgixorange",
            "16:9",
            "1:1",
            "0:0",
            "10,20,30,40",
            "center,middle,0.5,0.5",
            "SGVsbG8",
            "@@@",
            "",
            "%20",
            "a b",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
    ]
}

/// A query of up to 12 `name=value` pairs.
fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let names = names();
    prop::collection::vec((prop::sample::select(names), value()), 0..12)
}

fn joined(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the query, parsing returns (a plan or a 400) without
    /// panicking, and a plan it returns is already canonical: normalising
    /// it again changes nothing.
    #[test]
    fn canonical_plans_are_idempotent(pairs in query()) {
        if let Ok(parsed) = parse_render_plan("", &joined(&pairs), Some("image/avif,image/webp")) {
            let again = normalize_plan(&parsed.plan).expect("a canonical plan normalises");
            prop_assert_eq!(again, parsed.plan);
        }
    }

    /// Parameters with distinct canonical names give the same plan in any
    /// order (a repeated name is "last one wins", so only distinct ones).
    #[test]
    fn order_of_distinct_parameters_does_not_matter(pairs in query(), seed in any::<u64>()) {
        let spec = Spec::get();
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(name, _)| {
                let base = name.strip_suffix("64").filter(|b| spec.param(b).is_some()).unwrap_or(name);
                let canonical = spec.canonical_name(base).unwrap_or(base).to_owned();
                seen.insert(canonical)
            })
            .collect();
        let mut shuffled = distinct.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let first = parse_render_plan("", &joined(&distinct), None);
        let second = parse_render_plan("", &joined(&shuffled), None);
        match (first, second) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "one order failed: {a:?} vs {b:?}"),
        }
    }
}

/// Query strings with no structure at all: printable text, percent-encoded
/// bytes of every value (invalid UTF-8 included), separators in odd places,
/// and real parameter names with whatever follows.
fn raw_query() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[ -~]{0,8}",
        any::<u8>().prop_map(|byte| format!("%{byte:02X}")),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("+".to_owned()),
        prop::sample::select(names()).prop_map(|name| format!("{name}=")),
    ];
    prop::collection::vec(part, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever bytes the Source's default params and the URL's query hold,
    /// parsing returns (a plan or a 400) without panicking, and a plan it
    /// returns is a fixed point of normalisation.
    #[test]
    fn arbitrary_query_strings_give_canonical_plans(defaults in raw_query(), query in raw_query()) {
        if let Ok(parsed) = parse_render_plan(&defaults, &query, Some("image/avif,image/webp")) {
            let again = normalize_plan(&parsed.plan).expect("a canonical plan normalises");
            prop_assert_eq!(again, parsed.plan);
        }
    }
}
