//! The adjustments: `trim` (the part of the source inside uniform
//! borders, found before the layout), the colour, tone and detail effects
//! run after the resize ([`adjust`]), and the 8-bit sRGB channel handling
//! every effect and overlay works in ([`channels`]).

pub(crate) mod adjust;
pub(crate) mod channels;
pub(crate) mod trim;
