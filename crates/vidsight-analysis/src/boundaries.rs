//! Shot boundaries from a stream of frames, decided a fixed number of frames late so that
//! every decision can look ahead:
//!
//! - **Hard cuts**: the frame's content score (mean HSV difference to the previous frame,
//!   PySceneDetect's ContentDetector score) is high *and* stands out from its neighbours'
//!   (PySceneDetect's AdaptiveDetector ratio), so fast motion, which raises every frame's
//!   score, is not a cut; a **flash** (the picture comes back within a few frames) is not a
//!   cut either.
//! - **Gradual transitions** (dissolves, fades to/from black or white): where the picture a
//!   little before and a little after differ, the frames between are tested against the
//!   dissolve model `frame = α·before + (1−α)·after` with α falling from 1 to 0 (a fade is
//!   the case where one side is a uniform black or white picture). Motion, pans and shakes do
//!   not fit the model; a brightness change (a light switched on, auto-exposure) fits a gain
//!   and offset of the picture before and is refused. A flash inside a transition is looked
//!   past (its frames stand in as the mix of the frames either side, see
//!   [`BoundaryDetector::smooth_flash`]), and a slow dissolve between alike pictures is
//!   looked for over half a second either side as well as over a few frames.
//!
//! Everything runs on 32×18 grey thumbnails kept for a few seconds, so memory does not grow
//! with the video's length.
use std::collections::VecDeque;

/// Thumbnail size for the look-ahead tests.
pub const THUMB_WIDTH: usize = 32;
pub const THUMB_HEIGHT: usize = 18;
const THUMB: usize = THUMB_WIDTH * THUMB_HEIGHT;

/// A small grey picture of a frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Thumb(pub Vec<u8>);

/// The dot product of two thumbnails' pixels, exact: at most 576 · 255², far inside u32
/// (a free function, compiled for plain x86-64 and for AVX2).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn dot_u8(x: &[u8], y: &[u8]) -> u32 {
    x.iter().zip(y).map(|(p, q)| *p as u32 * *q as u32).sum()
}

/// [`Thumb::from_rgb`]'s pixels (a free function: each processor's vector code is
/// compiled and chosen at run time).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn thumb_pixels(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let width = width.max(1);
    let height = height.max(1).min(rgb.len() / 3 / width);
    // every second row and column of a large picture is plenty for an average; a small
    // one (the half-size measuring grid) gives every pixel, about as many
    let step = if width > 320 { 2 } else { 1 };
    // the sampled pixels of a row fall in each thumbnail column as one run: where it
    // starts and how long it is (worked out once per picture)
    let sampled = width.div_ceil(step);
    let mut runs = [(0usize, 0usize); THUMB_WIDTH];
    for (at, x) in (0..width).step_by(step).enumerate() {
        let run = &mut runs[x * THUMB_WIDTH / width];
        if run.1 == 0 {
            run.0 = at;
        }
        run.1 += 1;
    }
    let mut sums = [0u32; THUMB];
    let mut rows = [0u32; THUMB_HEIGHT];
    let mut luma = vec![0u32; sampled];
    for y in (0..height).step_by(step) {
        let row = y * THUMB_HEIGHT / height;
        rows[row] += 1;
        let line = &rgb[y * width * 3..(y + 1) * width * 3];
        if step == 1 {
            for (out, pixel) in luma.iter_mut().zip(line.chunks_exact(3)) {
                *out = crate::frames::luma(pixel);
            }
        } else {
            for (out, pixel) in luma.iter_mut().zip(line.chunks(3 * step)) {
                *out = crate::frames::luma(pixel);
            }
        }
        let sums = &mut sums[row * THUMB_WIDTH..(row + 1) * THUMB_WIDTH];
        for (sum, (start, length)) in sums.iter_mut().zip(runs) {
            *sum += luma[start..start + length].iter().sum::<u32>();
        }
    }
    sums.iter()
        .enumerate()
        .map(|(at, sum)| {
            let count = rows[at / THUMB_WIDTH] * runs[at % THUMB_WIDTH].1 as u32;
            sum.checked_div(count).unwrap_or(0) as u8
        })
        .collect()
}

impl Thumb {
    /// Box-averages packed RGB24 (`width` pixels wide) down to 32×18 BT.601 luma.
    pub fn from_rgb(rgb: &[u8], width: usize, height: usize) -> Thumb {
        Thumb(thumb_pixels(rgb, width, height))
    }

    pub fn mean(&self) -> f64 {
        self.sum() / self.0.len().max(1) as f64
    }

    /// The pixels' sum, as an integer sum (exact, as adding them one by one as floats was).
    fn sum(&self) -> f64 {
        self.0.iter().map(|value| *value as u32).sum::<u32>() as f64
    }

    pub fn std(&self) -> f64 {
        let mean = self.mean();
        (self
            .0
            .iter()
            .map(|value| (*value as f64 - mean).powi(2))
            .sum::<f64>()
            / self.0.len().max(1) as f64)
            .sqrt()
    }

    /// The picture `share` of the way from this one to `other`, pixel by pixel.
    pub fn mix(&self, other: &Thumb, share: f64) -> Thumb {
        Thumb(
            self.0
                .iter()
                .zip(&other.0)
                .map(|(a, b)| (*a as f64 + (*b as f64 - *a as f64) * share).round() as u8)
                .collect(),
        )
    }

    /// Mean absolute difference (0–255).
    pub fn difference(&self, other: &Thumb) -> f64 {
        // summed as integers (exact, as the float sum of these small integers was, and made
        // vector code of: the gradual detector takes thousands of these a second)
        crate::frames::abs_diff_sum(&self.0, &other.0) as f64 / self.0.len().max(1) as f64
    }

    /// Uniformly dark (a fade's black) or bright (a fade's white).
    fn uniform(&self) -> Option<Uniform> {
        let (mean, std) = (self.mean(), self.std());
        if std < 10.0 && mean < 32.0 {
            Some(Uniform::Black)
        } else if std < 12.0 && mean > 215.0 {
            Some(Uniform::White)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Uniform {
    Black,
    White,
}

/// What the detector decided, in frame indices (the first frame of the new shot for a cut;
/// the first and last frame of a gradual transition).
#[derive(Clone, Debug, PartialEq)]
pub enum Boundary {
    Cut {
        frame: u64,
        confidence: f64,
    },
    Gradual {
        kind: GradualKind,
        start: u64,
        end: u64,
        confidence: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradualKind {
    Dissolve,
    FadeIn,
    FadeOut,
}

/// Detector settings.
#[derive(Clone, Debug)]
pub struct BoundarySettings {
    /// Content score at or above which a frame that stands out is a cut (ContentDetector's 27).
    pub cut_threshold: f64,
    /// A frame whose score is at least this many times its neighbours' is a cut even below
    /// `cut_threshold` (AdaptiveDetector's 3.0)…
    pub adaptive_ratio: f64,
    /// …as long as its score reaches this (AdaptiveDetector's `min_content_val`, 15).
    pub min_content: f64,
    /// No two cuts closer than this many frames.
    pub min_shot_frames: u64,
    /// Frames per second (nominal): sets the lengths of the windows.
    pub fps: f64,
    /// Look for dissolves and fades.
    pub gradual: bool,
    /// Some of the stream's frames are left out (`noref`'s one at a time, `bidir`'s up to three
    /// in a row, see [`BoundaryDetector::push_at`]): gradual transitions are then looked for on the stream's
    /// own frames, this many a second, each frame left out standing in as the mix of the two
    /// pushed either side of it (in a transition, which is slow, that is about what it shows).
    /// None: on the frames pushed, as they come.
    pub stream_fps: Option<f64>,
}

struct Frame {
    index: u64,
    score: f64,
    thumb: Thumb,
    /// Decoded (not a stand-in for a frame left out, see [`Even`], nor for a flash, see
    /// [`BoundaryDetector::smooth_flash`]).
    real: bool,
    /// The picture decoded, where `thumb` stands in for a flash (cuts are judged on it).
    flash: Option<Thumb>,
    /// Its index in the even detector (when there is one).
    even_index: u64,
    /// Stream frames since the frame pushed before it (1 when none were left out; at most
    /// [`MAX_SPAN`]).
    span: f64,
}

/// Streaming detector: [`push`](Self::push) every frame in order, then
/// [`finish`](Self::finish). Decisions come out in frame order, at most
/// [`delay`](Self::delay) frames after the frame they are about.
pub struct BoundaryDetector {
    settings: BoundarySettings,
    /// Looks for cuts (the detector that looks for gradual transitions on the stream's
    /// frames, see [`BoundarySettings::stream_fps`], does not).
    cuts: bool,
    /// That detector, fed by this one.
    even: Option<Even>,
    frames: VecDeque<Frame>,
    /// Next frame to decide about.
    next: u64,
    last_cut: Option<u64>,
    /// Gradual transitions found but not yet emitted (they are emitted in order with cuts).
    pending: Vec<Boundary>,
    /// Frames up to which a found gradual transition reaches: no other is looked for there.
    gradual_until: Option<u64>,
    /// The last frame of the gradual transitions given out so far.
    emitted_until: Option<u64>,
    /// Longest gradual transition looked for, in frames, one side of its centre.
    max_half: u64,
    halves: Vec<u64>,
    /// Frames either side of a centre for the quick long-range difference.
    quick: u64,
    /// …and for the slow one ([`SLOW_REACH`]).
    slow: u64,
    /// Frames per second (`settings.fps`, or 25 when that is not usable).
    fps: f64,
    /// Where the frame pushed last is in the stream (see [`push_at`](Self::push_at)).
    last_position: Option<f64>,
}

impl Frame {
    /// A frame of the even detector (its cut score is not looked at).
    fn even(index: u64, thumb: Thumb, real: bool) -> Frame {
        Frame {
            index,
            score: 0.0,
            thumb,
            real,
            flash: None,
            even_index: index,
            span: 1.0,
        }
    }
}

/// Gradual transitions looked for on the stream's own frames, for a detector fed unevenly.
struct Even {
    detector: Box<BoundaryDetector>,
    /// The even detector's index for the next frame it gets.
    next: u64,
    /// The stream frame and picture of the frame pushed last.
    last: Option<(u64, Thumb)>,
}

/// Frames left out in a row up to which the ones left out are interpolated; across a longer
/// gap (a variable frame rate's pause, frames dropped) the picture before is held, which does
/// not make a dissolve of what is a cut.
const MAX_INTERPOLATED: u64 = 4;

/// The longest step between two frames pushed that a cut's score is weighed by, in stream
/// frames (anchors are at most four apart; a longer gap is a pause, not frames left out).
const MAX_SPAN: f64 = 4.0;

const FLASH_FRAMES: u64 = 6;
/// The most frames decoded in a row that a flash stands in for when gradual transitions are
/// looked for (a camera's lights one frame or two).
const FLASH_RUN: u64 = 2;
/// How far a flash's frames are from the pictures either side of it, at least (0–255).
const FLASH_JUMP: f64 = 30.0;
/// Seconds either side of a centre for the long-range difference that finds slow transitions.
const SLOW_REACH: f64 = 0.5;
/// The dissolve model's residual, relative to the change, for a transition that motion
/// imitates more easily: found by the long reach alone, or changing the picture little.
const CLOSE_FIT_RESIDUAL: f64 = 0.12;
/// A gradual transition spans more frames than this (TRECVID's line: five or fewer is a cut).
const MIN_GRADUAL: u64 = 5;
/// The pictures before and after a gradual transition differ by at least this (0–255).
const GRADUAL_MIN_CHANGE: f64 = 9.0;
/// A gradual transition shorter than this (seconds) changes at least twice as much.
const SHORT_GRADUAL_SECONDS: f64 = 0.4;
/// The dissolve model's residual, relative to the change, may be at most this.
const GRADUAL_MAX_RESIDUAL: f64 = 0.3;
/// …and at most this when frames were left out (see [`Even`]).
const EVEN_MAX_RESIDUAL: f64 = 0.2;
/// The most the weights of the pictures either side of a dip through black add up to at its
/// darkest frame (a dissolve's add up to one all the way).
const DIP_DEPTH: f64 = 0.6;

impl BoundaryDetector {
    pub fn new(settings: BoundarySettings) -> Self {
        let fps = if settings.fps.is_finite() && settings.fps > 1.0 {
            settings.fps
        } else {
            25.0
        };
        let frames_of = |seconds: f64| ((seconds * fps).round() as u64).max(1);
        let mut halves: Vec<u64> = [0.1, 0.2, 0.35, 0.55, 0.8, 1.1, 1.5]
            .iter()
            .map(|seconds| frames_of(*seconds).max(2))
            .collect();
        halves.dedup();
        let max_half = *halves.last().unwrap();
        let even = settings
            .stream_fps
            .filter(|_| settings.gradual)
            .map(|stream_fps| {
                let mut detector = BoundaryDetector::new(BoundarySettings {
                    fps: stream_fps,
                    stream_fps: None,
                    ..settings.clone()
                });
                detector.cuts = false;
                Even {
                    detector: Box::new(detector),
                    next: 0,
                    last: None,
                }
            });
        Self {
            settings,
            cuts: true,
            even,
            frames: VecDeque::new(),
            next: 0,
            last_cut: None,
            pending: Vec::new(),
            gradual_until: None,
            emitted_until: None,
            max_half,
            halves,
            quick: frames_of(0.12).max(2),
            slow: frames_of(SLOW_REACH).max(3),
            fps,
            last_position: None,
        }
    }

    /// How many frames after a frame its decision can come.
    pub fn delay(&self) -> u64 {
        let own = self.own_delay();
        // waiting on the even detector: at most as many frames pushed as stream frames
        match &self.even {
            Some(even) => own.max(even.detector.delay() + even.detector.max_half + 3),
            None => own,
        }
    }

    /// Adds the next frame: its content score against the previous frame (0 for the first)
    /// and its thumbnail. Returns the boundaries now decided.
    pub fn push(&mut self, index: u64, score: f64, thumb: Thumb) -> Vec<Boundary> {
        self.push_at(index, index as f64, score, thumb)
    }

    /// How many frames after a frame this detector's own decision can come (the even
    /// detector may hold it back longer, see [`delay`](Self::delay)).
    fn own_delay(&self) -> u64 {
        self.max_half + 2 + FLASH_FRAMES.max(self.quick)
    }

    /// [`push`](Self::push), for a frame at `position` in the stream (in frames: the
    /// stream's own frame number, which skips where frames were left out).
    pub fn push_at(
        &mut self,
        index: u64,
        position: f64,
        score: f64,
        thumb: Thumb,
    ) -> Vec<Boundary> {
        let even_index = self.push_even(position, &thumb);
        let span = self
            .last_position
            .map_or(1.0, |last| (position - last).round().clamp(1.0, MAX_SPAN));
        self.last_position = Some(position);
        self.push_frame(Frame {
            index,
            score,
            thumb,
            real: true,
            flash: None,
            even_index,
            span,
        })
    }

    fn push_frame(&mut self, frame: Frame) -> Vec<Boundary> {
        self.frames.push_back(frame);
        if self.settings.gradual && self.even.is_none() {
            self.smooth_flash();
        }
        let mut out = Vec::new();
        let own_delay = self.own_delay();
        while let Some(newest) = self.frames.back().map(|frame| frame.index) {
            if newest < self.next + own_delay || !self.even_passed(self.next) {
                break;
            }
            self.decide(newest, &mut out);
        }
        out
    }

    /// Feeds the even detector up to the frame at `position` (the frames left out before it
    /// interpolated), takes what it found, and gives the frame's index there (0 without one).
    fn push_even(&mut self, position: f64, thumb: &Thumb) -> u64 {
        let Some(even) = self.even.as_mut() else {
            return 0;
        };
        let at = position.max(0.0).round() as u64;
        let mut found = Vec::new();
        match even.last.take() {
            // two frames on one stream frame (a variable rate's timestamps): the first stands
            Some((last_at, last)) if at <= last_at => {
                even.last = Some((last_at, last));
                return even.next.saturating_sub(1);
            }
            Some((last_at, last)) => {
                let gap = at - last_at;
                // past what the detector looks at, more of the same picture changes nothing:
                // a jump in the timestamps (a long pause, a hostile file) costs no more
                let fill = (gap - 1).min(even.detector.delay() + even.detector.max_half + 3);
                for step in 1..=fill {
                    let between = if gap <= MAX_INTERPOLATED {
                        last.mix(thumb, step as f64 / gap as f64)
                    } else {
                        last.clone()
                    };
                    let frame = Frame::even(even.next, between, false);
                    even.next += 1;
                    found.extend(even.detector.push_frame(frame));
                }
            }
            None => {}
        }
        let index = even.next;
        even.next += 1;
        found.extend(
            even.detector
                .push_frame(Frame::even(index, thumb.clone(), true)),
        );
        even.last = Some((at, thumb.clone()));
        self.take_even(found);
        index
    }

    /// Gradual transitions from the even detector, put on the frames pushed: from the first
    /// at or after its start to the last at or before its end.
    fn take_even(&mut self, found: Vec<Boundary>) {
        for boundary in found {
            let Boundary::Gradual {
                kind,
                start,
                end,
                confidence,
            } = boundary
            else {
                continue;
            };
            let first = self.frames.iter().find(|frame| frame.even_index >= start);
            let last = self
                .frames
                .iter()
                .rev()
                .find(|frame| frame.even_index <= end);
            if let (Some(first), Some(last)) = (first, last) {
                if first.index <= last.index {
                    self.pending.push(Boundary::Gradual {
                        kind,
                        start: first.index,
                        end: last.index,
                        confidence,
                    });
                }
            }
        }
    }

    /// True when the even detector can find no more gradual transitions that start at or
    /// before the frame pushed as `index` (always true without one).
    fn even_passed(&self, index: u64) -> bool {
        let Some(even) = &self.even else {
            return true;
        };
        let Some(frame) = self.frame(index) else {
            return true;
        };
        even.detector.next > frame.even_index + even.detector.max_half + 2
    }

    /// The decisions about the last frames, with no more look-ahead to come.
    pub fn finish(&mut self) -> Vec<Boundary> {
        if let Some(even) = self.even.as_mut() {
            let found = even.detector.finish();
            self.take_even(found);
        }
        let mut out = Vec::new();
        let newest = match self.frames.back() {
            Some(frame) => frame.index,
            None => return out,
        };
        while self.next <= newest {
            self.decide(newest, &mut out);
        }
        out.append(&mut self.pending);
        out
    }

    fn frame(&self, index: u64) -> Option<&Frame> {
        let first = self.frames.front()?.index;
        self.frames.get(index.checked_sub(first)? as usize)
    }

    /// The picture gradual transitions are looked for on (a flash replaced).
    fn thumb(&self, index: u64) -> Option<&Thumb> {
        self.frame(index).map(|frame| &frame.thumb)
    }

    /// The picture as decoded, which cuts are judged on.
    fn seen(&self, index: u64) -> Option<&Thumb> {
        self.frame(index)
            .map(|frame| frame.flash.as_ref().unwrap_or(&frame.thumb))
    }

    /// Replaces a flash that has just ended with what would have been there without it.
    /// A camera flash, a frame or two of white, or a glitch, inside a dissolve or a fade
    /// breaks its model (its frames fit no mix of the pictures either side, and every pixel
    /// jumps there and back) though the transition goes on under it. The frames between the
    /// newest decoded frame and an earlier one stand in as the mix of those two, and no
    /// longer count as decoded, when at most [`FLASH_RUN`] of them were decoded, each of
    /// those differs by at least [`FLASH_JUMP`] from both ends, and the two ends are alike
    /// (a quarter of the smallest jump apart at most). Frames left out next to a flash stand
    /// in as mixes with it and go with it. A cut is not one: the picture after it is not the
    /// picture before. Cuts are still judged on the pictures decoded (which have their own
    /// rule for flashes).
    fn smooth_flash(&mut self) {
        let Some(newest) = self
            .frames
            .back()
            .filter(|frame| frame.real)
            .map(|frame| frame.index)
        else {
            return;
        };
        let longest = FLASH_RUN + 2 * (MAX_INTERPOLATED - 1);
        let mut decoded = 0;
        for before_at in (newest.saturating_sub(longest + 1)..newest.saturating_sub(1)).rev() {
            // the frame just after the end (decoded or not) joins the run
            let Some(joined) = self.frame(before_at + 1) else {
                return;
            };
            if joined.flash.is_some() {
                return;
            }
            if joined.real {
                decoded += 1;
                if decoded > FLASH_RUN {
                    return;
                }
            }
            let (Some(before), Some(after)) = (self.frame(before_at), self.thumb(newest)) else {
                return;
            };
            if !before.real || decoded == 0 {
                continue;
            }
            let before = &before.thumb;
            let smallest = (before_at + 1..newest)
                .filter_map(|at| self.frame(at))
                .filter(|frame| frame.real)
                .map(|frame| {
                    frame
                        .thumb
                        .difference(before)
                        .min(frame.thumb.difference(after))
                })
                .fold(f64::INFINITY, f64::min);
            if smallest < FLASH_JUMP || before.difference(after) > 0.25 * smallest {
                continue;
            }
            let (before, after) = (before.clone(), after.clone());
            let first = self.frames.front().map_or(0, |frame| frame.index);
            let run = (newest - before_at) as f64;
            for at in before_at + 1..newest {
                let Some(frame) = self.frames.get_mut((at - first) as usize) else {
                    return;
                };
                let picture = before.mix(&after, (at - before_at) as f64 / run);
                frame.flash = Some(std::mem::replace(&mut frame.thumb, picture));
                frame.real = false;
            }
            return;
        }
    }

    fn decide(&mut self, newest: u64, out: &mut Vec<Boundary>) {
        let index = self.next;
        self.next += 1;
        let inside = |found: &Boundary| match found {
            Boundary::Gradual { start, end, .. } => *start <= index && index <= *end,
            Boundary::Cut { .. } => false,
        };
        let mut cut = if self.cuts { self.cut_at(index) } else { None };
        // frames left out: a fast fade or dissolve may change as much between two decoded
        // frames as a cut; the even detector saw it change smoothly frame after frame (a cut
        // there shows as one step, too short for a transition), so the transition stands
        let in_emitted = self.emitted_until.is_some_and(|end| index <= end);
        if self.even.is_some() && (in_emitted || self.pending.iter().any(inside)) {
            cut = None;
        }
        if let Some(cut) = cut {
            self.last_cut = Some(index);
            // a gradual transition already found that this cut falls inside is dropped
            self.pending.retain(|found| !inside(found));
            self.flush(index, out);
            out.push(cut);
        } else {
            self.flush(index, out);
        }
        if self.settings.gradual && self.even.is_none() {
            self.gradual_centred_at(index, newest);
        }
        // keep what later decisions can still look back at
        let keep_from = self
            .next
            .saturating_sub(self.max_half + 2 + FLASH_FRAMES + self.quick);
        while self
            .frames
            .front()
            .is_some_and(|frame| frame.index < keep_from)
        {
            self.frames.pop_front();
        }
    }

    /// Emits the pending gradual transitions that start before `index`.
    fn flush(&mut self, index: u64, out: &mut Vec<Boundary>) {
        let mut keep = Vec::new();
        for found in self.pending.drain(..) {
            match found {
                Boundary::Gradual { start, end, .. } if start < index => {
                    self.emitted_until = self.emitted_until.max(Some(end));
                    out.push(found);
                }
                other => keep.push(other),
            }
        }
        self.pending = keep;
    }

    fn cut_at(&self, index: u64) -> Option<Boundary> {
        let settings = &self.settings;
        let (score, span) = self.frame(index).map(|frame| (frame.score, frame.span))?;
        if index == 0 || score < settings.min_content {
            return None;
        }
        if let Some(last) = self.last_cut {
            if index - last < settings.min_shot_frames {
                return None;
            }
        }
        let neighbours: Vec<f64> = [
            index.wrapping_sub(2),
            index.wrapping_sub(1),
            index + 1,
            index + 2,
        ]
        .iter()
        .filter(|&&other| other != 0 && other < u64::MAX - 4)
        .filter_map(|other| self.frame(*other))
        // a step over more frames than its neighbours' may change more with motion alone:
        // their scores count as over as many frames, by the square root of the ratio (between
        // a change that grows with the distance, steady motion, and one that saturates: in a
        // cellular automaton's noise a step over two frames scored 44 against 27 over one,
        // 1.63 times, and was taken for a cut)
        .map(|other| other.score * (span / other.span).max(1.0).sqrt())
        .collect();
        let average = if neighbours.is_empty() {
            0.0
        } else {
            neighbours.iter().sum::<f64>() / neighbours.len() as f64
        };
        let ratio = score / average.max(1.0);
        let is_cut =
            ratio >= settings.adaptive_ratio || (score >= settings.cut_threshold && ratio >= 1.6);
        if !is_cut || self.change_continues(index) {
            return None;
        }
        // a flash: a few frames on, the picture before is back
        let before = self.seen(index - 1)?;
        let jump = before.difference(self.seen(index)?);
        let similar = (jump * 0.25).max(4.0);
        for ahead in 1..=FLASH_FRAMES {
            if let Some(later) = self.seen(index + ahead) {
                if later.difference(before) < similar {
                    return None;
                }
            }
        }
        // …or the end of one: the picture of a few frames ago is back
        let now = self.seen(index)?;
        for back in 2..=FLASH_FRAMES + 1 {
            if let Some(earlier) = index.checked_sub(back).and_then(|at| self.seen(at)) {
                if earlier.difference(now) < similar {
                    return None;
                }
            }
        }
        let confidence = (0.5 + 0.5 * ((ratio - 1.6) / 3.0).clamp(0.0, 1.0))
            * (score / settings.cut_threshold).clamp(0.5, 1.0);
        Some(Boundary::Cut {
            frame: index,
            confidence: round2(confidence),
        })
    }

    /// True when the change into frame `index` is the start of a longer one: for more than
    /// five frames after it the picture goes on moving the same way, from the picture before
    /// along the line it took, and twice as far. The first frame of a fast fade or dissolve
    /// (after a still picture) scores like a cut; after a cut the picture stays where it
    /// landed (moving at most), and a transition of five frames or fewer is a cut anyway.
    fn change_continues(&self, index: u64) -> bool {
        const FRAMES: u64 = 6;
        let (Some(before), Some(now)) = (
            index.checked_sub(1).and_then(|at| self.seen(at)),
            self.seen(index),
        ) else {
            return false;
        };
        let (step, energy) = change_between(before, now);
        if energy <= 0.0 {
            return false;
        }
        let mut reached = 1.0;
        for ahead in 1..=FRAMES {
            let Some(later) = self.seen(index + ahead) else {
                return false;
            };
            let mut along = 0.0;
            let mut off = 0.0;
            let offsets = later
                .0
                .iter()
                .zip(&before.0)
                .map(|(a, b)| *a as f64 - *b as f64);
            let projection: f64 =
                offsets.clone().zip(&step).map(|(o, d)| o * d).sum::<f64>() / energy;
            for (offset, d) in offsets.zip(&step) {
                along += (projection * d).powi(2);
                off += (offset - projection * d).powi(2);
            }
            // still moving on, and on the line
            if projection < reached + 0.05 || off > 0.25 * along {
                return false;
            }
            reached = projection;
        }
        reached >= 2.0
    }

    /// Looks for a gradual transition centred on `centre` (all its frames are in the window).
    fn gradual_centred_at(&mut self, centre: u64, newest: u64) {
        if self.gradual_until.is_some_and(|until| centre <= until) {
            return;
        }
        // quick test: the difference across `k` frames either side peaks here, over a short
        // reach (a transition of a few frames) or a long one (a slow dissolve between alike
        // pictures changes too little in a few frames)
        let peaks = |k: u64| -> bool {
            if centre < k + 1 || centre + k > newest {
                return false;
            }
            let across = |at: u64| -> Option<f64> {
                Some(
                    self.thumb(at.checked_sub(k)?)?
                        .difference(self.thumb(at + k)?),
                )
            };
            let Some(here) = across(centre) else {
                return false;
            };
            here >= GRADUAL_MIN_CHANGE
                && (centre.saturating_sub(k)..=centre + k)
                    .all(|other| other == centre || across(other).is_none_or(|value| value <= here))
        };
        // found by the long reach alone: not across a cut, which peaks there too (most of the
        // change is then made within a few frames), and the model must fit closely (motion
        // in a shot changes that slowly too)
        let slow_only = !peaks(self.quick);
        if slow_only && (!peaks(self.slow) || !self.spread_out(centre, self.slow)) {
            return;
        }
        // the centre found is somewhere inside the transition, not necessarily its middle:
        // windows reach out by different amounts on each side; the one that explains the
        // longest stretch (then the best fit) wins
        let mut best: Option<(f64, u64, u64, f64, GradualKind)> = None;
        for &before in &self.halves {
            for &after in &self.halves {
                let (Some(first), last) = (centre.checked_sub(before + 1), centre + after + 1)
                else {
                    continue;
                };
                if last > newest || first == 0 {
                    continue;
                }
                // no cut inside the window
                if self.last_cut.is_some_and(|cut| cut > first && cut <= last) {
                    continue;
                }
                if let Some(found) = self.fit(first, last).or_else(|| self.fit_dip(first, last)) {
                    let better = match &best {
                        None => true,
                        Some(current) => {
                            let (length, current_length) =
                                (found.2 - found.1, current.2 - current.1);
                            length > current_length
                                || (length == current_length && found.0 < current.0)
                        }
                    };
                    if better {
                        best = Some(found);
                    }
                }
            }
        }
        if let Some((residual, start, end, change, kind)) = best
            .filter(|found| self.gradual_until.is_none_or(|until| found.1 > until))
            .filter(|found| !slow_only || found.0 <= CLOSE_FIT_RESIDUAL)
        {
            let confidence = (1.0 - residual / GRADUAL_MAX_RESIDUAL).clamp(0.0, 1.0) * 0.6
                + (change / (3.0 * GRADUAL_MIN_CHANGE)).clamp(0.0, 1.0) * 0.4;
            self.gradual_until = Some(end);
            self.pending.push(Boundary::Gradual {
                kind,
                start,
                end,
                confidence: round2(confidence),
            });
        }
    }

    /// True when no [`MIN_GRADUAL`] frames in a row around `centre` (`reach` either side)
    /// make most of the change across it: a cut (left out frames spread it over a few
    /// mixes) makes all of it at once.
    fn spread_out(&self, centre: u64, reach: u64) -> bool {
        let (Some(from), Some(to)) = (
            centre.checked_sub(reach).and_then(|at| self.thumb(at)),
            self.thumb(centre + reach),
        ) else {
            return false;
        };
        let across = from.difference(to);
        (centre - reach..=(centre + reach).saturating_sub(MIN_GRADUAL)).all(|at| {
            match (self.thumb(at), self.thumb(at + MIN_GRADUAL)) {
                (Some(a), Some(b)) => a.difference(b) <= 0.6 * across,
                _ => false,
            }
        })
    }

    /// Tests frames `first+1 ..= last-1` against the dissolve model between `first` and
    /// `last`: (relative residual, transition start, end, change, kind) when it fits.
    fn fit(&self, first: u64, last: u64) -> Option<(f64, u64, u64, f64, GradualKind)> {
        let before = self.thumb(first)?;
        let after = self.thumb(last)?;
        let change = before.difference(after);
        if change < GRADUAL_MIN_CHANGE {
            return None;
        }
        // before − after
        let (delta, delta_energy) = change_between(after, before);
        let delta_rms = (delta_energy / THUMB as f64).sqrt();
        if delta_energy <= 0.0 {
            return None;
        }
        let uniform_before = before.uniform();
        let uniform_after = after.uniform();
        // a change of brightness of the same picture (and not a fade): refuse
        if uniform_before.is_none() && uniform_after.is_none() {
            let residual = gain_offset_residual(before, after);
            if residual < 0.35 * delta_rms {
                return None;
            }
        }
        let mut alphas = Vec::new();
        let mut residual_sum = 0.0;
        // the model is judged on the frames decoded: one left out is a mix of two of them
        // and fits as well as they do
        let measured = (first + 1..last)
            .filter(|index| self.frame(*index).is_some_and(|frame| frame.real))
            .count()
            .max(1) as f64;
        let steps: Vec<i32> = delta.iter().map(|value| *value as i32).collect();
        for index in first + 1..last {
            let frame = self.frame(index)?;
            let (dot, square) = offset_sums(&frame.thumb, after, &steps);
            let alpha = (dot / delta_energy).clamp(-0.2, 1.2);
            alphas.push(alpha);
            if !frame.real {
                continue;
            }
            // Σ (value − after − α·delta)², expanded
            let error = (square - 2.0 * alpha * dot + alpha * alpha * delta_energy).max(0.0);
            residual_sum += (error / THUMB as f64).sqrt();
            // give up as soon as the average can no longer fit
            if residual_sum / measured / delta_rms > GRADUAL_MAX_RESIDUAL {
                return None;
            }
        }
        let residual = residual_sum / measured / delta_rms;
        if residual > GRADUAL_MAX_RESIDUAL {
            return None;
        }
        // α must fall from about 1 to about 0, without going back up much
        let rises: f64 = alphas
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).max(0.0))
            .sum();
        if rises > 0.25 || alphas.first()? - alphas.last()? < 0.6 {
            return None;
        }
        // the transition proper: where α leaves 1 and reaches 0
        let start = first + 1 + alphas.iter().position(|alpha| *alpha < 0.92).unwrap_or(0) as u64;
        let end = first
            + 1
            + alphas
                .iter()
                .rposition(|alpha| *alpha > 0.08)
                .unwrap_or(alphas.len() - 1) as u64;
        if !self.stands_as_gradual((start, end), change, residual) {
            return None;
        }
        // a cut inside the window (not decided yet) fits the model as a step: α drops at
        // once. In a gradual transition it falls a little each frame (motion moves pixels,
        // not α)
        let mut path = vec![1.0];
        path.extend(&alphas);
        path.push(0.0);
        let largest_drop = path
            .windows(2)
            .map(|pair| pair[0] - pair[1])
            .fold(0.0f64, f64::max);
        if largest_drop > 0.45 {
            return None;
        }
        // in a dissolve every pixel moves one way, from its value before to its value after;
        // under motion, edges pass over pixels and they go back and forth
        if self.monotonic_share(first, last, &delta) < 0.7 {
            return None;
        }
        // black decides: to black is a fade out, from black a fade in (from a white picture
        // too); white decides only against a picture
        let kind = match (uniform_before, uniform_after) {
            (_, Some(Uniform::Black)) if uniform_before != Some(Uniform::Black) => {
                GradualKind::FadeOut
            }
            (Some(Uniform::Black), _) => GradualKind::FadeIn,
            (None, Some(Uniform::White)) => GradualKind::FadeOut,
            (Some(Uniform::White), None) => GradualKind::FadeIn,
            (None, None) => GradualKind::Dissolve,
            _ => return None,
        };
        Some((residual, start, end, change, kind))
    }

    /// True when a transition from `start` to `end` that changes the picture by `change`,
    /// fitted with `residual`, is long enough and seen closely enough to be one.
    fn stands_as_gradual(&self, (start, end): (u64, u64), change: f64, residual: f64) -> bool {
        // five frames or fewer is a cut (TRECVID's line), or a cut the encoder smeared (or
        // the interpolation, over the frames left out between two pushed)
        if end < start + MIN_GRADUAL {
            return false;
        }
        // a change of a few frames between two alike pictures is more often a movement (a
        // head turning) than a transition: a short one must change twice as much
        if ((end - start) as f64) < SHORT_GRADUAL_SECONDS * self.fps
            && change < 2.0 * GRADUAL_MIN_CHANGE
        {
            return false;
        }
        // a small change is more often motion than a dissolve (a face turning fits the model
        // about as well as the model fits a dissolve between alike pictures, seen on the
        // corpus' carphone clip): it must fit closely
        if change < 2.0 * GRADUAL_MIN_CHANGE && residual > CLOSE_FIT_RESIDUAL {
            return false;
        }
        // frames left out: the model is judged on fewer pictures, and motion fits it by
        // chance more often; a transition shows in three decoded frames at least, and
        // fits closely
        if !self.cuts {
            let decoded = (start..=end)
                .filter(|index| self.frame(*index).is_some_and(|frame| frame.real))
                .count();
            if decoded < 3 || residual > EVEN_MAX_RESIDUAL {
                return false;
            }
        }
        true
    }

    /// Tests frames `first+1 ..= last-1` against a dip through black between `first` and
    /// `last` (an editor's "dip to black", ffmpeg's `xfade=fadeblack`): the picture before
    /// dims while the one after comes up, the frames between darker than either, which the
    /// dissolve model (a mix whose two weights add up to one) does not fit, and which never
    /// reaches a black frame to be told as a fade out and a fade in. Each frame is fitted as
    /// `a·before + b·after`: `a` falls from 1 to 0 and `b` rises from 0 to 1, each about
    /// monotonically and without a step (a cut to or from the dark), their sum under
    /// [`DIP_DEPTH`] at the darkest frame; the pixels go one way into the darkest frame and
    /// one way out of it. Told as a dissolve: one boundary, the pictures mixed (through
    /// dark).
    fn fit_dip(&self, first: u64, last: u64) -> Option<(f64, u64, u64, f64, GradualKind)> {
        let before = self.thumb(first)?;
        let after = self.thumb(last)?;
        let change = before.difference(after);
        if change < GRADUAL_MIN_CHANGE || before.uniform().is_some() || after.uniform().is_some() {
            return None;
        }
        let (_, delta_energy) = change_between(after, before);
        let delta_rms = (delta_energy / THUMB as f64).sqrt();
        // the same picture, dimmed or brightened: no transition
        if delta_energy <= 0.0 || gain_offset_residual(before, after) < 0.35 * delta_rms {
            return None;
        }
        let dot = |x: &Thumb, y: &Thumb| -> f64 { dot_u8(&x.0, &y.0) as f64 };
        let (aa, bb, ab) = (dot(before, before), dot(after, after), dot(before, after));
        let determinant = aa * bb - ab * ab;
        // pictures too alike in shape for a frame to be told as so much of each
        if determinant <= 0.02 * aa * bb {
            return None;
        }
        let measured = (first + 1..last)
            .filter(|index| self.frame(*index).is_some_and(|frame| frame.real))
            .count()
            .max(1) as f64;
        let mut weights = Vec::new();
        let mut residual_sum = 0.0;
        for index in first + 1..last {
            let frame = self.frame(index)?;
            let (fa, fb) = (dot(&frame.thumb, before), dot(&frame.thumb, after));
            let a = (fa * bb - fb * ab) / determinant;
            let b = (fb * aa - fa * ab) / determinant;
            weights.push((a, b));
            if !frame.real {
                continue;
            }
            // Σ (value − a·before − b·after)², expanded
            let vv = dot(&frame.thumb, &frame.thumb);
            let error = (vv - 2.0 * (a * fa + b * fb) + a * a * aa + 2.0 * a * b * ab + b * b * bb)
                .max(0.0);
            residual_sum += (error / THUMB as f64).sqrt();
            if residual_sum / measured / delta_rms > GRADUAL_MAX_RESIDUAL {
                return None;
            }
        }
        let residual = residual_sum / measured / delta_rms;
        // the weight of the picture before: 1, falling, 0; of the one after: 0, rising, 1
        let path = |weight: fn(&(f64, f64)) -> f64, from: f64, to: f64| -> Vec<f64> {
            let mut path = vec![from];
            path.extend(weights.iter().map(weight));
            path.push(to);
            path
        };
        let falling = path(|w| w.0, 1.0, 0.0);
        let rising = path(|w| w.1, 0.0, 1.0);
        let back = |path: &[f64], sign: f64| -> f64 {
            path.windows(2)
                .map(|pair| (sign * (pair[1] - pair[0])).max(0.0))
                .sum()
        };
        let step = |path: &[f64], sign: f64| -> f64 {
            path.windows(2)
                .map(|pair| sign * (pair[0] - pair[1]))
                .fold(0.0f64, f64::max)
        };
        if back(&falling, 1.0) > 0.25 || back(&rising, -1.0) > 0.25 {
            return None;
        }
        if step(&falling, 1.0) > 0.45 || step(&rising, -1.0) > 0.45 {
            return None;
        }
        // the fall and the rise seen midway on decoded frames, not only on the mixes that
        // stand in for frames left out: seen on anchors, a cut into a dark shot and out of it
        // again falls and rises through those mixes alone (two cuts of the MPEG-2 speed
        // minute were taken for dips so)
        let midway = |weight: fn(&(f64, f64)) -> f64| {
            (first + 1..last).zip(&weights).any(|(index, pair)| {
                self.frame(index).is_some_and(|frame| frame.real)
                    && (0.2..=0.8).contains(&weight(pair))
            })
        };
        if !midway(|w| w.0) || !midway(|w| w.1) {
            return None;
        }
        // darker than both between them (and never lighter than their mix)
        let (darkest, depth) = weights
            .iter()
            .map(|(a, b)| a + b)
            .enumerate()
            .min_by(|x, y| x.1.total_cmp(&y.1))?;
        if depth > DIP_DEPTH || weights.iter().any(|(a, b)| a + b > 1.2) {
            return None;
        }
        let dark = first + 1 + darkest as u64;
        let start = first + 1 + weights.iter().position(|(a, _)| *a < 0.92).unwrap_or(0) as u64;
        let end = first + 1 + weights.iter().rposition(|(_, b)| *b < 0.92)? as u64;
        // through black, and long enough on both sides: a fade out and a fade in, which the
        // dissolve model finds (xfade's dip goes dark in a quarter of its time: too short a
        // fade)
        if self.thumb(dark)?.uniform().is_some()
            && dark.saturating_sub(start) > MIN_GRADUAL
            && end.saturating_sub(dark) > MIN_GRADUAL
        {
            return None;
        }
        if !self.stands_as_gradual((start, end), change, residual) {
            return None;
        }
        // one way into the dark, one way out of it (motion sends pixels back and forth)
        let dark_thumb = self.thumb(dark)?;
        let (into, _) = change_between(dark_thumb, before);
        let (out_of, _) = change_between(after, dark_thumb);
        if self.monotonic_share(first, dark, &into) < 0.7
            || self.monotonic_share(dark, last, &out_of) < 0.7
        {
            return None;
        }
        Some((residual, start, end, change, GradualKind::Dissolve))
    }

    /// The share of the pixels that change a lot between `first` and `last` whose values move
    /// one way only (within a little noise) over the frames between.
    fn monotonic_share(&self, first: u64, last: u64, delta: &[f64]) -> f64 {
        const NOISE: f64 = 6.0;
        let Some(before) = self.thumb(first) else {
            return 0.0;
        };
        let moving: Vec<usize> = (0..THUMB).filter(|at| delta[*at].abs() >= 12.0).collect();
        if moving.is_empty() {
            return 0.0;
        }
        // per pixel: the furthest it has gone towards its value after, and whether it came
        // back by more than the noise
        let mut furthest: Vec<f64> = moving.iter().map(|at| before.0[*at] as f64).collect();
        let mut reversed = vec![false; moving.len()];
        for index in first + 1..=last {
            let Some(frame) = self.thumb(index) else {
                return 0.0;
            };
            for (slot, at) in moving.iter().enumerate() {
                let value = frame.0[*at] as f64;
                // delta = before − after: a falling pixel has delta > 0
                let falling = delta[*at] > 0.0;
                if falling {
                    if value < furthest[slot] {
                        furthest[slot] = value;
                    } else if value > furthest[slot] + NOISE {
                        reversed[slot] = true;
                    }
                } else if value > furthest[slot] {
                    furthest[slot] = value;
                } else if value < furthest[slot] - NOISE {
                    reversed[slot] = true;
                }
            }
        }
        reversed.iter().filter(|flag| !**flag).count() as f64 / moving.len() as f64
    }
}

/// Σ (frame − after)·step and Σ (frame − after)², pixel by pixel, in integers (exact: at most
/// 576 · 255², far inside i32), which the compiler turns into vector code.
fn offset_sums(frame: &Thumb, after: &Thumb, steps: &[i32]) -> (f64, f64) {
    #[multiversion::multiversion(targets("x86_64+avx2"))]
    fn sums(frame: &[u8], after: &[u8], steps: &[i32]) -> (i32, i32) {
        let (mut dot, mut square) = (0i32, 0i32);
        for ((value, base), step) in frame.iter().zip(after).zip(steps) {
            let offset = *value as i32 - *base as i32;
            dot += offset * step;
            square += offset * offset;
        }
        (dot, square)
    }
    let (dot, square) = sums(&frame.0, &after.0, steps);
    (dot as f64, square as f64)
}

/// `to − from`, pixel by pixel, and its energy (sum of squares).
fn change_between(from: &Thumb, to: &Thumb) -> (Vec<f64>, f64) {
    let change: Vec<f64> =
        to.0.iter()
            .zip(&from.0)
            .map(|(a, b)| *a as f64 - *b as f64)
            .collect();
    let energy = change.iter().map(|value| value * value).sum();
    (change, energy)
}

/// RMS of `after − (gain·before + offset)` at the best gain and offset.
fn gain_offset_residual(before: &Thumb, after: &Thumb) -> f64 {
    let n = THUMB as f64;
    // sums of integers, exact (as the floats added one by one were)
    let (sx, sy) = (before.sum(), after.sum());
    let (sxx, sxy) = (
        dot_u8(&before.0, &before.0) as f64,
        dot_u8(&before.0, &after.0) as f64,
    );
    let variance = sxx - sx * sx / n;
    let gain = if variance > 1e-9 {
        (sxy - sx * sy / n) / variance
    } else {
        0.0
    };
    let offset = (sy - gain * sx) / n;
    let error: f64 = before
        .0
        .iter()
        .zip(&after.0)
        .map(|(x, y)| (*y as f64 - (gain * *x as f64 + offset)).powi(2))
        .sum();
    (error / n).sqrt()
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BoundarySettings {
        BoundarySettings {
            cut_threshold: 27.0,
            adaptive_ratio: 3.0,
            min_content: 15.0,
            min_shot_frames: 10,
            fps: 25.0,
            gradual: true,
            stream_fps: None,
        }
    }

    /// A textured picture: `seed` changes the pattern.
    fn picture(seed: u32) -> Thumb {
        Thumb(
            (0..THUMB as u32)
                .map(|i| {
                    ((i.wrapping_mul(2654435761)
                        .wrapping_add(seed.wrapping_mul(40503))
                        >> 7)
                        % 200
                        + 28) as u8
                })
                .collect(),
        )
    }

    fn blend(a: &Thumb, b: &Thumb, alpha: f64) -> Thumb {
        Thumb(
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| (alpha * *x as f64 + (1.0 - alpha) * *y as f64).round() as u8)
                .collect(),
        )
    }

    fn run(frames: Vec<Thumb>, scores: Vec<f64>) -> Vec<Boundary> {
        let mut detector = BoundaryDetector::new(settings());
        let mut out = Vec::new();
        for (index, (thumb, score)) in frames.into_iter().zip(scores).enumerate() {
            out.extend(detector.push(index as u64, score, thumb));
        }
        out.extend(detector.finish());
        out
    }

    /// Scores as the HSV difference would give them: proportional to the grey change.
    fn scores_of(frames: &[Thumb]) -> Vec<f64> {
        let mut scores = vec![0.0];
        for pair in frames.windows(2) {
            scores.push(pair[0].difference(&pair[1]) * 0.8);
        }
        scores
    }

    /// The thumbnail, worked out pixel by pixel: each sampled pixel's luma added to the cell
    /// it falls in, each cell divided by its own count.
    fn thumb_pixel_by_pixel(rgb: &[u8], width: usize, height: usize) -> Thumb {
        let step = if width > 320 { 2 } else { 1 };
        let (mut sums, mut counts) = ([0u32; THUMB], [0u32; THUMB]);
        for y in (0..height).step_by(step) {
            for x in (0..width).step_by(step) {
                let pixel = &rgb[(y * width + x) * 3..(y * width + x) * 3 + 3];
                let luma =
                    (77 * pixel[0] as u32 + 150 * pixel[1] as u32 + 29 * pixel[2] as u32) >> 8;
                let cell = y * THUMB_HEIGHT / height * THUMB_WIDTH + x * THUMB_WIDTH / width;
                sums[cell] += luma;
                counts[cell] += 1;
            }
        }
        Thumb(
            sums.iter()
                .zip(counts)
                .map(|(sum, count)| sum.checked_div(count).unwrap_or(0) as u8)
                .collect(),
        )
    }

    #[test]
    fn thumbnails_average_their_cells() {
        let mut seed = 7u32;
        for (width, height) in [(240, 135), (241, 101), (640, 360), (657, 363), (20, 10)] {
            let rgb: Vec<u8> = (0..width * height * 3)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            assert_eq!(
                Thumb::from_rgb(&rgb, width, height),
                thumb_pixel_by_pixel(&rgb, width, height),
                "{width}×{height}"
            );
        }
    }

    #[test]
    fn a_cut_is_found_at_its_first_frame() {
        let mut frames = vec![picture(1); 40];
        frames.extend(vec![picture(2); 40]);
        let found = run(frames.clone(), scores_of(&frames));
        assert!(
            matches!(found.as_slice(), [Boundary::Cut { frame: 40, .. }]),
            "{found:?}"
        );
    }

    #[test]
    fn a_flash_is_not_a_cut() {
        let mut frames = vec![picture(1); 40];
        frames.extend(vec![Thumb(vec![250; THUMB]); 2]);
        frames.extend(vec![picture(1); 40]);
        let found = run(frames.clone(), scores_of(&frames));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_dissolve_is_found_with_its_extent() {
        let (a, b) = (picture(1), picture(2));
        let mut frames = vec![a.clone(); 40];
        for step in 1..=20 {
            frames.push(blend(&a, &b, 1.0 - step as f64 / 21.0));
        }
        frames.extend(vec![b.clone(); 40]);
        one_dissolve(&run(frames.clone(), scores_of(&frames)), 39..=42, 57..=61);
    }

    /// `found` is one dissolve, starting and ending in the ranges given.
    fn one_dissolve(
        found: &[Boundary],
        starts: std::ops::RangeInclusive<u64>,
        ends: std::ops::RangeInclusive<u64>,
    ) {
        match found {
            [Boundary::Gradual {
                kind: GradualKind::Dissolve,
                start,
                end,
                ..
            }] => {
                assert!(starts.contains(start), "{found:?}");
                assert!(ends.contains(end), "{found:?}");
            }
            _ => panic!("{found:?}"),
        }
    }

    #[test]
    fn a_flash_inside_a_dissolve_leaves_one_dissolve() {
        let (a, b) = (picture(1), picture(2));
        let white = Thumb(vec![250; THUMB]);
        let mut frames = vec![a.clone(); 40];
        for step in 1..=20 {
            frames.push(if (6..=7).contains(&step) {
                white.clone()
            } else {
                blend(&a, &b, 1.0 - step as f64 / 21.0)
            });
        }
        frames.extend(vec![b.clone(); 40]);
        one_dissolve(&run(frames.clone(), scores_of(&frames)), 39..=42, 57..=61);
        // the same seen on anchors only, where the flash is mixed into the frames left out
        // next to it
        one_gradual_on_anchors(&frames, 37..=44, 55..=63);
    }

    #[test]
    fn a_slow_dissolve_between_alike_pictures_is_found() {
        // 1.6 s from a picture to one that differs by about 24 levels: a seventh of that over
        // the quick reach, not enough alone
        let a = picture(1);
        let b = blend(&a, &picture(2), 0.75);
        let change = a.difference(&b);
        assert!((18.0..30.0).contains(&change), "{change}");
        let mut frames = vec![a.clone(); 40];
        for step in 1..=40 {
            frames.push(blend(&a, &b, 1.0 - step as f64 / 41.0));
        }
        frames.extend(vec![b.clone(); 60]);
        one_dissolve(&run(frames.clone(), scores_of(&frames)), 39..=44, 75..=81);
    }

    #[test]
    fn a_small_change_must_fit_the_model_closely() {
        let detector = BoundaryDetector::new(settings());
        // a second long: long enough for any change
        assert!(detector.stands_as_gradual((10, 35), 15.0, 0.1));
        assert!(!detector.stands_as_gradual((10, 35), 15.0, 0.2));
        assert!(detector.stands_as_gradual((10, 35), 30.0, 0.2));
    }

    #[test]
    fn a_dissolve_that_starts_with_a_jump_is_not_a_cut() {
        // from a still picture, a first step as large as a cut's, then 8 even steps
        let (a, b) = (picture(1), picture(2));
        let mut frames = vec![a.clone(); 40];
        frames.push(blend(&a, &b, 0.6));
        for step in 1..=8 {
            frames.push(blend(&a, &b, 0.6 - 0.075 * step as f64));
        }
        frames.extend(vec![b.clone(); 40]);
        let found = run(frames.clone(), scores_of(&frames));
        match found.as_slice() {
            [Boundary::Gradual { start, end, .. }] => {
                assert!(*start <= 41 && *end >= 46, "{found:?}");
            }
            _ => panic!("{found:?}"),
        }
    }

    #[test]
    fn fades_out_and_in_are_told_apart() {
        let (a, b) = (picture(1), picture(2));
        let black = Thumb(vec![8; THUMB]);
        let mut frames = vec![a.clone(); 40];
        for step in 1..=15 {
            frames.push(blend(&a, &black, 1.0 - step as f64 / 16.0));
        }
        frames.extend(vec![black.clone(); 10]);
        for step in 1..=15 {
            frames.push(blend(&black, &b, 1.0 - step as f64 / 16.0));
        }
        frames.extend(vec![b.clone(); 40]);
        let found = run(frames.clone(), scores_of(&frames));
        let kinds: Vec<GradualKind> = found
            .iter()
            .map(|boundary| match boundary {
                Boundary::Gradual { kind, .. } => *kind,
                Boundary::Cut { .. } => panic!("no cut: {found:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [GradualKind::FadeOut, GradualKind::FadeIn],
            "{found:?}"
        );
    }

    /// `a·A + b·B`, rounded.
    fn weighed(a: &Thumb, b: &Thumb, (wa, wb): (f64, f64)) -> Thumb {
        Thumb(
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| (wa * *x as f64 + wb * *y as f64).round().clamp(0.0, 255.0) as u8)
                .collect(),
        )
    }

    /// A dip through black as `xfade=fadeblack` makes one over 20 frames: the picture before
    /// gone dark within six, the one after up over fourteen, never a black frame.
    fn dip(a: &Thumb, b: &Thumb) -> Vec<Thumb> {
        (1..=20)
            .map(|step| {
                let t = step as f64;
                let weights = ((1.0 - t / 6.0).max(0.0), ((t - 4.0) / 16.0).clamp(0.0, 1.0));
                weighed(a, b, weights)
            })
            .collect()
    }

    #[test]
    fn a_dip_through_black_is_one_transition() {
        let (a, b) = (picture(1), picture(2));
        let mut frames = vec![a.clone(); 40];
        frames.extend(dip(&a, &b));
        frames.extend(vec![b.clone(); 40]);
        one_dissolve(&run(frames.clone(), scores_of(&frames)), 39..=42, 55..=61);
        // the same seen on anchors only
        one_gradual_on_anchors(&frames, 37..=44, 54..=63);
    }

    /// Seen on anchors only (see [`run_anchors`]), `stream` is one gradual transition from a
    /// stream frame in `starts` to one in `ends`.
    fn one_gradual_on_anchors(
        stream: &[Thumb],
        starts: std::ops::RangeInclusive<u64>,
        ends: std::ops::RangeInclusive<u64>,
    ) {
        let (found, positions) = run_anchors(stream);
        match found.as_slice() {
            [Boundary::Gradual { start, end, .. }] => {
                let (start, end) = (positions[*start as usize], positions[*end as usize]);
                assert!(starts.contains(&start), "{start} {found:?}");
                assert!(ends.contains(&end), "{end} {found:?}");
            }
            _ => panic!("{found:?}"),
        }
    }

    #[test]
    fn the_same_picture_dimmed_and_back_is_no_transition() {
        // the lights go down and up again, or the picture dips into another of the same
        // shape, brighter: neither is a dip from one shot into the next
        let a = picture(1);
        let brighter = Thumb(a.0.iter().map(|v| (*v as f64 * 0.6 + 60.0) as u8).collect());
        for other in [a.clone(), brighter] {
            let mut frames = vec![a.clone(); 40];
            frames.extend(dip(&a, &other));
            frames.extend(vec![other.clone(); 40]);
            let found = run(frames.clone(), scores_of(&frames));
            assert!(
                found.iter().all(|boundary| !matches!(
                    boundary,
                    Boundary::Gradual {
                        kind: GradualKind::Dissolve,
                        ..
                    }
                )),
                "{found:?}"
            );
        }
    }

    #[test]
    fn a_brightness_change_and_a_steady_picture_are_not_transitions() {
        let a = picture(1);
        let brighter = Thumb(a.0.iter().map(|v| (*v as f64 * 0.6 + 20.0) as u8).collect());
        let mut frames = vec![a.clone(); 40];
        for step in 1..=15 {
            frames.push(blend(&a, &brighter, 1.0 - step as f64 / 16.0));
        }
        frames.extend(vec![brighter; 40]);
        let found = run(frames.clone(), scores_of(&frames));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn constant_high_change_is_motion_not_cuts() {
        // every frame a new pattern (noise, a cellular automaton): scores high everywhere
        let frames: Vec<Thumb> = (0..120).map(picture).collect();
        let found = run(frames.clone(), scores_of(&frames));
        assert!(found.is_empty(), "{found:?}");
    }

    /// Pushes the frames of a stream at the anchors' positions (one to four frames apart, as
    /// x264's B-frames leave them), with scores from one pushed frame to the next.
    fn run_anchors(stream: &[Thumb]) -> (Vec<Boundary>, Vec<u64>) {
        let mut detector = BoundaryDetector::new(BoundarySettings {
            fps: 10.0,
            min_shot_frames: 2,
            stream_fps: Some(25.0),
            ..settings()
        });
        let spacing = [1, 4, 2, 3, 4, 2, 1, 3];
        let mut positions = vec![0u64];
        while let Some(&last) = positions.last() {
            let next = last + spacing[positions.len() % spacing.len()];
            if next as usize >= stream.len() {
                break;
            }
            positions.push(next);
        }
        let pushed: Vec<Thumb> = positions
            .iter()
            .map(|at| stream[*at as usize].clone())
            .collect();
        let scores = scores_of(&pushed);
        let mut out = Vec::new();
        for (index, (thumb, score)) in pushed.into_iter().zip(scores).enumerate() {
            out.extend(detector.push_at(index as u64, positions[index] as f64, score, thumb));
        }
        out.extend(detector.finish());
        (out, positions)
    }

    #[test]
    fn frames_left_out_still_show_a_dissolve_and_a_cut() {
        let (a, b, c) = (picture(1), picture(2), picture(3));
        // a dissolve over frames 50–61, a cut at 97
        let mut stream = vec![a.clone(); 50];
        for step in 1..=12 {
            stream.push(blend(&a, &b, 1.0 - step as f64 / 13.0));
        }
        stream.extend(vec![b.clone(); 35]);
        stream.extend(vec![c.clone(); 60]);
        let (found, positions) = run_anchors(&stream);
        match found.as_slice() {
            [Boundary::Gradual {
                kind: GradualKind::Dissolve,
                start,
                end,
                ..
            }, Boundary::Cut { frame, .. }] => {
                let (start, end) = (positions[*start as usize], positions[*end as usize]);
                assert!((48..=54).contains(&start), "{start} {found:?}");
                assert!((58..=64).contains(&end), "{end} {found:?}");
                // the first anchor at or after the cut
                assert!(positions[*frame as usize - 1] < 97, "{found:?}");
                assert!(positions[*frame as usize] >= 97, "{found:?}");
            }
            _ => panic!("{found:?}"),
        }
    }

    #[test]
    fn a_slow_dissolve_after_a_cut_is_found_whole_on_anchors() {
        // a cut at 60, 1.4 s of a still picture, then a slow dissolve to an alike one over
        // frames 95–119: the long reach peaks across the cut too, and windows from there
        // would see only the dissolve's first half
        let (a, c) = (picture(1), picture(3));
        let d = blend(&c, &picture(4), 0.75);
        let mut stream = vec![a.clone(); 60];
        stream.extend(vec![c.clone(); 35]);
        for step in 1..=25 {
            stream.push(blend(&c, &d, 1.0 - step as f64 / 26.0));
        }
        stream.extend(vec![d.clone(); 60]);
        let (found, positions) = run_anchors(&stream);
        match found.as_slice() {
            [Boundary::Cut { frame, .. }, Boundary::Gradual {
                kind: GradualKind::Dissolve,
                start,
                end,
                ..
            }] => {
                assert!(positions[*frame as usize] >= 60, "{found:?}");
                assert!(positions[*frame as usize - 1] < 60, "{found:?}");
                let (start, end) = (positions[*start as usize], positions[*end as usize]);
                assert!((92..=99).contains(&start), "{start} {found:?}");
                assert!((115..=123).contains(&end), "{end} {found:?}");
            }
            _ => panic!("{found:?}"),
        }
    }

    #[test]
    fn frames_left_out_do_not_make_motion_a_transition() {
        // every frame a new pattern (the mixes standing in for the frames left out change
        // smoothly, the frames decoded do not)
        let stream: Vec<Thumb> = (0..200).map(picture).collect();
        let (found, _) = run_anchors(&stream);
        assert!(found.is_empty(), "{found:?}");
        // a cut between anchors is no dissolve either, whatever its mixes look like
        let mut stream = vec![picture(1); 60];
        stream.extend(vec![picture(2); 60]);
        let (found, positions) = run_anchors(&stream);
        match found.as_slice() {
            [Boundary::Cut { frame, .. }] => assert!(positions[*frame as usize] >= 60),
            _ => panic!("{found:?}"),
        }
    }

    #[test]
    fn a_step_over_two_frames_of_noise_is_not_a_cut() {
        // a cellular automaton at 25 fps decoded without its non-reference frames: a step
        // over one frame scores 27, over two 44 (the change saturates); a cut scores more
        let run_noise = |jump_score: f64| {
            let mut detector = BoundaryDetector::new(BoundarySettings {
                stream_fps: Some(25.0),
                ..settings()
            });
            let mut out = Vec::new();
            let mut position = 0u64;
            for index in 0..80u64 {
                let score = match index {
                    0 => 0.0,
                    40 => jump_score,
                    _ => 27.0,
                };
                position += if index == 40 { 2 } else { 1 };
                out.extend(detector.push_at(index, position as f64, score, picture(index as u32)));
            }
            out.extend(detector.finish());
            out
        };
        let found = run_noise(44.0);
        assert!(found.is_empty(), "{found:?}");
        let found = run_noise(70.0);
        assert!(
            matches!(found.as_slice(), [Boundary::Cut { frame: 40, .. }]),
            "{found:?}"
        );
    }

    #[test]
    fn a_short_small_change_is_movement_not_a_transition() {
        // seven frames (0.28 s) from one picture to one much like it (a head turning), then
        // the same length between two pictures unlike each other
        let a = picture(1);
        let alike = blend(&a, &picture(2), 0.82);
        let short = |from: &Thumb, to: &Thumb| {
            let mut frames = vec![from.clone(); 40];
            for step in 1..=7 {
                frames.push(blend(from, to, 1.0 - step as f64 / 8.0));
            }
            frames.extend(vec![to.clone(); 40]);
            run(frames.clone(), scores_of(&frames))
        };
        assert!(a.difference(&alike) < 18.0, "{}", a.difference(&alike));
        let found = short(&a, &alike);
        assert!(found.is_empty(), "{found:?}");
        let found = short(&a, &picture(3));
        assert!(
            matches!(found.as_slice(), [Boundary::Gradual { .. }]),
            "{found:?}"
        );
    }

    #[test]
    fn a_jump_in_the_timestamps_costs_no_more_than_a_pause() {
        // a file whose clock jumps by an hour (hostile, or broken; a trillion frames would be
        // fed as fast): the frames the even detector is fed stay about what a few seconds'
        // pause costs
        let mut detector = BoundaryDetector::new(BoundarySettings {
            fps: 10.0,
            stream_fps: Some(25.0),
            ..settings()
        });
        let (a, b) = (picture(1), picture(2));
        for index in 0..40u64 {
            detector.push_at(index, (index * 2) as f64, 0.0, a.clone());
        }
        for index in 40..80u64 {
            detector.push_at(index, 90_000.0 + (index * 2) as f64, 0.0, b.clone());
        }
        detector.finish();
        let fed = detector.even.as_ref().map(|even| even.next).unwrap();
        assert!(fed < 1_000, "{fed} frames fed");
    }
}
