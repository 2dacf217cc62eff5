//! Colour bars and similar test patterns, recognised on the analysis frames.
//!
//! A test pattern is synthetic: it is made of regions whose columns do not change down the
//! region (vertical bars, or stripes that ramp across the picture), in a few strongly
//! saturated hues. The picture is cut into [`STRIPS`] horizontal strips; in each, every
//! column's mean colour and spread are measured. A strip is
//! - *one-dimensional* when nearly all its columns are constant down the strip;
//! - a *bar strip* when its constant columns form 3–16 wide runs of one flat colour that
//!   cover most of the width, at least three of them saturated and of different hues, with
//!   at least three sharp steps between neighbouring runs (a smooth gradient has none).
//!
//! A frame is a test pattern when either
//! - **bars**: a block of consecutive bar strips, each with the same bars as the one above,
//!   covers at least 45 % of the height (SMPTE bars fill the top 2/3, HD bars the top 7/12,
//!   EBU/PAL bars all of it); or
//! - **stripes**: two to six stacked blocks of one-dimensional strips, each the same from
//!   its top to its bottom, fill 80 % of the height, half the picture saturated in at least
//!   three hues each covering a tenth of it (an RGB ramp pattern).
//!
//! Whether the picture also stands still is decided by the caller, from the frame
//! differences: a moving pattern (an animated test source, a cartoon) is content.

/// Horizontal strips the picture is cut into.
pub const STRIPS: usize = 16;
/// Strips are measured on every `SAMPLE`-th row and column.
const SAMPLE: usize = 2;
/// A block of the same bars must cover 45 % of the picture's height: this many strips.
const BARS_STRIPS: usize = (STRIPS * 45).div_ceil(100);
/// Stripes must fill 80 % of it.
const STRIPES_STRIPS: usize = (STRIPS * 80).div_ceil(100);
/// A column is constant down a strip when each channel's standard deviation is at most this.
const CONSTANT_SPREAD: u32 = 6;
/// Columns within this of a run's first column (each channel) continue the run.
const RUN_TOLERANCE: f32 = 20.0;
/// Neighbouring bars differ by at least this in some channel.
const MIN_STEP: f32 = 48.0;
/// A saturated colour: HSV saturation at least 0.6 (pastels are not) and value at least 60
/// (`saturated_share` has the same test in integers).
const MIN_SATURATION: f32 = 0.6;
const MIN_VALUE: f32 = 60.0;

/// A column's mean colour in a strip, and whether it is constant down the strip.
#[derive(Clone, Copy, Default)]
struct Column {
    color: [f32; 3],
    constant: bool,
}

/// Hue class of a saturated colour: red, yellow, green, cyan, blue or magenta (60° each,
/// centred on the primaries and secondaries); `None` for greys, dark and washed-out colours.
fn hue_class(color: [f32; 3]) -> Option<usize> {
    let [red, green, blue] = color;
    let max = red.max(green).max(blue);
    let min = red.min(green).min(blue);
    let delta = max - min;
    if max < MIN_VALUE || delta < MIN_SATURATION * max {
        return None;
    }
    let degrees = if max == red {
        60.0 * (green - blue) / delta
    } else if max == green {
        120.0 + 60.0 * (blue - red) / delta
    } else {
        240.0 + 60.0 * (red - green) / delta
    };
    let degrees = degrees.rem_euclid(360.0);
    Some((((degrees + 30.0) / 60.0) as usize) % 6)
}

/// What one strip looks like.
struct Strip {
    columns: Vec<Column>,
    /// Share of its columns that are constant.
    constant_share: f64,
    /// Bars: wide runs of flat colour with at least three saturated hues.
    bars: bool,
}

/// Measures the rows `rows` of a `width`-pixel-wide frame, on every other row and column
/// (bars are tens of pixels wide).
fn measure_strip(rgb: &[u8], width: usize, rows: std::ops::Range<usize>) -> Strip {
    let frame_width = width;
    let width = frame_width.div_ceil(SAMPLE);
    let count = rows.len().div_ceil(SAMPLE).max(1) as u64;
    // whole rows are summed (contiguous, so vectorised), every other column read after;
    // 255² a row: u32 holds the squares of 66 000 rows
    let mut sums = vec![0u32; frame_width * 3];
    let mut squares = vec![0u32; frame_width * 3];
    for y in rows.step_by(SAMPLE) {
        let line = &rgb[y * frame_width * 3..(y + 1) * frame_width * 3];
        for ((sum, square), value) in sums.iter_mut().zip(squares.iter_mut()).zip(line) {
            let value = *value as u32;
            *sum += value;
            *square += value * value;
        }
    }
    // variance ≤ spread² ⇔ count·Σx² − (Σx)² ≤ spread²·count²
    let limit = (CONSTANT_SPREAD * CONSTANT_SPREAD) as u64 * count * count;
    let scale = 1.0 / count as f32;
    let mut columns = Vec::with_capacity(width);
    for x in (0..frame_width).step_by(SAMPLE) {
        let mut column = Column {
            color: [0.0; 3],
            constant: true,
        };
        for channel in 0..3 {
            let sum = sums[x * 3 + channel] as u64;
            let square = squares[x * 3 + channel] as u64;
            column.color[channel] = sum as f32 * scale;
            if count * square - sum * sum > limit {
                column.constant = false;
            }
        }
        columns.push(column);
    }
    let constant_share =
        columns.iter().filter(|column| column.constant).count() as f64 / width.max(1) as f64;

    // runs of constant columns of one flat colour: (first column, length, mean colour)
    let wide = (width / 40).max(2);
    let mut runs: Vec<(usize, usize, [f32; 3])> = Vec::new();
    let mut start: Option<usize> = None;
    for x in 0..=width {
        let continues = match (start, columns.get(x)) {
            (Some(first), Some(column)) => {
                column.constant
                    && (0..3).all(|channel| {
                        (column.color[channel] - columns[first].color[channel]).abs()
                            <= RUN_TOLERANCE
                    })
            }
            _ => false,
        };
        if continues {
            continue;
        }
        if let Some(first) = start.take() {
            if x - first >= wide {
                let mut mean = [0f32; 3];
                for column in &columns[first..x] {
                    for (sum, value) in mean.iter_mut().zip(column.color) {
                        *sum += value / (x - first) as f32;
                    }
                }
                runs.push((first, x - first, mean));
            }
        }
        if columns.get(x).is_some_and(|column| column.constant) {
            start = Some(x);
        }
    }
    let covered: usize = runs.iter().map(|(_, length, _)| length).sum();
    let saturated: usize = runs
        .iter()
        .filter(|(_, _, color)| hue_class(*color).is_some())
        .map(|(_, length, _)| length)
        .sum();
    let mut hues = [false; 6];
    for (_, _, color) in &runs {
        if let Some(class) = hue_class(*color) {
            hues[class] = true;
        }
    }
    // bars meet with a step: next to each other (an edge blurred over a few columns) and far
    // apart in colour; the runs of a smooth gradient merely follow one another
    let edge_width = (width / 60).max(2);
    let steps = runs
        .windows(2)
        .filter(|pair| {
            let (first, length, left) = pair[0];
            let (next, _, right) = pair[1];
            next - (first + length) <= edge_width
                && (0..3).any(|channel| (left[channel] - right[channel]).abs() >= MIN_STEP)
        })
        .count();
    let bars = (3..=16).contains(&runs.len())
        && steps >= 3
        && covered as f64 >= 0.75 * width as f64
        && saturated as f64 >= 0.4 * width as f64
        && hues.iter().filter(|seen| **seen).count() >= 3;
    Strip {
        columns,
        constant_share,
        bars,
    }
}

/// Whether two strips show the same columns (the bars go on down the picture).
fn same_columns(upper: &Strip, lower: &Strip) -> bool {
    let width = upper.columns.len().max(1);
    let alike = upper
        .columns
        .iter()
        .zip(&lower.columns)
        .filter(|(a, b)| (0..3).all(|channel| (a.color[channel] - b.color[channel]).abs() <= 24.0))
        .count();
    alike as f64 >= 0.8 * width as f64
}

/// The runs of consecutive strips that pass `keep`, each showing the same columns as the
/// strip above, as (first, last) positions.
fn blocks(strips: &[Strip], keep: impl Fn(&Strip) -> bool) -> Vec<(usize, usize)> {
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    for (position, strip) in strips.iter().enumerate() {
        if !keep(strip) {
            continue;
        }
        match blocks.last_mut() {
            Some((_, last))
                if *last + 1 == position && same_columns(&strips[position - 1], strip) =>
            {
                *last = position
            }
            _ => blocks.push((position, position)),
        }
    }
    blocks
}

/// The mean absolute difference between two strips' column colours (0–255).
fn mean_difference(upper: &Strip, lower: &Strip) -> f32 {
    let total: f32 = upper
        .columns
        .iter()
        .zip(&lower.columns)
        .map(|(a, b)| {
            (0..3)
                .map(|channel| (a.color[channel] - b.color[channel]).abs())
                .sum::<f32>()
        })
        .sum();
    total / (3 * upper.columns.len().max(1)) as f32
}

/// Cheap first look: the share of saturated pixels on a sparse grid.
fn saturated_share(rgb: &[u8], width: usize, height: usize) -> f64 {
    let step = 4;
    let (mut saturated, mut seen) = (0usize, 0usize);
    for y in (0..height).step_by(step) {
        let line = &rgb[y * width * 3..(y + 1) * width * 3];
        for pixel in line.chunks_exact(3).step_by(step) {
            seen += 1;
            // hue_class's test in integers: value ≥ 60, (max − min) ≥ 0.6 · max
            let max = pixel[0].max(pixel[1]).max(pixel[2]) as u32;
            let min = pixel[0].min(pixel[1]).min(pixel[2]) as u32;
            if max >= MIN_VALUE as u32 && 5 * (max - min) >= 3 * max {
                saturated += 1;
            }
        }
    }
    saturated as f64 / seen.max(1) as f64
}

/// Whether a packed RGB24 frame `width` × `height` looks like colour bars or a similar test
/// pattern (see the module's documentation).
pub fn is_test_pattern(rgb: &[u8], width: usize, height: usize) -> bool {
    // strips of at least 6 rows, so that "constant down the strip" means something
    if width < 64 || height < 6 * STRIPS || rgb.len() < width * height * 3 {
        return false;
    }
    // every pattern recognised here is at least a third saturated; most content is not,
    // and is turned away on a few thousand pixels
    if saturated_share(rgb, width, height) < 0.25 {
        return false;
    }
    let measure = |strip: usize| {
        measure_strip(
            rgb,
            width,
            strip * height / STRIPS..(strip + 1) * height / STRIPS,
        )
    };
    let mut measured: Vec<Option<Strip>> = (0..STRIPS).map(|_| None).collect();
    // every block of BARS_STRIPS consecutive strips holds one of these two: when neither is a
    // bar strip there are no bars, and only stripes are left to look for, which tolerate
    // few strips that are not one-dimensional; most content is done with after a handful
    let middle = [BARS_STRIPS - 1, STRIPS - BARS_STRIPS];
    for position in middle {
        measured[position] = Some(measure(position));
    }
    let bars_possible = middle
        .iter()
        .any(|position| measured[*position].as_ref().is_some_and(|strip| strip.bars));
    let not_flat = |strip: &Option<Strip>| strip.as_ref().is_some_and(|s| s.constant_share < 0.9);
    for position in 0..STRIPS {
        if !bars_possible
            && measured.iter().filter(|strip| not_flat(strip)).count() > STRIPS - STRIPES_STRIPS
        {
            return false;
        }
        if measured[position].is_none() {
            measured[position] = Some(measure(position));
        }
    }
    let strips: Vec<Strip> = measured.into_iter().flatten().collect();

    // bars: a run of consecutive bar strips, each showing the same bars as the one above
    // (they may drift a little, as where testsrc's circle crosses them)
    if blocks(&strips, |strip| strip.bars)
        .into_iter()
        .any(|(first, last)| last + 1 - first >= BARS_STRIPS)
    {
        return true;
    }

    // stripes: two to six stacked blocks of one-dimensional strips fill nearly the picture,
    // each block the same from top to bottom (a slanted or smooth gradient drifts),
    // saturated, in three hues or more
    let blocks: Vec<(usize, usize)> = blocks(&strips, |strip| strip.constant_share >= 0.9)
        .into_iter()
        .filter(|(first, last)| last > first)
        .collect();
    let covered: usize = blocks.iter().map(|(first, last)| last + 1 - first).sum();
    let steady = blocks
        .iter()
        .all(|(first, last)| mean_difference(&strips[*first], &strips[*last]) <= 6.0);
    if !steady || !(2..=6).contains(&blocks.len()) || covered < STRIPES_STRIPS {
        return false;
    }
    let mut hue_columns = [0usize; 6];
    let mut all_columns = 0usize;
    for strip in &strips {
        all_columns += strip.columns.len();
        for column in &strip.columns {
            if let Some(class) = hue_class(column.color) {
                hue_columns[class] += 1;
            }
        }
    }
    let all_columns = all_columns.max(1) as f64;
    let saturated = hue_columns.iter().sum::<usize>() as f64 / all_columns;
    let hues = hue_columns
        .iter()
        .filter(|columns| **columns as f64 >= 0.1 * all_columns)
        .count();
    saturated >= 0.5 && hues >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDTH: usize = 480;
    const HEIGHT: usize = 270;

    /// Vertical bars of these colours across the top `share` of the picture, grey below.
    fn bars(colors: &[[u8; 3]], share: f64) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(WIDTH * HEIGHT * 3);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                if (y as f64) < share * HEIGHT as f64 {
                    rgb.extend(colors[x * colors.len() / WIDTH]);
                } else {
                    rgb.extend([40, 40, 40]);
                }
            }
        }
        rgb
    }

    const SMPTE: [[u8; 3]; 7] = [
        [191, 191, 191],
        [191, 191, 0],
        [0, 191, 191],
        [0, 191, 0],
        [191, 0, 191],
        [191, 0, 0],
        [0, 0, 191],
    ];

    /// A deterministic, noisy, textured picture: something filmed.
    fn filmed(seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 25) as i32 - 12
        };
        let mut rgb = Vec::with_capacity(WIDTH * HEIGHT * 3);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let base = SMPTE[x * 7 / WIDTH];
                let shade = ((x as f64 / 9.0).sin() * 30.0 + (y as f64 / 7.0).cos() * 30.0) as i32;
                for value in base {
                    rgb.push((value as i32 + shade + noise()).clamp(0, 255) as u8);
                }
            }
        }
        rgb
    }

    #[test]
    fn synthetic_bars_and_stripes_are_test_patterns() {
        assert!(is_test_pattern(&bars(&SMPTE, 0.67), WIDTH, HEIGHT));
        assert!(is_test_pattern(&bars(&SMPTE, 1.0), WIDTH, HEIGHT));
        // EBU bars: white to black, full height
        let ebu = [
            [255, 255, 255],
            [191, 191, 0],
            [0, 191, 191],
            [0, 191, 0],
            [191, 0, 191],
            [191, 0, 0],
            [0, 0, 191],
            [0, 0, 0],
        ];
        assert!(is_test_pattern(&bars(&ebu, 1.0), WIDTH, HEIGHT));
        // three stacked ramps of red, green and blue
        let mut ramps = Vec::new();
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let level = (x * 255 / (WIDTH - 1)) as u8;
                let mut pixel = [0u8; 3];
                pixel[y * 3 / HEIGHT] = level;
                ramps.extend(pixel);
            }
        }
        assert!(is_test_pattern(&ramps, WIDTH, HEIGHT));
    }

    #[test]
    fn flat_grey_textured_and_short_bars_are_not() {
        for value in [0u8, 16, 128, 235] {
            assert!(!is_test_pattern(
                &vec![value; WIDTH * HEIGHT * 3],
                WIDTH,
                HEIGHT
            ));
        }
        // one saturated colour everywhere
        let red = [200u8, 20, 20].repeat(WIDTH * HEIGHT);
        assert!(!is_test_pattern(&red, WIDTH, HEIGHT));
        // bars over a third of the picture only
        assert!(!is_test_pattern(&bars(&SMPTE, 0.3), WIDTH, HEIGHT));
        // greys only
        let greys = [[20, 20, 20], [90, 90, 90], [160, 160, 160], [230, 230, 230]];
        assert!(!is_test_pattern(&bars(&greys, 1.0), WIDTH, HEIGHT));
        // coloured stripes with a filmed picture's shading and noise
        for seed in 1..4 {
            assert!(!is_test_pattern(&filmed(seed), WIDTH, HEIGHT));
        }
    }

    /// The share of frames of a lavfi source (through H.264, at the analysis size) that
    /// look like a test pattern.
    fn flagged_share(source: &str) -> f64 {
        let frames = crate::testing::lavfi_frames(source, 3, 480, 270);
        assert_eq!(frames.len(), 3, "{source}");
        let flagged = frames
            .iter()
            .filter(|rgb| is_test_pattern(rgb, 480, 270))
            .count();
        flagged as f64 / frames.len() as f64
    }

    #[test]
    fn lavfi_bars_and_test_sources_are_test_patterns() {
        for source in [
            "smptebars=size=640x480",
            "smptehdbars=size=1280x720",
            "pal75bars=size=720x576",
            "pal100bars=size=720x576",
            "rgbtestsrc=size=320x240",
            "testsrc=size=320x240",
            // letterboxed 4:3 bars in a 16:9 frame
            "smptebars=size=480x360,pad=640:360:80:0",
        ] {
            assert_eq!(flagged_share(source), 1.0, "{source}");
        }
    }

    #[test]
    fn lavfi_content_is_not() {
        for source in [
            "mandelbrot=size=640x360",
            "life=size=320x240:mold=10:ratio=0.4:seed=7",
            "cellauto=size=320x240:seed=7",
            "colorchart",
            "color=c=black:size=320x240",
            "color=c=red:size=320x240",
        ] {
            assert_eq!(flagged_share(source), 0.0, "{source}");
        }
    }

    #[test]
    fn filmed_clips_are_not() {
        let Some(dir) = crate::testing::shared_media() else {
            return;
        };
        for name in [
            "bigbuckbunny.mp4",
            "bikes.mp4",
            "testvideo.mp4",
            "fades.mp4",
        ] {
            let frames = crate::testing::file_frames(&dir.join(name), 480, 270);
            assert!(!frames.is_empty(), "{name}");
            let flagged = frames
                .iter()
                .filter(|rgb| is_test_pattern(rgb, 480, 270))
                .count();
            assert_eq!(flagged, 0, "{name}");
        }
    }
}
