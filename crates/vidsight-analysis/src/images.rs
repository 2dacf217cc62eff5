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

/// Shrinks (or stretches) packed RGB24 with an area filter: each destination pixel is the
/// mean of the source pixels it covers, partly covered ones weighted by how much.
pub fn resize_area(
    rgb: &[u8],
    source_width: usize,
    source_height: usize,
    width: usize,
    height: usize,
) -> Vec<u8> {
    let columns = area_weights(source_width, width);
    let rows = area_weights(source_height, height);
    // horizontal pass into floats, then the vertical one
    let mut across = vec![0f32; source_height * width * 3];
    for y in 0..source_height {
        let line = &rgb[y * source_width * 3..(y + 1) * source_width * 3];
        let out = &mut across[y * width * 3..(y + 1) * width * 3];
        for (x, weights) in columns.iter().enumerate() {
            let mut sums = [0f32; 3];
            for (at, weight) in weights {
                for (sum, value) in sums.iter_mut().zip(&line[at * 3..at * 3 + 3]) {
                    *sum += *value as f32 * weight;
                }
            }
            out[x * 3..x * 3 + 3].copy_from_slice(&sums);
        }
    }
    let mut resized = vec![0u8; width * height * 3];
    for (y, weights) in rows.iter().enumerate() {
        let out = &mut resized[y * width * 3..(y + 1) * width * 3];
        let mut sums = vec![0f32; width * 3];
        for (at, weight) in weights {
            let line = &across[at * width * 3..(at + 1) * width * 3];
            for (sum, value) in sums.iter_mut().zip(line) {
                *sum += value * weight;
            }
        }
        for (pixel, sum) in out.iter_mut().zip(&sums) {
            *pixel = sum.round().clamp(0.0, 255.0) as u8;
        }
    }
    resized
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
