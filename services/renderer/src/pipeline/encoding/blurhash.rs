//! `fm=blurhash`: the BlurHash (<https://blurha.sh>) of the rendered image.
//!
//! The encoder follows the reference algorithm: the image (reduced to at
//! most [`SAMPLE_SIDE`] pixels a side first, which changes the hash only in
//! rounding) is projected onto a grid of cosine components in linear light,
//! 4 × 3 for landscape images and 3 × 4 for portrait ones, and the
//! quantised factors are written in base 83.

use rs_vips::VipsImage;
use rs_vips::enums::Size;
use rs_vips::voption::{Setter as _, VOption};

use crate::pipeline::adjustments::channels::srgb8;

/// Largest side of the image the hash is computed on.
const SAMPLE_SIDE: i32 = 32;

/// The base-83 alphabet.
const BASE83: &[u8; 83] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/// The BlurHash of `image` (transparent pixels count as over white).
pub(crate) fn of_image(image: &VipsImage) -> rs_vips::Result<String> {
    let sample = image.thumbnail_image_with_opts(
        SAMPLE_SIDE,
        VOption::new()
            .set("height", SAMPLE_SIDE)
            .set("size", Size::Down as i32),
    )?;
    let mut sample = srgb8(&sample)?;
    if sample.hasalpha() {
        sample = srgb8(&sample.flatten_with_opts(VOption::new().set("background", &[255.0][..]))?)?;
    }
    let (width, height) = (sample.get_width() as usize, sample.get_height() as usize);
    let pixels = sample.copy_memory()?.write_to_memory();
    let (x_components, y_components) = if width >= height { (4, 3) } else { (3, 4) };
    Ok(encode(&pixels, width, height, x_components, y_components))
}

/// Encodes `width × height` packed 8-bit RGB `pixels`.
pub(crate) fn encode(
    pixels: &[u8],
    width: usize,
    height: usize,
    x_components: usize,
    y_components: usize,
) -> String {
    let mut factors = Vec::with_capacity(x_components * y_components);
    for j in 0..y_components {
        for i in 0..x_components {
            let normalisation = if i == 0 && j == 0 { 1.0 } else { 2.0 };
            let mut sum = [0.0f64; 3];
            for y in 0..height {
                let basis_y = (std::f64::consts::PI * j as f64 * y as f64 / height as f64).cos();
                for x in 0..width {
                    let basis = normalisation
                        * (std::f64::consts::PI * i as f64 * x as f64 / width as f64).cos()
                        * basis_y;
                    let at = 3 * (y * width + x);
                    for (channel, total) in sum.iter_mut().enumerate() {
                        *total += basis * srgb_to_linear(pixels[at + channel]);
                    }
                }
            }
            let scale = 1.0 / (width * height) as f64;
            factors.push(sum.map(|s| s * scale));
        }
    }
    let mut hash = String::with_capacity(4 + 2 * factors.len());
    push_base83(&mut hash, (x_components - 1) + (y_components - 1) * 9, 1);
    let (dc, ac) = factors.split_first().expect("at least one component");
    let maximum = if ac.is_empty() {
        push_base83(&mut hash, 0, 1);
        1.0
    } else {
        let actual = ac
            .iter()
            .flat_map(|f| f.iter().map(|v| v.abs()))
            .fold(0.0, f64::max);
        let quantised = (actual * 166.0 - 0.5).floor().clamp(0.0, 82.0) as usize;
        push_base83(&mut hash, quantised, 1);
        (quantised as f64 + 1.0) / 166.0
    };
    let dc_value =
        (linear_to_srgb(dc[0]) << 16) + (linear_to_srgb(dc[1]) << 8) + linear_to_srgb(dc[2]);
    push_base83(&mut hash, dc_value, 4);
    for factor in ac {
        let quantise =
            |v: f64| ((sign_pow(v / maximum, 0.5) * 9.0 + 9.5).floor()).clamp(0.0, 18.0) as usize;
        let value = quantise(factor[0]) * 19 * 19 + quantise(factor[1]) * 19 + quantise(factor[2]);
        push_base83(&mut hash, value, 2);
    }
    hash
}

fn push_base83(hash: &mut String, value: usize, length: u32) {
    for i in 1..=length {
        let digit = (value / 83usize.pow(length - i)) % 83;
        hash.push(char::from(BASE83[digit]));
    }
}

fn srgb_to_linear(value: u8) -> f64 {
    let v = f64::from(value) / 255.0;
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(value: f64) -> usize {
    let v = value.clamp(0.0, 1.0);
    let encoded = if v <= 0.003_130_8 {
        v * 12.92 * 255.0 + 0.5
    } else {
        (1.055 * v.powf(1.0 / 2.4) - 0.055) * 255.0 + 0.5
    };
    encoded as usize
}

fn sign_pow(value: f64, exponent: f64) -> f64 {
    value.abs().powf(exponent).copysign(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash has the component count, the DC colour and one digit pair per AC component.
    #[test]
    fn hash_layout() {
        let red: Vec<u8> = [255u8, 0, 0].repeat(8 * 6);
        let hash = encode(&red, 8, 6, 4, 3);
        assert_eq!(hash.len(), 6 + 2 * 11);
        // (4-1) + (3-1)·9 = 21 → 'L'.
        assert_eq!(&hash[..1], "L");
        let mut dc = String::new();
        push_base83(&mut dc, 0xFF0000, 4);
        assert_eq!(&hash[2..6], dc);
        let portrait = encode(&[0u8, 0, 255].repeat(6 * 8), 6, 8, 3, 4);
        // (3-1) + (4-1)·9 = 29 → 'T'.
        assert_eq!(&portrait[..1], "T");
    }

    /// A left-to-right ramp puts far more energy in the first horizontal
    /// component than a flat image does.
    #[test]
    fn gradient_has_horizontal_energy() {
        let (width, height) = (16, 4);
        let mut ramp = Vec::new();
        for _ in 0..height {
            for x in 0..width {
                let v = (x * 255 / (width - 1)) as u8;
                ramp.extend_from_slice(&[v, v, v]);
            }
        }
        let flat = [128u8; 3].repeat(width * height);
        let ramp_hash = encode(&ramp, width, height, 4, 3);
        let flat_hash = encode(&flat, width, height, 4, 3);
        let digit = |hash: &str| {
            BASE83
                .iter()
                .position(|c| *c == hash.as_bytes()[1])
                .unwrap()
        };
        assert!(
            digit(&ramp_hash) > digit(&flat_hash) + 10,
            "{ramp_hash} vs {flat_hash}"
        );
    }

    /// Base-83 digits are written most significant first.
    #[test]
    fn base83() {
        let mut s = String::new();
        push_base83(&mut s, 83 * 2 + 5, 2);
        assert_eq!(s, "25");
    }
}
