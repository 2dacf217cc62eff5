//! Per-frame measurements on decoded RGB frames: the content difference that finds hard
//! cuts (the mean HSV difference PySceneDetect's ContentDetector uses, on OpenCV's 8-bit HSV
//! scale so its threshold of 27 carries over), and blackness.

/// One decoded frame's HSV planes, kept to compare with the next frame.
#[derive(Default)]
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
        let pixels = rows.div_ceil(step) * width.div_ceil(step);
        self.hue.resize(pixels, 0);
        self.saturation.resize(pixels, 0);
        self.value.resize(pixels, 0);
        let sampled = (0..rows).step_by(step).flat_map(|row| {
            let line = &rgb[row * width * 3..(row + 1) * width * 3];
            line.chunks_exact(3).step_by(step)
        });
        for (index, pixel) in sampled.enumerate() {
            let (red, green, blue) = (pixel[0] as i32, pixel[1] as i32, pixel[2] as i32);
            let max = red.max(green).max(blue);
            let min = red.min(green).min(blue);
            let delta = max - min;
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
                let degrees = if degrees < 0 { degrees + 360 } else { degrees };
                degrees / 2
            };
            self.hue[index] = hue as u8;
            self.saturation[index] = saturation as u8;
            self.value[index] = max as u8;
        }
    }

    /// Mean absolute difference of H, S and V between two frames, averaged over the three
    /// channels (0–255 scale).
    pub fn difference(&self, other: &HsvFrame) -> f64 {
        let pixels = self.value.len();
        if pixels == 0 || other.value.len() != pixels {
            return 0.0;
        }
        fn channel(left: &[u8], right: &[u8]) -> u64 {
            left.iter()
                .zip(right)
                .map(|(a, b)| (*a as i32 - *b as i32).unsigned_abs() as u64)
                .sum()
        }
        let total = channel(&self.hue, &other.hue)
            + channel(&self.saturation, &other.saturation)
            + channel(&self.value, &other.value);
        total as f64 / (3.0 * pixels as f64)
    }

    pub fn swap(&mut self, other: &mut HsvFrame) {
        std::mem::swap(self, other);
    }
}

/// The share of pixels whose luma (BT.601) is below `luma_threshold`, looking at every
/// `step`-th pixel.
pub fn dark_pixel_share(rgb: &[u8], luma_threshold: u8, step: usize) -> f64 {
    let pixels = rgb.len() / 3;
    if pixels == 0 {
        return 0.0;
    }
    let threshold = luma_threshold as u32;
    let sampled = pixels.div_ceil(step.max(1));
    let dark = rgb
        .chunks_exact(3)
        .step_by(step.max(1))
        .filter(|pixel| {
            let luma = (77 * pixel[0] as u32 + 150 * pixel[1] as u32 + 29 * pixel[2] as u32) >> 8;
            luma < threshold
        })
        .count();
    dark as f64 / sampled as f64
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn dark_share_counts_pixels_under_the_threshold() {
        let mut rgb = solid(0, 0, 0, 3);
        rgb.extend(solid(200, 200, 200, 1));
        assert!((dark_pixel_share(&rgb, 32, 1) - 0.75).abs() < 1e-9);
    }
}
