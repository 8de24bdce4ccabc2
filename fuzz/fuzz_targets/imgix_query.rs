//! The imgix query parser and plan builder on arbitrary bytes.
//!
//! The input is split at its first NUL into the Source's default params and
//! the URL's query (no NUL: all query). Parsing must answer a plan or an
//! error without panicking, a plan must be a fixed point of normalisation
//! (so equal requests share one cache key), and the strict check of
//! default params must not panic either.

use imgmesh_imgix_params::{normalize_plan, parse_render_plan, validate_default_params};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let (defaults, query) = text.split_once('\0').unwrap_or(("", &text));
        for accept in [None, Some("image/avif,image/webp,*/*")] {
            if let Ok(parsed) = parse_render_plan(defaults, query, accept) {
                let again = normalize_plan(&parsed.plan).expect("a canonical plan normalises");
                assert_eq!(again, parsed.plan, "normalisation is not idempotent");
            }
        }
        let _ = validate_default_params(defaults);
    });
}
