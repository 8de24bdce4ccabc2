//! Writes the seed corpora that are images or binary envelopes (the text
//! seeds of `imgix_query` are kept in `corpus/imgix_query/`): small
//! originals of every served format made with libvips, and cache envelopes
//! made with the cache's own encoder.
//!
//! Usage: `make_seeds <corpus dir>`; writes `<dir>/image_pipeline/*` and
//! `<dir>/cache_envelope/*`.

use std::path::Path;

use imgmesh_derivative_cache::entry::{CachedDerivative, EntryMeta, encode_envelope};
use rs_vips::enums::BandFormat;
use rs_vips::voption::{Setter as _, VOption};
use rs_vips::{Vips, VipsImage};

fn gradient(width: i32, height: i32) -> VipsImage {
    let xy = VipsImage::xyz(width, height).expect("xyz");
    xy.linear(
        &[255.0 / f64::from(width), 255.0 / f64::from(height)],
        &[0.0, 0.0],
    )
    .and_then(|image| image.bandjoin_const(&[96.0]))
    .and_then(|image| image.cast(BandFormat::Uchar))
    .expect("a gradient")
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_seeds <corpus dir>");
    let dir = Path::new(&dir);
    Vips::init("imgmesh-fuzz-seeds").expect("libvips initialises");
    let images = dir.join("image_pipeline");
    std::fs::create_dir_all(&images).unwrap();
    let image = gradient(24, 16);
    let mut animated = VipsImage::arrayjoin_with_opts(
        &[gradient(8, 8), gradient(8, 8).invert().unwrap()],
        VOption::new().set("across", 1),
    )
    .unwrap()
    .copy()
    .unwrap();
    animated.set_int("page-height", 8).unwrap();
    animated.set_array_int("delay", &[100, 100]).unwrap();
    let seeds: [(&str, Vec<u8>); 5] = [
        (
            "seed.jpg",
            image
                .jpegsave_buffer_with_opts(VOption::new().set("Q", 50))
                .unwrap(),
        ),
        ("seed.png", image.pngsave_buffer().unwrap()),
        ("seed.webp", image.webpsave_buffer().unwrap()),
        ("seed.gif", animated.gifsave_buffer().unwrap()),
        (
            "progressive.jpg",
            image
                .jpegsave_buffer_with_opts(VOption::new().set("interlace", true))
                .unwrap(),
        ),
    ];
    for (name, bytes) in seeds {
        std::fs::write(images.join(name), bytes).unwrap();
    }

    let envelopes = dir.join("cache_envelope");
    std::fs::create_dir_all(&envelopes).unwrap();
    for (i, (content_type, data)) in [("image/png", b"\x89PNG".as_slice()), ("image/webp", b"")]
        .into_iter()
        .enumerate()
    {
        let entry = CachedDerivative {
            meta: EntryMeta {
                content_type: content_type.to_owned(),
                width: 24,
                height: 16,
                etag: "\"abc\"".to_owned(),
                origin_etag: "\"origin\"".to_owned(),
                last_modified: 1_700_000_000,
                stored_at: 1_700_000_100,
                max_age: 3600,
            },
            data: bytes::Bytes::copy_from_slice(data),
        };
        std::fs::write(
            envelopes.join(format!("entry-{i}")),
            encode_envelope(&entry),
        )
        .unwrap();
    }
}
