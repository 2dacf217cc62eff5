//! Cuts between anchors, placed on their frame.
//!
//! Decoding only the anchors (I- and P-frames, see `decode`) leaves up to three frames out
//! between two decoded ones, and a cut found between them may be on any of those: the
//! detectors see the change on the first anchor after it. Each such stretch is decoded again
//! from the anchor before the cut to the anchor it was seen on (ffmpeg seeks to the keyframe
//! before and decodes from there, so a stretch costs what its distance from that keyframe
//! costs), leaving out only the frames nothing refers to (about half the decoding of the
//! frames on the way; every frame when that leaves more than one out in a row, as without a
//! B-pyramid), and the cut is put on the frame with the largest change: within one frame, as
//! when the whole video is decoded so. Encoders mostly start a new scene on an anchor (x264
//! makes it an I-frame), so few cuts need this.
//!
//! The stretches are decoded side by side, in order, within a time budget (a stream with few
//! keyframes and many cuts could otherwise cost more than the pass it refines). Once
//! [`TRUST_AFTER`] cuts in a row are found on their anchor and none off it, the encoder is
//! taken to start scenes on anchors (x264's adaptive B-frames do; an encoder with a fixed
//! pattern of B-frames puts three cuts in four on a B-frame, and shows it at once) and the rest
//! are not decoded. A cut whose stretch is not decoded, or cannot be (no frame where its
//! anchor should be), keeps its anchor's time, at most three frames late.
use crate::frames::HsvFrame;
use crate::source::{FrameSource, Part, PartCommand};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::process::Command;
use vidsight_media::SkipFrames;

/// A cut seen on the anchor at `at` (frame `frame` of those decoded), the frame decoded
/// before it at `before`, more than two frames earlier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    pub frame: u64,
    pub before: f64,
    pub at: f64,
}

/// Frames more than this many frame durations apart leave room for a cut to be misplaced
/// by more than one frame.
pub const MAX_ALIGNED_SPAN: f64 = 2.5;

/// Cuts found on their anchor, none off it, after which the rest are taken to be on theirs.
pub const TRUST_AFTER: usize = 3;

/// Pictures decoded ahead of the reader in a stretch (a stretch is a few frames).
const READ_AHEAD: usize = 16;

/// How the stretches are decoded and measured.
pub struct Refiner<C, M> {
    /// An ffmpeg decoding a part (scaled like the pass), leaving out the frames given.
    pub command: C,
    /// Seconds before a stretch its process seeks to (see [`Part::lead`]).
    pub lead: f64,
    /// Processes side by side.
    pub decoders: usize,
    pub frame_bytes: usize,
    pub fps: f64,
    /// The colour signature the detectors compare frames by.
    pub measure: M,
}

impl<C, M> Refiner<C, M>
where
    C: Fn(&Part, SkipFrames) -> Command + Send + Sync + 'static,
    M: Fn(&[u8]) -> HsvFrame,
{
    /// The time of each gap's cut (by its `frame`), for the gaps decoded before
    /// `deadline`.
    pub async fn place(self, gaps: &[Gap], deadline: Instant) -> HashMap<u64, f64> {
        let command = Arc::new(self.command);
        let this = (&self.measure, self.lead, self.frame_bytes, self.fps);
        // cuts found on their anchor, and whether one was found off it
        let (on_anchor, off_anchor) = (&AtomicUsize::new(0), &AtomicBool::new(false));
        futures::stream::iter(gaps.iter().copied())
            .map(|gap| {
                let command = command.clone();
                async move {
                    let trusted = !off_anchor.load(Ordering::Relaxed)
                        && on_anchor.load(Ordering::Relaxed) >= TRUST_AFTER;
                    if trusted || Instant::now() >= deadline {
                        return None;
                    }
                    let (measure, lead, frame_bytes, fps) = this;
                    let decode = |skip| {
                        decode_gap(gap, command.clone(), skip, lead, frame_bytes, fps, measure)
                    };
                    let mut scores = decode(SkipFrames::NonRef).await?;
                    if most_left_out(&scores, gap, fps) > 1 {
                        scores = decode(SkipFrames::None).await?;
                    }
                    let time = strongest_change(&scores, gap)?;
                    if (time - gap.at).abs() < 5e-4 {
                        on_anchor.fetch_add(1, Ordering::Relaxed);
                    } else {
                        off_anchor.store(true, Ordering::Relaxed);
                    }
                    Some((gap.frame, time))
                }
            })
            .buffer_unordered(self.decoders.max(1))
            .filter_map(|placed| async move { placed })
            .collect()
            .await
    }
}

/// Each frame's time after the gap's first and its change from the frame before; None when
/// the stretch could not be decoded from its first anchor.
async fn decode_gap<C, M>(
    gap: Gap,
    command: Arc<C>,
    skip: SkipFrames,
    lead: f64,
    frame_bytes: usize,
    fps: f64,
    measure: &M,
) -> Option<Vec<(f64, f64)>>
where
    C: Fn(&Part, SkipFrames) -> Command + Send + Sync + 'static,
    M: Fn(&[u8]) -> HsvFrame,
{
    let half_frame = 0.5 / fps.max(1.0);
    let part = Part {
        start: gap.before,
        end: Some(gap.at + half_frame),
        lead,
    };
    let boxed: PartCommand = Box::new(move |part: &Part| command(part, skip));
    let mut source =
        FrameSource::start(vec![part], boxed, None, 1, frame_bytes, READ_AHEAD, fps).ok()?;
    let mut previous: Option<HsvFrame> = None;
    let mut scores = Vec::new();
    while let Some((yuv, time)) = source.next().await.ok()? {
        let current = measure(&yuv);
        source.recycle(yuv);
        match &previous {
            // the stretch must start on the anchor the pass decoded
            None if (time - gap.before).abs() > half_frame => return None,
            None => {}
            Some(previous) => scores.push((time, current.difference(previous))),
        }
        previous = Some(current);
    }
    source.finish().await.ok()?;
    Some(scores)
}

/// The most frames left out in a row between the frames decoded in the stretch.
pub fn most_left_out(scores: &[(f64, f64)], gap: Gap, fps: f64) -> usize {
    let mut times = vec![gap.before];
    times.extend(scores.iter().map(|(time, _)| *time));
    times
        .windows(2)
        .map(|pair| ((pair[1] - pair[0]) * fps - 1.0).round().max(0.0) as usize)
        .max()
        .unwrap_or(0)
}

/// The time of the frame with the largest change in (`gap.before`, `gap.at`]; None when no
/// frame of the stretch is there.
pub fn strongest_change(scores: &[(f64, f64)], gap: Gap) -> Option<f64> {
    // half a millisecond: times printed to the microsecond
    let epsilon = 5e-4;
    scores
        .iter()
        .filter(|(time, _)| *time > gap.before + epsilon && *time < gap.at + epsilon)
        .fold(
            None,
            |best: Option<(f64, f64)>, &(time, score)| match best {
                Some((_, top)) if top >= score => best,
                _ => Some((time, score)),
            },
        )
        .map(|(time, _)| time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_goes_on_the_largest_change_inside_the_stretch() {
        let gap = Gap {
            frame: 7,
            before: 1.0,
            at: 1.1333,
        };
        // frames at 1.0333, 1.0667, 1.1 and the anchor 1.1333: the cut is at 1.0667
        let scores = [(1.0333, 2.0), (1.0667, 40.0), (1.1, 3.0), (1.1333, 1.0)];
        assert_eq!(strongest_change(&scores, gap), Some(1.0667));
        // on the anchor itself when that is where the change is
        let on_anchor = [(1.0333, 2.0), (1.0667, 1.0), (1.1, 3.0), (1.1333, 50.0)];
        assert_eq!(strongest_change(&on_anchor, gap), Some(1.1333));
        // frames outside the stretch do not count; none inside, no answer
        let outside = [(0.9, 90.0), (1.2, 90.0)];
        assert_eq!(strongest_change(&outside, gap), None);
        assert_eq!(strongest_change(&[], gap), None);
    }

    #[test]
    fn frames_left_out_in_a_row_are_counted() {
        let gap = Gap {
            frame: 3,
            before: 1.0,
            at: 1.16,
        };
        // 25 fps, a pyramid's reference B-frame and the anchor: one left out each time
        assert_eq!(most_left_out(&[(1.08, 1.0), (1.16, 9.0)], gap, 25.0), 1);
        // no pyramid: only the anchor, three left out
        assert_eq!(most_left_out(&[(1.16, 9.0)], gap, 25.0), 3);
        let every: Vec<(f64, f64)> = (1..=4).map(|k| (1.0 + 0.04 * k as f64, 1.0)).collect();
        assert_eq!(most_left_out(&every, gap, 25.0), 0);
    }
}
