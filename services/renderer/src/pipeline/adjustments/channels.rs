//! Working with colour and alpha channels in 8-bit sRGB.
//!
//! Effects and compositing work on 8-bit sRGB with an optional alpha band;
//! [`srgb8`] brings any decoded image there (greyscale widened, 16-bit
//! narrowed) and [`Channels`] lets an effect change the colour bands while
//! the alpha band rides along untouched.

use rs_vips::VipsImage;
use rs_vips::enums::{BandFormat, Interpretation, OperationRound};
use rs_vips::voption::{Setter as _, VOption};

/// `image` as 8-bit sRGB with 3 bands, or 4 with alpha.
pub(crate) fn srgb8(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    let interpretation = image.get_interpretation()?;
    let image =
        if interpretation == Interpretation::Srgb && image.get_format()? == BandFormat::Uchar {
            image.copy()?
        } else {
            image.colourspace(Interpretation::Srgb)?
        };
    if image.get_format()? == BandFormat::Uchar {
        Ok(image)
    } else {
        image.cast(BandFormat::Uchar)
    }
}

/// An image split into its colour bands and its alpha band.
#[derive(Debug)]
pub(crate) struct Channels {
    /// The colour bands (3 for sRGB).
    pub(crate) colour: VipsImage,
    /// The alpha band, if any.
    pub(crate) alpha: Option<VipsImage>,
}

// === impl Channels ===

impl Channels {
    /// Splits an 8-bit sRGB image (see [`srgb8`]).
    pub(crate) fn split(image: &VipsImage) -> rs_vips::Result<Channels> {
        if image.hasalpha() {
            let bands = image.get_bands();
            Ok(Channels {
                colour: image.extract_band_with_opts(0, VOption::new().set("n", bands - 1))?,
                alpha: Some(image.extract_band(bands - 1)?),
            })
        } else {
            Ok(Channels {
                colour: image.copy()?,
                alpha: None,
            })
        }
    }

    /// Joins the colour bands (clipped and cast to 8 bits) with the alpha
    /// band again.
    pub(crate) fn join(self) -> rs_vips::Result<VipsImage> {
        let colour = to_uchar(&self.colour)?;
        let colour = colour
            .copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))?;
        match self.alpha {
            Some(alpha) => VipsImage::bandjoin(&[colour, to_uchar(&alpha)?]),
            None => Ok(colour),
        }
    }

    /// Applies `change` to the colour bands.
    pub(crate) fn map(
        self,
        change: impl FnOnce(&VipsImage) -> rs_vips::Result<VipsImage>,
    ) -> rs_vips::Result<Channels> {
        Ok(Channels {
            colour: change(&self.colour)?,
            alpha: self.alpha,
        })
    }
}

/// Rounds, clips to 0..=255 and casts to 8 bits.
pub(crate) fn to_uchar(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    if image.get_format()? == BandFormat::Uchar {
        return image.copy();
    }
    image.round(OperationRound::Rint)?.cast(BandFormat::Uchar)
}

/// `image` (8-bit sRGB) with an alpha band, opaque where it had none.
pub(crate) fn with_alpha(image: &VipsImage) -> rs_vips::Result<VipsImage> {
    if image.hasalpha() {
        image.copy()
    } else {
        image.bandjoin_const(&[255.0])
    }
}

/// A `width × height` 8-bit sRGB image of one colour (`0xAARRGGBB`), with
/// alpha when `alpha` or the colour is not opaque.
pub(crate) fn solid(width: i32, height: i32, argb: u32, alpha: bool) -> rs_vips::Result<VipsImage> {
    let [a, r, g, b] = argb.to_be_bytes();
    let mut ink = vec![f64::from(r), f64::from(g), f64::from(b)];
    if alpha || a != 255 {
        ink.push(f64::from(a));
    }
    let black = VipsImage::black(width.max(1), height.max(1))?;
    let plane = black.cast(BandFormat::Uchar)?;
    let image = VipsImage::new_from_image(&plane, &ink)?;
    image.copy_with_opts(VOption::new().set("interpretation", Interpretation::Srgb as i32))
}

/// Rec. 601 luma of 8-bit sRGB colour bands, as a float band 0..255.
pub(crate) fn luma(colour: &VipsImage) -> rs_vips::Result<VipsImage> {
    if colour.get_bands() < 3 {
        return colour.extract_band(0)?.cast(BandFormat::Float);
    }
    let weights = VipsImage::new_matrix_from_array(3, 1, &[0.299, 0.587, 0.114])?;
    colour.recomb(&weights)
}
