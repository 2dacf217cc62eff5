//! Cuts between anchors, checked and placed on their frame.
//!
//! Decoding only the anchors (I- and P-frames, see `decode`) leaves up to three frames out
//! between two decoded ones. A cut found between them may be on any of those (the detectors
//! see the change on the first anchor after it), and a change that looks like a cut over
//! four frames may be no cut at all: the last frames of a dissolve, or fast motion, changes
//! spread over the frames between. Each such stretch is decoded again from the anchor before
//! to the anchor the cut was seen on (ffmpeg seeks to the keyframe before and decodes from
//! there, so a stretch costs what its distance from that keyframe costs), leaving out only the
//! frames nothing refers to (about half the decoding of the frames on the way; every frame
//! when that leaves more than one out in a row, as without a B-pyramid). A cut makes most of
//! the change across the stretch in one step, and stands out of the others: it is put on that
//! step's frame (within one frame, as when the whole video is decoded so). A change spread
//! over the steps (a dissolve's end), or one every step makes alike (noise), is not a cut, and
//! is dropped.
//!
//! The stretch's process starts where the pass's decoding of it could: at the last keyframe
//! before it (seeking in an index lands there; seeking near a time, as in MPEG-TS, lands
//! [`Refiner::lead`] before that keyframe).
//!
//! A stretch is decoded as soon as the pass decides its cut, one process at a time beside the
//! pass's (see [`Checks`]), as many as there are decoders once it is over; at most a number of
//! them per minute of video
//! (a stream with few keyframes and many cuts could otherwise cost more than the pass it
//! refines; a count, not a time, so the answer does not depend on the machine's load): a cut
//! whose stretch is not decoded, or cannot be (no frame where its anchor should be), stays as
//! the pass found it, on its anchor, at most three frames late.
use crate::frames::HsvFrame;
use crate::source::{FrameSource, Part, PartCommand};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use vidsight_media::SkipFrames;

/// A cut seen on the anchor at `at` (frame `frame` of those decoded), the frame decoded
/// before it at `before`, more than two frames earlier; `keyframe`: the last keyframe the
/// pass decoded at or before `before` (where decoding the stretch starts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    pub frame: u64,
    pub before: f64,
    pub at: f64,
    pub keyframe: Option<f64>,
}

/// What decoding a stretch again found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Placed {
    /// The cut is on the frame at this time.
    At(f64),
    /// The change is spread over the stretch: no cut.
    NotACut,
}

/// Frames more than this many frame durations apart leave room for a cut to be misplaced
/// by more than one frame.
pub const MAX_ALIGNED_SPAN: f64 = 2.5;

/// The share of the change across a stretch a cut's one step makes at least. A dissolve's
/// steps make about as much each (a half over two steps, a quarter over four); a cut's,
/// all of it but what motion adds.
pub const CUT_SHARE: f64 = 0.7;

/// How many times any other step of the stretch a cut's step is at least. Where the picture
/// changes all over from frame to frame (a field of noise, water, confetti), the change
/// saturates: the stretch's first and last frames differ no more than two neighbours do,
/// and every step would make "the whole change". Such steps are within a few per cent of
/// each other (44.1 to 44.5 over two frames of a cellular automaton's noise, 26.4 to 27.3
/// over one); a cut into that noise stood out of the noise's own steps by 1.23 to 2.6 times
/// over the 18 random fields whose steps were printed.
pub const STANDS_OUT: f64 = 1.1;

/// Pictures decoded ahead of the reader in a stretch (a stretch is a few frames).
const READ_AHEAD: usize = 16;

/// How the stretches are decoded and measured.
pub struct Refiner<C, M> {
    /// An ffmpeg decoding a part (scaled like the pass), leaving out the frames given.
    pub command: Arc<C>,
    /// Seconds before the keyframe a stretch is decoded from that its process seeks to,
    /// where seeking lands only near a time (see [`Part::lead`]); 0 where it lands on the
    /// keyframe before it.
    pub lead: f64,
    /// Processes side by side.
    pub decoders: usize,
    pub frame_bytes: usize,
    pub fps: f64,
    /// The colour signature the detectors compare frames by.
    pub measure: M,
}

/// A stretch decoded again: each frame's time after its first and its change from the frame
/// before, and the change from its first frame to its last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stretch {
    pub steps: Vec<(f64, f64)>,
    pub across: f64,
}

impl<C, M> Refiner<C, M>
where
    C: Fn(&Part, SkipFrames) -> Command + Send + Sync + 'static,
    M: Fn(&[u8]) -> HsvFrame + Send + Sync + 'static,
{
    /// What `gap`'s stretch shows, by the gap's `frame`; None when it could not be decoded.
    pub async fn place(self: Arc<Self>, gap: Gap) -> Option<(u64, Placed)> {
        let decode = |skip| {
            decode_gap(
                gap,
                &self.command,
                skip,
                self.lead,
                self.frame_bytes,
                self.fps,
                &self.measure,
            )
        };
        let mut stretch = decode(SkipFrames::NonRef).await?;
        if most_left_out(&stretch.steps, gap, self.fps) > 1 {
            stretch = decode(SkipFrames::None).await?;
        }
        verdict(&stretch, gap, self.fps).map(|placed| (gap.frame, placed))
    }
}

/// Stretches decoded while the pass goes on, as its cuts are found: one process at a time
/// beside the pass's (the pass's last parts leave cores idle, and the checks fill them),
/// `decoders` once the pass is over; at most `most` of them, the first found.
pub struct Checks<C, M> {
    refiner: Arc<Refiner<C, M>>,
    slots: Arc<Semaphore>,
    running: JoinSet<Option<(u64, Placed)>>,
    started: usize,
    most: usize,
}

impl<C, M> Checks<C, M>
where
    C: Fn(&Part, SkipFrames) -> Command + Send + Sync + 'static,
    M: Fn(&[u8]) -> HsvFrame + Send + Sync + 'static,
{
    pub fn new(refiner: Refiner<C, M>, most: usize) -> Self {
        Self {
            refiner: Arc::new(refiner),
            slots: Arc::new(Semaphore::new(1)),
            running: JoinSet::new(),
            started: 0,
            most,
        }
    }

    /// Starts checking `gap` (nothing past the most allowed).
    pub fn start(&mut self, gap: Gap) {
        if self.started >= self.most {
            return;
        }
        self.started += 1;
        let (refiner, slots) = (self.refiner.clone(), self.slots.clone());
        self.running.spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            refiner.place(gap).await
        });
    }

    /// What every stretch started showed, the pass being over (dropped unfinished, the
    /// checks stop and their processes are killed).
    pub async fn finish(mut self) -> HashMap<u64, Placed> {
        self.slots
            .add_permits(self.refiner.decoders.max(1).saturating_sub(1));
        let mut placed = HashMap::new();
        while let Some(result) = self.running.join_next().await {
            if let Ok(Some((frame, verdict))) = result {
                placed.insert(frame, verdict);
            }
        }
        placed
    }
}

/// The stretch of `gap` decoded again; None when it could not be decoded from its first
/// anchor.
async fn decode_gap<C, M>(
    gap: Gap,
    command: &Arc<C>,
    skip: SkipFrames,
    lead: f64,
    frame_bytes: usize,
    fps: f64,
    measure: &M,
) -> Option<Stretch>
where
    C: Fn(&Part, SkipFrames) -> Command + Send + Sync + 'static,
    M: Fn(&[u8]) -> HsvFrame,
{
    let half_frame = 0.5 / fps.max(1.0);
    // near a time, the process must land before the keyframe, not only before the stretch
    // (an MPEG-TS whose keyframes are two seconds apart lost most of its checks): it decodes
    // from there, as it would from an index's keyframe
    let lead = match gap.keyframe {
        Some(keyframe) if lead > 0.0 => lead + (gap.before - keyframe).max(0.0),
        _ => lead,
    };
    let part = Part {
        start: gap.before,
        end: Some(gap.at + half_frame),
        lead,
    };
    let command = command.clone();
    let boxed: PartCommand = Box::new(move |part: &Part| command(part, skip));
    let mut source =
        FrameSource::start(vec![part], boxed, None, 1, frame_bytes, READ_AHEAD, fps).ok()?;
    let (mut first, mut previous): (Option<HsvFrame>, Option<HsvFrame>) = (None, None);
    let mut stretch = Stretch::default();
    while let Some(frame) = source.next().await.ok()? {
        let (current, time) = (measure(&frame.picture), frame.time);
        source.recycle(frame.picture);
        match &previous {
            // the stretch must start on the anchor the pass decoded
            None if (time - gap.before).abs() > half_frame => return None,
            None => first = Some(current.clone()),
            Some(previous) => stretch.steps.push((time, current.difference(previous))),
        }
        previous = Some(current);
    }
    source.finish().await.ok()?;
    stretch.across = match (&first, &previous) {
        (Some(first), Some(last)) => last.difference(first),
        _ => 0.0,
    };
    Some(stretch)
}

/// The most frames left out in a row between the frames decoded in the stretch.
pub fn most_left_out(steps: &[(f64, f64)], gap: Gap, fps: f64) -> usize {
    let mut times = vec![gap.before];
    times.extend(steps.iter().map(|(time, _)| *time));
    times
        .windows(2)
        .map(|pair| ((pair[1] - pair[0]) * fps - 1.0).round().max(0.0) as usize)
        .max()
        .unwrap_or(0)
}

/// A cut on the frame with the largest change in (`gap.before`, `gap.at`] when that one
/// step makes [`CUT_SHARE`] of the change across the stretch and [`STANDS_OUT`] times any
/// other step's, else no cut; None when no frame of the stretch is there (`fps`: the
/// stream's, to tell how many frames each step spans).
pub fn verdict(stretch: &Stretch, gap: Gap, fps: f64) -> Option<Placed> {
    let (time, largest) = strongest_change(&stretch.steps, gap)?;
    let fps = fps.max(1.0);
    let mut previous = gap.before;
    let spans: Vec<f64> = stretch
        .steps
        .iter()
        .map(|(time, _)| {
            let span = ((time - previous) * fps).round().max(1.0);
            previous = *time;
            span
        })
        .collect();
    let largest_span = stretch
        .steps
        .iter()
        .zip(&spans)
        .find(|((at, _), _)| *at == time)
        .map_or(1.0, |(_, span)| *span);
    // a step over more frames than another may change more with motion alone (weighed as
    // the detector weighs its neighbours, see `boundaries`)
    let stands_out = stretch
        .steps
        .iter()
        .zip(&spans)
        .filter(|((at, _), _)| *at != time)
        .all(|((_, score), span)| {
            largest >= STANDS_OUT * score * (largest_span / span).max(1.0).sqrt()
        });
    Some(if largest < CUT_SHARE * stretch.across || !stands_out {
        Placed::NotACut
    } else {
        Placed::At(time)
    })
}

/// The time and size of the largest change in (`gap.before`, `gap.at`].
fn strongest_change(steps: &[(f64, f64)], gap: Gap) -> Option<(f64, f64)> {
    // half a millisecond: times printed to the microsecond
    let epsilon = 5e-4;
    steps
        .iter()
        .copied()
        .filter(|(time, _)| *time > gap.before + epsilon && *time < gap.at + epsilon)
        .fold(None, |best: Option<(f64, f64)>, (time, score)| match best {
            Some((_, top)) if top >= score => best,
            _ => Some((time, score)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f64 = 30.0;
    const GAP: Gap = Gap {
        frame: 7,
        before: 1.0,
        at: 1.1333,
        keyframe: None,
    };

    fn stretch(steps: &[(f64, f64)], across: f64) -> Stretch {
        Stretch {
            steps: steps.to_vec(),
            across,
        }
    }

    #[test]
    fn the_cut_goes_on_the_largest_change_inside_the_stretch() {
        // frames at 1.0333, 1.0667, 1.1 and the anchor 1.1333: the cut is at 1.0667
        let cut = stretch(
            &[(1.0333, 2.0), (1.0667, 40.0), (1.1, 3.0), (1.1333, 1.0)],
            42.0,
        );
        assert_eq!(verdict(&cut, GAP, FPS), Some(Placed::At(1.0667)));
        // on the anchor itself when that is where the change is
        let on_anchor = stretch(
            &[(1.0333, 2.0), (1.0667, 1.0), (1.1, 3.0), (1.1333, 50.0)],
            51.0,
        );
        assert_eq!(verdict(&on_anchor, GAP, FPS), Some(Placed::At(1.1333)));
        // frames outside the stretch do not count; none inside, no answer
        assert_eq!(
            verdict(&stretch(&[(0.9, 90.0), (1.2, 90.0)], 90.0), GAP, FPS),
            None
        );
        assert_eq!(verdict(&Stretch::default(), GAP, FPS), None);
    }

    #[test]
    fn a_change_spread_over_the_stretch_is_no_cut() {
        // the end of a dissolve: four steps of about a quarter each
        let dissolve = stretch(
            &[(1.0333, 9.0), (1.0667, 10.0), (1.1, 9.5), (1.1333, 9.0)],
            37.0,
        );
        assert_eq!(verdict(&dissolve, GAP, FPS), Some(Placed::NotACut));
        // two steps (a pyramid's reference B-frame between): half each
        let two = stretch(&[(1.0667, 20.0), (1.1333, 19.0)], 38.0);
        assert_eq!(verdict(&two, GAP, FPS), Some(Placed::NotACut));
    }

    #[test]
    fn a_change_that_saturates_is_no_cut() {
        // cellular automaton noise at 25 fps (an x264 stream of it decoded without its
        // non-reference frames): each step of two frames differs as much as the first and last
        let gap = Gap {
            frame: 265,
            before: 19.08,
            at: 19.24,
            keyframe: Some(18.0),
        };
        let noise = stretch(&[(19.16, 44.334), (19.24, 44.384)], 45.265);
        assert_eq!(verdict(&noise, gap, 25.0), Some(Placed::NotACut));
        // a cut in fast motion stands out of it
        let cut = stretch(
            &[(1.0333, 20.0), (1.0667, 60.0), (1.1, 22.0), (1.1333, 21.0)],
            70.0,
        );
        assert_eq!(verdict(&cut, GAP, FPS), Some(Placed::At(1.0667)));
        // weighed by the frames each step spans: a step over two frames of motion that
        // changes 30 over one is no cut; a cut over two frames among single ones is
        let motion = stretch(&[(1.0333, 30.0), (1.1, 44.0), (1.1333, 30.0)], 50.0);
        assert_eq!(verdict(&motion, GAP, FPS), Some(Placed::NotACut));
        let two_frames = stretch(&[(1.0333, 20.0), (1.1, 75.0), (1.1333, 20.0)], 80.0);
        assert_eq!(verdict(&two_frames, GAP, FPS), Some(Placed::At(1.1)));
    }

    #[test]
    fn frames_left_out_in_a_row_are_counted() {
        let gap = Gap {
            frame: 3,
            before: 1.0,
            at: 1.16,
            keyframe: None,
        };
        // 25 fps, a pyramid's reference B-frame and the anchor: one left out each time
        assert_eq!(most_left_out(&[(1.08, 1.0), (1.16, 9.0)], gap, 25.0), 1);
        // no pyramid: only the anchor, three left out
        assert_eq!(most_left_out(&[(1.16, 9.0)], gap, 25.0), 3);
        let every: Vec<(f64, f64)> = (1..=4).map(|k| (1.0 + 0.04 * k as f64, 1.0)).collect();
        assert_eq!(most_left_out(&every, gap, 25.0), 0);
    }
}
