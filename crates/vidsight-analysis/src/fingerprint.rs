//! A perceptual fingerprint of a video: one 64-bit difference hash (dHash) per shot keyframe,
//! in shot order. Hashes are made from the small grey thumbnail, so re-encoding, resizing and
//! mild colour changes move few bits; two videos are near-duplicates when most keyframes of one
//! have a close hash in the other.

use crate::boundaries::{Thumb, THUMB_HEIGHT, THUMB_WIDTH};

pub use vidsight_domain::insights::{fingerprint_similarity as similarity, SAME_PICTURE_BITS};

/// dHash of a thumbnail: 9×8 box-averaged grey cells, one bit per horizontal neighbour pair
/// (is the left cell brighter?), as 16 hex digits.
pub fn dhash(thumb: &Thumb) -> String {
    let mut cells = [[0f64; 9]; 8];
    for (y, row) in cells.iter_mut().enumerate() {
        for (x, cell) in row.iter_mut().enumerate() {
            let (x0, x1) = (
                x * THUMB_WIDTH / 9,
                ((x + 1) * THUMB_WIDTH / 9).max(x * THUMB_WIDTH / 9 + 1),
            );
            let (y0, y1) = (
                y * THUMB_HEIGHT / 8,
                ((y + 1) * THUMB_HEIGHT / 8).max(y * THUMB_HEIGHT / 8 + 1),
            );
            let mut sum = 0.0;
            for ty in y0..y1 {
                for tx in x0..x1 {
                    sum += thumb.0[ty * THUMB_WIDTH + tx] as f64;
                }
            }
            *cell = sum / ((x1 - x0) * (y1 - y0)) as f64;
        }
    }
    let mut bits = 0u64;
    for row in &cells {
        for x in 0..8 {
            bits = bits << 1 | (row[x] > row[x + 1]) as u64;
        }
    }
    format!("{bits:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hash: &str) -> Option<u64> {
        u64::from_str_radix(hash, 16).ok()
    }

    fn thumb(seed: u32, brightness: i32) -> Thumb {
        Thumb(
            (0..(THUMB_WIDTH * THUMB_HEIGHT) as u32)
                .map(|i| {
                    let x = (i % 32) as i32;
                    let y = (i / 32) as i32;
                    // smooth blobs whose layout the seed decides
                    let (fx, fy) = ((seed % 5 + 1) as f64, (seed / 5 % 5 + 1) as f64);
                    let phase = seed as f64 * 0.7;
                    let wave = ((x as f64 / 32.0 * fx * 3.1 + phase).sin()
                        + (y as f64 / 18.0 * fy * 3.1 - phase).cos())
                        * 50.0;
                    let value = 120 + wave as i32 + brightness;
                    value.clamp(0, 255) as u8
                })
                .collect(),
        )
    }

    #[test]
    fn the_same_picture_brighter_keeps_its_hash_and_another_does_not() {
        let a = dhash(&thumb(1, 0));
        let brighter = dhash(&thumb(1, 15));
        let other = dhash(&thumb(5, 0));
        let distance = |x: &str, y: &str| (parse(x).unwrap() ^ parse(y).unwrap()).count_ones();
        assert!(distance(&a, &brighter) <= 4, "{a} {brighter}");
        assert!(distance(&a, &other) > SAME_PICTURE_BITS, "{a} {other}");
    }

    #[test]
    fn similarity_is_the_shared_share() {
        let a: Vec<String> = (0..4).map(|seed| dhash(&thumb(seed, 0))).collect();
        let b: Vec<String> = vec![
            a[0].clone(),
            a[1].clone(),
            dhash(&thumb(40, 0)),
            dhash(&thumb(41, 0)),
        ];
        let (score, matched) = similarity(&a, &b);
        assert_eq!(matched, 2);
        assert!((score - 0.5).abs() < 1e-9, "{score}");
        assert_eq!(similarity(&a, &a).0, 1.0);
        assert_eq!(similarity(&a, &[]).0, 0.0);
    }
}
