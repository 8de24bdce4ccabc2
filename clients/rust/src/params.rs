//! imgix parameters as a typed builder: [`Params`] writes the query string
//! the API's `params` field takes (`w=400&fit=crop&fm=webp`), so callers
//! never concatenate strings, and its [`Params::set`] escape hatch reaches
//! any parameter the builder has no method for.

use std::fmt;

/// How the image fits the requested `w` × `h` (imgix's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Fit within the box, keeping the aspect ratio (the default).
    Clip,
    /// Fill the box, cropping what does not fit (see [`Params::crop`]).
    Crop,
    /// Fit within the box and fill the rest with `bg`.
    Fill,
    /// Like `fill`, without enlarging the image.
    FillMax,
    /// Like `clip`, without enlarging the image.
    Max,
    /// Like `crop`, without enlarging the image.
    Min,
    /// Stretch to the box, ignoring the aspect ratio.
    Scale,
    /// Crop around the detected faces.
    Facearea,
}

/// The output format (imgix's `fm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG.
    Jpg,
    /// Progressive JPEG.
    Pjpg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
    /// GIF.
    Gif,
    /// The image's metadata as JSON.
    Json,
    /// A BlurHash string.
    Blurhash,
}

/// imgix parameters, in the order they were set; setting one again
/// replaces its value. `Display` writes the query string (form-encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

// === impl Fit ===

impl Fit {
    /// The value imgix's `fit` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Clip => "clip",
            Fit::Crop => "crop",
            Fit::Fill => "fill",
            Fit::FillMax => "fillmax",
            Fit::Max => "max",
            Fit::Min => "min",
            Fit::Scale => "scale",
            Fit::Facearea => "facearea",
        }
    }
}

// === impl Format ===

impl Format {
    /// The value imgix's `fm` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpg => "jpg",
            Format::Pjpg => "pjpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Gif => "gif",
            Format::Json => "json",
            Format::Blurhash => "blurhash",
        }
    }
}

// === impl Params ===

impl Params {
    /// No parameters: the original, as the Source's defaults make it.
    pub fn new() -> Params {
        Params::default()
    }

    /// Reads a query string (`w=400&fm=webp`, with or without `?`).
    pub fn parse(query: &str) -> Params {
        let query = query.strip_prefix('?').unwrap_or(query);
        url::form_urlencoded::parse(query.as_bytes()).fold(Params::new(), |params, (k, v)| {
            params.set(k.into_owned(), v.into_owned())
        })
    }

    /// Sets any imgix parameter by name, replacing an earlier value.
    pub fn set(mut self, name: impl Into<String>, value: impl ToString) -> Params {
        let (name, value) = (name.into(), value.to_string());
        match self.pairs.iter_mut().find(|(known, _)| *known == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
        self
    }

    /// The value of parameter `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// Output width in pixels (`w`).
    pub fn width(self, width: u32) -> Params {
        self.set("w", width)
    }

    /// Output height in pixels (`h`).
    pub fn height(self, height: u32) -> Params {
        self.set("h", height)
    }

    /// Device pixel ratio (`dpr`), e.g. 2.0.
    pub fn dpr(self, dpr: f64) -> Params {
        self.set("dpr", dpr)
    }

    /// How the image fits `w` × `h` (`fit`).
    pub fn fit(self, fit: Fit) -> Params {
        self.set("fit", fit.as_str())
    }

    /// What `fit=crop` keeps (`crop`), e.g. `"faces,center"` or `"entropy"`.
    pub fn crop(self, crop: &str) -> Params {
        self.set("crop", crop)
    }

    /// Aspect ratio for cropping (`ar`), e.g. `"16:9"`.
    pub fn aspect_ratio(self, ratio: &str) -> Params {
        self.set("ar", ratio)
    }

    /// Output format (`fm`).
    pub fn format(self, format: Format) -> Params {
        self.set("fm", format.as_str())
    }

    /// Output quality, 0 to 100 (`q`).
    pub fn quality(self, quality: u8) -> Params {
        self.set("q", quality)
    }

    /// Automatic choices (`auto`), e.g. `"format,compress"`.
    pub fn auto(self, auto: &str) -> Params {
        self.set("auto", auto)
    }

    /// Background colour (`bg`), e.g. `"fff"` or `"80ff0000"`.
    pub fn background(self, color: &str) -> Params {
        self.set("bg", color)
    }

    /// Blur radius (`blur`), 0 to 2000.
    pub fn blur(self, radius: u32) -> Params {
        self.set("blur", radius)
    }

    /// The parameters of `self` with those of `over` laid over them (a
    /// parameter set in both takes `over`'s value).
    pub fn merged(&self, over: &Params) -> Params {
        over.pairs
            .iter()
            .fold(self.clone(), |params, (name, value)| {
                params.set(name.clone(), value)
            })
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.pairs {
            query.append_pair(name, value);
        }
        f.write_str(&query.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder writes imgix's names and values in the order set, replaces a value set twice, and escapes.
    #[test]
    fn builds_the_query_imgix_reads() {
        let params = Params::new()
            .width(400)
            .height(300)
            .fit(Fit::Crop)
            .crop("faces,center")
            .format(Format::Webp)
            .quality(70)
            .width(500)
            .dpr(1.5);
        assert_eq!(
            params.to_string(),
            "w=500&h=300&fit=crop&crop=faces%2Ccenter&fm=webp&q=70&dpr=1.5"
        );
        assert_eq!(params.get("w"), Some("500"));
        assert_eq!(Params::parse("?w=500&fm=webp").get("fm"), Some("webp"));
    }

    /// A merge keeps the base's parameters and takes the overlay's values for those set in both.
    #[test]
    fn merged_takes_the_overlays_values() {
        let base = Params::new().format(Format::Png).width(100);
        let merged = base.merged(&Params::new().width(40).quality(50));
        assert_eq!(merged.to_string(), "fm=png&w=40&q=50");
    }
}
