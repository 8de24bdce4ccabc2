//! Colours as imgix writes them: 3, 4, 6 or 8 hex digits, or a CSS keyword.
//!
//! imgix puts alpha **first**: `RGB`, `ARGB`, `RRGGBB`, `AARRGGBB` (so
//! `80ff0000` is half-transparent red, and `0fff` transparent white). A
//! leading `#` is accepted. Keywords are the spec's `colorKeywordValues`,
//! matched case-insensitively, with CSS's sRGB values; imgix does not
//! publish `imgixorange` and `imgixblue`, so those are approximations of its
//! brand colours.

use crate::spec::Spec;

/// A straight (not premultiplied) sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color {
    /// Alpha, 0 (transparent) to 255 (opaque).
    pub a: u8,
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

/// CSS colour keywords and their sRGB values (`0xRRGGBB`).
const KEYWORDS: [(&str, u32); 150] = [
    ("aliceblue", 0xF0F8FF),
    ("antiquewhite", 0xFAEBD7),
    ("aqua", 0x00FFFF),
    ("aquamarine", 0x7FFFD4),
    ("azure", 0xF0FFFF),
    ("beige", 0xF5F5DC),
    ("bisque", 0xFFE4C4),
    ("black", 0x000000),
    ("blanchedalmond", 0xFFEBCD),
    ("blue", 0x0000FF),
    ("blueviolet", 0x8A2BE2),
    ("brown", 0xA52A2A),
    ("burlywood", 0xDEB887),
    ("cadetblue", 0x5F9EA0),
    ("chartreuse", 0x7FFF00),
    ("chocolate", 0xD2691E),
    ("coral", 0xFF7F50),
    ("cornflowerblue", 0x6495ED),
    ("cornsilk", 0xFFF8DC),
    ("crimson", 0xDC143C),
    ("cyan", 0x00FFFF),
    ("darkblue", 0x00008B),
    ("darkcyan", 0x008B8B),
    ("darkgoldenrod", 0xB8860B),
    ("darkgray", 0xA9A9A9),
    ("darkgreen", 0x006400),
    ("darkgrey", 0xA9A9A9),
    ("darkkhaki", 0xBDB76B),
    ("darkmagenta", 0x8B008B),
    ("darkolivegreen", 0x556B2F),
    ("darkorange", 0xFF8C00),
    ("darkorchid", 0x9932CC),
    ("darkred", 0x8B0000),
    ("darksalmon", 0xE9967A),
    ("darkseagreen", 0x8FBC8F),
    ("darkslateblue", 0x483D8B),
    ("darkslategray", 0x2F4F4F),
    ("darkslategrey", 0x2F4F4F),
    ("darkturquoise", 0x00CED1),
    ("darkviolet", 0x9400D3),
    ("deeppink", 0xFF1493),
    ("deepskyblue", 0x00BFFF),
    ("dimgray", 0x696969),
    ("dimgrey", 0x696969),
    ("dodgerblue", 0x1E90FF),
    ("firebrick", 0xB22222),
    ("floralwhite", 0xFFFAF0),
    ("forestgreen", 0x228B22),
    ("fuchsia", 0xFF00FF),
    ("gainsboro", 0xDCDCDC),
    ("ghostwhite", 0xF8F8FF),
    ("gold", 0xFFD700),
    ("goldenrod", 0xDAA520),
    ("gray", 0x808080),
    ("green", 0x008000),
    ("greenyellow", 0xADFF2F),
    ("grey", 0x808080),
    ("honeydew", 0xF0FFF0),
    ("hotpink", 0xFF69B4),
    ("indianred", 0xCD5C5C),
    ("indigo", 0x4B0082),
    ("ivory", 0xFFFFF0),
    ("khaki", 0xF0E68C),
    ("lavender", 0xE6E6FA),
    ("lavenderblush", 0xFFF0F5),
    ("lawngreen", 0x7CFC00),
    ("lemonchiffon", 0xFFFACD),
    ("lightblue", 0xADD8E6),
    ("lightcoral", 0xF08080),
    ("lightcyan", 0xE0FFFF),
    ("lightgoldenrodyellow", 0xFAFAD2),
    ("lightgray", 0xD3D3D3),
    ("lightgreen", 0x90EE90),
    ("lightgrey", 0xD3D3D3),
    ("lightpink", 0xFFB6C1),
    ("lightsalmon", 0xFFA07A),
    ("lightseagreen", 0x20B2AA),
    ("lightskyblue", 0x87CEFA),
    ("lightslategray", 0x778899),
    ("lightslategrey", 0x778899),
    ("lightsteelblue", 0xB0C4DE),
    ("lightyellow", 0xFFFFE0),
    ("lime", 0x00FF00),
    ("limegreen", 0x32CD32),
    ("linen", 0xFAF0E6),
    ("magenta", 0xFF00FF),
    ("maroon", 0x800000),
    ("mediumaquamarine", 0x66CDAA),
    ("mediumblue", 0x0000CD),
    ("mediumorchid", 0xBA55D3),
    ("mediumpurple", 0x9370DB),
    ("mediumseagreen", 0x3CB371),
    ("mediumslateblue", 0x7B68EE),
    ("mediumspringgreen", 0x00FA9A),
    ("mediumturquoise", 0x48D1CC),
    ("mediumvioletred", 0xC71585),
    ("midnightblue", 0x191970),
    ("mintcream", 0xF5FFFA),
    ("mistyrose", 0xFFE4E1),
    ("moccasin", 0xFFE4B5),
    ("navajowhite", 0xFFDEAD),
    ("navy", 0x000080),
    ("oldlace", 0xFDF5E6),
    ("olive", 0x808000),
    ("olivedrab", 0x6B8E23),
    ("orange", 0xFFA500),
    ("orangered", 0xFF4500),
    ("orchid", 0xDA70D6),
    ("palegoldenrod", 0xEEE8AA),
    ("palegreen", 0x98FB98),
    ("paleturquoise", 0xAFEEEE),
    ("palevioletred", 0xDB7093),
    ("papayawhip", 0xFFEFD5),
    ("peachpuff", 0xFFDAB9),
    ("peru", 0xCD853F),
    ("pink", 0xFFC0CB),
    ("plum", 0xDDA0DD),
    ("powderblue", 0xB0E0E6),
    ("purple", 0x800080),
    ("rebeccapurple", 0x663399),
    ("red", 0xFF0000),
    ("rosybrown", 0xBC8F8F),
    ("royalblue", 0x4169E1),
    ("saddlebrown", 0x8B4513),
    ("salmon", 0xFA8072),
    ("sandybrown", 0xF4A460),
    ("seagreen", 0x2E8B57),
    ("seashell", 0xFFF5EE),
    ("sienna", 0xA0522D),
    ("silver", 0xC0C0C0),
    ("skyblue", 0x87CEEB),
    ("slateblue", 0x6A5ACD),
    ("slategray", 0x708090),
    ("slategrey", 0x708090),
    ("snow", 0xFFFAFA),
    ("springgreen", 0x00FF7F),
    ("steelblue", 0x4682B4),
    ("tan", 0xD2B48C),
    ("teal", 0x008080),
    ("thistle", 0xD8BFD8),
    ("tomato", 0xFF6347),
    ("turquoise", 0x40E0D0),
    ("violet", 0xEE82EE),
    ("wheat", 0xF5DEB3),
    ("white", 0xFFFFFF),
    ("whitesmoke", 0xF5F5F5),
    ("yellow", 0xFFFF00),
    ("yellowgreen", 0x9ACD32),
    ("imgixorange", 0xFF7E29),
    ("imgixblue", 0x0069FF),
];

// === impl Color ===

impl Color {
    /// Opaque white.
    pub const WHITE: Color = Color::rgb(255, 255, 255);
    /// Opaque black.
    pub const BLACK: Color = Color::rgb(0, 0, 0);

    /// An opaque colour.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color { a: 255, r, g, b }
    }

    /// Parses a hex colour (alpha first) or a colour keyword.
    pub fn parse(value: &str) -> Option<Color> {
        Color::parse_hex(value).or_else(|| Color::parse_keyword(value))
    }

    /// Parses `RGB`, `ARGB`, `RRGGBB` or `AARRGGBB`, with or without `#`.
    pub fn parse_hex(value: &str) -> Option<Color> {
        let digits = value.strip_prefix('#').unwrap_or(value);
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let nibble = |i: usize| u8::from_str_radix(&digits[i..=i], 16).ok();
        let byte = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).ok();
        // A single digit d stands for dd.
        let short = |i: usize| nibble(i).map(|n| n * 17);
        match digits.len() {
            3 => Some(Color::rgb(short(0)?, short(1)?, short(2)?)),
            4 => Some(Color {
                a: short(0)?,
                r: short(1)?,
                g: short(2)?,
                b: short(3)?,
            }),
            6 => Some(Color::rgb(byte(0)?, byte(2)?, byte(4)?)),
            8 => Some(Color {
                a: byte(0)?,
                r: byte(2)?,
                g: byte(4)?,
                b: byte(6)?,
            }),
            _ => None,
        }
    }

    /// Parses one of the spec's colour keywords.
    pub fn parse_keyword(value: &str) -> Option<Color> {
        let lower = value.to_ascii_lowercase();
        if !Spec::get().color_keywords().contains(&lower) {
            return None;
        }
        let (_, rgb) = KEYWORDS.iter().find(|(name, _)| *name == lower)?;
        let [_, r, g, b] = rgb.to_be_bytes();
        Some(Color::rgb(r, g, b))
    }

    /// The colour from `0xAARRGGBB`.
    pub const fn from_argb(argb: u32) -> Color {
        let [a, r, g, b] = argb.to_be_bytes();
        Color { a, r, g, b }
    }

    /// The colour as `0xAARRGGBB`.
    pub const fn argb(self) -> u32 {
        u32::from_be_bytes([self.a, self.r, self.g, self.b])
    }

    /// Whether the colour is fully transparent.
    pub const fn is_transparent(self) -> bool {
        self.a == 0
    }

    /// Whether the colour is fully opaque.
    pub const fn is_opaque(self) -> bool {
        self.a == 255
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hex form follows imgix's alpha-first ordering.
    #[test]
    fn hex_forms_put_alpha_first() {
        let cases = [
            ("f00", Color::rgb(255, 0, 0)),
            ("#0f0", Color::rgb(0, 255, 0)),
            (
                "0fff",
                Color {
                    a: 0,
                    r: 255,
                    g: 255,
                    b: 255,
                },
            ),
            (
                "8f00",
                Color {
                    a: 0x88,
                    r: 255,
                    g: 0,
                    b: 0,
                },
            ),
            ("336699", Color::rgb(0x33, 0x66, 0x99)),
            (
                "80ff0000",
                Color {
                    a: 0x80,
                    r: 255,
                    g: 0,
                    b: 0,
                },
            ),
            ("FFABCDEF", Color::rgb(0xAB, 0xCD, 0xEF)),
            (
                "#00000000",
                Color {
                    a: 0,
                    r: 0,
                    g: 0,
                    b: 0,
                },
            ),
        ];
        for (text, color) in cases {
            assert_eq!(Color::parse(text), Some(color), "{text}");
        }
    }

    /// Wrong lengths and non-hex digits are not colours.
    #[test]
    fn malformed_hex_is_rejected() {
        for text in [
            "",
            "#",
            "f",
            "ff",
            "fffff",
            "fffffff",
            "fffffffff",
            "ggg",
            "-ff",
            "+fff",
            " fff",
            "0x123",
        ] {
            assert_eq!(Color::parse(text), None, "{text:?}");
        }
    }

    /// Keywords come from the spec, case-insensitively, with CSS values.
    #[test]
    fn keywords_are_css_colours() {
        assert_eq!(Color::parse("red"), Some(Color::rgb(255, 0, 0)));
        assert_eq!(
            Color::parse("RebeccaPurple"),
            Some(Color::rgb(0x66, 0x33, 0x99))
        );
        assert_eq!(Color::parse("white"), Some(Color::WHITE));
        assert!(Color::parse("imgixblue").is_some());
        assert_eq!(Color::parse("notacolour"), None);
        // `fff` is hex, `add` is hex too (not a keyword).
        assert_eq!(Color::parse("add"), Some(Color::rgb(0xAA, 0xDD, 0xDD)));
    }

    /// The built-in table covers exactly the spec's keyword list.
    #[test]
    fn table_matches_the_spec() {
        let spec = Spec::get().color_keywords();
        assert_eq!(spec.len(), KEYWORDS.len());
        for keyword in spec {
            assert!(
                KEYWORDS.iter().any(|(name, _)| name == keyword),
                "{keyword}"
            );
        }
    }

    /// ARGB round-trips.
    #[test]
    fn argb_round_trips() {
        let color = Color {
            a: 1,
            r: 2,
            g: 3,
            b: 4,
        };
        assert_eq!(color.argb(), 0x0102_0304);
        assert_eq!(Color::from_argb(0x0102_0304), color);
    }
}
