//! Parsing one parameter value according to the spec's expectations.
//!
//! A value is tried against each of its parameter's expectations in the
//! spec's order, and the first that matches wins, with one exception: a
//! decimal between 0 and 1 written with a point (`0.5`, `1.0`) is tried as a
//! unit scalar first, so `w=0.5` means half the source width rather than a
//! rounded pixel count.
//!
//! Numbers are plain decimals (`-`, digits, an optional `.` and digits):
//! `NaN`, `inf`, exponents, `+`, hex and whitespace never match. Out-of-range
//! numbers follow one rule: they are clamped into the expectation's strict
//! range, or its suggested range where there is no strict one; but a value
//! of the wrong sign for a range that starts above zero (`w=0`, `w=-5`) does
//! not match at all, because there is nothing sensible to clamp it to.
//! Keywords match case-insensitively; list items that are not keywords are
//! dropped, and a list with none left does not match.

use crate::color::Color;
use crate::spec::{Expectation, ParamSpec, ValueKind};

/// A parameter value that matched one of its expectations.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A whole number (rounded if written with decimals), in range.
    Integer(i64),
    /// A finite number, in range.
    Number(f64),
    /// A fraction from 0 to 1.
    UnitScalar(f64),
    /// An aspect ratio, width ÷ height, positive.
    Ratio(f64),
    /// A boolean.
    Boolean(bool),
    /// One of a string parameter's possible values, lowercase.
    Keyword(String),
    /// The possible values a list named, lowercase, in order.
    Keywords(Vec<String>),
    /// A positional list's items, one value per position.
    Items(Vec<Value>),
    /// A colour.
    Color(Color),
    /// Free text: a string, font, URL or path.
    Text(String),
    /// A Unix timestamp.
    Timestamp(i64),
    /// An interval; either bound may be open.
    Interval(Option<i64>, Option<i64>),
}

/// Parses `raw` as a value of `param`; `None` when no expectation matches.
pub fn parse_value(param: &ParamSpec, raw: &str) -> Option<Value> {
    parse_with(&param.expects, raw)
}

/// Parses `raw` against `expects`, trying a unit scalar first for decimals
/// between 0 and 1 (see the module docs).
pub(crate) fn parse_with(expects: &[Expectation], raw: &str) -> Option<Value> {
    let unit_first =
        raw.contains('.') && plain_decimal(raw).is_some_and(|n| (0.0..=1.0).contains(&n));
    if unit_first
        && let Some(unit) = expects.iter().find(|e| e.kind == ValueKind::UnitScalar)
        && let Some(value) = parse_as(unit, raw)
    {
        return Some(value);
    }
    expects
        .iter()
        .find_map(|expectation| parse_as(expectation, raw))
}

/// Parses `raw` as exactly `expectation`.
fn parse_as(expectation: &Expectation, raw: &str) -> Option<Value> {
    match expectation.kind {
        ValueKind::Integer => {
            let number = bounded(expectation, plain_decimal(raw)?)?;
            let integer = number.round() as i64;
            if !expectation.possible_values.is_empty()
                && !expectation.possible_values.contains(&integer.to_string())
            {
                return None;
            }
            Some(Value::Integer(integer))
        }
        ValueKind::Number => Some(Value::Number(bounded(expectation, plain_decimal(raw)?)?)),
        ValueKind::UnitScalar => {
            let number = plain_decimal(raw)?;
            (0.0..=1.0)
                .contains(&number)
                .then_some(Value::UnitScalar(number))
        }
        ValueKind::Ratio => {
            let (width, height) = raw.split_once(':')?;
            let (width, height) = (plain_decimal(width)?, plain_decimal(height)?);
            (width > 0.0 && height > 0.0).then(|| Value::Ratio(width / height))
        }
        ValueKind::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(Value::Boolean(true)),
            "false" | "0" => Some(Value::Boolean(false)),
            _ => None,
        },
        ValueKind::String => {
            if expectation.possible_values.is_empty() {
                return (!raw.is_empty()).then(|| Value::Text(raw.to_owned()));
            }
            let lower = raw.to_ascii_lowercase();
            expectation
                .possible_values
                .contains(&lower)
                .then_some(Value::Keyword(lower))
        }
        ValueKind::List if !expectation.positions.is_empty() => {
            let items: Vec<&str> = raw.split(',').collect();
            if items.len() != expectation.positions.len() {
                return None;
            }
            items
                .iter()
                .zip(&expectation.positions)
                .map(|(item, expects)| parse_with(expects, item.trim()))
                .collect::<Option<Vec<_>>>()
                .map(Value::Items)
        }
        ValueKind::List => {
            let keywords: Vec<String> = raw
                .split(',')
                .map(|item| item.trim().to_ascii_lowercase())
                .filter(|item| expectation.possible_values.contains(item))
                .collect();
            (!keywords.is_empty()).then_some(Value::Keywords(keywords))
        }
        ValueKind::HexColor => Color::parse_hex(raw).map(Value::Color),
        ValueKind::ColorKeyword => Color::parse_keyword(raw).map(Value::Color),
        ValueKind::Font | ValueKind::Url | ValueKind::Path => {
            (!raw.is_empty()).then(|| Value::Text(raw.to_owned()))
        }
        ValueKind::Timestamp => {
            let number = plain_decimal(raw)?;
            (!raw.contains('.')).then_some(Value::Timestamp(number as i64))
        }
        ValueKind::Interval => {
            let (lower, upper) = raw.split_once('-')?;
            let bound = |text: &str| -> Option<Option<i64>> {
                if text.is_empty() {
                    return Some(None);
                }
                let number = plain_decimal(text)?;
                (!text.contains('.') && number >= 1.0).then_some(Some(number as i64))
            };
            let (lower, upper) = (bound(lower)?, bound(upper)?);
            (lower.is_some() || upper.is_some()).then_some(Value::Interval(lower, upper))
        }
    }
}

/// `number` held to the expectation's range (see the module docs), or
/// `None` for a wrong-signed value.
fn bounded(expectation: &Expectation, number: f64) -> Option<f64> {
    let Some(range) = expectation.range() else {
        return Some(number);
    };
    if expectation.strict_range.is_some() && range.min.is_some_and(|min| min > 0.0) && number <= 0.0
    {
        return None;
    }
    Some(range.clamp(number))
}

/// Parses a plain decimal: optional `-`, digits, optional `.` and digits, at
/// least one digit in all. Saturates rather than overflowing to infinity.
pub(crate) fn plain_decimal(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let number: f64 = text.parse().ok()?;
    number
        .is_finite()
        .then_some(number)
        .or(Some(f64::MAX.copysign(number)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn parse(name: &str, raw: &str) -> Option<Value> {
        parse_value(Spec::get().param(name).unwrap(), raw)
    }

    /// Only plain decimals are numbers.
    #[test]
    fn plain_decimals_only() {
        for (text, number) in [
            ("0", 0.0),
            ("12", 12.0),
            ("-3.5", -3.5),
            (".5", 0.5),
            ("3.", 3.0),
        ] {
            assert_eq!(plain_decimal(text), Some(number), "{text}");
        }
        for text in [
            "", "-", ".", "-.", "NaN", "inf", "-inf", "1e3", "+5", " 5", "5 ", "0x10", "1.2.3",
            "1,5",
        ] {
            assert_eq!(plain_decimal(text), None, "{text:?}");
        }
        let huge = format!("1{}", "0".repeat(400));
        assert_eq!(plain_decimal(&huge), Some(f64::MAX));
    }

    /// Sizes: pixels are rounded and clamped to 2..8192; decimals up to 1 are fractions.
    #[test]
    fn sizes_are_pixels_or_fractions() {
        let cases = [
            ("400", Some(Value::Integer(400))),
            ("400.5", Some(Value::Integer(401))),
            ("1", Some(Value::Integer(2))),
            ("1.5", Some(Value::Integer(2))),
            ("9000", Some(Value::Integer(8192))),
            ("0.5", Some(Value::UnitScalar(0.5))),
            ("1.0", Some(Value::UnitScalar(1.0))),
            (".25", Some(Value::UnitScalar(0.25))),
            ("0", Some(Value::UnitScalar(0.0))),
            ("-10", None),
            ("-0.5", None),
            ("abc", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse("w", raw), expected, "w={raw}");
        }
    }

    /// Suggested ranges clamp where there is no strict range; the strict range wins over it.
    #[test]
    fn ranges_clamp() {
        assert_eq!(parse("bri", "150"), Some(Value::Integer(100)));
        assert_eq!(parse("bri", "-150"), Some(Value::Integer(-100)));
        assert_eq!(parse("blur", "99999"), Some(Value::Integer(2000)));
        assert_eq!(parse("pad", "-5"), Some(Value::Integer(0)));
        assert_eq!(parse("pad", "123456"), Some(Value::Integer(123_456)));
        assert_eq!(parse("dpr", "7"), Some(Value::Number(5.0)));
        assert_eq!(parse("dpr", "0.1"), Some(Value::Number(0.1)));
        assert_eq!(parse("fp-z", "0.5"), Some(Value::Number(1.0)));
        assert_eq!(parse("fp-z", "500"), Some(Value::Number(100.0)));
        assert_eq!(parse("q", "-1"), Some(Value::Integer(0)));
    }

    /// Integer parameters with possible values accept only those.
    #[test]
    fn integer_possible_values() {
        assert_eq!(parse("orient", "6"), Some(Value::Integer(6)));
        assert_eq!(parse("orient", "270"), Some(Value::Integer(270)));
        assert_eq!(parse("orient", "45"), None);
        assert_eq!(parse("chromasub", "444"), Some(Value::Integer(444)));
        assert_eq!(parse("chromasub", "411"), None);
    }

    /// Keywords match case-insensitively; unknown ones do not match.
    #[test]
    fn keywords_and_lists() {
        assert_eq!(parse("fit", "CROP"), Some(Value::Keyword("crop".into())));
        assert_eq!(parse("fit", "cover"), None);
        assert_eq!(
            parse("crop", "top,left"),
            Some(Value::Keywords(vec!["top".into(), "left".into()]))
        );
        assert_eq!(
            parse("crop", "top,sideways"),
            Some(Value::Keywords(vec!["top".into()]))
        );
        assert_eq!(parse("crop", "sideways"), None);
        assert_eq!(
            parse("auto", "format,compress"),
            Some(Value::Keywords(vec!["format".into(), "compress".into()]))
        );
    }

    /// Positional lists parse each item by its position's types.
    #[test]
    fn positional_lists() {
        assert_eq!(
            parse("border", "10,ff0000"),
            Some(Value::Items(vec![
                Value::Integer(10),
                Value::Color(Color::rgb(255, 0, 0))
            ]))
        );
        assert_eq!(parse("border", "10"), None);
        assert_eq!(parse("border", "10,notacolour"), None);
        assert_eq!(
            parse("rect", "center,0.25,100,50"),
            Some(Value::Items(vec![
                Value::Keyword("center".into()),
                Value::UnitScalar(0.25),
                Value::Integer(100),
                Value::Integer(50)
            ]))
        );
        assert_eq!(
            parse("duotone", "000,fff"),
            Some(Value::Items(vec![
                Value::Color(Color::BLACK),
                Value::Color(Color::WHITE)
            ]))
        );
        assert_eq!(
            parse("border-radius", "1,2,3,4"),
            Some(Value::Items(vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3),
                Value::Integer(4)
            ]))
        );
        assert_eq!(parse("border-radius", "7"), Some(Value::Integer(7)));
    }

    /// Colours, ratios, booleans, text, intervals and timestamps.
    #[test]
    fn other_types() {
        assert_eq!(
            parse("bg", "red"),
            Some(Value::Color(Color::rgb(255, 0, 0)))
        );
        assert_eq!(parse("bg", "12345"), None);
        assert_eq!(parse("ar", "16:9"), Some(Value::Ratio(16.0 / 9.0)));
        assert_eq!(parse("ar", "16:0"), None);
        assert_eq!(parse("ar", "16"), None);
        assert_eq!(parse("invert", "true"), Some(Value::Boolean(true)));
        assert_eq!(parse("invert", "yes"), None);
        assert_eq!(parse("txt", "Hello"), Some(Value::Text("Hello".into())));
        assert_eq!(parse("frame", "3"), Some(Value::Integer(3)));
        assert_eq!(
            parse("frame", "2-5"),
            Some(Value::Interval(Some(2), Some(5)))
        );
        assert_eq!(parse("frame", "-5"), Some(Value::Integer(1)));
        assert_eq!(
            parse("expires", "1700000000"),
            Some(Value::Timestamp(1_700_000_000))
        );
    }
}
