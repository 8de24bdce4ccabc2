//! Test originals generated with libvips (and one PNG header built by hand).

use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, ForeignHeifCompression, Interpretation};
use rs_vips::voption::{Setter as _, VOption};

/// A textured `width × height` sRGB image (noise, so quality matters).
pub(crate) fn photo(width: u32, height: u32) -> VipsImage {
    crate::pipeline::load::libvips::init().unwrap();
    let noise = VipsImage::gaussnoise_with_opts(
        width as i32,
        height as i32,
        VOption::new().set("mean", 128.0).set("sigma", 40.0),
    )
    .unwrap();
    noise
        .linear(&[1.0, 0.8, 0.6], &[0.0, 20.0, 40.0])
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap()
}

/// A `width × height` JPEG.
pub(crate) fn jpeg(width: u32, height: u32) -> Vec<u8> {
    photo(width, height).jpegsave_buffer().unwrap()
}

/// A `width × height` JPEG whose EXIF orientation is `orientation`.
pub(crate) fn jpeg_with_orientation(width: u32, height: u32, orientation: i32) -> Vec<u8> {
    let mut image = photo(width, height);
    image.set_int("orientation", orientation).unwrap();
    image.jpegsave_buffer().unwrap()
}

/// A `width × height` PNG.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    photo(width, height).pngsave_buffer().unwrap()
}

/// A `width × height` RGBA PNG, fully transparent.
pub(crate) fn transparent_png(width: u32, height: u32) -> Vec<u8> {
    photo(width, height)
        .bandjoin_const(&[0.0])
        .unwrap()
        .pngsave_buffer()
        .unwrap()
}

/// A `width × height` WebP.
pub(crate) fn webp(width: u32, height: u32) -> Vec<u8> {
    photo(width, height).webpsave_buffer().unwrap()
}

/// A `width × height` AVIF.
pub(crate) fn avif(width: u32, height: u32) -> Vec<u8> {
    photo(width, height)
        .heifsave_buffer_with_opts(
            VOption::new()
                .set("compression", ForeignHeifCompression::Av1 as i32)
                .set("effort", 0),
        )
        .unwrap()
}

/// An animated GIF of `pages` frames of `width × height`.
pub(crate) fn animated_gif(width: u32, height: u32, pages: u32) -> Vec<u8> {
    let mut strip = photo(width, height * pages);
    strip.set_int("page-height", height as i32).unwrap();
    strip.gifsave_buffer().unwrap()
}

/// A `width × height` image of four flat quadrants: red top left, green
/// top right, blue bottom left, white bottom right.
pub(crate) fn quadrants(width: u32, height: u32) -> VipsImage {
    crate::pipeline::load::libvips::init().unwrap();
    let (w, h) = ((width / 2) as i32, (height / 2) as i32);
    let tile = |rgb: [f64; 3]| {
        let black = VipsImage::black(w, h)
            .unwrap()
            .cast(BandFormat::Uchar)
            .unwrap();
        VipsImage::new_from_image(&black, &rgb).unwrap()
    };
    let top = VipsImage::arrayjoin(&[tile([255.0, 0.0, 0.0]), tile([0.0, 255.0, 0.0])]).unwrap();
    let bottom =
        VipsImage::arrayjoin(&[tile([0.0, 0.0, 255.0]), tile([255.0, 255.0, 255.0])]).unwrap();
    VipsImage::arrayjoin_with_opts(&[top, bottom], VOption::new().set("across", 1))
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap()
}

/// A horizontal grey ramp, 0 at the left edge to 255 at the right.
pub(crate) fn ramp(width: u32, height: u32) -> VipsImage {
    crate::pipeline::load::libvips::init().unwrap();
    let x = VipsImage::xyz(width as i32, height as i32)
        .unwrap()
        .extract_band(0)
        .unwrap();
    let grey = x
        .linear(&[255.0 / f64::from(width - 1)], &[0.0])
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap();
    VipsImage::bandjoin(&[grey.copy().unwrap(), grey.copy().unwrap(), grey])
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap()
}

/// `image` as a lossless PNG.
pub(crate) fn png_of(image: &VipsImage) -> Vec<u8> {
    image.pngsave_buffer().unwrap()
}

/// `image` as a high-quality JPEG with EXIF orientation `orientation`,
/// its pixels stored so that applying the orientation shows `image`.
pub(crate) fn jpeg_stored_for_orientation(image: &VipsImage, orientation: i32) -> Vec<u8> {
    use rs_vips::enums::{Angle, Direction};
    // The inverse of the transform each orientation asks a viewer to apply.
    let stored = match orientation {
        2 => image.flip(Direction::Horizontal).unwrap(),
        3 => image.rot(Angle::D180).unwrap(),
        4 => image.flip(Direction::Vertical).unwrap(),
        5 => image
            .flip(Direction::Horizontal)
            .unwrap()
            .rot(Angle::D270)
            .unwrap(),
        6 => image.rot(Angle::D270).unwrap(),
        7 => image
            .flip(Direction::Horizontal)
            .unwrap()
            .rot(Angle::D90)
            .unwrap(),
        8 => image.rot(Angle::D90).unwrap(),
        _ => image.copy().unwrap(),
    };
    let mut stored = stored.copy().unwrap();
    stored.set_int("orientation", orientation).unwrap();
    stored
        .jpegsave_buffer_with_opts(VOption::new().set("Q", 95))
        .unwrap()
}

/// An animated GIF whose frame `i` is a flat grey of `40 · (i + 1)`.
pub(crate) fn animated_gif_frames(width: u32, height: u32, pages: u32) -> Vec<u8> {
    let strip = numbered_frames(width, height, pages);
    strip.gifsave_buffer().unwrap()
}

/// An animated WebP whose frame `i` is a flat grey of `40 · (i + 1)`.
pub(crate) fn animated_webp(width: u32, height: u32, pages: u32) -> Vec<u8> {
    let strip = numbered_frames(width, height, pages);
    strip
        .webpsave_buffer_with_opts(VOption::new().set("lossless", true))
        .unwrap()
}

fn numbered_frames(width: u32, height: u32, pages: u32) -> VipsImage {
    crate::pipeline::load::libvips::init().unwrap();
    let frames: Vec<VipsImage> = (0..pages)
        .map(|i| {
            let black = VipsImage::black(width as i32, height as i32)
                .unwrap()
                .cast(BandFormat::Uchar)
                .unwrap();
            let level = f64::from(40 * (i + 1));
            VipsImage::new_from_image(&black, &[level, level, level]).unwrap()
        })
        .collect();
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
        .unwrap();
    strip.set_int("page-height", height as i32).unwrap();
    strip
        .set_array_int("delay", &vec![100; pages as usize])
        .unwrap();
    strip.set_int("loop", 0).unwrap();
    strip
}

/// A CMYK JPEG without an embedded profile, of one colour.
pub(crate) fn cmyk_jpeg(width: u32, height: u32, cmyk: [f64; 4]) -> Vec<u8> {
    crate::pipeline::load::libvips::init().unwrap();
    let black = VipsImage::black(width as i32, height as i32)
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap();
    VipsImage::new_from_image(&black, &cmyk)
        .unwrap()
        .copy_with_opts(VOption::new().set("interpretation", Interpretation::Cmyk as i32))
        .unwrap()
        .jpegsave_buffer_with_opts(VOption::new().set("Q", 95))
        .unwrap()
}

/// A `width × height` TIFF (a format imgmesh refuses).
pub(crate) fn tiff(width: u32, height: u32) -> Vec<u8> {
    photo(width, height).tiffsave_buffer().unwrap()
}

/// A PNG whose header declares `width × height` RGB pixels but whose data
/// is a few bytes: a decompression bomb's header without the bomb.
pub(crate) fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8-bit RGB, deflate, adaptive filtering, not interlaced.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    push_png_chunk(&mut png, b"IHDR", &ihdr);
    // An empty zlib stream: any decode would fail, so only the header is read.
    push_png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    push_png_chunk(&mut png, b"IEND", &[]);
    png
}

fn push_png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(kind.iter().chain(data));
    png.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE), as PNG chunks use.
fn crc32<'a>(bytes: impl Iterator<Item = &'a u8>) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A progressive `width × height` JPEG with EXIF orientation 6 and an
/// embedded sRGB profile: every segment a render reads.
pub(crate) fn jpeg_with_orientation_and_profile(width: u32, height: u32) -> Vec<u8> {
    let mut image = photo(width, height)
        .icc_transform_with_opts("srgb", VOption::new().set("input_profile", "srgb"))
        .unwrap()
        .cast(BandFormat::Uchar)
        .unwrap();
    image.set_int("orientation", 6).unwrap();
    image
        .jpegsave_buffer_with_opts(VOption::new().set("interlace", true))
        .unwrap()
}

/// `jpeg` with `segments` XMP APP1 segments of `size` bytes each (the
/// main packet, then extended XMP) and one APP13 (IPTC) segment inserted
/// after its SOI, as the corpus's
/// rhythm.jpg carries 7.3 MB of XMP: metadata no render reads.
pub(crate) fn jpeg_with_unused_metadata(jpeg: &[u8], segments: usize, size: usize) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]) && (40..=65_533).contains(&size));
    let mut out = jpeg[..2].to_vec();
    let push = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(body);
    };
    for segment in 0..segments {
        // The main XMP packet (which libvips attaches as `xmp-data`), then
        // extended XMP.
        let mut body = if segment == 0 {
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>".to_vec()
        } else {
            b"http://ns.adobe.com/xmp/extension/\0".to_vec()
        };
        body.resize(size, b'a' + (segment % 26) as u8);
        push(&mut out, 0xE1, &body);
    }
    push(&mut out, 0xED, b"Photoshop 3.0\0iptc");
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-rolled CRC matches the standard check value.
    #[test]
    fn crc32_matches_check_value() {
        assert_eq!(crc32(b"123456789".iter()), 0xCBF4_3926);
    }
}
