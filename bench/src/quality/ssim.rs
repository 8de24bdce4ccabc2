//! SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) on one luma plane, as in the
//! paper's reference implementation: an 11 × 11 circular-symmetric Gaussian
//! window of σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, the SSIM map computed
//! where the window lies wholly inside the image (no padding) and averaged.

use anyhow::ensure;

/// Side of the Gaussian window.
const WINDOW: usize = 11;
/// The window's standard deviation.
const SIGMA: f64 = 1.5;
/// (K1 · L)², L = 255.
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
/// (K2 · L)², L = 255.
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// A greyscale image, samples 0–255, row by row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plane {
    /// Columns.
    pub(crate) width: usize,
    /// Rows.
    pub(crate) height: usize,
    /// `width × height` samples.
    pub(crate) samples: Vec<f64>,
}

// === impl Plane ===

impl Plane {
    /// Rec. 601 luma (0.299 R + 0.587 G + 0.114 B) of packed 8-bit RGB.
    pub(crate) fn luma_of_rgb(width: usize, height: usize, rgb: &[u8]) -> anyhow::Result<Plane> {
        ensure!(
            rgb.len() == width * height * 3,
            "{} bytes of RGB for {width} × {height}",
            rgb.len()
        );
        let samples = rgb
            .chunks_exact(3)
            .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .collect();
        Ok(Plane {
            width,
            height,
            samples,
        })
    }
}

/// The normalised 1-D Gaussian whose outer product is the 2-D window.
fn gaussian() -> [f64; WINDOW] {
    let mut kernel = [0.0; WINDOW];
    let centre = (WINDOW / 2) as f64;
    for (i, k) in kernel.iter_mut().enumerate() {
        let d = i as f64 - centre;
        *k = (-(d * d) / (2.0 * SIGMA * SIGMA)).exp();
    }
    let sum: f64 = kernel.iter().sum();
    kernel.map(|k| k / sum)
}

/// `values` (width × height) filtered with the window where it fits:
/// `(width − 10) × (height − 10)` results.
fn filter_valid(values: &[f64], width: usize, height: usize, kernel: &[f64; WINDOW]) -> Vec<f64> {
    let out_width = width - (WINDOW - 1);
    let out_height = height - (WINDOW - 1);
    let mut rows = vec![0.0; out_width * height];
    for y in 0..height {
        let row = &values[y * width..(y + 1) * width];
        for x in 0..out_width {
            rows[y * out_width + x] = kernel
                .iter()
                .zip(&row[x..x + WINDOW])
                .map(|(k, v)| k * v)
                .sum();
        }
    }
    let mut out = vec![0.0; out_width * out_height];
    for y in 0..out_height {
        for (i, k) in kernel.iter().enumerate() {
            let src = &rows[(y + i) * out_width..(y + i + 1) * out_width];
            for (o, v) in out[y * out_width..(y + 1) * out_width].iter_mut().zip(src) {
                *o += k * v;
            }
        }
    }
    out
}

/// Mean SSIM of `a` against `b` (symmetric; 1 only when they are equal).
pub(crate) fn ssim(a: &Plane, b: &Plane) -> anyhow::Result<f64> {
    ensure!(
        (a.width, a.height) == (b.width, b.height),
        "SSIM of {} × {} against {} × {}",
        a.width,
        a.height,
        b.width,
        b.height
    );
    ensure!(
        a.width >= WINDOW && a.height >= WINDOW,
        "SSIM needs at least {WINDOW} × {WINDOW} pixels, not {} × {}",
        a.width,
        a.height
    );
    let kernel = gaussian();
    let (w, h) = (a.width, a.height);
    let filter = |f: &dyn Fn(f64, f64) -> f64| {
        let values: Vec<f64> = a
            .samples
            .iter()
            .zip(&b.samples)
            .map(|(&x, &y)| f(x, y))
            .collect();
        filter_valid(&values, w, h, &kernel)
    };
    let mu_x = filter(&|x, _| x);
    let mu_y = filter(&|_, y| y);
    let xx = filter(&|x, _| x * x);
    let yy = filter(&|_, y| y * y);
    let xy = filter(&|x, y| x * y);
    let n = mu_x.len();
    let total: f64 = (0..n)
        .map(|i| {
            let (mx, my) = (mu_x[i], mu_y[i]);
            let var_x = xx[i] - mx * mx;
            let var_y = yy[i] - my * my;
            let cov = xy[i] - mx * my;
            ((2.0 * mx * my + C1) * (2.0 * cov + C2))
                / ((mx * mx + my * my + C1) * (var_x + var_y + C2))
        })
        .sum();
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic textured test image: gradients plus a checker and
    /// pseudo-random grain, so every window has structure.
    fn textured(width: usize, height: usize) -> Plane {
        let mut state = 0x2545_f491_u32;
        let samples = (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let grain = f64::from(state >> 24) / 255.0 * 40.0;
                let checker = if ((i % width) / 4 + (i / width) / 4).is_multiple_of(2) {
                    60.0
                } else {
                    0.0
                };
                (x * 1.3 + y * 0.7) % 120.0 + checker + grain
            })
            .collect();
        Plane {
            width,
            height,
            samples,
        }
    }

    /// `plane` plus deterministic uniform noise of ± `amplitude`, clamped.
    fn noisy(plane: &Plane, amplitude: f64) -> Plane {
        let mut state = 12_345_u32;
        let samples = plane
            .samples
            .iter()
            .map(|v| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let unit = f64::from(state >> 16) / 65_535.0 * 2.0 - 1.0;
                (v + unit * amplitude).clamp(0.0, 255.0)
            })
            .collect();
        Plane {
            samples,
            ..plane.clone()
        }
    }

    #[test]
    fn the_window_is_a_normalised_symmetric_gaussian() {
        let k = gaussian();
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..WINDOW / 2 {
            assert_eq!(k[i], k[WINDOW - 1 - i]);
            assert!(k[i] < k[i + 1], "rises towards the centre");
        }
        // exp(−1/(2σ²)) between neighbours at the centre.
        let ratio = k[4] / k[5];
        assert!((ratio - (-1.0 / (2.0 * SIGMA * SIGMA)).exp()).abs() < 1e-12);
    }

    #[test]
    fn identical_images_score_one() {
        let a = textured(64, 48);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ssim_is_symmetric() {
        let a = textured(64, 48);
        let b = noisy(&a, 20.0);
        assert!((ssim(&a, &b).unwrap() - ssim(&b, &a).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn more_noise_scores_lower() {
        let a = textured(64, 48);
        let light = ssim(&a, &noisy(&a, 8.0)).unwrap();
        let heavy = ssim(&a, &noisy(&a, 40.0)).unwrap();
        assert!(light < 1.0 - 1e-3, "light noise {light}");
        assert!(heavy < light, "heavy {heavy} vs light {light}");
        assert!(heavy > 0.0);
    }

    #[test]
    fn a_shift_by_one_pixel_scores_lower() {
        let a = textured(64, 48);
        let mut shifted = a.clone();
        for y in 0..a.height {
            for x in 1..a.width {
                shifted.samples[y * a.width + x] = a.samples[y * a.width + x - 1];
            }
        }
        let score = ssim(&a, &shifted).unwrap();
        assert!(score < 0.9, "shifted {score}");
    }

    /// Two flat images: no variance, so the contrast-structure term is
    /// C2 / C2 and SSIM is the luminance term alone, (2μxμy + C1) / (μx² + μy² + C1).
    #[test]
    fn flat_images_score_their_luminance_term() {
        let flat = |v: f64| Plane {
            width: 20,
            height: 20,
            samples: vec![v; 400],
        };
        let expected = (2.0 * 100.0 * 110.0 + C1) / (100.0 * 100.0 + 110.0 * 110.0 + C1);
        assert!((ssim(&flat(100.0), &flat(110.0)).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn sizes_must_match_and_fit_the_window() {
        let a = textured(64, 48);
        assert!(ssim(&a, &textured(64, 47)).is_err());
        let tiny = textured(10, 40);
        assert!(ssim(&tiny, &tiny).is_err());
    }

    #[test]
    fn luma_weights_rec601() {
        let plane = Plane::luma_of_rgb(2, 1, &[255, 0, 0, 0, 0, 255]).unwrap();
        assert!((plane.samples[0] - 0.299 * 255.0).abs() < 1e-9);
        assert!((plane.samples[1] - 0.114 * 255.0).abs() < 1e-9);
        assert!(Plane::luma_of_rgb(2, 2, &[0; 6]).is_err());
    }
}
