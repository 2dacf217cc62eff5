//! From boundary decisions to shots: where each shot starts (a fade out, a little black and a
//! fade in are one boundary, in the black), which frame represents it (sharp, from its middle,
//! not black, not inside a transition), its colours, brightness and motion, and scenes (runs
//! of shots that look alike).
use crate::boundaries::{Boundary, BoundaryDetector, BoundarySettings, GradualKind, Thumb};
use std::collections::VecDeque;

/// A frame kept as a possible keyframe.
#[derive(Clone)]
pub struct Candidate {
    pub index: u64,
    sharpness: f64,
    luma: f64,
    /// The picture: packed RGB24 once picked (before, as [`Pictures`] says).
    pub rgb: Vec<u8>,
}

/// The frame chosen for a shot, with what was read from it.
pub struct Picked {
    /// Position of the shot.
    pub shot: usize,
    pub frame: Candidate,
    /// Up to three dominant colours: (`#rrggbb`, share of the picture).
    pub colors: Vec<(String, f64)>,
    pub thumb: Thumb,
}

/// Everything found once the last frame is in.
pub struct ShotsFound {
    /// First frame of each shot after the first.
    pub boundaries: Vec<u64>,
    pub transitions: Vec<Boundary>,
    /// Per frame: mean luma (0–255) and content score.
    pub lumas: Vec<f32>,
    pub scores: Vec<f32>,
}

/// How the pictures kept as keyframe candidates are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pictures {
    /// Packed RGB24, the measured frame itself.
    Rgb,
    /// Planar YUV 4:2:0 of this size, measured at half size (see
    /// [`yuv420_to_half_rgb`](crate::frames::yuv420_to_half_rgb)); converted once chosen.
    Yuv420 { width: usize, height: usize },
}

pub struct ShotBuilder {
    detector: BoundaryDetector,
    /// Size of the frames measured.
    width: usize,
    height: usize,
    pictures: Pictures,
    fps: f64,
    boundaries: Vec<u64>,
    transitions: Vec<Boundary>,
    /// A fade out whose boundary waits for a fade in (or a cut) to follow: its last frame.
    pending_fade_out: Option<u64>,
    segment_start: u64,
    kept: Vec<Candidate>,
    recent: VecDeque<Candidate>,
    recent_stride: u64,
    recent_span: u64,
    picked: Vec<Picked>,
    lumas: Vec<f32>,
    scores: Vec<f32>,
    frames: u64,
}

impl ShotBuilder {
    pub fn new(settings: BoundarySettings, width: usize, height: usize) -> Self {
        let fps = if settings.fps > 1.0 {
            settings.fps
        } else {
            25.0
        };
        let detector = BoundaryDetector::new(settings);
        // decisions come `delay` frames late, fade boundaries up to 2 s later still: keep
        // about 40 recent frames across that span so a short shot has candidates
        let recent_span = detector.delay() + (3.0 * fps) as u64;
        Self {
            detector,
            width,
            height,
            pictures: Pictures::Rgb,
            fps,
            boundaries: Vec::new(),
            transitions: Vec::new(),
            pending_fade_out: None,
            segment_start: 0,
            kept: Vec::new(),
            recent: VecDeque::new(),
            recent_stride: (recent_span / 40).max(1),
            recent_span,
            picked: Vec::new(),
            lumas: Vec::new(),
            scores: Vec::new(),
            frames: 0,
        }
    }

    /// Keeps candidate pictures in another form than the measured frames.
    pub fn with_pictures(mut self, pictures: Pictures) -> Self {
        self.pictures = pictures;
        self
    }

    /// The next decoded frame, at `position` in the stream, in frames (see
    /// [`BoundaryDetector::push_at`]): its content score, what was measured of it (see
    /// [`FrameMeasures::of`]), and the picture to keep should it become the keyframe
    /// (`picture`, in the form [`Pictures`] says; the measured frame itself by default).
    pub fn push_at(
        &mut self,
        index: u64,
        position: f64,
        score: f64,
        measures: FrameMeasures,
        picture: &[u8],
    ) {
        let FrameMeasures { thumb, sharpness } = measures;
        self.lumas.push(thumb.mean() as f32);
        self.scores.push(score as f32);
        self.frames = index + 1;
        let offset = index - self.segment_start;
        let scheduled = offset == 0 || offset.is_power_of_two();
        let recent = index.is_multiple_of(self.recent_stride);
        if scheduled || recent {
            // the picture goes into the buffer of a recent candidate that has aged out, where
            // there is one (a fresh buffer of a picture's size is a fresh mapping to fault in)
            let mut spare = None;
            if recent {
                while self
                    .recent
                    .front()
                    .is_some_and(|old| old.index + self.recent_span < index)
                {
                    spare = self.recent.pop_front().map(|old| old.rgb);
                }
            }
            let mut kept = spare.unwrap_or_default();
            kept.clear();
            kept.extend_from_slice(picture);
            let candidate = Candidate {
                index,
                sharpness,
                luma: thumb.mean(),
                rgb: kept,
            };
            match (recent, scheduled) {
                (true, true) => {
                    self.kept.push(candidate.clone());
                    self.recent.push_back(candidate);
                }
                (true, false) => self.recent.push_back(candidate),
                _ => self.kept.push(candidate),
            }
        }
        for decision in self.detector.push_at(index, position, score, thumb) {
            self.decided(decision);
        }
        if let Some(end) = self.pending_fade_out {
            if index > end + (2.0 * self.fps) as u64 + self.detector.delay() {
                self.pending_fade_out = None;
                self.commit(end + 1);
            }
        }
    }

    /// The transitions decided so far, in order.
    pub fn transitions(&self) -> &[Boundary] {
        &self.transitions
    }

    /// Keyframes chosen since the last call, to encode and let go of.
    pub fn take_picked(&mut self) -> Vec<Picked> {
        std::mem::take(&mut self.picked)
    }

    pub fn finish(mut self) -> (ShotsFound, Vec<Picked>) {
        for decision in self.detector.finish() {
            self.decided(decision);
        }
        if let Some(end) = self.pending_fade_out.take() {
            // a fade out that ends the video is not a boundary
            if self.frames > end + 1 + (0.5 * self.fps) as u64 {
                self.commit(end + 1);
            }
        }
        self.pick(self.frames);
        let picked = std::mem::take(&mut self.picked);
        (
            ShotsFound {
                boundaries: self.boundaries,
                transitions: self.transitions,
                lumas: self.lumas,
                scores: self.scores,
            },
            picked,
        )
    }

    fn decided(&mut self, decision: Boundary) {
        let two_seconds = (2.0 * self.fps) as u64;
        match &decision {
            Boundary::Cut { frame, .. } => {
                // a cut right after a fade out (to black, then cut in) is the boundary
                self.pending_fade_out = None;
                self.commit(*frame);
            }
            Boundary::Gradual {
                kind: GradualKind::Dissolve,
                start,
                end,
                ..
            } => {
                self.resolve_fade_out();
                self.commit((start + end).div_ceil(2));
            }
            Boundary::Gradual {
                kind: GradualKind::FadeOut,
                end,
                ..
            } => {
                self.resolve_fade_out();
                self.pending_fade_out = Some(*end);
            }
            Boundary::Gradual {
                kind: GradualKind::FadeIn,
                start,
                ..
            } => match self.pending_fade_out.take() {
                Some(out_end) if *start <= out_end + two_seconds => {
                    self.commit((out_end + 1 + start).div_ceil(2));
                }
                Some(out_end) => {
                    self.commit(out_end + 1);
                    self.commit(*start);
                }
                None => {
                    // a fade in that opens the video, or follows a cut to black, adds none…
                    let recent_boundary = self
                        .boundaries
                        .last()
                        .is_some_and(|last| start.saturating_sub(*last) <= two_seconds);
                    // …but one after a picture that came up whole does: the black or white
                    // it comes from was reached again (by a change not seen as one, as when
                    // a fade through white follows a fade through black)
                    let came_up = matches!(
                        self.transitions.last(),
                        Some(Boundary::Gradual {
                            kind: GradualKind::FadeIn | GradualKind::Dissolve,
                            end,
                            ..
                        }) if end < start
                    );
                    if *start as f64 > 0.5 * self.fps && (!recent_boundary || came_up) {
                        self.commit(*start);
                    }
                }
            },
        }
        self.transitions.push(decision);
    }

    fn resolve_fade_out(&mut self) {
        if let Some(end) = self.pending_fade_out.take() {
            self.commit(end + 1);
        }
    }

    fn commit(&mut self, frame: u64) {
        let last = self.boundaries.last().copied().unwrap_or(0);
        if frame == 0 || frame <= last {
            return;
        }
        self.pick(frame);
        self.boundaries.push(frame);
        self.segment_start = frame;
    }

    /// Chooses the keyframe of the shot that ends before `end` and moves on.
    fn pick(&mut self, end: u64) {
        let start = self.segment_start;
        let shot = self.boundaries.len();
        let inside = |index: u64, transitions: &[Boundary]| {
            transitions.iter().any(|found| match found {
                Boundary::Gradual { start, end, .. } => *start <= index && index <= *end,
                Boundary::Cut { .. } => false,
            })
        };
        let mut pool: Vec<Candidate> = Vec::new();
        let mut carried: Vec<Candidate> = Vec::new();
        for candidate in self.kept.drain(..) {
            if candidate.index >= end {
                carried.push(candidate);
            } else if candidate.index >= start {
                pool.push(candidate);
            }
        }
        for candidate in &self.recent {
            let known =
                |list: &[Candidate]| list.iter().any(|other| other.index == candidate.index);
            if candidate.index >= end {
                if !known(&carried) {
                    carried.push(candidate.clone());
                }
            } else if candidate.index >= start && !known(&pool) {
                pool.push(candidate.clone());
            }
        }
        carried.sort_by_key(|candidate| candidate.index);
        self.kept = carried;
        let clear: Vec<usize> = (0..pool.len())
            .filter(|at| !inside(pool[*at].index, &self.transitions))
            .collect();
        let choices: Vec<usize> = if clear.is_empty() {
            (0..pool.len()).collect()
        } else {
            clear
        };
        let brightest = choices
            .iter()
            .map(|at| pool[*at].luma)
            .fold(0.0f64, f64::max);
        let sharpest = choices
            .iter()
            .map(|at| pool[*at].sharpness)
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let length = end.saturating_sub(start).max(1) as f64;
        let best = choices.into_iter().max_by(|a, b| {
            let value = |candidate: &Candidate| {
                let position = (candidate.index - start) as f64 / length;
                let dark = candidate.luma < 24.0 && brightest >= 40.0;
                candidate.sharpness / sharpest
                    - 0.8 * (position - 0.5).abs()
                    - if dark { 1.0 } else { 0.0 }
            };
            value(&pool[*a]).total_cmp(&value(&pool[*b]))
        });
        if let Some(best) = best {
            let mut frame = pool.swap_remove(best);
            let (width, height) = match self.pictures {
                Pictures::Rgb => (self.width, self.height),
                Pictures::Yuv420 { width, height } => {
                    let mut rgb = Vec::new();
                    crate::frames::yuv420_to_rgb(&frame.rgb, width, height, &mut rgb);
                    frame.rgb = rgb;
                    (width, height)
                }
            };
            let colors = dominant_colors(&frame.rgb);
            let thumb = Thumb::from_rgb(&frame.rgb, width, height);
            self.picked.push(Picked {
                shot,
                frame,
                colors,
                thumb,
            });
        }
    }
}

/// What the shots need of a frame, measured on its own (beside the decoding, see
/// `source::Measure`).
pub struct FrameMeasures {
    pub thumb: Thumb,
    pub sharpness: f64,
}

impl FrameMeasures {
    /// Of the frame `rgb` (packed RGB24, `width` × `height`).
    pub fn of(rgb: &[u8], width: usize, height: usize) -> Self {
        Self {
            thumb: Thumb::from_rgb(rgb, width, height),
            sharpness: sharpness(rgb, width, height),
        }
    }
}

/// Variance of the Laplacian of the grey picture (on a 2-pixel grid): higher is sharper.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn sharpness(rgb: &[u8], width: usize, height: usize) -> f64 {
    // the grey of every other pixel of every other row, the only ones looked at, each once
    let (columns, rows) = (width.div_ceil(2), height.div_ceil(2));
    let mut grey = vec![0f64; columns * rows];
    for (y, out) in grey.chunks_exact_mut(columns).enumerate() {
        let line = &rgb[2 * y * width * 3..];
        for (value, pixel) in out.iter_mut().zip(line.chunks(6)) {
            *value = (77 * pixel[0] as u32 + 150 * pixel[1] as u32 + 29 * pixel[2] as u32) as f64
                / 256.0;
        }
    }
    let (mut sum, mut squares, mut count) = (0.0, 0.0, 0.0);
    // the pixel at (x, y) of the picture is grey[(y / 2) * columns + x / 2]
    let mut y = 1;
    while 2 * y + 2 < height {
        let (above, here, below) = (
            &grey[(y - 1) * columns..y * columns],
            &grey[y * columns..(y + 1) * columns],
            &grey[(y + 1) * columns..(y + 2) * columns],
        );
        let mut x = 1;
        while 2 * x + 2 < width {
            let value = 4.0 * here[x] - here[x - 1] - here[x + 1] - above[x] - below[x];
            sum += value;
            squares += value * value;
            count += 1.0;
            x += 1;
        }
        y += 1;
    }
    if count == 0.0 {
        return 0.0;
    }
    squares / count - (sum / count).powi(2)
}

/// Up to three colours covering the most of the picture, with their shares: k-means (k = 3)
/// on a sample of the pixels, started from the three fullest cells of a coarse colour grid.
pub fn dominant_colors(rgb: &[u8]) -> Vec<(String, f64)> {
    let pixels: Vec<[f64; 3]> = rgb
        .chunks_exact(3)
        .step_by(7)
        .map(|pixel| [pixel[0] as f64, pixel[1] as f64, pixel[2] as f64])
        .collect();
    if pixels.is_empty() {
        return Vec::new();
    }
    let mut cells = vec![(0u32, [0.0f64; 3]); 64];
    for pixel in &pixels {
        let cell = ((pixel[0] as usize) >> 6) << 4
            | ((pixel[1] as usize) >> 6) << 2
            | (pixel[2] as usize) >> 6;
        cells[cell].0 += 1;
        for (sum, value) in cells[cell].1.iter_mut().zip(pixel) {
            *sum += value;
        }
    }
    let mut order: Vec<usize> = (0..cells.len()).filter(|cell| cells[*cell].0 > 0).collect();
    order.sort_by_key(|cell| std::cmp::Reverse(cells[*cell].0));
    let mut centres: Vec<[f64; 3]> = order
        .iter()
        .take(3)
        .map(|cell| {
            let (count, sums) = cells[*cell];
            [
                sums[0] / count as f64,
                sums[1] / count as f64,
                sums[2] / count as f64,
            ]
        })
        .collect();
    // each pixel's nearest centre, then the centres moved to their pixels' means; the sums
    // are of whole numbers far below 2⁵³, exact in any order
    let channel = |at: usize| -> Vec<f64> { pixels.iter().map(|pixel| pixel[at]).collect() };
    let (reds, greens, blues) = (channel(0), channel(1), channel(2));
    let mut nearest = vec![0u8; pixels.len()];
    let mut sizes = vec![0usize; centres.len()];
    for _ in 0..6 {
        // fewer than three centres: the first again, never nearer than itself
        let padded: [[f64; 3]; 3] =
            std::array::from_fn(|at| centres.get(at).copied().unwrap_or(centres[0]));
        nearest_centres(&reds, &greens, &blues, &padded, &mut nearest);
        let mut sums = vec![[0.0f64; 3]; centres.len()];
        sizes.iter_mut().for_each(|size| *size = 0);
        for (pixel, centre) in pixels.iter().zip(&nearest) {
            let centre = *centre as usize;
            sizes[centre] += 1;
            for (sum, value) in sums[centre].iter_mut().zip(pixel) {
                *sum += value;
            }
        }
        for (centre, (sum, size)) in centres.iter_mut().zip(sums.iter().zip(&sizes)) {
            if *size > 0 {
                *centre = [
                    sum[0] / *size as f64,
                    sum[1] / *size as f64,
                    sum[2] / *size as f64,
                ];
            }
        }
    }
    let mut found: Vec<(String, f64)> = centres
        .iter()
        .zip(&sizes)
        .filter(|(_, size)| **size > 0)
        .map(|(centre, size)| {
            (
                format!(
                    "#{:02x}{:02x}{:02x}",
                    centre[0].round() as u8,
                    centre[1].round() as u8,
                    centre[2].round() as u8
                ),
                ((*size as f64 / pixels.len() as f64) * 100.0).round() / 100.0,
            )
        })
        .filter(|(_, share)| *share >= 0.05)
        .collect();
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    found
}

/// The index of the first of the nearest of three centres to each pixel (channels apart, so
/// that the distances are taken several pixels at a time; each the same sum of squares, in
/// the same order, as one at a time: the same choices). The 720p minute's keyframes: 244 →
/// 102 million instructions (with the sums).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn nearest_centres(
    reds: &[f64],
    greens: &[f64],
    blues: &[f64],
    centres: &[[f64; 3]; 3],
    nearest: &mut [u8],
) {
    let distance = |centre: &[f64; 3], red: f64, green: f64, blue: f64| {
        (centre[0] - red) * (centre[0] - red)
            + (centre[1] - green) * (centre[1] - green)
            + (centre[2] - blue) * (centre[2] - blue)
    };
    for (((red, green), blue), out) in reds.iter().zip(greens).zip(blues).zip(nearest) {
        let (red, green, blue) = (*red, *green, *blue);
        let first = distance(&centres[0], red, green, blue);
        let second = distance(&centres[1], red, green, blue);
        let third = distance(&centres[2], red, green, blue);
        let (choice, least) = if second < first {
            (1u8, second)
        } else {
            (0u8, first)
        };
        *out = if third < least { 2 } else { choice };
    }
}

/// Scenes: consecutive shots grouped while a shot looks like one of the last few shots of
/// the scene (a dialogue's shot/reverse shot stays one scene). Returns each scene's first and
/// last shot position.
pub fn group_scenes(thumbs: &[Option<Thumb>]) -> Vec<(usize, usize)> {
    const LOOK_BACK: usize = 4;
    const SAME: f64 = 22.0;
    let mut scenes = Vec::new();
    let mut first = 0;
    for shot in 1..thumbs.len() {
        let alike = match &thumbs[shot] {
            Some(thumb) => (shot.saturating_sub(LOOK_BACK).max(first)..shot).any(|earlier| {
                thumbs[earlier]
                    .as_ref()
                    .is_some_and(|other| other.difference(thumb) < SAME)
            }),
            None => true,
        };
        if !alike {
            scenes.push((first, shot - 1));
            first = shot;
        }
    }
    if !thumbs.is_empty() {
        scenes.push((first, thumbs.len() - 1));
    }
    scenes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fade_in_after_a_picture_came_up_is_a_boundary() {
        let settings = BoundarySettings {
            cut_threshold: 27.0,
            adaptive_ratio: 3.0,
            min_content: 15.0,
            min_shot_frames: 10,
            fps: 30.0,
            gradual: true,
            stream_fps: None,
        };
        let fade = |kind, start, end| Boundary::Gradual {
            kind,
            start,
            end,
            confidence: 1.0,
        };
        // through black (out, in), then in from white 0.3 s after the picture came up
        let mut builder = ShotBuilder::new(settings.clone(), 32, 18);
        builder.decided(fade(GradualKind::FadeOut, 44, 49));
        builder.decided(fade(GradualKind::FadeIn, 65, 101));
        builder.decided(fade(GradualKind::FadeIn, 110, 130));
        assert_eq!(builder.boundaries, vec![58, 110]);
        // a cut to black, then a fade in: one boundary, the cut
        let mut builder = ShotBuilder::new(settings, 32, 18);
        builder.decided(Boundary::Cut {
            frame: 90,
            confidence: 1.0,
        });
        builder.decided(fade(GradualKind::FadeIn, 100, 130));
        assert_eq!(builder.boundaries, vec![90]);
    }

    /// The k-means of [`dominant_colors`] as it was written first: each pixel's distances
    /// one at a time.
    fn dominant_colors_one_at_a_time(rgb: &[u8]) -> Vec<(String, f64)> {
        let pixels: Vec<[f64; 3]> = rgb
            .chunks_exact(3)
            .step_by(7)
            .map(|pixel| [pixel[0] as f64, pixel[1] as f64, pixel[2] as f64])
            .collect();
        if pixels.is_empty() {
            return Vec::new();
        }
        let mut cells = vec![(0u32, [0.0f64; 3]); 64];
        for pixel in &pixels {
            let cell = ((pixel[0] as usize) >> 6) << 4
                | ((pixel[1] as usize) >> 6) << 2
                | (pixel[2] as usize) >> 6;
            cells[cell].0 += 1;
            for (sum, value) in cells[cell].1.iter_mut().zip(pixel) {
                *sum += value;
            }
        }
        let mut order: Vec<usize> = (0..cells.len()).filter(|cell| cells[*cell].0 > 0).collect();
        order.sort_by_key(|cell| std::cmp::Reverse(cells[*cell].0));
        let mut centres: Vec<[f64; 3]> = order
            .iter()
            .take(3)
            .map(|cell| {
                let (count, sums) = cells[*cell];
                [
                    sums[0] / count as f64,
                    sums[1] / count as f64,
                    sums[2] / count as f64,
                ]
            })
            .collect();
        let mut sizes = vec![0usize; centres.len()];
        for _ in 0..6 {
            let mut sums = vec![[0.0f64; 3]; centres.len()];
            sizes.iter_mut().for_each(|size| *size = 0);
            for pixel in &pixels {
                // the first of the nearest (summed as a sum from zero would: adding the first
                // square to zero is exact)
                let distance = |centre: &[f64; 3]| {
                    (centre[0] - pixel[0]).powi(2)
                        + (centre[1] - pixel[1]).powi(2)
                        + (centre[2] - pixel[2]).powi(2)
                };
                let mut nearest = 0;
                let mut least = distance(&centres[0]);
                for (at, centre) in centres.iter().enumerate().skip(1) {
                    let here = distance(centre);
                    if here.total_cmp(&least).is_lt() {
                        (nearest, least) = (at, here);
                    }
                }
                sizes[nearest] += 1;
                for (sum, value) in sums[nearest].iter_mut().zip(pixel) {
                    *sum += value;
                }
            }
            for (centre, (sum, size)) in centres.iter_mut().zip(sums.iter().zip(&sizes)) {
                if *size > 0 {
                    *centre = [
                        sum[0] / *size as f64,
                        sum[1] / *size as f64,
                        sum[2] / *size as f64,
                    ];
                }
            }
        }
        let mut found: Vec<(String, f64)> = centres
            .iter()
            .zip(&sizes)
            .filter(|(_, size)| **size > 0)
            .map(|(centre, size)| {
                (
                    format!(
                        "#{:02x}{:02x}{:02x}",
                        centre[0].round() as u8,
                        centre[1].round() as u8,
                        centre[2].round() as u8
                    ),
                    ((*size as f64 / pixels.len() as f64) * 100.0).round() / 100.0,
                )
            })
            .filter(|(_, share)| *share >= 0.05)
            .collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found
    }

    #[test]
    fn dominant_colours_are_those_found_one_pixel_at_a_time() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for kind in 0..6 {
            let rgb: Vec<u8> = (0..480 * 270)
                .flat_map(|at: usize| {
                    let noise = next();
                    match kind {
                        // noise, bands, noise about a few colours, one colour, two
                        0 => [noise as u8, (noise >> 8) as u8, (noise >> 16) as u8],
                        1 => [(at % 480 / 60 * 30) as u8, (at / 480 % 90) as u8, 40],
                        2 | 3 => {
                            let base = [[200, 30, 30], [20, 180, 60], [30, 40, 220]][at % 7 % 3];
                            let spread = if kind == 2 { 40 } else { 6 };
                            base.map(|value: u8| value.saturating_add((noise % spread) as u8))
                        }
                        4 => [90, 90, 90],
                        _ => {
                            if at < 480 * 200 {
                                [250, 250, 250]
                            } else {
                                [0, 0, 5]
                            }
                        }
                    }
                })
                .collect();
            assert_eq!(
                dominant_colors(&rgb),
                dominant_colors_one_at_a_time(&rgb),
                "picture {kind}"
            );
        }
    }

    #[test]
    fn dominant_colours_come_with_their_share() {
        let mut rgb = [200u8, 20, 20].repeat(700);
        rgb.extend([20u8, 20, 200].repeat(300));
        let colours = dominant_colors(&rgb);
        assert_eq!(colours.len(), 2, "{colours:?}");
        assert_eq!(colours[0].0, "#c81414");
        assert_eq!(colours[1].0, "#1414c8");
        assert!((colours[0].1 - 0.7).abs() < 0.02, "{colours:?}");
    }

    #[test]
    fn sharp_pictures_score_higher_than_flat_ones() {
        let flat = [120u8; 3 * 64 * 64];
        let checker: Vec<u8> = (0..64 * 64)
            .flat_map(|at| {
                let on = ((at % 64) / 2 + (at / 64) / 2) % 2 == 0;
                [if on { 230 } else { 20 }; 3]
            })
            .collect();
        assert!(sharpness(&checker, 64, 64) > 100.0 * sharpness(&flat, 64, 64).max(1.0));
    }

    #[test]
    fn alike_shots_make_one_scene() {
        let a = Thumb(vec![40; 576]);
        let b = Thumb(vec![200; 576]);
        let a2 = Thumb(vec![45; 576]);
        let thumbs = vec![
            Some(a.clone()),
            Some(a2.clone()),
            Some(a),
            Some(b.clone()),
            Some(b),
        ];
        assert_eq!(group_scenes(&thumbs), vec![(0, 2), (3, 4)]);
    }
}
