//! `fm=json`: imgix's metadata document about the source image.
//!
//! Read from the header only (no pixel is decoded), with imgix's keys:
//! `Content-Type`, `Content-Length` (a string, as imgix writes it),
//! `PixelWidth` and `PixelHeight` (as stored, before orientation),
//! `DPIWidth` and `DPIHeight` (72 when the file declares no resolution),
//! `Depth` (bits per sample), `ColorModel` (`RGB`, `Gray` or `CMYK`),
//! `HasAlpha`, `Orientation` (EXIF, 1 when absent), `ProfileName` (the
//! embedded ICC profile's description), `Frames` and `Output.Frames` (where
//! imgix's example puts it) for animations, and the
//! EXIF tags grouped as imgix groups them: `TIFF` (IFD0), `Exif` (the Exif
//! and interoperability IFDs) and `GPS`. For JPEGs, `JFIF.IsProgressive`.
//! Tag values are numbers where libexif reads a number (rationals as
//! decimals) and strings otherwise.

use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, Interpretation};
use serde_json::{Map, Value, json};

use crate::error::RenderError;
use crate::pipeline::derivative::Derivative;
use crate::pipeline::derivative::EncodedFormat;
use crate::pipeline::load::input_format::InputFormat;
use crate::pipeline::load::{CheckedOriginal, libvips};

/// The `fm=json` derivative of `original`: its document, with the
/// original's size.
pub(crate) fn derivative(original: &CheckedOriginal<'_>) -> Result<Derivative, RenderError> {
    Ok(Derivative {
        format: EncodedFormat::Json,
        width: original.header.width,
        height: original.header.height,
        data: document(original.bytes, original.format)?,
    })
}

/// The document for `input`, serialised.
pub(crate) fn document(input: &[u8], format: InputFormat) -> Result<Vec<u8>, RenderError> {
    let content_type = content_type(input, format);
    let document = libvips::inspect_header_fields(input, format, |image, fields| {
        build(image, fields, input.len(), content_type, format)
    })?;
    serde_json::to_vec(&document).map_err(|_| RenderError::Internal {
        context: "writing the metadata document",
    })
}

/// The source's MIME type, from its magic bytes.
fn content_type(input: &[u8], format: InputFormat) -> &'static str {
    match format {
        InputFormat::Jpeg => "image/jpeg",
        InputFormat::Png => "image/png",
        InputFormat::Webp => "image/webp",
        InputFormat::Gif => "image/gif",
        InputFormat::Heif if matches!(input.get(8..12), Some(b"avif" | b"avis")) => "image/avif",
        InputFormat::Heif => "image/heif",
    }
}

fn build(
    image: &VipsImage,
    fields: &[String],
    length: usize,
    content_type: &str,
    format: InputFormat,
) -> Value {
    let has = |name: &str| fields.iter().any(|f| f == name);
    let int = |name: &str| has(name).then(|| image.get_int(name).ok()).flatten();
    let mut document = Map::new();
    document.insert("Content-Type".into(), json!(content_type));
    document.insert("Content-Length".into(), json!(length.to_string()));
    document.insert("PixelWidth".into(), json!(image.get_width()));
    document.insert("PixelHeight".into(), json!(image.get_height()));
    let dpi = |resolution: f64| {
        if has("resolution-unit") && resolution > 0.0 {
            (resolution * 25.4).round()
        } else {
            72.0
        }
    };
    document.insert("DPIWidth".into(), json!(dpi(image.get_xres())));
    document.insert("DPIHeight".into(), json!(dpi(image.get_yres())));
    let depth = match image.get_format() {
        Ok(BandFormat::Ushort | BandFormat::Short) => 16,
        Ok(BandFormat::Float | BandFormat::Uint | BandFormat::Int) => 32,
        _ => 8,
    };
    document.insert("Depth".into(), json!(depth));
    let model = match image.get_interpretation() {
        Ok(Interpretation::Cmyk) => "CMYK",
        Ok(Interpretation::BW | Interpretation::Grey16) => "Gray",
        _ if image.get_bands() <= 2 => "Gray",
        _ => "RGB",
    };
    document.insert("ColorModel".into(), json!(model));
    document.insert("HasAlpha".into(), json!(image.hasalpha()));
    document.insert(
        "Orientation".into(),
        json!(
            int("orientation")
                .filter(|o| (1..=8).contains(o))
                .unwrap_or(1)
        ),
    );
    if let Some(pages) = int("n-pages").filter(|p| *p > 1) {
        document.insert("Frames".into(), json!(pages));
        // Where imgix's own example document puts the frame count
        // (https://docs.imgix.com/apis/url/animation/frame).
        document.insert("Output".into(), json!({ "Frames": pages }));
    }
    if has("icc-profile-data")
        && let Ok(profile) = image.get_blob("icc-profile-data")
        && let Some(name) = icc_description(&profile)
    {
        document.insert("ProfileName".into(), json!(name));
    }
    for (section, entries) in exif_sections(image, fields) {
        if !entries.is_empty() {
            document.insert(section.into(), Value::Object(entries));
        }
    }
    if format == InputFormat::Jpeg {
        document.insert(
            "JFIF".into(),
            json!({ "IsProgressive": int("interlaced") == Some(1) }),
        );
    }
    Value::Object(document)
}

/// EXIF tags grouped into imgix's `TIFF`, `Exif` and `GPS` objects.
fn exif_sections(image: &VipsImage, fields: &[String]) -> Vec<(&'static str, Map<String, Value>)> {
    let mut tiff = Map::new();
    let mut exif = Map::new();
    let mut gps = Map::new();
    for field in fields {
        let Some(rest) = field.strip_prefix("exif-ifd") else {
            continue;
        };
        let Some((ifd, tag)) = rest.split_once('-') else {
            continue;
        };
        let section = match ifd {
            "0" => &mut tiff,
            "2" | "4" => &mut exif,
            "3" => &mut gps,
            // IFD1 describes the embedded thumbnail.
            _ => continue,
        };
        let Ok(text) = image.get_string(field) else {
            continue;
        };
        section.insert(tag.to_owned(), exif_value(&text));
    }
    vec![("TIFF", tiff), ("Exif", exif), ("GPS", gps)]
}

/// The value of a libvips EXIF string, `"<value> (<description>, <type>,
/// <n> components, <m> bytes)"`, as a number when it is one.
fn exif_value(text: &str) -> Value {
    let value = strip_description(text).trim();
    if let Ok(integer) = value.parse::<i64>() {
        return json!(integer);
    }
    if let Some((numerator, denominator)) = value.split_once('/')
        && let (Ok(n), Ok(d)) = (
            numerator.trim().parse::<f64>(),
            denominator.trim().parse::<f64>(),
        )
        && d != 0.0
    {
        return json!(n / d);
    }
    if let Ok(number) = value.parse::<f64>()
        && number.is_finite()
    {
        return json!(number);
    }
    json!(value)
}

/// `text` without libvips' trailing parenthesised description.
fn strip_description(text: &str) -> &str {
    let Some(body) = text.strip_suffix(')') else {
        return text;
    };
    let mut depth = 1;
    for (at, c) in body.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return body[..at].strip_suffix(' ').unwrap_or(&body[..at]);
                }
            }
            _ => {}
        }
    }
    text
}

/// The description (`desc` tag) of an ICC profile, v2 (`desc`) or v4
/// (`mluc`) encoded.
fn icc_description(profile: &[u8]) -> Option<String> {
    let u32_at = |at: usize| -> Option<usize> {
        let bytes = profile.get(at..at + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?) as usize)
    };
    let count = u32_at(128)?;
    for index in 0..count.min(256) {
        let entry = 132 + index * 12;
        if profile.get(entry..entry + 4)? != b"desc" {
            continue;
        }
        let (offset, size) = (u32_at(entry + 4)?, u32_at(entry + 8)?);
        let tag = profile.get(offset..offset.checked_add(size)?)?;
        return match tag.get(0..4)? {
            b"desc" => {
                let length = u32::from_be_bytes(tag.get(8..12)?.try_into().ok()?) as usize;
                let text = tag.get(12..12 + length)?;
                let text = text.split(|b| *b == 0).next()?;
                Some(String::from_utf8_lossy(text).into_owned())
            }
            b"mluc" => {
                let length = u32::from_be_bytes(tag.get(20..24)?.try_into().ok()?) as usize;
                let start = u32::from_be_bytes(tag.get(24..28)?.try_into().ok()?) as usize;
                let units: Vec<u16> = tag
                    .get(start..start.checked_add(length)?)?
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                    .collect();
                Some(String::from_utf16_lossy(&units))
            }
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libvips' EXIF strings become numbers or strings without their description.
    #[test]
    fn exif_values() {
        assert_eq!(
            exif_value("1 (Top-left, Short, 1 components, 2 bytes)"),
            json!(1)
        );
        assert_eq!(
            exif_value("1/320 (1/320 sec., Rational, 1 components, 8 bytes)"),
            json!(0.003125)
        );
        assert_eq!(
            exif_value("25400/1000 (25.400, Rational, 1 components, 8 bytes)"),
            json!(25.4)
        );
        assert_eq!(
            exif_value("Canon (Canon, ASCII, 6 components, 6 bytes)"),
            json!("Canon")
        );
        assert_eq!(
            exif_value("A (B) c (A (B) c, ASCII, 8 components, 8 bytes)"),
            json!("A (B) c")
        );
        assert_eq!(exif_value("no description"), json!("no description"));
    }

    /// ICC descriptions are read from v2 profiles, and garbage yields nothing.
    #[test]
    fn icc_descriptions() {
        use rs_vips::voption::Setter as _;
        crate::pipeline::load::libvips::init().unwrap();
        let srgb = crate::test_images::photo(8, 8)
            .icc_transform_with_opts(
                "srgb",
                rs_vips::voption::VOption::new().set("input_profile", "srgb"),
            )
            .unwrap();
        let profile = srgb.get_blob("icc-profile-data").unwrap();
        let name = icc_description(&profile).unwrap();
        assert!(name.to_lowercase().contains("srgb"), "{name}");
        assert_eq!(icc_description(b"short"), None);
        assert_eq!(icc_description(&[0xFF; 200]), None);
    }
}
