//! Recognises the input formats imgmesh serves by their magic bytes.
//!
//! The declared content type and the file name are ignored: only bytes that
//! start like JPEG, PNG, WebP, GIF or HEIF/AVIF ever reach libvips, and each
//! is handed to that format's loader by name. Anything else (SVG, PDF, TIFF,
//! MATLAB, BMP, text, ...) is refused before libvips sees it.

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
        // The entropy-coded data runs to the next real marker.
        while at + 1 < bytes.len() {
            if bytes[at] == 0xFF && !matches!(bytes[at + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
                break;
            }
            at += 1;
        }
    }
    scans
}

#[cfg(test)]
mod tests {
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
