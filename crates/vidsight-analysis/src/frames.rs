//! Per-frame measurements on decoded RGB frames: the content difference that finds hard
//! cuts (the mean HSV difference PySceneDetect's ContentDetector uses, on OpenCV's 8-bit HSV
//! scale so its threshold of 27 carries over), and blackness.

/// One decoded frame's HSV planes, kept to compare with the next frame.
#[derive(Clone, Default)]
pub struct HsvFrame {
    hue: Vec<u8>,
    saturation: Vec<u8>,
    value: Vec<u8>,
}

impl HsvFrame {
    /// Converts packed RGB24 to HSV the way OpenCV does for 8-bit images
    /// (H in 0–179, S and V in 0–255), taking every pixel.
    pub fn fill_from_rgb(&mut self, rgb: &[u8]) {
        self.fill_from_rgb_sampled(rgb, rgb.len() / 3, 1);
    }

    /// As [`fill_from_rgb`](Self::fill_from_rgb), on every `step`-th pixel of every
    /// `step`-th row of a `width`-pixel-wide frame (PySceneDetect also scores downscaled
    /// frames; this keeps the cost independent of the keyframe size).
    pub fn fill_from_rgb_sampled(&mut self, rgb: &[u8], width: usize, step: usize) {
        let step = step.max(1);
        let width = width.max(1);
        let rows = rgb.len() / 3 / width;
        let columns = width.div_ceil(step);
        let pixels = rows.div_ceil(step) * columns;
        self.hue.resize(pixels, 0);
        self.saturation.resize(pixels, 0);
        self.value.resize(pixels, 0);
        let reciprocal = reciprocals();
        let sampled_rows = (0..rows).step_by(step).enumerate();
        for (out_row, row) in sampled_rows {
            let line = &rgb[row * width * 3..(row + 1) * width * 3];
            let at = out_row * columns;
            let hue = &mut self.hue[at..at + columns];
            let saturation = &mut self.saturation[at..at + columns];
            let value = &mut self.value[at..at + columns];
            if step == 1 {
                hsv_row(line, hue, saturation, value, reciprocal);
            } else {
                // the first pixel of every `step`-pixel run
                let outputs = hue
                    .iter_mut()
                    .zip(saturation.iter_mut())
                    .zip(value.iter_mut());
                for (((hue, saturation), value), pixel) in outputs.zip(line.chunks(3 * step)) {
                    (*hue, *saturation, *value) =
                        hsv_pixel(pixel[0], pixel[1], pixel[2], reciprocal);
                }
            }
        }
    }

    /// Mean absolute difference of H, S and V between two frames, averaged over the three
    /// channels (0–255 scale).
    pub fn difference(&self, other: &HsvFrame) -> f64 {
        let pixels = self.value.len();
        if pixels == 0 || other.value.len() != pixels {
            return 0.0;
        }
        let total = abs_diff_sum(&self.hue, &other.hue)
            + abs_diff_sum(&self.saturation, &other.saturation)
            + abs_diff_sum(&self.value, &other.value);
        total as f64 / (3.0 * pixels as f64)
    }
}

/// Σ |left − right| over two byte planes (frames' HSV channels, thumbnails): u32 sums over
/// runs short enough not to overflow (2¹⁶ · 255), which the compiler turns into vector code.
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(crate) fn abs_diff_sum(left: &[u8], right: &[u8]) -> u64 {
    left.chunks(1 << 16)
        .zip(right.chunks(1 << 16))
        .map(|(left, right)| {
            left.iter()
                .zip(right)
                .map(|(a, b)| a.abs_diff(*b) as u32)
                .sum::<u32>() as u64
        })
        .sum()
}

/// `⌈2³²/d⌉` for d in 1..=255 (0 for 0): `x / d` is `(x · r) >> 32` for every x below 2¹⁶
/// (the error, under 2⁻¹⁶, never reaches the next integer when d < 2¹⁶), so the HSV
/// conversion needs no division instruction and gives the same bytes as one.
fn reciprocals() -> &'static [u64; 256] {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0u64; 256];
        for (divisor, entry) in table.iter_mut().enumerate().skip(1) {
            *entry = (1u64 << 32).div_ceil(divisor as u64);
        }
        table
    })
}

/// OpenCV's 8-bit RGB→HSV of one pixel (H 0–179), with integer division (truncating toward
/// zero) done by [`reciprocals`], without branches to mispredict: the table's entry for 0 is
/// 0, so a black pixel gets no saturation and a grey one no hue without a test.
#[inline]
fn hsv_pixel(red: u8, green: u8, blue: u8, reciprocal: &[u64; 256]) -> (u8, u8, u8) {
    let (red, green, blue) = (red as i32, green as i32, blue as i32);
    let max = red.max(green).max(blue);
    let min = red.min(green).min(blue);
    let delta = max - min;
    // numerators stay within ±255·255 + 127 < 2¹⁶
    let saturation = ((255 * delta + max / 2) as u64 * reciprocal[max as usize]) >> 32;
    let (numerator, base) = hue_sector(red, green, blue, max);
    let quotient =
        (((60 * numerator).unsigned_abs() as u64 * reciprocal[delta as usize]) >> 32) as i32;
    let degrees = base + if numerator < 0 { -quotient } else { quotient };
    let degrees = if degrees < 0 { degrees + 360 } else { degrees };
    ((degrees / 2) as u8, saturation as u8, max as u8)
}

/// OpenCV's hue sector of a pixel whose largest channel is `max`: the difference of the
/// other two (in the order that turns the hue forward) and the sector's start in degrees,
/// red first where channels tie.
#[inline(always)]
fn hue_sector<T: Copy + PartialEq + std::ops::Sub<Output = T>>(
    red: T,
    green: T,
    blue: T,
    max: T,
) -> (T, i32) {
    if max == red {
        (green - blue, 0)
    } else if max == green {
        (blue - red, 120)
    } else {
        (red - green, 240)
    }
}

/// Pixels converted together by [`hsv_row`]: two vectors of four `f32` lanes.
const LANES: usize = 8;

/// 2²³: added to a non-negative `f32` under 2²², it leaves that number rounded to an integer
/// in the low bits of the sum.
const MAGIC: f32 = 8_388_608.0;

/// A whole number held in an `f32` (0 ≤ x < 2²²) as an integer: a bit cast, where `as i32`
/// would have the compiler check every lane for NaN and overflow, one at a time.
#[inline(always)]
fn whole(x: f32) -> i32 {
    (x + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// ⌊x⌋ for 0 ≤ x < 2²², in vector code (see [`whole`]): the nearest integer, less one where
/// that is above `x`.
#[inline(always)]
fn floor_small(x: f32) -> i32 {
    let nearest = whole(x);
    nearest - (nearest as f32 > x) as i32
}

/// [`hsv_pixel`] over a row of packed RGB24, [`LANES`] pixels at a time in fixed-size arrays
/// the compiler turns into vector code (the table lookups of `hsv_pixel` cannot be), the rest
/// one by one: 2.5 times as fast. The divisions are done in `f32` and floored: exact, as the
/// numerators are integers under 2¹⁷ and the divisors at most 255 — a quotient that is not a
/// whole number is at least 1/255 from one, far more than `f32` rounds by at these sizes
/// (under 2⁻¹⁰). `division_free_hsv_equals_dividing` checks every colour it covers both ways.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn hsv_row(
    line: &[u8],
    hue: &mut [u8],
    saturation: &mut [u8],
    value: &mut [u8],
    reciprocal: &[u64; 256],
) {
    let pixels = hue.len().min(line.len() / 3);
    let vectors = pixels / LANES * LANES;
    let chunks = line[..vectors * 3]
        .chunks_exact(3 * LANES)
        .zip(hue[..vectors].chunks_exact_mut(LANES))
        .zip(saturation[..vectors].chunks_exact_mut(LANES))
        .zip(value[..vectors].chunks_exact_mut(LANES));
    for (((rgb, hue), saturation), value) in chunks {
        let (mut red, mut green, mut blue) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
        for lane in 0..LANES {
            red[lane] = rgb[3 * lane] as f32;
            green[lane] = rgb[3 * lane + 1] as f32;
            blue[lane] = rgb[3 * lane + 2] as f32;
        }
        let (mut h, mut s, mut v) = ([0u8; LANES], [0u8; LANES], [0u8; LANES]);
        for lane in 0..LANES {
            let (r, g, b) = (red[lane], green[lane], blue[lane]);
            let max = r.max(g).max(b);
            let delta = max - r.min(g).min(b);
            let top = whole(max);
            // black: 0 / 1
            let half = (top >> 1) as f32;
            s[lane] = floor_small((255.0 * delta + half) / max.max(1.0)) as u8;
            let (numerator, base) = hue_sector(r, g, b, max);
            // grey: 0 / 1; truncated toward zero, as integer division does
            let magnitude = floor_small((60.0 * numerator).abs() / delta.max(1.0));
            let degrees = base
                + if numerator < 0.0 {
                    -magnitude
                } else {
                    magnitude
                };
            let degrees = if degrees < 0 { degrees + 360 } else { degrees };
            h[lane] = (degrees / 2) as u8;
            v[lane] = top as u8;
        }
        hue.copy_from_slice(&h);
        saturation.copy_from_slice(&s);
        value.copy_from_slice(&v);
    }
    let rest = line[vectors * 3..pixels * 3]
        .chunks_exact(3)
        .zip(&mut hue[vectors..pixels])
        .zip(&mut saturation[vectors..pixels])
        .zip(&mut value[vectors..pixels]);
    for (((pixel, hue), saturation), value) in rest {
        (*hue, *saturation, *value) = hsv_pixel(pixel[0], pixel[1], pixel[2], reciprocal);
    }
}

/// The BT.601 luma of a packed RGB24 pixel (0–255), in the fixed point the thumbnails and the
/// darkness test share.
#[inline]
pub(crate) fn luma(pixel: &[u8]) -> u32 {
    (77 * pixel[0] as u32 + 150 * pixel[1] as u32 + 29 * pixel[2] as u32) >> 8
}

/// The share of pixels whose luma (BT.601) is below `luma_threshold`, looking at every
/// `step`-th pixel.
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub fn dark_pixel_share(rgb: &[u8], luma_threshold: u8, step: usize) -> f64 {
    let pixels = rgb.len() / 3;
    if pixels == 0 {
        return 0.0;
    }
    let threshold = luma_threshold as u32;
    let sampled = pixels.div_ceil(step.max(1));
    let is_dark = |pixel: &[u8]| (luma(pixel) < threshold) as usize;
    // the first pixel of every `step`-pixel run (a run at the end may be shorter); every
    // pixel in fixed steps of three bytes, which the compiler makes vector code of
    let dark: usize = if step <= 1 {
        rgb.chunks_exact(3).map(is_dark).sum()
    } else {
        rgb.chunks(3 * step).map(is_dark).sum()
    };
    dark as f64 / sampled as f64
}

/// Bytes of a planar YUV 4:2:0 picture (even `width` and `height`), as ffmpeg's `rawvideo`
/// writes `yuv420p`: the Y plane, then Cb and Cr at half width and height.
pub fn yuv420_len(width: usize, height: usize) -> usize {
    width * height + 2 * (width / 2) * (height / 2)
}

/// BT.601 limited range to RGB, written as ffmpeg's scaler computes it for untagged video:
/// the tests' reference for [`convert`].
#[cfg(test)]
fn ycbcr_to_rgb(luma: i32, cb: i32, cr: i32) -> [u8; 3] {
    let c = 298 * (luma - 16);
    let (d, e) = (cb - 128, cr - 128);
    let clamp = |value: i32| ((value + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// The Y, Cb and Cr planes of a YUV 4:2:0 picture.
fn planes(yuv: &[u8], width: usize, height: usize) -> (&[u8], &[u8], &[u8]) {
    let (luma, chroma) = yuv.split_at(width * height);
    let (cb, cr) = chroma.split_at((width / 2) * (height / 2));
    (luma, cb, cr)
}

/// Converts a whole YUV 4:2:0 picture to packed RGB24 (a keyframe about to be encoded).
pub fn yuv420_to_rgb(yuv: &[u8], width: usize, height: usize, out: &mut Vec<u8>) {
    let (half_width, half_height) = (width / 2, height / 2);
    let (luma, cb, cr) = planes(yuv, width, height);
    out.clear();
    out.resize(width * height * 3, 0);
    for (y, out_row) in out.chunks_exact_mut(width * 3).enumerate() {
        let row = &luma[y * width..(y + 1) * width];
        let chroma_row = (y / 2).min(half_height.saturating_sub(1)) * half_width;
        let cb_row = &cb[chroma_row..chroma_row + half_width];
        let cr_row = &cr[chroma_row..chroma_row + half_width];
        // two pixels side by side share a chroma sample
        rgb_row::<1>(row, cb_row, cr_row, out_row);
        // an odd width's last pixel takes the row's last chroma sample
        if width % 2 == 1 {
            let at = half_width.saturating_sub(1);
            out_row[(width - 1) * 3..].copy_from_slice(&convert(
                row[width - 1],
                cb_row[at],
                cr_row[at],
            ));
        }
    }
}

/// Converts a YUV 4:2:0 picture to packed RGB24 at half its width and height: each output
/// pixel is the top-left luma sample of a 2×2 block with the block's own chroma sample (the
/// picture is already area-scaled; the detectors were tuned on this sampling, and averaging
/// the block instead smooths away part of what tells a dissolve from a cut), so the
/// measurements (content score, darkness, thumbnails, sharpness, test patterns) run on a
/// quarter of the pixels.
pub fn yuv420_to_half_rgb(yuv: &[u8], width: usize, height: usize, out: &mut Vec<u8>) {
    let (half_width, half_height) = (width / 2, height / 2);
    let (luma, cb, cr) = planes(yuv, width, height);
    out.resize(half_width * half_height * 3, 0);
    for (y, out_row) in out.chunks_exact_mut(half_width * 3).enumerate() {
        let row = &luma[2 * y * width..(2 * y + 1) * width];
        let cb_row = &cb[y * half_width..(y + 1) * half_width];
        let cr_row = &cr[y * half_width..(y + 1) * half_width];
        rgb_row::<0>(row, cb_row, cr_row, out_row);
    }
}

/// BT.601 limited range to RGB, in the fixed point ffmpeg's scaler uses for untagged video.
#[inline(always)]
fn convert(luma: u8, cb: u8, cr: u8) -> [u8; 3] {
    let c = 298 * (luma as i32 - 16) + 128;
    let (d, e) = (cb as i32 - 128, cr as i32 - 128);
    let clamp = |sum: i32| (sum >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// One row of pictures converted from YUV 4:2:0: with `SHIFT` 1, every luma sample, two
/// side by side sharing a chroma sample (the whole picture); with 0, one pixel per chroma
/// sample, of the top-left luma sample of its pair (half size). [`LANES`] pixels at a time
/// computed in fixed-size arrays, which the compiler turns into vector code, then
/// interleaved; the rest one by one. Compiled for each processor's vector instructions, chosen
/// at run time: both sizes are converted at every step of the pass.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn rgb_row<const SHIFT: u32>(luma: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    // luma samples per pixel, and pixels per chroma sample
    let (luma_step, per_chroma) = (2 >> SHIFT, 1 << SHIFT);
    let pixels = (cb.len().min(cr.len()) << SHIFT)
        .min(luma.len() / luma_step)
        .min(out.len() / 3);
    let vectors = pixels / LANES * LANES;
    let chunks = out[..vectors * 3]
        .chunks_exact_mut(3 * LANES)
        .zip(luma[..luma_step * vectors].chunks_exact(luma_step * LANES))
        .zip(cb[..vectors / per_chroma].chunks_exact(LANES / per_chroma))
        .zip(cr[..vectors / per_chroma].chunks_exact(LANES / per_chroma));
    for (((out, luma), cb), cr) in chunks {
        let (mut red, mut green, mut blue) = ([0u8; LANES], [0u8; LANES], [0u8; LANES]);
        for lane in 0..LANES {
            let chroma = lane >> SHIFT;
            [red[lane], green[lane], blue[lane]] =
                convert(luma[luma_step * lane], cb[chroma], cr[chroma]);
        }
        for lane in 0..LANES {
            out[3 * lane] = red[lane];
            out[3 * lane + 1] = green[lane];
            out[3 * lane + 2] = blue[lane];
        }
    }
    for pixel in vectors..pixels {
        let chroma = pixel >> SHIFT;
        out[3 * pixel..3 * pixel + 3].copy_from_slice(&convert(
            luma[luma_step * pixel],
            cb[chroma],
            cr[chroma],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffmpeg's own conversion of a colourful picture, against ours from its YUV.
    #[test]
    fn yuv_conversion_matches_ffmpeg() {
        let (width, height) = (64usize, 36usize);
        let source = "testsrc2=size=64x36:rate=1:duration=1";
        let decode = |format: &str| {
            crate::testing::ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                source,
                "-frames:v",
                "1",
                "-vf",
                &format!("format={format}"),
                "-f",
                "rawvideo",
                "pipe:1",
            ])
        };
        let yuv = decode("yuv420p");
        assert_eq!(yuv.len(), yuv420_len(width, height));
        // ffmpeg's RGB of the same YUV picture
        let theirs = crate::testing::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            source,
            "-frames:v",
            "1",
            "-vf",
            "format=yuv420p,scale=flags=neighbor+accurate_rnd+full_chroma_int,format=rgb24",
            "-f",
            "rawvideo",
            "pipe:1",
        ]);
        let mut ours = Vec::new();
        yuv420_to_rgb(&yuv, width, height, &mut ours);
        assert_eq!(ours.len(), theirs.len());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max();
        let mean = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (*a as i32 - *b as i32).abs() as f64)
            .sum::<f64>()
            / ours.len() as f64;
        assert!(mean < 2.0, "mean difference {mean}, worst {worst:?}");

        // half size: the top-left pixel of each 2×2 block of the full conversion
        let mut half = Vec::new();
        yuv420_to_half_rgb(&yuv, width, height, &mut half);
        assert_eq!(half.len(), (width / 2) * (height / 2) * 3);
        for y in 0..height / 2 {
            for x in 0..width / 2 {
                let full = ((2 * y) * width + 2 * x) * 3;
                let small = (y * (width / 2) + x) * 3;
                assert_eq!(half[small..small + 3], ours[full..full + 3], "at {x},{y}");
            }
        }
    }

    /// Every colour, through both row conversions, against the formula.
    #[test]
    fn rows_convert_every_colour_as_the_formula_does() {
        let luma: Vec<u8> = (0..=255u8).collect();
        let doubled: Vec<u8> = luma.iter().flat_map(|value| [*value, 0]).collect();
        let (mut whole, mut half) = (vec![0u8; 256 * 3], vec![0u8; 256 * 3]);
        for cb in 0..=255u8 {
            for cr in 0..=255u8 {
                rgb_row::<1>(&luma, &[cb; 128], &[cr; 128], &mut whole);
                rgb_row::<0>(&doubled, &[cb; 256], &[cr; 256], &mut half);
                for value in 0..256 {
                    let expected = ycbcr_to_rgb(value as i32, cb as i32, cr as i32);
                    let at = value * 3;
                    assert_eq!(whole[at..at + 3], expected, "Y {value} Cb {cb} Cr {cr}");
                    assert_eq!(
                        half[at..at + 3],
                        expected,
                        "Y {value} Cb {cb} Cr {cr} (half)"
                    );
                }
            }
        }
    }

    #[test]
    fn limited_range_black_and_white_become_0_and_255() {
        assert_eq!(ycbcr_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(ycbcr_to_rgb(235, 128, 128), [255, 255, 255]);
    }

    fn solid(red: u8, green: u8, blue: u8, pixels: usize) -> Vec<u8> {
        [red, green, blue].repeat(pixels)
    }

    #[test]
    fn hsv_matches_opencv_for_primaries() {
        let mut frame = HsvFrame::default();
        frame.fill_from_rgb(&[255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255]);
        assert_eq!(frame.hue, vec![0, 60, 120, 0, 0]);
        assert_eq!(frame.saturation, vec![255, 255, 255, 0, 0]);
        assert_eq!(frame.value, vec![255, 255, 255, 0, 255]);
    }

    #[test]
    fn identical_frames_differ_by_zero_and_black_to_white_by_a_lot() {
        let mut black = HsvFrame::default();
        black.fill_from_rgb(&solid(0, 0, 0, 100));
        let mut white = HsvFrame::default();
        white.fill_from_rgb(&solid(255, 255, 255, 100));
        assert_eq!(black.difference(&black), 0.0);
        assert!((black.difference(&white) - 85.0).abs() < 1e-9);
    }

    #[test]
    fn sampling_takes_every_step_th_pixel_of_every_step_th_row() {
        // 4x2 frame: row 0 = red, green, blue, white; row 1 = black ×4
        let mut rgb = vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        rgb.extend([0u8; 12]);
        let mut frame = HsvFrame::default();
        frame.fill_from_rgb_sampled(&rgb, 4, 2);
        assert_eq!(frame.hue, vec![0, 120]);
        assert_eq!(frame.value, vec![255, 255]);
    }

    /// The conversion without division instructions gives the bytes integer division gives,
    /// over every red and green value and a third of the blues.
    #[test]
    fn division_free_hsv_equals_dividing() {
        fn dividing(red: i32, green: i32, blue: i32) -> (u8, u8, u8) {
            let max = red.max(green).max(blue);
            let delta = max - red.min(green).min(blue);
            let saturation = if max == 0 {
                0
            } else {
                (255 * delta + max / 2) / max
            };
            let hue = if delta == 0 {
                0
            } else {
                let degrees = if max == red {
                    60 * (green - blue) / delta
                } else if max == green {
                    120 + 60 * (blue - red) / delta
                } else {
                    240 + 60 * (red - green) / delta
                };
                (if degrees < 0 { degrees + 360 } else { degrees }) / 2
            };
            (hue as u8, saturation as u8, max as u8)
        }
        let table = reciprocals();
        // every colour through the vector code (a row of every blue: 32 vectors), every
        // third blue one by one, and a row one pixel short of a vector (all one by one)
        let mut row = Vec::with_capacity(3 * 256);
        let (mut hue, mut saturation, mut value) = (vec![0; 256], vec![0; 256], vec![0; 256]);
        for red in 0..=255u8 {
            for green in 0..=255u8 {
                row.clear();
                for blue in 0..=255u8 {
                    row.extend([red, green, blue]);
                }
                hsv_row(&row, &mut hue, &mut saturation, &mut value, table);
                for blue in 0..=255u8 {
                    let at = blue as usize;
                    assert_eq!(
                        (hue[at], saturation[at], value[at]),
                        dividing(red as i32, green as i32, blue as i32),
                        "rgb {red},{green},{blue} in a row"
                    );
                }
                for blue in (0..=255u8).step_by(3) {
                    assert_eq!(
                        hsv_pixel(red, green, blue, table),
                        dividing(red as i32, green as i32, blue as i32),
                        "rgb {red},{green},{blue}"
                    );
                }
            }
        }
        let short = &row[..3 * (LANES - 1)];
        hsv_row(
            short,
            &mut hue[..LANES - 1],
            &mut saturation[..LANES - 1],
            &mut value[..LANES - 1],
            table,
        );
        for (at, pixel) in short.chunks_exact(3).enumerate() {
            assert_eq!(
                hsv_pixel(pixel[0], pixel[1], pixel[2], table),
                (hue[at], saturation[at], value[at])
            );
        }
    }

    #[test]
    fn dark_share_counts_pixels_under_the_threshold() {
        let mut rgb = solid(0, 0, 0, 3);
        rgb.extend(solid(200, 200, 200, 1));
        assert!((dark_pixel_share(&rgb, 32, 1) - 0.75).abs() < 1e-9);
    }
}
