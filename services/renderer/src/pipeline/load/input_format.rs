//! Recognises the input formats imgmesh serves by their magic bytes.
//!
//! The declared content type and the file name are ignored: only bytes that
//! start like JPEG, PNG, WebP, GIF or HEIF/AVIF ever reach libvips, and each
//! is handed to that format's loader by name. Anything else (SVG, PDF, TIFF,
//! MATLAB, BMP, text, ...) is refused before libvips sees it.

use std::borrow::Cow;

use crate::pipeline::derivative::EncodedFormat;

/// An input format imgmesh decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (the 8-byte PNG signature).
    Png,
    /// WebP (`RIFF....WEBP`).
    Webp,
    /// GIF (`GIF87a` or `GIF89a`).
    Gif,
    /// HEIF or AVIF (an ISO-BMFF `ftyp` box with a HEIF-family brand).
    Heif,
}

/// Major brands of the `ftyp` box that libheif reads: HEVC-coded HEIF, the
/// generic image brands, and AVIF.
const HEIF_BRANDS: [&[u8; 4]; 12] = [
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
    b"avif", b"avis",
];

// === impl InputFormat ===

impl InputFormat {
    /// Whether the format can hold an animation imgmesh keeps (GIF, WebP).
    pub fn can_animate(self) -> bool {
        matches!(self, InputFormat::Gif | InputFormat::Webp)
    }

    /// Recognises `bytes` by their first bytes; `None` when they are not a
    /// format imgmesh serves.
    pub fn sniff(bytes: &[u8]) -> Option<InputFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(InputFormat::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(InputFormat::Png);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some(InputFormat::Gif);
        }
        if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            return Some(InputFormat::Webp);
        }
        if bytes.len() >= 12
            && &bytes[4..8] == b"ftyp"
            && HEIF_BRANDS.iter().any(|brand| &bytes[8..12] == *brand)
        {
            return Some(InputFormat::Heif);
        }
        None
    }

    /// The output format that keeps this input's family, used when the plan
    /// does not name one: HEIF becomes AVIF, the others stay themselves.
    pub fn family(self) -> EncodedFormat {
        match self {
            InputFormat::Jpeg => EncodedFormat::Jpeg,
            InputFormat::Png => EncodedFormat::Png,
            InputFormat::Gif => EncodedFormat::Gif,
            InputFormat::Webp => EncodedFormat::Webp,
            InputFormat::Heif => EncodedFormat::Avif,
        }
    }
}

/// The number of scans (`SOS` segments) in a JPEG's bytes, counting no
/// further than `stop_after + 1`.
///
/// Segments are walked by their lengths (so a JPEG thumbnail inside an
/// EXIF segment is not counted), and each scan's entropy-coded data up to
/// the next marker that is not a stuffed `FF 00`, a restart marker or fill
/// bytes (ITU T.81 B.1.1.2, B.1.1.5). A progressive decoder walks every
/// block of a scan's components once per scan, so this bounds its work
/// without decoding anything; bytes that end early just end the count.
/// The entropy-coded data, nearly all of the file, is searched for `FF`
/// bytes with `memchr` rather than read byte by byte.
pub fn jpeg_scan_count(bytes: &[u8], stop_after: usize) -> usize {
    let mut scans = 0;
    let mut at = 2;
    while at + 4 <= bytes.len() && scans <= stop_after {
        if bytes[at] != 0xFF {
            return scans;
        }
        let marker = bytes[at + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                at += 1;
                continue;
            }
            0xD9 => return scans,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                at += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 2 + len;
        if marker != 0xDA {
            continue;
        }
        scans += 1;
        match next_marker(bytes, at) {
            Some(marker_at) => at = marker_at,
            None => return scans,
        }
    }
    scans
}

/// Where the entropy-coded data starting at `from` ends: the first `FF`
/// at or after `from` that a byte follows and that starts a marker (not a
/// stuffed `FF 00`, a restart marker `FF D0`…`FF D7`, or an `FF` fill byte
/// before one); `None` when no marker follows.
fn next_marker(bytes: &[u8], from: usize) -> Option<usize> {
    // An `FF` in the last byte has no marker code after it.
    let searched = bytes.get(..bytes.len().checked_sub(1)?)?;
    let mut at = from;
    while let Some(offset) = memchr::memchr(0xFF, searched.get(at..)?) {
        let ff = at + offset;
        if !matches!(bytes[ff + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
            return Some(ff);
        }
        at = ff + 1;
    }
    None
}

/// A JPEG's metadata segments that no render reads smaller than this are
/// left in place: copying the rest of the file to drop them would cost
/// more than libjpeg and libvips holding them.
const MIN_UNUSED_METADATA_BYTES: u64 = 64 * 1024;

/// One segment of a JPEG before its first scan.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Its marker (the byte after `FF`).
    marker: u8,
    /// Where its marker starts.
    start: usize,
    /// Where it ends (exclusive).
    end: usize,
}

// === impl Segment ===

impl Segment {
    /// Its body (after the marker and the length); empty for a marker
    /// without a length.
    fn body<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        bytes.get(self.start + 4..self.end).unwrap_or_default()
    }

    /// Whether libjpeg saves it for libvips (APP1 for EXIF and XMP, APP2
    /// for ICC, APP13 for IPTC), holding it for the whole decode while
    /// libvips copies it into the image's metadata.
    fn is_saved_metadata(&self) -> bool {
        matches!(self.marker, 0xE1 | 0xE2 | 0xED)
    }

    /// Whether it is metadata no render reads: an APP1 that is not EXIF
    /// (XMP, extended XMP) or an APP13 (IPTC, Photoshop resources). A
    /// render reads only the EXIF orientation, the ICC profile (APP2) and
    /// the Adobe colour transform (APP14), and writes no other metadata
    /// (see `encoding`).
    fn is_unused_by_renders(&self, bytes: &[u8]) -> bool {
        match self.marker {
            0xE1 => !self.body(bytes).starts_with(b"Exif\0"),
            0xED => true,
            _ => false,
        }
    }
}

/// The segments of a JPEG after its SOI, up to and including the first
/// scan's header (SOS); fill bytes are skipped. The walk stops early at
/// EOI and at bytes that do not parse or end early.
fn header_segments(bytes: &[u8]) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            break;
        }
        let marker = bytes[at + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                at += 1;
                continue;
            }
            0xD9 => break,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                segments.push(Segment {
                    marker,
                    start: at,
                    end: at + 2,
                });
                at += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let end = at + 2 + len;
        if len < 2 || end > bytes.len() {
            break;
        }
        segments.push(Segment {
            marker,
            start: at,
            end,
        });
        at = end;
        if marker == 0xDA {
            break;
        }
    }
    segments
}

/// The bytes of `segments` a render leaves out of a JPEG of `len` bytes
/// (see [`jpeg_for_decoding`]): their metadata no render reads, when it is
/// at least [`MIN_UNUSED_METADATA_BYTES`] and a quarter of the file
/// (below that, the copy without them costs more than it saves); else 0.
fn stripped_bytes(bytes: &[u8], segments: &[Segment]) -> usize {
    let unused: usize = segments
        .iter()
        .filter(|segment| segment.is_unused_by_renders(bytes))
        .map(|segment| segment.end - segment.start)
        .sum();
    let worth_it =
        unused as u64 >= MIN_UNUSED_METADATA_BYTES && unused.saturating_mul(4) >= bytes.len();
    if worth_it { unused } else { 0 }
}

/// The bytes a render hands libvips to decode a JPEG: the original itself,
/// or a copy without the metadata segments no render reads when they are
/// a large part of it.
///
/// libjpeg keeps every APP1 and APP13 segment for the whole decode and
/// libvips copies them into the image's metadata, so an extended XMP
/// packet is held twice (the corpus's rhythm.jpg: 7.3 MB of XMP in 114
/// segments, 14.7 MB held), on top of the input that rs-vips copies for
/// libvips. The output never carries them: metadata is stripped on save,
/// the colour profile aside. The copy keeps every other segment and the
/// scans byte for byte, so the decoded pixels are the same.
pub(crate) fn jpeg_for_decoding(bytes: &[u8]) -> Cow<'_, [u8]> {
    without_unused_metadata(bytes, false)
}

/// The bytes a JPEG's header is read from: like [`jpeg_for_decoding`],
/// and when the unused metadata is left out, the copy also stops after the
/// first scan's header (an EOI follows it), since reading the header
/// stops there.
pub(crate) fn jpeg_for_header(bytes: &[u8]) -> Cow<'_, [u8]> {
    without_unused_metadata(bytes, true)
}

fn without_unused_metadata(bytes: &[u8], header_only: bool) -> Cow<'_, [u8]> {
    let segments = header_segments(bytes);
    let stripped = stripped_bytes(bytes, &segments);
    let Some(last) = segments.last().filter(|_| stripped > 0) else {
        return Cow::Borrowed(bytes);
    };
    let rest = if header_only && last.marker == 0xDA {
        &[0xFF, 0xD9][..]
    } else {
        &bytes[last.end..]
    };
    let mut copy = Vec::with_capacity(bytes.len() - stripped);
    copy.extend_from_slice(&bytes[..2]);
    for segment in segments
        .iter()
        .filter(|segment| !segment.is_unused_by_renders(bytes))
    {
        copy.extend_from_slice(&bytes[segment.start..segment.end]);
    }
    copy.extend_from_slice(rest);
    Cow::Owned(copy)
}

/// What libjpeg holds while it decodes a JPEG, beyond the pixels it hands
/// out, as read from the JPEG's segments (no decoding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JpegDecoderMemory {
    /// The whole-image coefficient buffer, in bytes: a progressive JPEG (or
    /// one whose first scan leaves components to later scans) is decoded
    /// by collecting every scan's DCT coefficients for the whole image
    /// first, 64 × 2 bytes per 8 × 8 block of every component at the
    /// stored size, whatever scale the decoder then outputs (jdcoefct.c's
    /// `whole_image`); 0 for a sequential JPEG whose first scan holds every
    /// component, which is decoded a row of blocks at a time.
    pub coefficient_bytes: u64,
    /// The bytes of the metadata segments libvips asks libjpeg to keep
    /// (APP1 for EXIF and XMP, APP2 for ICC, APP13 for IPTC) in what the
    /// render decodes ([`jpeg_for_decoding`]): libjpeg holds them for the
    /// whole decode and libvips copies them into the image's metadata.
    pub saved_marker_bytes: u64,
    /// The size of the copy without unused metadata that the render
    /// decodes instead of the original ([`jpeg_for_decoding`]); 0 when it
    /// decodes the original itself.
    pub decoded_copy_bytes: u64,
}

/// Reads what decoding `bytes` (a JPEG) holds in libjpeg, from its
/// segments up to the first scan's header: the frame header's size and
/// sampling factors, whether it is progressive or its first scan leaves
/// components to later scans, and the metadata segments kept for the
/// decode. Nothing past the first scan's header is read. Bytes that end
/// early or do not parse give what was read before (the render refuses
/// them as corrupt anyway).
pub fn jpeg_decoder_memory(bytes: &[u8]) -> JpegDecoderMemory {
    let segments = header_segments(bytes);
    let stripped = stripped_bytes(bytes, &segments);
    let mut memory = JpegDecoderMemory {
        decoded_copy_bytes: if stripped > 0 {
            (bytes.len() - stripped) as u64
        } else {
            0
        },
        ..JpegDecoderMemory::default()
    };
    let mut frame: Option<(bool, &[u8])> = None;
    let mut first_scan: Option<&[u8]> = None;
    for segment in &segments {
        let body = segment.body(bytes);
        if segment.is_saved_metadata() {
            // Unless the render decodes a copy without it.
            let decoded = stripped == 0 || !segment.is_unused_by_renders(bytes);
            memory.saved_marker_bytes += if decoded { body.len() as u64 } else { 0 };
            continue;
        }
        // SOF0…SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        let marker = segment.marker;
        if marker == 0xDA {
            first_scan = Some(body);
        }
        if (0xC0..=0xCF).contains(&marker)
            && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
            && frame.is_none()
        {
            let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            frame = Some((progressive, body));
        }
    }
    let Some((progressive, frame)) = frame else {
        return memory;
    };
    if progressive || first_scan.is_some_and(|scan| leaves_components_out(frame, scan)) {
        memory.coefficient_bytes = coefficient_buffer_bytes(frame);
    }
    memory
}

/// Whether a scan header (the SOS segment's body) names fewer components
/// than the frame header (the SOF segment's body) declares. libjpeg decides
/// from the first scan alone whether it buffers the whole image's
/// coefficients (jdinput.c's `initial_setup`: `comps_in_scan <
/// num_components || progressive_mode`): a sequential JPEG codes each
/// component in exactly one scan (ITU T.81 G.1.1), so one whose first scan
/// holds every component is decoded a row of blocks at a time, whatever
/// follows it.
fn leaves_components_out(frame: &[u8], scan: &[u8]) -> bool {
    match (frame.get(5), scan.first()) {
        (Some(frame_components), Some(scan_components)) => scan_components < frame_components,
        _ => false,
    }
}

/// The size of libjpeg's whole-image coefficient buffer for a frame header
/// (the SOF segment's body): per component, its blocks (the image scaled by
/// its sampling factors over the largest ones, in 8 × 8 blocks, rounded up
/// to whole sampling units, as jdcoefct.c allocates them) × 64 × 2 bytes.
fn coefficient_buffer_bytes(frame: &[u8]) -> u64 {
    let [_precision, h0, h1, w0, w1, count, components @ ..] = frame else {
        return 0;
    };
    let height = u64::from(u16::from_be_bytes([*h0, *h1]));
    let width = u64::from(u16::from_be_bytes([*w0, *w1]));
    let sampling: Vec<(u64, u64)> = components
        .chunks_exact(3)
        .take(usize::from(*count))
        .map(|component| {
            let factors = component[1];
            (
                u64::from(factors >> 4).max(1),
                u64::from(factors & 0x0F).max(1),
            )
        })
        .collect();
    let max_h = sampling.iter().map(|&(h, _)| h).max().unwrap_or(1);
    let max_v = sampling.iter().map(|&(_, v)| v).max().unwrap_or(1);
    sampling
        .iter()
        .map(|&(h, v)| {
            let blocks = |size: u64, factor: u64, max: u64| {
                (size * factor).div_ceil(max * 8).next_multiple_of(factor)
            };
            blocks(width, h, max_h) * blocks(height, v, max_v) * 64 * 2
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use rs_vips::voption::{Setter as _, VOption};

    use super::*;

    /// Each served format is recognised from its magic bytes alone.
    #[test]
    fn recognises_served_formats() {
        let cases: [(&[u8], InputFormat); 7] = [
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", InputFormat::Jpeg),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", InputFormat::Png),
            (b"GIF89a\x01\x00\x01\x00", InputFormat::Gif),
            (b"GIF87a\x01\x00\x01\x00", InputFormat::Gif),
            (b"RIFF\x24\x00\x00\x00WEBPVP8 ", InputFormat::Webp),
            (b"\0\0\0\x1cftypavif\0\0\0\0", InputFormat::Heif),
            (b"\0\0\0\x18ftypheic\0\0\0\0", InputFormat::Heif),
        ];
        for (bytes, format) in cases {
            assert_eq!(InputFormat::sniff(bytes), Some(format), "{bytes:?}");
        }
    }

    /// Formats imgmesh does not serve, and truncated magic, are refused.
    #[test]
    fn refuses_everything_else() {
        let cases: [&[u8]; 12] = [
            b"",
            b"\xFF\xD8",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"%PDF-1.7\n",
            b"II*\0\x08\0\0\0",
            b"MM\0*\0\0\0\x08",
            b"MATLAB 5.0 MAT-file, Platform: GLNXA64",
            b"BM\x3a\0\0\0\0\0\0\0",
            b"hello, world",
            b"RIFF\x24\x00\x00\x00WAVEfmt ",
            b"\0\0\0\x18ftypmp42\0\0\0\0",
        ];
        for bytes in cases {
            assert_eq!(InputFormat::sniff(bytes), None, "{bytes:?}");
        }
    }

    /// A JPEG built from segments: SOI, an APP1 of `app1` bytes, the frame
    /// header `sof` (66 × 48, Y sampled 2 × 2, Cb and Cr 1 × 1), `scans`
    /// scans of one data byte each (`interleaved`: each holds all three
    /// components; else Y alone), EOI.
    fn jpeg_segments(sof: u8, app1: usize, scans: usize, interleaved: bool) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xE1]);
        jpeg.extend_from_slice(&u16::try_from(app1 + 2).unwrap().to_be_bytes());
        jpeg.extend(std::iter::repeat_n(b'x', app1));
        jpeg.extend_from_slice(&[0xFF, sof, 0, 17, 8, 0, 48, 0, 66, 3]);
        jpeg.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        for _ in 0..scans {
            if interleaved {
                jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11]);
            } else {
                jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0]);
            }
            jpeg.extend_from_slice(&[0, 63, 0, 0x55]);
        }
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        jpeg
    }

    /// The coefficient buffer is counted per component in whole sampling
    /// units of 8 × 8 blocks of 128 bytes (luma: 66 × 48 → 9 → 10 × 6
    /// blocks; each chroma: 5 × 3) for a progressive JPEG or one whose
    /// first scan leaves components to later scans, never for a baseline
    /// one whose scan holds them all; APP1 bytes are counted either way.
    #[test]
    fn jpeg_decoder_memory_follows_the_frame_header() {
        let coefficients = (10 * 6 + 2 * 5 * 3) * 128;
        let progressive = jpeg_decoder_memory(&jpeg_segments(0xC2, 1000, 2, false));
        assert_eq!(
            progressive,
            JpegDecoderMemory {
                coefficient_bytes: coefficients,
                saved_marker_bytes: 1000,
                decoded_copy_bytes: 0,
            }
        );
        let baseline = jpeg_decoder_memory(&jpeg_segments(0xC0, 1000, 1, true));
        assert_eq!(baseline.coefficient_bytes, 0);
        assert_eq!(baseline.saved_marker_bytes, 1000);
        let multi_scan = jpeg_decoder_memory(&jpeg_segments(0xC0, 0, 3, false));
        assert_eq!(multi_scan.coefficient_bytes, coefficients);
        assert_eq!(
            jpeg_decoder_memory(&jpeg_segments(0xC2, 0, 2, false)[..20]),
            JpegDecoderMemory::default()
        );
    }

    /// Large metadata no render reads (XMP, IPTC) is left out of the bytes
    /// decoded, which keep every other segment and the scans byte for
    /// byte; the header is read from the segments up to the first scan's
    /// header; small metadata, and a JPEG without it, are decoded as they
    /// are; the estimate counts the copy instead of the metadata.
    #[test]
    fn unused_metadata_is_left_out_when_large() {
        let base = crate::test_images::jpeg_with_orientation_and_profile(64, 48);
        let with_xmp = crate::test_images::jpeg_with_unused_metadata(&base, 4, 60_000);

        let decoded = jpeg_for_decoding(&with_xmp);
        assert!(matches!(decoded, Cow::Owned(_)));
        assert_eq!(
            decoded.as_ref(),
            base.as_slice(),
            "the original without the XMP and IPTC"
        );
        assert!(matches!(jpeg_for_decoding(&base), Cow::Borrowed(_)));

        let header = jpeg_for_header(&with_xmp);
        let first_scan = base
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDA])
            .unwrap();
        let scan_header_len = usize::from(u16::from_be_bytes([
            base[first_scan + 2],
            base[first_scan + 3],
        ]));
        let mut expected = base[..first_scan + 2 + scan_header_len].to_vec();
        expected.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(header.as_ref(), expected.as_slice());

        // 3 × 20 KB is under the 64 KiB worth copying the file for.
        let small = crate::test_images::jpeg_with_unused_metadata(&base, 3, 20_000);
        assert!(matches!(jpeg_for_decoding(&small), Cow::Borrowed(_)));
        assert!(matches!(jpeg_for_header(&small), Cow::Borrowed(_)));

        let plain = jpeg_decoder_memory(&base);
        assert_eq!(plain.decoded_copy_bytes, 0);
        assert!(
            plain.saved_marker_bytes > 0,
            "EXIF and ICC are kept: {plain:?}"
        );
        assert_eq!(
            jpeg_decoder_memory(&with_xmp),
            JpegDecoderMemory {
                decoded_copy_bytes: base.len() as u64,
                ..plain
            }
        );
        let small_memory = jpeg_decoder_memory(&small);
        assert_eq!(small_memory.decoded_copy_bytes, 0);
        assert!(small_memory.saved_marker_bytes >= plain.saved_marker_bytes + 60_000);
    }

    /// The scan count as it was first written: the entropy-coded data read
    /// byte by byte. The `memchr` search must agree with it everywhere.
    fn scan_count_byte_by_byte(bytes: &[u8], stop_after: usize) -> usize {
        let mut scans = 0;
        let mut at = 2;
        while at + 4 <= bytes.len() && scans <= stop_after {
            if bytes[at] != 0xFF {
                return scans;
            }
            let marker = bytes[at + 1];
            match marker {
                0xFF => {
                    at += 1;
                    continue;
                }
                0xD9 => return scans,
                0x01 | 0xD0..=0xD7 => {
                    at += 2;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            at += 2 + len;
            if marker != 0xDA {
                continue;
            }
            scans += 1;
            while at + 1 < bytes.len() {
                if bytes[at] == 0xFF && !matches!(bytes[at + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
                    break;
                }
                at += 1;
            }
        }
        scans
    }

    /// `jpeg` with fill bytes (`FF FF FF`) before every marker after its
    /// first scan, as T.81 B.1.1.2 allows.
    fn with_fill_bytes(jpeg: &[u8]) -> Vec<u8> {
        let first_scan = jpeg
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDA])
            .unwrap();
        let mut out = jpeg[..first_scan + 2].to_vec();
        for (at, pair) in jpeg.windows(2).enumerate().skip(first_scan + 2) {
            if pair[0] == 0xFF && !matches!(pair[1], 0x00 | 0xD0..=0xD7 | 0xFF) {
                out.extend_from_slice(&[0xFF, 0xFF]);
            }
            out.push(jpeg[at]);
        }
        out.push(*jpeg.last().unwrap());
        out
    }

    /// The `memchr` scan count equals the byte-by-byte walk on progressive
    /// and baseline JPEGs, with restart markers, with fill bytes, with
    /// thousands of scans (as the hostile `scans.jpg`), on every prefix of
    /// a progressive JPEG (an original that ends early), on scans whose
    /// data ends in `FF`, and at every limit; and on the benchmark corpus's
    /// JPEGs when `scripts/corpus.sh` has fetched them.
    #[test]
    fn scan_count_matches_the_byte_walk() {
        crate::pipeline::load::libvips::init().unwrap();
        let photo = crate::test_images::photo(96, 64);
        let save = |options: VOption<'_>| photo.jpegsave_buffer_with_opts(options).unwrap();
        let progressive = save(VOption::new().set("interlace", true));
        let restarts = save(
            VOption::new()
                .set("interlace", true)
                .set("restart_interval", 1),
        );
        assert!(
            restarts.windows(2).any(|pair| pair == [0xFF, 0xD0]),
            "restart markers written"
        );
        let baseline = save(VOption::new());
        let mut many_scans = progressive[..progressive.len() - 2].to_vec();
        let last_scan = progressive
            .windows(2)
            .rposition(|pair| pair == [0xFF, 0xDA])
            .unwrap();
        for _ in 0..3000 {
            many_scans.extend_from_slice(&progressive[last_scan..progressive.len() - 2]);
        }
        many_scans.extend_from_slice(&[0xFF, 0xD9]);
        let mut ends_in_ff = jpeg_segments(0xC2, 0, 3, false);
        ends_in_ff.truncate(ends_in_ff.len() - 2);
        ends_in_ff.extend_from_slice(&[0xFF, 0x00, 0xFF, 0xFF]);
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/corpus");
        let corpus_files = std::fs::read_dir(corpus)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "jpg"))
            .map(|entry| std::fs::read(entry.path()).unwrap());
        let files: Vec<Vec<u8>> = [
            with_fill_bytes(&progressive),
            with_fill_bytes(&restarts),
            progressive.clone(),
            restarts,
            baseline,
            many_scans,
            ends_in_ff,
            jpeg_segments(0xC0, 100, 5, true),
        ]
        .into_iter()
        .chain(corpus_files)
        .collect();
        for (file, bytes) in files.iter().enumerate() {
            for stop_after in [0, 1, 9, 100, usize::MAX] {
                assert_eq!(
                    jpeg_scan_count(bytes, stop_after),
                    scan_count_byte_by_byte(bytes, stop_after),
                    "file {file}, stop after {stop_after}"
                );
            }
        }
        assert_eq!(jpeg_scan_count(&files[0], usize::MAX), 10);
        assert_eq!(jpeg_scan_count(&files[5], 100), 101);
        for end in 0..=progressive.len() {
            assert_eq!(
                jpeg_scan_count(&progressive[..end], usize::MAX),
                scan_count_byte_by_byte(&progressive[..end], usize::MAX),
                "first {end} bytes"
            );
        }
    }

    /// A sequential JPEG whose first scan holds every component is decoded
    /// a row at a time by libjpeg, whatever scans follow it; one whose
    /// first scan holds fewer components than the frame needs the whole
    /// image's coefficients.
    #[test]
    fn coefficient_buffer_follows_the_first_scan() {
        let complete_first_scan = jpeg_segments(0xC0, 0, 3, true);
        assert_eq!(jpeg_scan_count(&complete_first_scan, usize::MAX), 3);
        assert_eq!(
            jpeg_decoder_memory(&complete_first_scan).coefficient_bytes,
            0
        );
        let one_component_first = jpeg_segments(0xC0, 0, 1, false);
        assert_eq!(
            jpeg_decoder_memory(&one_component_first).coefficient_bytes,
            (10 * 6 + 2 * 5 * 3) * 128
        );
    }

    /// Without an explicit format, each input keeps its family.
    #[test]
    fn family_keeps_the_input_kind() {
        assert_eq!(InputFormat::Jpeg.family(), EncodedFormat::Jpeg);
        assert_eq!(InputFormat::Png.family(), EncodedFormat::Png);
        assert_eq!(InputFormat::Webp.family(), EncodedFormat::Webp);
        assert_eq!(InputFormat::Gif.family(), EncodedFormat::Gif);
        assert_eq!(InputFormat::Heif.family(), EncodedFormat::Avif);
    }
}
