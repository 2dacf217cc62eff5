//! Pictures made from the decoded frames without a second decode: an area (box) filter that
//! shrinks packed RGB24, the even-sided size of a picture of a given width, and JPEG encoding.
use vidsight_domain::{Error, Result};

/// A JPEG image and the file name the insights document refers to it by.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    pub jpeg: Vec<u8>,
}

/// The size of a picture `target_width` wide (never wider than the source) with the
/// source's aspect kept, both sides even and at least 2.
pub fn scaled_size(width: u32, height: u32, target_width: u32) -> (u32, u32) {
    let source_width = width.max(1);
    let scaled_width = (target_width.min(width).max(2)) & !1;
    let exact_height = scaled_width as f64 * height.max(1) as f64 / source_width as f64;
    let scaled_height = ((exact_height / 2.0).round() as u32 * 2).max(2);
    (scaled_width, scaled_height)
}

/// For each destination position, the source positions it covers and their weights (the
/// share of the destination pixel each source pixel covers; they sum to 1).
fn area_weights(source: usize, destination: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = source as f64 / destination as f64;
    (0..destination)
        .map(|position| {
            let start = position as f64 * scale;
            let end = ((position + 1) as f64 * scale).min(source as f64);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(source).max(first + 1);
            (first..last)
                .filter_map(|at| {
                    let covered = end.min(at as f64 + 1.0) - start.max(at as f64);
                    (covered > 1e-9).then_some((at, (covered / scale) as f32))
                })
                .collect()
        })
        .collect()
}

/// [`area_weights`] as the loops below use them: the first source position each
/// destination position covers, and the weights of it and of the ones after it (the
/// positions covered are always a run).
fn area_runs(source: usize, destination: usize) -> Vec<(usize, Vec<f32>)> {
    area_weights(source, destination)
        .into_iter()
        .map(|weights| {
            let first = weights.first().map_or(0, |(at, _)| *at);
            debug_assert!(weights
                .iter()
                .enumerate()
                .all(|(n, (at, _))| *at == first + n));
            (
                first,
                weights.into_iter().map(|(_, weight)| weight).collect(),
            )
        })
        .collect()
}

/// Shrinks (or stretches) packed RGB24 with an area filter: each destination pixel is the
/// mean of the source pixels it covers, partly covered ones weighed by how much. The sums are
/// taken in the order a plain loop over the weights takes them, so the bytes do not depend on
/// how the loops are written (`resize_area_is_the_weighted_mean_of_each_area` checks against
/// one). Over runs of source pixels, rounding without a library call, and compiled for each
/// processor's vector instructions (chosen at run time), the storyboard tiles and keyframe
/// thumbnails of a 720p minute take 290 million instructions, not 505 million.
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub fn resize_area(
    rgb: &[u8],
    source_width: usize,
    source_height: usize,
    width: usize,
    height: usize,
) -> Vec<u8> {
    if let Some(ratio) = whole_ratio(source_width, source_height, width, height) {
        return box_mean(rgb, source_width, width, height, ratio);
    }
    let columns = area_runs(source_width, width);
    let rows = area_runs(source_height, height);
    // horizontal pass into floats, then the vertical one
    let mut across = vec![0f32; source_height * width * 3];
    for (line, out) in rgb
        .chunks_exact(source_width * 3)
        .zip(across.chunks_exact_mut(width * 3))
        .take(source_height)
    {
        for ((first, weights), out) in columns.iter().zip(out.chunks_exact_mut(3)) {
            let covered = &line[first * 3..(first + weights.len()) * 3];
            let (mut red, mut green, mut blue) = (0f32, 0f32, 0f32);
            for (pixel, weight) in covered.chunks_exact(3).zip(weights) {
                red += pixel[0] as f32 * weight;
                green += pixel[1] as f32 * weight;
                blue += pixel[2] as f32 * weight;
            }
            out.copy_from_slice(&[red, green, blue]);
        }
    }
    let mut resized = vec![0u8; width * height * 3];
    let mut sums = vec![0f32; width * 3];
    for ((first, weights), out) in rows.iter().zip(resized.chunks_exact_mut(width * 3)) {
        sums.fill(0.0);
        let lines = across[first * width * 3..].chunks_exact(width * 3);
        for (line, weight) in lines.zip(weights) {
            for (sum, value) in sums.iter_mut().zip(line) {
                *sum += value * weight;
            }
        }
        for (pixel, sum) in out.iter_mut().zip(&sums) {
            *pixel = round_non_negative(*sum).min(255) as u8;
        }
    }
    resized
}

/// The ratio of a shrink by the same whole number on both sides where the mean of each
/// block, in integers, is the byte the weighted float sums give: an odd ratio (the mean of
/// its r² pixels is never a half, and is at least 1/2r² from one, far beyond what the float
/// sums are off by) or a power of two (its weights and sums are exact). The storyboard's
/// tiles of a 480×270 analysis are such a shrink, by 3.
fn whole_ratio(
    source_width: usize,
    source_height: usize,
    width: usize,
    height: usize,
) -> Option<usize> {
    let ratio = source_width / width.max(1);
    let fits = (2..=8).contains(&ratio)
        && (ratio % 2 == 1 || ratio.is_power_of_two())
        && width * ratio == source_width
        && height * ratio == source_height;
    fits.then_some(ratio)
}

/// [`resize_area`] by a [`whole_ratio`]: each pixel the rounded mean of its block, the
/// block's rows added first (whole lines at a time, which the compiler does many bytes at
/// once), then its columns. A tile of the 720p minute's storyboard: 4.3 million
/// instructions as float sums, 1.6 million here.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn box_mean(rgb: &[u8], source_width: usize, width: usize, height: usize, ratio: usize) -> Vec<u8> {
    let area = (ratio * ratio) as u32;
    let line_bytes = source_width * 3;
    let mut resized = vec![0u8; width * height * 3];
    // at most 8 rows of 255: a u16 holds them
    let mut columns = vec![0u16; line_bytes];
    let blocks = rgb.chunks_exact(line_bytes * ratio);
    for (block, out) in blocks.zip(resized.chunks_exact_mut(width * 3)) {
        columns.fill(0);
        for line in block.chunks_exact(line_bytes) {
            for (sum, value) in columns.iter_mut().zip(line) {
                *sum += *value as u16;
            }
        }
        for (pixel, covered) in out.chunks_exact_mut(3).zip(columns.chunks_exact(3 * ratio)) {
            let mut sums = [0u32; 3];
            for values in covered.chunks_exact(3) {
                sums[0] += values[0] as u32;
                sums[1] += values[1] as u32;
                sums[2] += values[2] as u32;
            }
            for (value, sum) in pixel.iter_mut().zip(sums) {
                // halves up, as `round_non_negative`
                *value = ((2 * sum + area) / (2 * area)) as u8;
            }
        }
    }
    resized
}

/// `x.round()` (halves away from zero) for 0 ≤ x < 2²², without the library call SSE2 has
/// no instruction for: adding 2²³ rounds to the nearest integer, halves to even; a half left
/// below by that (x − n is exact this close) is taken up.
#[inline(always)]
fn round_non_negative(x: f32) -> u32 {
    const MAGIC: f32 = 8_388_608.0;
    let nearest = (x + MAGIC).to_bits() - MAGIC.to_bits();
    nearest + (x - nearest as f32 == 0.5) as u32
}

/// Encodes packed RGB24 as a baseline JPEG.
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>> {
    let mut jpeg = Vec::with_capacity(rgb.len() / 8);
    let encoder = jpeg_encoder::Encoder::new(&mut jpeg, quality);
    encoder
        .encode(
            rgb,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|error| Error::internal("JPEG encoding failed").with_source(error))?;
    Ok(jpeg)
}

/// The (width, height) a JPEG's start-of-frame segment gives.
#[cfg(test)]
pub(crate) fn jpeg_size(jpeg: &[u8]) -> (usize, usize) {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        assert_eq!(jpeg[at], 0xFF, "a JPEG segment starts at {at}");
        let marker = jpeg[at + 1];
        let length = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if (0xC0..=0xC2).contains(&marker) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return (width as usize, height as usize);
        }
        at += 2 + length;
    }
    panic!("no start-of-frame segment");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_sizes_keep_the_aspect_with_even_sides() {
        assert_eq!(scaled_size(480, 270, 160), (160, 90));
        assert_eq!(scaled_size(480, 360, 160), (160, 120));
        assert_eq!(scaled_size(270, 480, 160), (160, 284));
        assert_eq!(scaled_size(174, 142, 160), (160, 130));
        // never wider than the source
        assert_eq!(scaled_size(120, 68, 160), (120, 68));
        assert_eq!(scaled_size(2, 2, 160), (2, 2));
    }

    /// The area filter written plainly: every destination pixel's weighted sums, in the
    /// order of the weights.
    fn resize_area_plainly(
        rgb: &[u8],
        source_width: usize,
        source_height: usize,
        width: usize,
        height: usize,
    ) -> Vec<u8> {
        let columns = area_weights(source_width, width);
        let rows = area_weights(source_height, height);
        let mut across = vec![0f32; source_height * width * 3];
        for y in 0..source_height {
            for (x, weights) in columns.iter().enumerate() {
                for channel in 0..3 {
                    let mut sum = 0f32;
                    for (at, weight) in weights {
                        sum += rgb[(y * source_width + at) * 3 + channel] as f32 * weight;
                    }
                    across[(y * width + x) * 3 + channel] = sum;
                }
            }
        }
        let mut resized = vec![0u8; width * height * 3];
        for (y, weights) in rows.iter().enumerate() {
            for at in 0..width * 3 {
                let mut sum = 0f32;
                for (row, weight) in weights {
                    sum += across[row * width * 3 + at] * weight;
                }
                resized[y * width * 3 + at] = sum.round().clamp(0.0, 255.0) as u8;
            }
        }
        resized
    }

    #[test]
    fn resize_area_is_the_weighted_mean_of_each_area() {
        // a picture of every kind of detail: noise, edges, flat runs
        let (source_width, source_height) = (480usize, 270usize);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let rgb: Vec<u8> = (0..source_width * source_height * 3)
            .map(|at| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match (at / 3 / 37) % 3 {
                    0 => state as u8,
                    1 => (at % 251) as u8,
                    _ => 128,
                }
            })
            .collect();
        for (width, height) in [
            (160, 90),
            (173, 97),
            (240, 135),
            (160, 284),
            (7, 3),
            (480, 270),
            (96, 54),
            (120, 270),
        ] {
            assert_eq!(
                resize_area(&rgb, source_width, source_height, width, height),
                resize_area_plainly(&rgb, source_width, source_height, width, height),
                "{width}x{height}"
            );
        }
        // every whole ratio the block means take, and one they leave (6: its weights are
        // inexact and its means can be halves), on a picture they all divide
        let (source_width, source_height) = (840usize, 1680usize);
        let rgb: Vec<u8> = (0..source_width * source_height * 3)
            .map(|at| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if (at / 3 / 41) % 2 == 0 {
                    state as u8
                } else {
                    (at % 253) as u8
                }
            })
            .collect();
        for ratio in [2, 3, 4, 5, 6, 7, 8] {
            let (width, height) = (source_width / ratio, source_height / ratio);
            assert_eq!(
                whole_ratio(source_width, source_height, width, height).is_some(),
                ratio != 6
            );
            assert_eq!(
                resize_area(&rgb, source_width, source_height, width, height),
                resize_area_plainly(&rgb, source_width, source_height, width, height),
                "by {ratio}"
            );
        }
        // halves, and the values about them
        for x in [
            0.0f32, 0.5, 1.5, 2.5, 0.49999997, 0.50000006, 254.5, 255.49998, 127.5, 3.0,
        ] {
            assert_eq!(round_non_negative(x), x.round() as u32, "{x}");
        }
    }

    #[test]
    fn area_filter_averages_what_each_pixel_covers() {
        // 6x2 of three 2-pixel-wide bands, to 3x1: each band's colour, exactly
        let mut rgb = Vec::new();
        for _ in 0..2 {
            for band in [[255u8, 0, 0], [0, 255, 0], [0, 0, 255]] {
                rgb.extend(band);
                rgb.extend(band);
            }
        }
        assert_eq!(
            resize_area(&rgb, 6, 2, 3, 1),
            vec![255, 0, 0, 0, 255, 0, 0, 0, 255]
        );
        // 3 pixels to 2: the middle one is shared half and half
        let line = [0u8, 0, 0, 90, 90, 90, 180, 180, 180];
        assert_eq!(
            resize_area(&line, 3, 1, 2, 1),
            vec![30, 30, 30, 150, 150, 150]
        );
        // a flat picture stays flat at any size
        let grey = vec![77u8; 480 * 270 * 3];
        assert!(resize_area(&grey, 480, 270, 160, 90)
            .iter()
            .all(|value| *value == 77));
        assert!(resize_area(&grey, 480, 270, 173, 97)
            .iter()
            .all(|value| *value == 77));
    }
}
