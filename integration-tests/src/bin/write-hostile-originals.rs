//! Writes the hostile originals of `make bench`'s bad-bytes section into a
//! directory: `write-hostile-originals <dir>`.

use std::path::PathBuf;

use anyhow::Context as _;
use imgmesh_integration_tests::hostile_originals;

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: write-hostile-originals <dir>")?,
    );
    std::fs::create_dir_all(&dir)?;
    let files = [
        ("bomb.png", hostile_originals::png_pixel_bomb()),
        ("frames.gif", hostile_originals::gif_with_frames(5000)),
        (
            "scans.jpg",
            hostile_originals::jpeg_with_legal_scans(7000, 7000),
        ),
        (
            "ztxt-bomb.png",
            hostile_originals::png_with_zlib_bomb(b"zTXt", u32::MAX),
        ),
        (
            "iccp-bomb.png",
            hostile_originals::png_with_zlib_bomb(b"iCCP", u32::MAX),
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), &bytes).with_context(|| format!("writing {name}"))?;
        println!("{name} {}", bytes.len());
    }
    Ok(())
}
